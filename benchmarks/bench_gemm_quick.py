"""Quick GEMM throughput check: gan_fast's CPU gemm (through linear_forward, which is
C[M,N] = A[M,K]·B[N,K]ᵀ) against NumPy's `a @ b.T` (OpenBLAS) at the model's shapes,
same process, same threads. For a fair OpenBLAS baseline run it as
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_gemm_quick.py [isa]
"""
from __future__ import annotations

import sys
import time

import numpy as np

import gan_fast
from gan_fast import ops

# (name, M, N, K): the GEMMs of one training step at batch 64 and 256.
SHAPES = [(f"G fc{i} N={n}", n, out, inp)
          for n in (64, 256)
          for i, (inp, out) in enumerate([(100, 256), (256, 512), (512, 1024), (1024, 784)], 1)]
SHAPES += [
    ("D conv1 im2col, 1 image", 64, 196, 9),
    ("D conv1 im2col, 5 images", 64, 980, 9),
    ("D conv2 im2col, 1 image", 128, 49, 576),
    ("D conv2 im2col, 20 images", 128, 980, 576),
    ("D fc N=256", 256, 1, 6272),
]


def best_seconds(fn, min_time=0.2):
    fn()  # warm-up
    best, spent, reps = float("inf"), 0.0, 0
    while spent < min_time or reps < 5:
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        best, spent, reps = min(best, dt), spent + dt, reps + 1
    return best


def main():
    if len(sys.argv) > 1:
        gan_fast.set_cpu_isa(sys.argv[1])
    rng = np.random.default_rng(0)
    cases = []
    for name, M, N, K in SHAPES:
        a = rng.standard_normal((M, K), dtype=np.float32)
        b = rng.standard_normal((N, K), dtype=np.float32)
        cases.append((name, M, N, K, a, b, np.empty((M, N), np.float32)))
    # All of ours, then all of NumPy's: OpenBLAS's and OpenMP's idle threads spin for a
    # while after each call and would steal the other's cores if interleaved.
    ours = [best_seconds(lambda: ops.linear_forward(a, b, out=out)) for *_, a, b, out in cases]
    theirs = [best_seconds(lambda: np.matmul(a, b.T, out=out)) for *_, a, b, out in cases]
    print(f"isa={gan_fast.cpu_isa()} threads={gan_fast.get_num_threads()}")
    print(f"{'shape':28s} {'M':>5s} {'N':>5s} {'K':>5s} {'gan_fast GF/s':>14s} {'numpy GF/s':>11s}")
    for (name, M, N, K, *_), t_ours, t_theirs in zip(cases, ours, theirs):
        flops = 2.0 * M * N * K
        print(f"{name:28s} {M:5d} {N:5d} {K:5d} {flops / t_ours / 1e9:14.1f} "
              f"{flops / t_theirs / 1e9:11.1f}")


if __name__ == "__main__":
    main()
