"""conv2d_forward / conv2d_backward beyond the parity sweep of tests/op_cases.py (the
discriminator's convolutions, other kernel sizes, strides and paddings, partial image
groups): each gradient on its own (need_*), and inf in a shallow unfold's dw."""
import numpy as np
import pytest

from gan_fast import ops, reference
from op_cases import conv_out_shape
from parity import assert_close


def random_f32(rng, shape):
    """Random float32 values; the reference gets exactly these, widened to float64."""
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("need", [(True, False, False), (False, True, False),
                                  (False, False, True), (False, False, False)], ids=str)
def test_conv2d_backward_skips_unneeded(backend, rng, need):
    case = (2, 3, 9, 7, 4, 3, 3, 2, 1)
    N, C, H, W, K, R, S, stride, padding = case
    x, w, dy = random_f32(rng, (N, C, H, W)), random_f32(rng, (K, C, R, S)), random_f32(rng, conv_out_shape(*case))
    got = ops.conv2d_backward(backend.asarray(dy), backend.asarray(x), backend.asarray(w),
                              stride, padding, *need)
    want = reference.conv2d_backward(dy.astype(np.float64), x.astype(np.float64),
                                     w.astype(np.float64), stride, padding, *need)
    for name, wanted, g, r in zip(("dx", "dw", "db"), need, got, want):
        if wanted:
            assert_close(f"conv2d_backward.{name}", g, r)
        else:
            assert g is None, f"conv2d_backward.{name}: expected None when not needed"


def test_conv2d_shallow_dw_keeps_inf_every_cpu_isa(cpu_isa):
    """A shallow unfold's dw (ShallowDw) overlaps its last vector of pixels with the one
    before it; the overlap must add nothing, not 0·inf = NaN. x has an inf in that overlap
    for each vector width (pixels 10, 20 and 22 of a 5×5 plane: W = 16, 8, 4)."""
    x = np.ones((1, 1, 5, 5), np.float32)
    x.reshape(-1)[[10, 20, 22]] = np.inf
    dy, w = np.ones((1, 1, 5, 5), np.float32), np.ones((1, 1, 1, 1), np.float32)
    _, dw, _ = ops.conv2d_backward(dy, x, w, 1, 0, need_dx=False, need_db=False)
    _, rdw, _ = reference.conv2d_backward(dy.astype(np.float64), x.astype(np.float64),
                                          w.astype(np.float64), 1, 0, need_dx=False, need_db=False)
    assert np.isposinf(rdw).all() and np.isposinf(dw).all(), (dw, rdw)
