"""Timing helpers for the benchmarks: warm up first, then the median of many runs.
CPU: perf_counter around each call. CUDA: events on the current stream around each call
(the kernels are asynchronous; events time the device, not the launch)."""
from __future__ import annotations

import statistics
import time


def samples_cpu(fn, warmup=3, reps=20):
    """Seconds of each of reps calls of fn() on the host (after warm-up), sorted."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return sorted(samples)


def time_cpu(fn, warmup=3, reps=20):
    """Median seconds per call of fn() on the host."""
    return statistics.median(samples_cpu(fn, warmup, reps))


def time_cuda(fn, warmup=10, reps=50):
    """Median seconds per call of fn() on the GPU, by CUDA events on the current stream."""
    import cupy
    for _ in range(warmup):
        fn()
    cupy.cuda.get_current_stream().synchronize()
    samples = []
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    for _ in range(reps):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        samples.append(cupy.cuda.get_elapsed_time(start, stop) / 1e3)
    return statistics.median(samples)


def timer(backend):
    return time_cuda if backend == "cuda" else time_cpu
