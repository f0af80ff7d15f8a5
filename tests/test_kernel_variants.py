"""Every kernel variant, forced, against gan_fast.reference on the same inputs.

Where an op picks one of several kernels by shape (csrc/common/variants.h lists them:
gemm's full_tiles / narrow_tail / column_as_row, linear's gemm / matvec, conv2d's
unfold_gemm / shallow, gemm_cuda's one_pass / split_k / small_tiles), the private switch
gan_fast._C._set_kernel_variant forces one, and each test here runs every variant of a
family on one set of inputs, on every CPU SIMD path this machine can run (CUDA families
on the GPU). The shapes are chosen so each variant's own code runs: a last gemm panel of
at most one vector (3 columns past a multiple of 32), single-column products (M = 1),
K past gemm's 256-deep step, shallow and deep unfolds, planes narrower than a vector, and
for split-K few output tiles over a long K. conv2d's forward runs plain and with its fused
LeakyReLU + dropout (on CUDA in the gemm's epilogue, after the slice sum when split-K).
"""
from __future__ import annotations

import contextlib

import numpy as np
import pytest

from gan_fast import _C, ops, reference
from conftest import Backend
from parity import assert_close

VARIANTS = _C._kernel_variants()


@contextlib.contextmanager
def forced(family, variant):
    _C._set_kernel_variant(family, variant)
    try:
        yield
    finally:
        _C._set_kernel_variant(family, "auto")


