"""Parity of leaky_relu and tanh (forward and backward) with gan_fast.reference."""
import numpy as np
import pytest

from gan_fast import ops, reference
from parity import assert_close

SHAPES = [(1,), (3,), (67,), (1, 1), (3, 67), (64, 256), (7, 3, 5, 9), (256, 1024), (300_001,)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("slope", [0.2, 0.0, 1.7])
def test_leaky_relu(backend, rng, shape, slope):
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(shape)
    y = ops.leaky_relu_forward(backend.asarray(x), slope, out=backend.poisoned(shape))
    assert_close("leaky_relu_forward", y, reference.leaky_relu_forward(x, slope))
    dx = ops.leaky_relu_backward(backend.asarray(dy), backend.asarray(x), slope,
                                 dx=backend.poisoned(shape))
    assert_close("leaky_relu_backward", dx, reference.leaky_relu_backward(dy, x, slope))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_tanh(backend, rng, shape):
    x = 3 * rng.standard_normal(shape)
    y32 = np.tanh(x).astype(np.float32)
    dy = rng.standard_normal(shape)
    y = ops.tanh_forward(backend.asarray(x), out=backend.poisoned(shape))
    assert_close("tanh_forward", y, reference.tanh_forward(x))
    dx = ops.tanh_backward(backend.asarray(dy), backend.asarray(y32), dx=backend.poisoned(shape))
    assert_close("tanh_backward", dx, reference.tanh_backward(dy, y32.astype(np.float64)))


def test_outputs_are_allocated_when_not_given(backend, rng):
    x = backend.asarray(rng.standard_normal((5, 7)))
    y = ops.leaky_relu_forward(x)
    assert y.shape == (5, 7) and y.dtype == np.float32 and type(y) is type(x)


def test_in_place_aliasing_is_allowed(backend, rng):
    x = rng.standard_normal((33, 17))
    buf = backend.asarray(x)
    out = ops.tanh_forward(buf, out=buf)
    assert out is buf
    assert_close("tanh_forward", buf, np.tanh(x))
