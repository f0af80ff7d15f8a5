"""conv2d_forward / conv2d_backward beyond the parity sweep of tests/op_cases.py (the
discriminator's convolutions, other kernel sizes, strides and paddings, partial image
groups): each gradient on its own (need_*), inf in a shallow unfold's dw, and the forward's
fused activation against the two separate ops, bit for bit."""
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


# conv2 at batch 64 (the generator step's discriminator pass: on CUDA its gemm takes the
# variant for few tiles), conv1 (a partial last image group on the CPU) and a 5x5 "same"
# convolution with odd sizes.
FUSED_CASES = [(64, 64, 14, 14, 128, 3, 3, 2, 1), (67, 1, 28, 28, 64, 3, 3, 2, 1),
               (3, 5, 11, 9, 7, 5, 5, 1, 2)]


@pytest.mark.parametrize("case", FUSED_CASES, ids=str)
@pytest.mark.parametrize("dropout_p,step", [(0.0, None), (0.3, None), (0.3, 12345),
                                            (0.5, "array")], ids=str)
def test_conv2d_fused_activation_is_the_two_ops_bitwise(backend, rng, case, dropout_p, step):
    """conv2d_forward(..., activation="leaky_relu") is bitwise conv2d_forward then
    leaky_relu_dropout_forward (leaky_relu_forward when dropout_p = 0) on each backend: the
    same float operations, the mask indexed by y's flat index. "array": the step as a
    one-element int64 array (on CUDA in device memory, read by the kernel)."""
    N, C, H, W, K, R, S, stride, padding = case
    x, w = backend.asarray(random_f32(rng, (N, C, H, W))), backend.asarray(random_f32(rng, (K, C, R, S)))
    b = backend.asarray(random_f32(rng, (K,)))
    seed = int(rng.integers(0, 2 ** 64, dtype=np.uint64))
    if step == "array":
        step = backend.xp.asarray(np.array([2 ** 40 + 3], np.int64))
    fused = ops.conv2d_forward(x, w, b, stride, padding, activation="leaky_relu", slope=0.2,
                               dropout_p=dropout_p, seed=seed, step=step)
    y = ops.conv2d_forward(x, w, b, stride, padding)
    two = (ops.leaky_relu_dropout_forward(y, 0.2, dropout_p, seed, step) if dropout_p > 0
           else ops.leaky_relu_forward(y, 0.2))
    fused, two = backend.to_numpy(fused), backend.to_numpy(two)
    assert (fused == 0).mean() >= dropout_p / 2          # the dropout ran
    np.testing.assert_array_equal(fused.view(np.uint32), two.view(np.uint32))
