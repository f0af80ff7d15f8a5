"""pytest-benchmark suite: every op forward and backward at the model's shapes, batch 64
and 256, on the CPU (and on CUDA when a device is present), each beside its baselines
(NumPy/OpenBLAS or CuPy/cuBLAS, and PyTorch when installed) in the same group.

    python -m pytest benchmarks/perf --benchmark-group-by=group   # not part of the tests

The report's extra_info holds GFLOP/s (GEMM-shaped ops) or GB/s (the rest).
"""
from __future__ import annotations

import pytest

import gan_fast

from .cases import model_cases

BACKENDS = ["cpu"] + (["cuda"] if gan_fast.cuda_available() else [])
BATCHES = [64, 256]


def _runner(backend, fn):
    if backend != "cuda":
        return fn
    import cupy

    def synced():  # the kernels are asynchronous: time until the device is done
        fn()
        cupy.cuda.get_current_stream().synchronize()
    return synced


def _all_runs():
    for backend in BACKENDS:
        for batch in BATCHES:
            for case in model_cases(backend, batch):
                yield pytest.param(backend, batch, case, "gan_fast", case.ours,
                                   id=f"{backend}-{batch}-{case.name}-gan_fast")
                for label, fn in case.baselines.items():
                    yield pytest.param(backend, batch, case, label, fn,
                                       id=f"{backend}-{batch}-{case.name}-{label}")


@pytest.mark.parametrize("backend,batch,case,impl,fn", _all_runs())
def test_op(benchmark, backend, batch, case, impl, fn):
    benchmark.group = f"{backend} batch {batch}: {case.name}"
    benchmark.extra_info.update(impl=impl, backend=backend, batch=batch)
    benchmark.pedantic(_runner(backend, fn), warmup_rounds=3, rounds=30, iterations=1)
    seconds = benchmark.stats.stats.median
    if case.flop:
        benchmark.extra_info["GFLOP/s"] = round(case.flop / seconds / 1e9, 1)
    else:
        benchmark.extra_info["GB/s"] = round(case.nbytes / seconds / 1e9, 1)
