"""Parity of minibatch_stddev_forward / minibatch_stddev_backward with gan_fast.reference:
the discriminator's [N, 128, 7, 7] features at the model's batches, odd sizes, N not a
multiple of group_size (a short last group), N = 1, group_size 1 and larger than N, rows
that nearly agree (a collapsing generator); the copied channels bitwise, the statistic
channel and its gradient on their own; every SIMD path on the CPU."""
import numpy as np
import pytest

import gan_fast
from gan_fast import ops, reference
from conftest import Backend
from parity import assert_close

# (N, C, H, W, group_size)
ODD = [(1, 1, 1, 1, 4), (1, 3, 5, 5, 4), (5, 3, 2, 7, 4), (7, 17, 3, 1, 2), (6, 2, 3, 3, 1),
       (3, 5, 4, 4, 8), (67, 33, 3, 5, 4), (9, 1, 1, 17, 3), (12, 600, 1, 1, 12)]
# D's second convolution's output; D sees 2N rows (real and fake), 130 leaves a group of 2.
MODEL = [(n, 128, 7, 7, 4) for n in (64, 128, 256, 130)]


def random_f32(rng, shape, scale=1.0, offset=0.0):
    """Random float32 values; the reference gets exactly these, widened to float64."""
    return (offset + scale * rng.standard_normal(shape)).astype(np.float32)


def check_minibatch_stddev(backend, rng, N, C, H, W, G, eps=1e-8, spread=2.0):
    x = random_f32(rng, (N, C, H, W), spread, 1.5)
    x64 = x.astype(np.float64)
    y = backend.to_numpy(ops.minibatch_stddev_forward(
        backend.asarray(x), G, eps, out=backend.poisoned((N, C + 1, H, W))))
    ry = reference.minibatch_stddev_forward(x64, G, eps)
    np.testing.assert_array_equal(y[:, :C], x, err_msg="the copied channels must be x, bitwise")
    assert_close("minibatch_stddev_forward.statistic", y[:, C], ry[:, C])

    dy = random_f32(rng, (N, C + 1, H, W))
    # With dy zero on the copied channels dx is the statistic's gradient alone, so the bound
    # is not diluted by the (much larger) copied part.
    statistic_only = dy.copy()
    statistic_only[:, :C] = 0
    for name, d in (("dx", dy), ("dx_statistic_only", statistic_only)):
        dx = ops.minibatch_stddev_backward(backend.asarray(d), backend.asarray(x), G, eps,
                                           dx=backend.poisoned((N, C, H, W)))
        assert_close(f"minibatch_stddev_backward.{name}", dx,
                     reference.minibatch_stddev_backward(d.astype(np.float64), x64, G, eps))


@pytest.mark.parametrize("N,C,H,W,G", ODD + MODEL, ids=str)
def test_minibatch_stddev(backend, rng, N, C, H, W, G):
    check_minibatch_stddev(backend, rng, N, C, H, W, G)


@pytest.mark.parametrize("eps", [1e-3, 0.5])
def test_minibatch_stddev_other_eps(backend, rng, eps):
    check_minibatch_stddev(backend, rng, 10, 7, 3, 3, 4, eps)


@pytest.mark.parametrize("spread", [1e-3, 1e-5])
def test_minibatch_stddev_rows_that_nearly_agree(backend, rng, spread):
    """A collapsing generator's rows differ by little: x − mean is then all cancellation
    unless it is taken from differences of the rows (minibatch_stddev.h), and the backward
    multiplies its error by 1/std."""
    N, C, H, W = 64, 128, 7, 7
    base = rng.standard_normal((1, C, H, W))
    x = (base + spread * rng.standard_normal((N, C, H, W))).astype(np.float32)
    dy = random_f32(rng, (N, C + 1, H, W))
    dy[:, :C] = 0
    x64 = x.astype(np.float64)
    y = ops.minibatch_stddev_forward(backend.asarray(x))
    assert_close("minibatch_stddev_forward.statistic", backend.to_numpy(y)[:, C],
                 reference.minibatch_stddev_forward(x64)[:, C])
    dx = ops.minibatch_stddev_backward(backend.asarray(dy), backend.asarray(x))
    assert_close("minibatch_stddev_backward.dx_statistic_only", dx,
                 reference.minibatch_stddev_backward(dy.astype(np.float64), x64))


@pytest.mark.parametrize("N,C,H,W,G", [(7, 17, 3, 1, 2), (67, 33, 3, 5, 4), (256, 128, 7, 7, 4)],
                         ids=str)
def test_minibatch_stddev_every_cpu_isa(cpu_isa, rng, N, C, H, W, G):
    assert gan_fast.cpu_isa() == cpu_isa
    check_minibatch_stddev(Backend("cpu"), rng, N, C, H, W, G)


def test_minibatch_stddev_empty_batch(backend):
    x = backend.asarray(np.zeros((0, 3, 2, 2)))
    assert ops.minibatch_stddev_forward(x).shape == (0, 4, 2, 2)
    dy = backend.asarray(np.zeros((0, 4, 2, 2)))
    assert ops.minibatch_stddev_backward(dy, x).shape == (0, 3, 2, 2)


def test_minibatch_stddev_statistic_of_identical_rows_is_sqrt_eps(backend, rng):
    """Rows that agree exactly have variance 0 in every feature: s_g = sqrt(eps), and the
    statistic's gradient is exactly 0 (x − mean = 0)."""
    x = np.repeat(random_f32(rng, (1, 5, 3, 3)), 8, axis=0)
    y = backend.to_numpy(ops.minibatch_stddev_forward(backend.asarray(x), 4, 1e-4))
    np.testing.assert_allclose(y[:, 5], 1e-2, rtol=1e-6)
    dy = random_f32(rng, (8, 6, 3, 3))
    dx = ops.minibatch_stddev_backward(backend.asarray(dy), backend.asarray(x), 4, 1e-4)
    dx = backend.to_numpy(dx)
    np.testing.assert_array_equal(dx, dy[:, :5])
