"""conv2d_forward / conv2d_backward beyond the parity sweep of tests/op_cases.py (the
discriminator's convolutions, other kernel sizes, strides and paddings, partial image
groups): each gradient on its own (need_*), and inf in a shallow unfold's dw."""
import numpy as np
import pytest

import gan_fast
from gan_fast import ops, reference
from conftest import Backend
from parity import assert_close

# (N, C, H, W, K, R, S, stride, padding): x [N, C, H, W], w [K, C, R, S]
CONV1 = (67, 1, 28, 28, 64, 3, 3, 2, 1)   # discriminator conv1 (partial last image group)
CONV2 = (64, 64, 14, 14, 128, 3, 3, 2, 1)  # discriminator conv2
CASES = [
    (1, 1, 28, 28, 64, 3, 3, 2, 1),
    CONV1,
    (3, 64, 14, 14, 128, 3, 3, 2, 1),
    CONV2,
    (3, 5, 11, 9, 7, 5, 5, 1, 2),           # 5x5, stride 1, "same" padding, rectangular
    (2, 3, 8, 8, 67, 1, 1, 1, 0),           # 1x1
    (2, 3, 13, 10, 4, 3, 2, (2, 1), (1, 0)),  # rectangular kernel, stride and padding pairs
    (5, 3, 4, 4, 2, 4, 4, 3, 3),            # padding almost the kernel size
    (1, 2, 1, 9, 3, 1, 3, (1, 4), 0),       # one-row image, wide stride
    (2, 3, 9, 11, 5, 3, 3, 2, 0),           # stride 2, odd width, no padding
    (2, 11, 10, 13, 6, 3, 3, 1, 1),         # channels and width past a multiple of 8
    (3, 1, 9, 8, 5, 2, 2, 1, 0),            # shallow unfold (C·R·S = 4), K and P·Q past whole blocks
    (2, 3, 6, 7, 4, 5, 5, 2, 2),            # stride 2, padding 2, a 6-row plane
    (2, 3, 7, 9, 4, 3, 3, (1, 2), (2, 1)),  # stride 2 across only, rows read by 3 taps each
    (8, 2, 1, 9, 3, 1, 3, 1, 0),            # 7-pixel outputs, several images per group (shallow)
    (8, 6, 1, 9, 4, 1, 3, 1, 0),            # the same through gemm
    (3, 2, 12, 37, 4, 5, 5, 2, 2),          # stride 2, rows wider than one vector step
    (2, 3, 0, 5, 4, 3, 3, 1, 2),            # no rows: every unfolded value is padding
    (2, 0, 5, 5, 3, 3, 3, 1, 1),            # no channels
]


def random_f32(rng, shape):
    """Random float32 values; the reference gets exactly these, widened to float64."""
    return rng.standard_normal(shape).astype(np.float32)


def out_shape(N, C, H, W, K, R, S, stride, padding):
    (sh, sw), (ph, pw) = [(v, v) if np.isscalar(v) else v for v in (stride, padding)]
    return (N, K, (H + 2 * ph - R) // sh + 1, (W + 2 * pw - S) // sw + 1)


def check_conv2d(backend, rng, case, bias=True):
    N, C, H, W, K, R, S, stride, padding = case
    y_shape = out_shape(*case)
    x, w, dy = random_f32(rng, (N, C, H, W)), random_f32(rng, (K, C, R, S)), random_f32(rng, y_shape)
    b = random_f32(rng, (K,)) if bias else None
    x64, w64, dy64 = x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64)
    b64 = None if b is None else b.astype(np.float64)

    y = ops.conv2d_forward(backend.asarray(x), backend.asarray(w),
                           None if b is None else backend.asarray(b), stride, padding,
                           out=backend.poisoned(y_shape))
    assert_close("conv2d_forward", y, reference.conv2d_forward(x64, w64, b64, stride, padding))

    dx, dw, db = ops.conv2d_backward(backend.asarray(dy), backend.asarray(x), backend.asarray(w),
                                     stride, padding, dx=backend.poisoned(x.shape),
                                     dw=backend.poisoned(w.shape), db=backend.poisoned((K,)))
    rdx, rdw, rdb = reference.conv2d_backward(dy64, x64, w64, stride, padding)
    assert_close("conv2d_backward.dx", dx, rdx)
    assert_close("conv2d_backward.dw", dw, rdw)
    assert_close("conv2d_backward.db", db, rdb)


# CASES[5], CASES[8] and CASES[11] take the shallow-unfold kernels with K, C·R·S or P·Q
# past their blocks, and CASES[8] a plane narrower than one vector.
@pytest.mark.parametrize("case", [CASES[0], CONV1, CASES[2], CASES[4], CASES[5], CASES[6], CASES[8],
                                  CASES[11], CASES[14], CASES[15]], ids=str)
def test_conv2d_every_cpu_isa(cpu_isa, rng, case):
    assert gan_fast.cpu_isa() == cpu_isa
    check_conv2d(Backend("cpu"), rng, case)


@pytest.mark.parametrize("need", [(True, False, False), (False, True, False),
                                  (False, False, True), (False, False, False)], ids=str)
def test_conv2d_backward_skips_unneeded(backend, rng, need):
    case = (2, 3, 9, 7, 4, 3, 3, 2, 1)
    N, C, H, W, K, R, S, stride, padding = case
    x, w, dy = random_f32(rng, (N, C, H, W)), random_f32(rng, (K, C, R, S)), random_f32(rng, out_shape(*case))
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
