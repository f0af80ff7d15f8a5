"""Parity of concat_forward / concat_backward with gan_fast.reference (exact: they only
copy): ranks 2 to 4, empty parts, the model's shapes ([z, label] into G, [image, label
planes] into D), outputs poisoned with NaN, each gradient part on its own."""
import numpy as np
import pytest

from conftest import results_per_thread_count
from gan_fast import ops, reference
from parity import assert_close

# (a shape, b's size along axis 1)
ODD = [((1, 1), 1), ((3, 5), 2), ((7, 0), 3), ((7, 3), 0), ((4, 3, 5), 2), ((2, 1, 1, 1), 1),
       ((3, 2, 5, 7), 3), ((5, 1, 3, 3), 0), ((0, 4, 2, 2), 3), ((67, 33), 129)]
MODEL = [((n, 100), 10) for n in (64, 256)] + [((n, 1, 28, 28), 10) for n in (64, 256)] \
    + [((n, 64, 14, 14), 10) for n in (64, 256)]


def random_f32(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def with_axis1(shape, size):
    return (shape[0], size) + tuple(shape[2:])


@pytest.mark.parametrize("a_shape,B", ODD + MODEL, ids=str)
def test_concat(backend, rng, a_shape, B):
    b_shape = with_axis1(a_shape, B)
    y_shape = with_axis1(a_shape, a_shape[1] + B)
    a, b, dy = random_f32(rng, a_shape), random_f32(rng, b_shape), random_f32(rng, y_shape)
    y = ops.concat_forward(backend.asarray(a), backend.asarray(b), out=backend.poisoned(y_shape))
    assert_close("concat_forward", y, reference.concat_forward(a.astype(np.float64), b.astype(np.float64)))

    da, db = ops.concat_backward(backend.asarray(dy), a_shape[1], da=backend.poisoned(a_shape),
                                 db=backend.poisoned(b_shape))
    rda, rdb = reference.concat_backward(dy.astype(np.float64), a_shape[1])
    assert_close("concat_backward.da", da, rda)
    assert_close("concat_backward.db", db, rdb)


@pytest.mark.parametrize("need", [(True, False), (False, True), (False, False)], ids=str)
def test_concat_backward_skips_unneeded(backend, rng, need):
    dy = random_f32(rng, (3, 7, 2, 2))
    got = ops.concat_backward(backend.asarray(dy), 4, *need)
    want = reference.concat_backward(dy.astype(np.float64), 4, *need)
    for name, wanted, g, r in zip(("da", "db"), need, got, want):
        if wanted:
            assert_close(f"concat_backward.{name}", g, r)
        else:
            assert g is None, f"concat_backward.{name}: expected None when not needed"


def test_concat_is_bitwise_the_same_for_any_thread_count(rng):
    a, b = random_f32(rng, (256, 64, 14, 14)), random_f32(rng, (256, 10, 14, 14))
    y = np.concatenate([a, b], axis=1)
    one, *others = results_per_thread_count(
        lambda: [ops.concat_forward(a, b), *ops.concat_backward(y, 64)])
    np.testing.assert_array_equal(one[0], y)
    for other in others:
        for p, q in zip(one, other):
            np.testing.assert_array_equal(p, q)


def test_reference_refuses_a_split_past_the_end(rng):
    with pytest.raises(ValueError, match="split"):
        reference.concat_backward(rng.standard_normal((2, 3)), 4)
