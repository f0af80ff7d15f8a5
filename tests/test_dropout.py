"""Dropout beyond the parity sweep of tests/op_cases.py: identical masks in kernels and
reference for the same seed, the kept fraction within statistical bounds of 1 − p; the
fused leaky_relu_dropout bit for bit against the two ops in turn."""
import numpy as np
import pytest

from gan_fast import ops, reference
from parity import assert_close


def test_kernel_mask_is_the_reference_mask(backend, rng):
    """Strictly positive inputs make the mask readable as y != 0; it must match exactly."""
    n, p = 200_003, 0.3
    seed = int(rng.integers(0, 2**64, dtype=np.uint64))
    x = rng.uniform(0.5, 1.5, n)
    kept = backend.to_numpy(ops.dropout_forward(backend.asarray(x), p, seed)) != 0
    np.testing.assert_array_equal(kept, reference.dropout_keep_mask(n, p, seed))


@pytest.mark.parametrize("p", [0.1, 0.3, 0.7])
def test_kept_fraction_is_one_minus_p(backend, rng, p):
    n = 1_000_000
    seed = int(rng.integers(0, 2**63))
    y = backend.to_numpy(ops.dropout_forward(backend.asarray(np.ones(n)), p, seed))
    kept = np.count_nonzero(y)
    sigma = np.sqrt(n * p * (1 - p))
    assert abs(kept - n * (1 - p)) < 6 * sigma, (kept, n * (1 - p), sigma)
    np.testing.assert_allclose(y[y != 0], 1 / (1 - p), rtol=1e-6)


def test_masks_differ_between_seeds_and_repeat_for_one_seed(rng):
    a = reference.dropout_keep_mask(10_000, 0.5, 1)
    b = reference.dropout_keep_mask(10_000, 0.5, 2)
    assert 0.4 < np.mean(a != b) < 0.6
    np.testing.assert_array_equal(a, reference.dropout_keep_mask(10_000, 0.5, 1))


def test_mask_is_a_prefix_function_of_the_index():
    """Element i's fate depends only on (seed, i), not on the array's size or shape."""
    np.testing.assert_array_equal(reference.dropout_keep_mask(1000, 0.3, 7),
                                  reference.dropout_keep_mask(5000, 0.3, 7)[:1000])


def test_mask_compares_p_as_float32_like_the_kernels(backend):
    """u is a multiple of 2^-24, so it can equal float32(0.9) = 15099494 / 2^24 exactly;
    kernels and reference must then agree (keep)."""
    p, n = 0.9, 1 << 16
    for seed in range(2000):  # find a (seed, index) whose u is exactly float32(p)
        key = reference.splitmix64_mix(np.uint64(seed))
        with np.errstate(over="ignore"):
            h = reference.splitmix64_mix(key + np.arange(n, dtype=np.uint64))
        hits = np.flatnonzero((h >> np.uint64(40)) == np.uint64(15099494))
        if hits.size:
            break
    else:
        pytest.skip("no exact hit in the searched seeds")
    x = np.ones(n, np.float32)
    kept = backend.to_numpy(ops.dropout_forward(backend.asarray(x), p, seed)) != 0
    np.testing.assert_array_equal(kept, reference.dropout_keep_mask(n, p, seed))
    assert kept[hits[0]]


def test_leaky_relu_dropout_is_bitwise_the_two_ops(backend, rng):
    """The fused op does the same float operations in the same order, so a model may use
    either: training results do not change."""
    shape, p, slope = (5, 64, 14, 14), 0.3, 0.2
    seed = int(rng.integers(0, 2**63))
    x = backend.asarray(rng.standard_normal(shape).astype(np.float32))
    dy = backend.asarray(rng.standard_normal(shape).astype(np.float32))
    two = ops.dropout_forward(ops.leaky_relu_forward(x, slope), p, seed)
    two_back = ops.leaky_relu_backward(ops.dropout_backward(dy, p, seed), x, slope)
    np.testing.assert_array_equal(backend.to_numpy(ops.leaky_relu_dropout_forward(x, slope, p, seed)),
                                  backend.to_numpy(two))
    np.testing.assert_array_equal(
        backend.to_numpy(ops.leaky_relu_dropout_backward(dy, x, slope, p, seed)),
        backend.to_numpy(two_back))


