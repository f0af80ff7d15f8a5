"""linear_forward / linear_backward beyond the parity sweep of tests/op_cases.py: each
gradient on its own (need_*), and a zero-depth product."""
import numpy as np
import pytest

from gan_fast import ops, reference
from parity import assert_close

def random_f32(rng, shape):
    """Random float32 values; the reference gets exactly these, widened to float64."""
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("need", [(True, False, False), (False, True, False),
                                  (False, False, True), (False, False, False)], ids=str)
def test_linear_backward_skips_unneeded(backend, rng, need):
    N, K, M = 5, 9, 7
    x, w, dy = random_f32(rng, (N, K)), random_f32(rng, (M, K)), random_f32(rng, (N, M))
    got = ops.linear_backward(backend.asarray(dy), backend.asarray(x), backend.asarray(w), *need)
    want = reference.linear_backward(dy.astype(np.float64), x.astype(np.float64),
                                     w.astype(np.float64), *need)
    for name, wanted, g, r in zip(("dx", "dw", "db"), need, got, want):
        if wanted:
            assert_close(f"linear_backward.{name}", g, r)
        else:
            assert g is None, f"linear_backward.{name}: expected None when not needed"


def test_linear_zero_depth_gives_bias(backend, rng):
    """K == 0: x·wᵀ is an empty sum, so y = b exactly and dw is empty."""
    N, M = 4, 6
    b = random_f32(rng, (M,))
    y = ops.linear_forward(backend.asarray(np.zeros((N, 0))), backend.asarray(np.zeros((M, 0))),
                           backend.asarray(b), out=backend.poisoned((N, M)))
    np.testing.assert_array_equal(backend.to_numpy(y), np.broadcast_to(b, (N, M)))
