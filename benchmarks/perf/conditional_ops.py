"""CPU time of the conditional GAN's ops (issue #15) at the model's shapes, beside the same
result in NumPy and, for the projection head, beside linear's 6272 -> 1 head (the speed it
should match), all in one process:

    python -m benchmarks.perf.conditional_ops [--threads 1] [--reps 200]

The cases are benchmarks/perf/cases.py's conditional_cases (also timed by `pytest benchmarks/perf`
and, on a GPU, by gpu_bench.py). Prints the minimum and median of --reps calls in µs and
NumPy's minimum over ours. NumPy's BLAS follows OPENBLAS_NUM_THREADS: set it to --threads
for a like-for-like table.
"""
from __future__ import annotations

import argparse

import gan_fast
from .cases import conditional_cases
from .timing import samples_cpu


def times(fn, reps):
    """(minimum, median) µs per call of fn(), after 3 warm-up calls."""
    samples = samples_cpu(fn, 3, reps)
    return samples[0] * 1e6, samples[len(samples) // 2] * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=gan_fast.get_num_threads())
    parser.add_argument("--reps", type=int, default=200)
    args = parser.parse_args()
    gan_fast.set_num_threads(args.threads)
    print(f"gan_fast on {gan_fast.cpu_isa()}, {args.threads} thread(s); µs per call, "
          f"min / median; ratio = other's min / ours")
    for batch in (64, 256):
        for case in conditional_cases("cpu", batch):
            ours = times(case.ours, args.reps)
            print(f"N={batch:<4d} {case.name:36s} gan_fast {ours[0]:7.1f} / {ours[1]:7.1f}")
            for label, fn in case.baselines.items():
                other = times(fn, args.reps)
                print(f"{'':42s}{label:>15s} {other[0]:7.1f} / {other[1]:7.1f}  "
                      f"{other[0] / ours[0]:5.2f}x")


if __name__ == "__main__":
    main()
