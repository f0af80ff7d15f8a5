"""The CPU comparison: gan_fast's whole training step against the NumPy reference trainer
and PyTorch eager running the identical model and algorithm (benchmarks/quality/torch_twin.py),
with and without dropout in PyTorch, at batch 64 and 256, in one process.

    python -m benchmarks.perf.compare [--threads 2] [--rounds 15] [--batches 64 256]
    # PyTorch is optional: pip install .[bench]
    # fair OpenBLAS for the NumPy reference: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ...

Method: every implementation is built and warmed up first; then in each round each one
runs `steps` timed steps back to back (rounds interleave the implementations, so a noisy
neighbour hits them all alike); the table gives medians over all timed steps. The NumPy
reference runs a few steps only (it is ~100x slower). GFLOP/s counts gan_fast's step
work, step_flop() in step_bench.py (68.16 MFLOP per image: GEMM-shaped work only, D's
weight gradients in the G step and conv1's input gradient are not counted, as gan_fast
does not compute them; PyTorch does more work than this). % of peak divides by the FMA
throughput measured on the same threads just before (gan_fast._C.fma_peak_gflops: 16
independent FMA chains per thread on the widest vector path, best of 5).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import gan_fast

from .step_bench import _gan_fast_step, _torch_step, gan_step, step_flop


def _reference_step(batch):
    from gan_fast import reference
    return gan_step(reference, np, batch)


def _timed(fn, steps):
    out = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def compare(batches, threads, rounds, steps, reference_steps):
    gan_fast.set_num_threads(threads)
    try:
        import torch
        torch.set_num_threads(threads)
        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    peak = gan_fast._C.fma_peak_gflops(0.2, 5)
    results = []
    for batch in batches:
        impls = {"gan_fast": _gan_fast_step("cpu", batch)}
        for dropout in (True, False):
            fn = _torch_step("cpu", batch, dropout)
            if fn is not None:
                impls["torch" + ("" if dropout else " (no dropout)")] = fn
        for fn in impls.values():  # warm-up: allocations, oneDNN primitive caches, page faults
            for _ in range(3):
                fn()
        samples = {name: [] for name in impls}
        for _ in range(rounds):
            for name, fn in impls.items():
                samples[name] += _timed(fn, steps)
        if reference_steps:
            ref = _reference_step(batch)
            ref()
            samples["numpy reference"] = _timed(ref, reference_steps)
        times = {name: statistics.median(s) for name, s in samples.items()}
        results.append((batch, times))
    return peak, torch_version, results


def table(peak, threads, results):
    lines = [f"FMA peak measured: {peak:.1f} GFLOP/s on {threads} threads",
             "",
             "| batch | implementation | ms/step | images/s | GFLOP/s | % of FMA peak | gan_fast speed-up |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for batch, times in results:
        ours = times["gan_fast"]
        for name, sec in times.items():
            gflops = step_flop(batch) / sec / 1e9
            ratio = "" if name == "gan_fast" else f"{sec / ours:.2f}x"
            lines.append(f"| {batch} | {name} | {sec * 1e3:.2f} | {batch / sec:,.0f} | "
                         f"{gflops:.1f} | {100 * gflops / peak:.1f}% | {ratio} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--steps", type=int, default=2, help="timed steps per round and implementation")
    ap.add_argument("--reference-steps", type=int, default=2,
                    help="timed steps of the NumPy reference trainer (0: skip it)")
    args = ap.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f}; cpu isa {gan_fast.cpu_isa()}",
          flush=True)
    peak, torch_version, results = compare(args.batches, args.threads, args.rounds, args.steps,
                                           args.reference_steps)
    print(f"torch {torch_version or 'not installed'}; load average after: "
          f"{os.getloadavg()[0]:.2f}")
    print(table(peak, args.threads, results))


if __name__ == "__main__":
    main()