def _f32(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def check_linear(backend, rng, N, K, M):
    x, w, b, dy = _f32(rng, (N, K)), _f32(rng, (M, K)), _f32(rng, (M,)), _f32(rng, (N, M))
    x64, w64, b64, dy64 = (a.astype(np.float64) for a in (x, w, b, dy))
    for bias, rb in ((b, b64), (None, None)):
        y = ops.linear_forward(backend.asarray(x), backend.asarray(w),
                               None if bias is None else backend.asarray(bias),
                               out=backend.poisoned((N, M)))
        assert_close("linear_forward", y, reference.linear_forward(x64, w64, rb))
    dx, dw, db = ops.linear_backward(backend.asarray(dy), backend.asarray(x), backend.asarray(w),
                                     dx=backend.poisoned((N, K)), dw=backend.poisoned((M, K)),
                                     db=backend.poisoned((M,)))
    rdx, rdw, rdb = reference.linear_backward(dy64, x64, w64)
    assert_close("linear_backward.dx", dx, rdx)
    assert_close("linear_backward.dw", dw, rdw)
    assert_close("linear_backward.db", db, rdb)


def check_conv2d(backend, rng, N, C, H, W, K, R, S, stride, padding):
    P, Q = (H + 2 * padding - R) // stride + 1, (W + 2 * padding - S) // stride + 1
    x, w, b = _f32(rng, (N, C, H, W)), _f32(rng, (K, C, R, S)), _f32(rng, (K,))
    dy = _f32(rng, (N, K, P, Q))
    x64, w64, b64, dy64 = (a.astype(np.float64) for a in (x, w, b, dy))
    y = ops.conv2d_forward(backend.asarray(x), backend.asarray(w), backend.asarray(b), stride,
                           padding, out=backend.poisoned((N, K, P, Q)))
    assert_close("conv2d_forward", y, reference.conv2d_forward(x64, w64, b64, stride, padding))
    y = ops.conv2d_forward(backend.asarray(x), backend.asarray(w), backend.asarray(b), stride,
                           padding, out=backend.poisoned((N, K, P, Q)), **CONV_FUSED)
    assert_close("conv2d_forward", y,
                 reference.conv2d_forward(x64, w64, b64, stride, padding, **CONV_FUSED_REF))
    dx, dw, db = ops.conv2d_backward(backend.asarray(dy), backend.asarray(x), backend.asarray(w),
                                     stride, padding, dx=backend.poisoned(x.shape),
                                     dw=backend.poisoned(w.shape), db=backend.poisoned((K,)))
    rdx, rdw, rdb = reference.conv2d_backward(dy64, x64, w64, stride, padding)
    assert_close("conv2d_backward.dx", dx, rdx)
    assert_close("conv2d_backward.dw", dw, rdw)
    assert_close("conv2d_backward.db", db, rdb)


# (N, K, M): x [N, K], w [M, K].
LINEAR_GEMM_SHAPES = [
    (37, 70, 35),     # y, dx and dw end in a panel of 3 to 6 columns (narrow_tail)
    (37, 300, 1),     # single-column y (column_as_row), K past one 256-deep step
    (9, 1, 67),       # single-column dx, K = 1
    (64, 257, 99),    # K one past a step, every edge at once
]
# conv2d_forward's fused activation; the reference gets the hyperparameters as the kernels
# hold them, in float32.
CONV_FUSED = dict(activation="leaky_relu", slope=0.2, dropout_p=0.3, seed=2 ** 63 + 5, step=9)
CONV_FUSED_REF = dict(CONV_FUSED, slope=float(np.float32(0.2)), dropout_p=float(np.float32(0.3)))
# (N, C, H, W, K, R, S, stride, padding)
CONV_SHAPES = [
    (5, 1, 28, 28, 64, 3, 3, 2, 1),    # conv1: shallow unfold (C·R·S = 9), default shallow
    (3, 4, 14, 14, 20, 3, 3, 2, 1),    # deep unfold (36), default unfold_gemm
    (8, 2, 5, 5, 3, 3, 3, 2, 1),       # 3 x 3 planes, narrower than a vector; several per group
    (2, 3, 9, 11, 5, 3, 2, 1, 1),      # stride 1, rectangular
    (67, 1, 8, 8, 9, 3, 3, 3, 1),      # many groups, a partial last one, stride 3
]


def _cpu_variants(family):
    return [pytest.param(v, id=v) for v in VARIANTS[family]]


@pytest.mark.parametrize("variant", _cpu_variants("gemm"))
def test_gemm_variants(cpu_isa, rng, variant):
    """Every gemm variant through linear (forced onto gemm so M = 1 reaches it too) and
    through conv2d's unfold path."""
    cpu = Backend("cpu")
    with forced("gemm", variant), forced("linear", "gemm"), forced("conv2d", "unfold_gemm"):
        for shape in LINEAR_GEMM_SHAPES:
            check_linear(cpu, rng, *shape)
        for shape in CONV_SHAPES[:3]:
            check_conv2d(cpu, rng, *shape)


@pytest.mark.parametrize("variant", _cpu_variants("linear"))
@pytest.mark.parametrize("shape", [(37, 300, 1), (5, 6272, 1), (3, 5, 1), (1, 17, 1), (6, 33, 4)],
                         ids=str)
def test_linear_variants(cpu_isa, rng, variant, shape):
    """gemm and matvec on single-output layers (matvec's only shapes; (6, 33, 4) checks that
    a forced matvec leaves other shapes on gemm)."""
    with forced("linear", variant):
        check_linear(Backend("cpu"), rng, *shape)


@pytest.mark.parametrize("variant", _cpu_variants("conv2d"))
@pytest.mark.parametrize("shape", CONV_SHAPES, ids=str)
def test_conv2d_variants(cpu_isa, rng, variant, shape):
    """unfold_gemm and shallow on shallow and deep unfolds alike (both compute any shape)."""
    with forced("conv2d", variant):
        check_conv2d(Backend("cpu"), rng, *shape)


@pytest.mark.parametrize("variant", VARIANTS["gemm_cuda"])
def test_gemm_cuda_variants(cuda_backend, rng, variant):
    """one_pass, split_k and small_tiles on products with few output tiles and a long K (the
    D head, conv1's dw) and on ordinary ones."""
    with forced("gemm_cuda", variant):
        for shape in [(37, 6272, 1), (64, 300, 9), *LINEAR_GEMM_SHAPES]:
            check_linear(cuda_backend, rng, *shape)
        for shape in CONV_SHAPES:
            check_conv2d(cuda_backend, rng, *shape)


def test_gemm_cuda_small_tiles_is_one_pass_bitwise(cuda_backend, rng):
    """small_tiles only tiles C differently from one_pass: each element is still summed
    k = 0..K−1 by one thread, so the two give bitwise the same results, through every
    transpose linear uses and conv2d's epilogue (plain and fused). The default takes
    small_tiles for conv2's forward at batch 64 (98 tiles of 64×64, K = 576): bitwise the
    forced variant."""
    be = cuda_backend
    conv2 = [be.asarray(_f32(rng, s)) for s in [(64, 64, 14, 14), (128, 64, 3, 3), (128,)]]
    step = be.xp.asarray(np.array([7], np.int64))      # read on the device by the epilogue
    linear = [[be.asarray(_f32(rng, s)) for s in [(N, K), (M, K), (M,), (N, M)]]
              for N, K, M in [(37, 70, 35), (64, 257, 99), (37, 6272, 1), (9, 1, 67)]]

    def run():
        out = [ops.conv2d_forward(*conv2, 2, 1), ops.conv2d_forward(*conv2, 2, 1, **dict(
            CONV_FUSED, step=step))]
        for x, w, b, dy in linear:
            out += [ops.linear_forward(x, w, b), ops.linear_forward(x, w, b, activation="tanh"),
                    *ops.linear_backward(dy, x, w, need_db=False)[:2]]
        return [be.to_numpy(a).view(np.uint32) for a in out]

    default = run()
    with forced("gemm_cuda", "one_pass"):
        one_pass = run()
    with forced("gemm_cuda", "small_tiles"):
        small = run()
    for i, (a, b) in enumerate(zip(one_pass, small)):
        np.testing.assert_array_equal(a, b, err_msg=f"result {i}")
    for i in (0, 1):   # conv2 at batch 64, plain and fused
        np.testing.assert_array_equal(default[i], small[i], err_msg=f"default, result {i}")


def test_every_family_is_listed_with_auto_by_default():
    assert set(VARIANTS) == {"gemm", "linear", "conv2d", "gemm_cuda"}
    for family, names in VARIANTS.items():
        assert len(names) >= 2 and _C._kernel_variant(family) == "auto"
        with forced(family, names[0]):
            assert _C._kernel_variant(family) == names[0]
        assert _C._kernel_variant(family) == "auto"


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="_set_kernel_variant: family: .*'gemm'.*got 'nope'"):
        _C._set_kernel_variant("nope", "auto")
    with pytest.raises(ValueError, match="_set_kernel_variant: variant: .*'matvec'.*got 'nope'"):
        _C._set_kernel_variant("linear", "nope")
    with pytest.raises(ValueError, match="_kernel_variant: family"):
        _C._kernel_variant("nope")
