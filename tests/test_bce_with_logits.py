"""The fused BCE-with-logits loss beyond the parity sweep of tests/op_cases.py: stability
at extreme logits, edge targets."""
import numpy as np
import pytest

from gan_fast import ops, reference
from parity import assert_close


@pytest.mark.parametrize("target", [0.0, 1.0, 0.3])
def test_bce_is_exact_and_finite_at_extreme_logits(backend, rng, target):
    z = np.array([1e4, -1e4, 3e38, -3e38, 88.0, -88.0, 1e-8] + list(rng.standard_normal(5)))
    t = np.full(z.shape, target)
    loss, dz = ops.bce_with_logits(backend.asarray(z), backend.asarray(t))
    ref_loss, ref_dz = reference.bce_with_logits(z, t)
    assert np.isfinite(backend.to_numpy(loss)) and np.all(np.isfinite(backend.to_numpy(dz)))
    assert_close("bce_with_logits.loss", loss, ref_loss)
    assert_close("bce_with_logits.dlogits", dz, ref_dz)


def test_bce_of_a_confident_right_answer_is_zero_and_wrong_is_the_logit(backend):
    z = backend.asarray(np.array([1e4, -1e4]))
    loss, _ = ops.bce_with_logits(z, backend.asarray(np.array([1.0, 0.0])))
    assert float(backend.to_numpy(loss)) == 0.0
    loss, _ = ops.bce_with_logits(z, backend.asarray(np.array([0.0, 1.0])))
    assert float(backend.to_numpy(loss)) == pytest.approx(1e4, rel=1e-6)
