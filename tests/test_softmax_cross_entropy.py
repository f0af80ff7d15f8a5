"""The fused softmax cross-entropy (the judge's loss) beyond the parity sweep of
tests/op_cases.py (which also checks dlogits= logits in place): stability at extreme
logits, repeatability, and the CUDA kernel's NaN for a bad label (the CPU refuses one:
tests/test_errors.py)."""
import numpy as np
import pytest

from gan_fast import ops, reference
from parity import assert_close


def _labels(backend, labels):
    return backend.xp.asarray(np.asarray(labels, dtype=np.int64))


def test_softmax_cross_entropy_is_finite_at_extreme_logits(backend, rng):
    z = rng.standard_normal((6, 10))
    z[0, 3], z[1, :] = 1e4, -1e4              # one huge logit; a whole row hugely negative
    z[2, ::2], z[2, 1::2] = 1e4, -1e4         # ties at the maximum
    z[3, 0], z[4, 9] = -1e4, 3e38
    labels = np.array([3, 5, 1, 0, 2, 7])     # confident right (row 0) and wrong answers
    loss, dz = ops.softmax_cross_entropy(backend.asarray(z), _labels(backend, labels))
    ref_loss, ref_dz = reference.softmax_cross_entropy(z, labels)
    assert np.isfinite(backend.to_numpy(loss)) and np.all(np.isfinite(backend.to_numpy(dz)))
    assert_close("softmax_cross_entropy.loss", loss, ref_loss)
    assert_close("softmax_cross_entropy.dlogits", dz, ref_dz)
    # A confident right answer costs nothing; each gradient row sums to 0.
    one, _ = ops.softmax_cross_entropy(backend.asarray(z[:1]), _labels(backend, [3]))
    assert float(backend.to_numpy(one)) == 0.0
    assert np.abs(backend.to_numpy(dz).astype(np.float64).sum(axis=1)).max() < 1e-7


def test_softmax_cross_entropy_is_deterministic(backend, rng):
    z, labels = backend.asarray(rng.standard_normal((777, 10))), _labels(backend, rng.integers(0, 10, 777))
    first = [backend.to_numpy(a) for a in ops.softmax_cross_entropy(z, labels)]
    for _ in range(3):
        again = [backend.to_numpy(a) for a in ops.softmax_cross_entropy(z, labels)]
        assert all(np.array_equal(a, b) for a, b in zip(first, again))


def test_cuda_marks_a_bad_label_with_nan(cuda_backend, rng):
    z = cuda_backend.asarray(rng.standard_normal((4, 5)))
    loss, dz = ops.softmax_cross_entropy(z, _labels(cuda_backend, [0, 7, 1, -1]))
    dz = cuda_backend.to_numpy(dz)
    assert np.isnan(cuda_backend.to_numpy(loss))
    assert np.isnan(dz[[1, 3]]).all() and np.isfinite(dz[[0, 2]]).all()


def test_reference_refuses_a_bad_label(rng):
    with pytest.raises(ValueError, match="got 10 at index 1"):
        reference.softmax_cross_entropy(rng.standard_normal((2, 10)), np.array([0, 10]))