# ------------------------------------------------------------------------------ step-keyed masks
def _step(backend, step, kind):
    return step if kind == "int" else backend.xp.asarray(np.full(
        (1,) if kind == "array1" else (), step, dtype=np.int64))


@pytest.mark.parametrize("kind", ["int", "array1", "array0"])
def test_step_keyed_mask_is_the_model_dropout_seed(backend, rng, kind):
    """With seed = dropout_key(run_seed, layer, pass) = mix(run_seed + golden) + 2·layer + pass,
    the step-keyed mask is the mask
    of gan_fast.model.dropout_seed(run_seed, step, layer, pass): the model's masks can be
    drawn with a step read from device memory, bit for bit."""
    from gan_fast.model import dropout_key, dropout_seed
    n, p = 4099, 0.3
    x = rng.uniform(0.5, 1.5, n).astype(np.float32)  # > 0: kept elements are nonzero
    for _ in range(4):
        run_seed = int(rng.integers(0, 2**64, dtype=np.uint64))
        step, layer, pass_ = int(rng.integers(0, 2**40)), int(rng.integers(0, 4)), int(rng.integers(0, 2))
        base = dropout_key(run_seed, layer, pass_)
        model_seed = dropout_seed(run_seed, step, layer, pass_)
        assert reference.dropout_step_seed(base, step) == model_seed
        want = reference.dropout_keep_mask(n, p, model_seed)
        np.testing.assert_array_equal(reference.dropout_keep_mask(n, p, base, step), want)
        s = _step(backend, step, kind)
        xb = backend.asarray(x)
        np.testing.assert_array_equal(backend.to_numpy(ops.dropout_forward(xb, p, base, step=s)) != 0,
                                      want)
        np.testing.assert_array_equal(
            backend.to_numpy(ops.dropout_forward(xb, p, base, step=s)),
            backend.to_numpy(ops.dropout_forward(xb, p, model_seed)))
        np.testing.assert_array_equal(
            backend.to_numpy(ops.dropout_backward(xb, p, base, step=s)),
            backend.to_numpy(ops.dropout_backward(xb, p, model_seed)))
        np.testing.assert_array_equal(
            backend.to_numpy(ops.leaky_relu_dropout_forward(xb - 1, 0.2, p, base, step=s)),
            backend.to_numpy(ops.leaky_relu_dropout_forward(xb - 1, 0.2, p, model_seed)))
        np.testing.assert_array_equal(
            backend.to_numpy(ops.leaky_relu_dropout_backward(xb, xb - 1, 0.2, p, base, step=s)),
            backend.to_numpy(ops.leaky_relu_dropout_backward(xb, xb - 1, 0.2, p, model_seed)))


@pytest.mark.parametrize("shape", [(1,), (67,), (5, 64, 14, 14)], ids=str)
def test_step_keyed_parity(backend, rng, shape):
    seed, step, p = int(rng.integers(0, 2**63)), int(rng.integers(0, 2**20)), 0.3
    x, dy = rng.standard_normal(shape), rng.standard_normal(shape)
    s = _step(backend, step, "array1")
    assert_close("dropout_forward",
                 ops.dropout_forward(backend.asarray(x), p, seed, s, out=backend.poisoned(shape)),
                 reference.dropout_forward(x, p, seed, step))
    assert_close("dropout_backward",
                 ops.dropout_backward(backend.asarray(dy), p, seed, s, dx=backend.poisoned(shape)),
                 reference.dropout_backward(dy, p, seed, step))
    assert_close("leaky_relu_dropout_forward",
                 ops.leaky_relu_dropout_forward(backend.asarray(x), 0.2, p, seed, s,
                                                out=backend.poisoned(shape)),
                 reference.leaky_relu_dropout_forward(x, 0.2, p, seed, step))
    assert_close("leaky_relu_dropout_backward",
                 ops.leaky_relu_dropout_backward(backend.asarray(dy), backend.asarray(x), 0.2, p,
                                                 seed, s, dx=backend.poisoned(shape)),
                 reference.leaky_relu_dropout_backward(dy, x, 0.2, p, seed, step))


def test_step_keyed_masks_differ_between_steps():
    a = reference.dropout_keep_mask(10_000, 0.5, 3, 0)
    assert 0.4 < np.mean(a != reference.dropout_keep_mask(10_000, 0.5, 3, 1)) < 0.6
    assert 0.4 < np.mean(a != reference.dropout_keep_mask(10_000, 0.5, 3)) < 0.6
