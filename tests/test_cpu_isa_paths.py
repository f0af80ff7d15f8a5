"""Every CPU kernel on every SIMD path this machine can run (the cpu_isa fixture forces
avx512, avx2 and scalar in turn): the elementwise ops and batchnorm against the reference,
at a length that leaves a remainder after every vector width and is split across threads.
(GEMM-based ops: tests/test_linear.py and tests/test_conv2d.py.)"""
import numpy as np
import pytest

import gan_fast
from gan_fast import ops, reference
from parity import assert_close

N = 300_001


def test_elementwise_every_cpu_isa(cpu_isa, rng):
    assert gan_fast.cpu_isa() == cpu_isa
    x, dy = 3 * rng.standard_normal(N), rng.standard_normal(N)
    x32 = x.astype(np.float32)
    assert_close("leaky_relu_forward", ops.leaky_relu_forward(x32, 0.2), reference.leaky_relu_forward(x, 0.2))
    assert_close("leaky_relu_backward", ops.leaky_relu_backward(dy.astype(np.float32), x32, 0.2),
                 reference.leaky_relu_backward(dy, x, 0.2))
    y = ops.tanh_forward(x32)
    assert_close("tanh_forward", y, reference.tanh_forward(x))
    assert_close("tanh_backward", ops.tanh_backward(dy.astype(np.float32), y),
                 reference.tanh_backward(dy, y.astype(np.float64)))
    seed = int(rng.integers(0, 2**63))
    assert_close("dropout_forward", ops.dropout_forward(x32, 0.3, seed), reference.dropout_forward(x, 0.3, seed))
    assert_close("dropout_backward", ops.dropout_backward(dy.astype(np.float32), 0.3, seed),
                 reference.dropout_backward(dy, 0.3, seed))


def test_tanh_special_values_every_cpu_isa(cpu_isa):
    x = np.array([0.0, -0.0, 0.624, 0.625, -0.626, 8.9, 9.0, 50.0, -50.0, np.inf, -np.inf, np.nan],
                 np.float32)
    y = ops.tanh_forward(x)
    np.testing.assert_allclose(y[:-1], np.tanh(x[:-1].astype(np.float64)), rtol=3e-7, atol=0)
    assert np.isnan(y[-1])


def test_adam_every_cpu_isa(cpu_isa, rng):
    p64, m64, v64 = rng.standard_normal(N), 0.1 * rng.standard_normal(N), rng.uniform(0, 0.1, N)
    p32, m32, v32 = (a.astype(np.float32) for a in (p64, m64, v64))
    p64, m64, v64 = (a.astype(np.float64) for a in (p32, m32, v32))
    for step in range(1, 3):
        g = rng.standard_normal(N)
        ops.adam_step(p32, g.astype(np.float32), m32, v32, step, 2e-4, 0.5)
        reference.adam_step(p64, g, m64, v64, step, 2e-4, 0.5)
    assert_close("adam_step.params", p32, p64)
    assert_close("adam_step.v", v32, v64)


@pytest.mark.parametrize("shape", [(256, 1024), (67, 128, 7, 7)], ids=str)
def test_batchnorm_every_cpu_isa(cpu_isa, rng, shape):
    C = shape[1]
    x, dy = rng.standard_normal(shape) + 2.0, rng.standard_normal(shape)
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    rm, rv = np.zeros(C, np.float32), np.ones(C, np.float32)
    y, mean, rstd = ops.batchnorm_forward(x.astype(np.float32), gamma.astype(np.float32),
                                          beta.astype(np.float32), rm, rv, True)
    ry, rmean, rrstd = reference.batchnorm_forward(x, gamma, beta, np.zeros(C), np.ones(C), True)
    assert_close("batchnorm_forward.y", y, ry)
    assert_close("batchnorm_forward.mean", mean, rmean)
    dx, dg, db = ops.batchnorm_backward(dy.astype(np.float32), x.astype(np.float32),
                                        gamma.astype(np.float32), mean, rstd, True)
    rdx, rdg, rdb = reference.batchnorm_backward(dy, x, gamma, rmean, rrstd, True)
    assert_close("batchnorm_backward.dx", dx, rdx)
    assert_close("batchnorm_backward.dgamma", dg, rdg)
    assert_close("batchnorm_backward.dbeta", db, rdb)
