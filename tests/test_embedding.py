"""Parity of embedding_forward / embedding_backward with gan_fast.reference: odd sizes and
the model's shapes (one-hot label planes D = 10·784, learned embeddings D = 10..128), labels
naming every class or leaving some out, outputs poisoned with NaN; backward is exactly the
float32 sum in increasing n; bitwise the same for 1, 2 and 3 threads; the CUDA kernels' NaN
for a bad label (the CPU refuses one: tests/test_errors.py)."""
import numpy as np
import pytest

from conftest import draw_labels, results_per_thread_count
from gan_fast import ops, reference
from parity import assert_close

# (N, C, D): labels [N], weight [C, D]
ODD = [(1, 1, 1), (3, 2, 5), (7, 10, 17), (67, 3, 129), (130, 13, 257), (5, 1, 300), (2, 7, 0)]
MODEL = [(n, 10, d) for n in (64, 256) for d in (10, 128, 7840)]


def random_f32(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def _labels(backend, labels):
    return backend.xp.asarray(np.asarray(labels, dtype=np.int64))


def sequential_class_sums(dy, labels, C):
    """dweight in float32, rows added in increasing n: what the kernels must give bitwise."""
    out = np.zeros((C, dy.shape[1]), np.float32)
    for n, c in enumerate(labels):
        out[c] += dy[n]
    return out


@pytest.mark.parametrize("coverage", ["all", "some_absent"])
@pytest.mark.parametrize("N,C,D", ODD + MODEL, ids=str)
def test_embedding(backend, rng, N, C, D, coverage):
    weight, dy = random_f32(rng, (C, D)), random_f32(rng, (N, D))
    labels = draw_labels(rng, N, C, coverage)
    y = ops.embedding_forward(backend.asarray(weight), _labels(backend, labels),
                              out=backend.poisoned((N, D)))
    assert_close("embedding_forward", y, reference.embedding_forward(weight.astype(np.float64), labels))

    dweight = ops.embedding_backward(backend.asarray(dy), _labels(backend, labels), C,
                                     dweight=backend.poisoned((C, D)))
    assert_close("embedding_backward", dweight,
                 reference.embedding_backward(dy.astype(np.float64), labels, C))
    dweight = backend.to_numpy(dweight)
    np.testing.assert_array_equal(dweight, sequential_class_sums(dy, labels, C))
    absent = np.setdiff1d(np.arange(C), labels)
    assert not dweight[absent].any(), "a class without rows must get exact zeros"


def test_embedding_more_classes_than_the_labels_name(backend, rng):
    """num_classes sets dweight's rows: classes past the largest label get zeros."""
    dy, labels = random_f32(rng, (9, 6)), np.array([0, 2, 2, 1, 0, 2, 1, 1, 0])
    got = ops.embedding_backward(backend.asarray(dy), _labels(backend, labels), 5,
                                 dweight=backend.poisoned((5, 6)))
    assert_close("embedding_backward", got, reference.embedding_backward(dy.astype(np.float64), labels, 5))
    assert not backend.to_numpy(got)[3:].any()


def test_embedding_empty_batch_gives_zero_gradient(backend, rng):
    weight = random_f32(rng, (4, 3))
    y = ops.embedding_forward(backend.asarray(weight), _labels(backend, np.zeros(0)))
    assert y.shape == (0, 3)
    dweight = ops.embedding_backward(backend.asarray(np.zeros((0, 3))), _labels(backend, np.zeros(0)), 4,
                                     dweight=backend.poisoned((4, 3)))
    np.testing.assert_array_equal(backend.to_numpy(dweight), np.zeros((4, 3), np.float32))


def test_embedding_is_bitwise_the_same_for_any_thread_count(rng):
    """256 x 7840 one-hot planes: 31 column blocks, split differently over 1, 2, 3 threads."""
    weight, dy = random_f32(rng, (10, 7840)), random_f32(rng, (256, 7840))
    labels = draw_labels(rng, 256, 10)
    one, *others = results_per_thread_count(
        lambda: [ops.embedding_forward(weight, labels), ops.embedding_backward(dy, labels, 10)])
    for other in others:
        for a, b in zip(one, other):
            np.testing.assert_array_equal(a, b)


def test_cuda_marks_a_bad_label_with_nan(cuda_backend, rng):
    weight, dy = cuda_backend.asarray(random_f32(rng, (5, 3))), cuda_backend.asarray(random_f32(rng, (4, 3)))
    labels = _labels(cuda_backend, [0, 7, 1, -1])
    y = cuda_backend.to_numpy(ops.embedding_forward(weight, labels))
    assert np.isnan(y[[1, 3]]).all() and np.isfinite(y[[0, 2]]).all()
    assert np.isnan(cuda_backend.to_numpy(ops.embedding_backward(dy, labels, 5))).all()


def test_reference_refuses_a_bad_label(rng):
    with pytest.raises(ValueError, match="got 10 at index 1"):
        reference.embedding_forward(rng.standard_normal((10, 3)), np.array([0, 10]))
    with pytest.raises(ValueError, match="got -1 at index 0"):
        reference.embedding_backward(rng.standard_normal((2, 3)), np.array([-1, 0]), 10)
