"""Every GEMM-shaped op of the training step (linear forward/backward, conv2d
forward/backward) at the model's shapes, gan_fast against NumPy's OpenBLAS sgemm on the
equivalent GEMM (cases.py), same process, same threads, batch 64 and 256.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.perf.gemm_table [--isa avx2]

Per op and round, each side runs `reps` calls back to back after a warm-up call, and the
process sleeps between the two blocks: OpenMP's and OpenBLAS's idle threads spin for a
while after a call (OpenBLAS's for up to ~0.1 s) and would otherwise steal the other
side's cores. The table gives the median over rounds of each side's median call. ratio = NumPy time / gan_fast time (above 1: gan_fast
is faster); the target is >= 0.90.
"""
from __future__ import annotations

import argparse
import statistics
import time

import gan_fast

from .cases import model_cases
from .timing import time_cpu


kSettle = 0.15  # seconds for the other side's spinning threads to go idle


def table(batches, rounds, reps):
    rows = []
    for batch in batches:
        for case in model_cases("cpu", batch):
            baseline = case.baselines.get("numpy")
            if baseline is None:
                continue
            ours, theirs = [], []
            for _ in range(rounds):
                time.sleep(kSettle)
                ours.append(time_cpu(case.ours, warmup=1, reps=reps))
                time.sleep(kSettle)
                theirs.append(time_cpu(baseline, warmup=1, reps=reps))
            t_ours, t_np = statistics.median(ours), statistics.median(theirs)
            rows.append((batch, case.name, case.flop, t_ours, t_np))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--isa", default=None, help="force a SIMD path (avx512, avx2, scalar)")
    args = ap.parse_args(argv)
    if args.isa:
        gan_fast.set_cpu_isa(args.isa)
    rows = table(args.batches, args.rounds, args.reps)
    print(f"isa {gan_fast.cpu_isa()}, {gan_fast.get_num_threads()} threads\n")
    print("| batch | op | MFLOP | gan_fast ms | gan_fast GFLOP/s | NumPy ms | NumPy GFLOP/s | ratio |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for batch, name, flop, t_ours, t_np in rows:
        print(f"| {batch} | {name} | {flop / 1e6:.1f} | {t_ours * 1e3:.3f} | {flop / t_ours / 1e9:.1f} "
              f"| {t_np * 1e3:.3f} | {flop / t_np / 1e9:.1f} | {t_np / t_ours:.2f} |")
    worst = min(rows, key=lambda r: r[4] / r[3])
    print(f"\nlowest ratio: {worst[4] / worst[3]:.2f} ({worst[1]}, batch {worst[0]})")


if __name__ == "__main__":
    main()
