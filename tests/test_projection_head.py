"""Parity of projection_head_forward / projection_head_backward (the projection
discriminator's head) with gan_fast.reference: odd sizes and the model's shapes (h [2N, 6272]
or [2N, 6321], C = 10), with and without bias, labels naming every class or leaving some
out, outputs poisoned with NaN, each gradient on its own; every SIMD path; a row's logit
depends on that row alone (rows are processed in class order on the CPU); bitwise the same
for 1, 2 and 3 threads; the CUDA kernels' NaN for a bad label (the CPU refuses one:
tests/test_errors.py)."""
import numpy as np
import pytest

import gan_fast
from conftest import Backend, draw_labels, results_per_thread_count
from gan_fast import ops, reference
from parity import assert_close

# (N, D, C): h [N, D], embed [C, D]
ODD = [(1, 1, 1), (3, 5, 2), (5, 33, 3), (4, 16, 1), (67, 129, 10), (130, 257, 7), (9, 6321, 10),
       (6, 0, 3)]
MODEL = [(n, d, 10) for n in (128, 512) for d in (6272, 6321)]
GRADS = ("dh", "dw", "db", "dembed")


def random_f32(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def _labels(backend, labels):
    return backend.xp.asarray(np.asarray(labels, dtype=np.int64))


def f64(*arrays):
    return [None if a is None else a.astype(np.float64) for a in arrays]


def check_projection_head(backend, rng, N, D, C, bias=True, coverage="all"):
    h, w, embed = random_f32(rng, (N, D)), random_f32(rng, (1, D)), random_f32(rng, (C, D))
    b = random_f32(rng, (1,)) if bias else None
    dlogits = random_f32(rng, (N, 1))
    labels = draw_labels(rng, N, C, coverage)
    on = lambda a: None if a is None else backend.asarray(a)

    logits = ops.projection_head_forward(on(h), on(w), on(b), on(embed), _labels(backend, labels),
                                         out=backend.poisoned((N, 1)))
    assert_close("projection_head_forward", logits,
                 reference.projection_head_forward(*f64(h, w, b, embed), labels))

    got = ops.projection_head_backward(on(dlogits), on(h), on(w), on(embed), _labels(backend, labels),
                                       dh=backend.poisoned((N, D)), dw=backend.poisoned((1, D)),
                                       db=backend.poisoned((1,)), dembed=backend.poisoned((C, D)))
    want = reference.projection_head_backward(*f64(dlogits, h, w, embed), labels)
    for name, g, r in zip(GRADS, got, want):
        assert_close(f"projection_head_backward.{name}", g, r)
    absent = np.setdiff1d(np.arange(C), labels)
    assert not backend.to_numpy(got[3])[absent].any(), "a class without rows must get exact zeros"


@pytest.mark.parametrize("coverage", ["all", "some_absent"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("N,D,C", ODD + MODEL, ids=str)
def test_projection_head(backend, rng, N, D, C, bias, coverage):
    check_projection_head(backend, rng, N, D, C, bias, coverage)


@pytest.mark.parametrize("N,D,C", [(1, 1, 1), (5, 33, 3), (67, 129, 10), (512, 6321, 10)], ids=str)
def test_projection_head_every_cpu_isa(cpu_isa, rng, N, D, C):
    assert gan_fast.cpu_isa() == cpu_isa
    check_projection_head(Backend("cpu"), rng, N, D, C, coverage="some_absent")


@pytest.mark.parametrize("need", [(True, False, False, False), (False, True, False, False),
                                  (False, False, True, False), (False, False, False, True),
                                  (False, True, False, True), (False,) * 4], ids=str)
def test_projection_head_backward_skips_unneeded(backend, rng, need):
    N, D, C = 7, 9, 4
    dlogits, h, w, embed = (random_f32(rng, s) for s in [(N, 1), (N, D), (1, D), (C, D)])
    labels = draw_labels(rng, N, C)
    got = ops.projection_head_backward(*(backend.asarray(a) for a in (dlogits, h, w, embed)),
                                       _labels(backend, labels), *need)
    want = reference.projection_head_backward(*f64(dlogits, h, w, embed), labels, *need)
    for name, wanted, g, r in zip(GRADS, need, got, want):
        if wanted:
            assert_close(f"projection_head_backward.{name}", g, r)
        else:
            assert g is None, f"projection_head_backward.{name}: expected None when not needed"


def test_a_rows_logit_depends_on_that_row_alone(backend, rng):
    """The CPU kernel takes rows in class order, 4 at a time; whichever rows a row is grouped
    with (or whether its block is of one class), its logit must be the same bits."""
    N, D, C = 203, 6321, 10
    h, w, embed, b = random_f32(rng, (N, D)), random_f32(rng, (1, D)), random_f32(rng, (C, D)), random_f32(rng, (1,))
    labels = draw_labels(rng, N, C)
    run = lambda rows: backend.to_numpy(ops.projection_head_forward(
        *(backend.asarray(a) for a in (h[rows], w, b, embed)), _labels(backend, labels[rows])))
    everything = run(np.arange(N))
    perm = rng.permutation(N)
    np.testing.assert_array_equal(run(perm), everything[perm])
    np.testing.assert_array_equal(run(perm[:5]), everything[perm[:5]])


def test_projection_head_is_bitwise_the_same_for_any_thread_count(rng):
    N, D, C = 512, 6272, 10
    h, w, embed, b, dlogits = (random_f32(rng, s) for s in [(N, D), (1, D), (C, D), (1,), (N, 1)])
    labels = draw_labels(rng, N, C)
    one, *others = results_per_thread_count(lambda: [
        ops.projection_head_forward(h, w, b, embed, labels),
        *ops.projection_head_backward(dlogits, h, w, embed, labels)])
    for other in others:
        for a, c in zip(one, other):
            np.testing.assert_array_equal(a, c)


def test_cuda_marks_a_bad_label_with_nan(cuda_backend, rng):
    N, D, C = 4, 6, 5
    h, w, embed, b, dlogits = (cuda_backend.asarray(random_f32(rng, s))
                               for s in [(N, D), (1, D), (C, D), (1,), (N, 1)])
    labels = _labels(cuda_backend, [0, 7, 1, -1])
    logits = cuda_backend.to_numpy(ops.projection_head_forward(h, w, b, embed, labels))
    assert np.isnan(logits[[1, 3]]).all() and np.isfinite(logits[[0, 2]]).all()
    dh, dw, db, dembed = (cuda_backend.to_numpy(g) for g in
                          ops.projection_head_backward(dlogits, h, w, embed, labels))
    assert np.isnan(dh[[1, 3]]).all() and np.isfinite(dh[[0, 2]]).all()
    assert np.isnan(dembed).all()
    assert np.isfinite(dw).all() and np.isfinite(db).all()


def test_reference_refuses_a_bad_label(rng):
    h, w, embed = rng.standard_normal((2, 3)), rng.standard_normal((1, 3)), rng.standard_normal((4, 3))
    with pytest.raises(ValueError, match="got 4 at index 1"):
        reference.projection_head_forward(h, w, None, embed, np.array([0, 4]))
    with pytest.raises(ValueError, match="got -2 at index 0"):
        reference.projection_head_backward(np.ones((2, 1)), h, w, embed, np.array([-2, 0]))
