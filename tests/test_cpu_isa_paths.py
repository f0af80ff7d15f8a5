"""Every CPU kernel on every SIMD path this machine can run (the cpu_isa fixture forces
avx512, avx2 and scalar in turn; skipped where the CPU lacks one), against the reference:
every op of tests/op_cases.py at its `simd` dims (its thread-split sizes, which leave a
remainder after every vector width, plus the edges of its variants: GEMM micro-kernel
tiles, conv2d's shallow unfolds), every result compared (BatchNorm's mean, rstd and
running statistics, Adam's params, m and v included)."""
import numpy as np
import pytest

import gan_fast
from gan_fast import ops
from conftest import Backend
from op_cases import assert_results_close, params, run_kernel, run_reference

CPU = Backend("cpu")


@pytest.mark.parametrize("case,dims", params("simd"))
def test_every_op_on_every_cpu_isa(cpu_isa, rng, case, dims):
    assert gan_fast.cpu_isa() == cpu_isa
    call = case.build(rng, **dims)
    want = run_reference(case, call)
    assert_results_close(case, run_kernel(case, call, CPU), want, label=f" on {cpu_isa}",
                         floors=case.floor(case, call, want) if case.floor else None)


def test_tanh_special_values_every_cpu_isa(cpu_isa):
    x = np.array([0.0, -0.0, 0.624, 0.625, -0.626, 8.9, 9.0, 50.0, -50.0, np.inf, -np.inf, np.nan],
                 np.float32)
    y = ops.tanh_forward(x)
    np.testing.assert_allclose(y[:-1], np.tanh(x[:-1].astype(np.float64)), rtol=3e-7, atol=0)
    assert np.isnan(y[-1])
