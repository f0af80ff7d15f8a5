"""Property-based tests (Hypothesis) of every op of gan_fast.ops, on the CPU.

Valid calls: shapes drawn at random, 0-sized and size-1 dimensions included wherever the
contract allows them, hyperparameters across their whole valid range, with and without
output buffers; each result is compared with gan_fast.reference (parity.assert_close;
0-sized results only by shape). Values come from a drawn seed (standard normal data), so
the search is over shapes and settings, not over ill-conditioned numbers.

Invalid calls: one argument of a valid call is broken (wrong dtype incl. float64, int,
bool and complex; not an array; wrong rank; a mismatched dimension; non-contiguous;
read-only where the op writes; negative or out-of-range sizes, strides, paddings and
hyperparameters; NaN and inf hyperparameters). Each must raise TypeError or ValueError
naming the op, never crash the interpreter (the sanitizer CI job runs this file too).

NaN and inf in the DATA are not errors: the kernels never inspect values, so they
propagate through the arithmetic as IEEE float32 says (NaN in gives NaN out where the
formula uses the value; dropout's dropped elements and LeakyReLU/ReLU-style selects may
turn them into 0). test_non_finite_data_propagates_and_never_crashes checks that every
op runs on such data and that whatever it writes agrees with the reference's NaN/inf
pattern for the elementwise ops.

Budget: a fixed number of examples per test (profile "gan_fast", derandomized, no example
database) keeps CI time bounded and runs reproducible; GAN_FAST_FUZZ_EXAMPLES scales it
(e.g. 2000 for a long local search).
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gan_fast import ops, reference  # noqa: E402
from parity import TOLERANCES, assert_close  # noqa: E402

EXAMPLES = int(os.environ.get("GAN_FAST_FUZZ_EXAMPLES", "60"))
settings.register_profile(
    "gan_fast", max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
    print_blob=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FUZZ = settings.get_profile("gan_fast")

# Dimensions: mostly tiny (0 and 1 are the boundaries Hypothesis tries first), sometimes
# long enough to cross SIMD widths and thread splits.
small = st.integers(0, 4)
dim = st.one_of(st.integers(0, 4), st.integers(5, 40))
pos_dim = st.one_of(st.integers(1, 4), st.integers(5, 40))
seeds = st.integers(0, 2 ** 32 - 1)


def f32(rng, shape, scale=1.0, offset=0.0):
    return np.asarray(offset + scale * rng.standard_normal(shape)).astype(np.float32)


def f64(*arrays):
    return [None if a is None else np.asarray(a, np.float64) for a in arrays]


def check(name, actual, ref, floor=None):
    """assert_close, with an absolute floor for results that are sums of cancelling
    terms: the bound is tol·max(‖ref‖, floor) where floor is ‖the same computation on
    absolute values‖, the natural size of the float32 rounding. 0-sized: shape only."""
    actual = np.asarray(actual)
    ref = np.asarray(ref, np.float64)
    if ref.size == 0:
        assert actual.shape == ref.shape, f"{name}: shape {actual.shape}, expected {ref.shape}"
        return
    tol = TOLERANCES[name.split(".")[0]]
    norm = float(np.linalg.norm(ref))
    if floor is not None:
        tol *= max(1.0, float(np.linalg.norm(floor)) / max(norm, 1e-300))
    assert_close(name, actual, ref, tol=tol)


def check_grads(op, got, refs, floors, need):
    """A backward's (dx, dw, db): None exactly where need_* was False, else checked."""
    for name, g, r, m, n in zip(("dx", "dw", "db"), got, refs, floors, need):
        assert (g is None) == (not n)
        if n:
            check(f"{op}.{name}", g, r, m)


def maybe_out(draw, shape):
    """None (the op allocates) or a NaN-poisoned buffer of the right shape."""
    return np.full(shape, np.nan, np.float32) if draw(st.booleans()) else None


# ------------------------------------------------------------------------------ valid calls
@FUZZ
@given(st.data())
def test_linear(data):
    draw = data.draw
    N, K, M = draw(dim), draw(dim), draw(dim)
    rng = np.random.default_rng(draw(seeds))
    x, w, dy = f32(rng, (N, K)), f32(rng, (M, K)), f32(rng, (N, M))
    b = f32(rng, (M,)) if draw(st.booleans()) else None
    y = ops.linear_forward(x, w, b, out=maybe_out(draw, (N, M)))
    ax, aw, ab = (None if a is None else np.abs(a) for a in (x, w, b))
    check("linear_forward", y, reference.linear_forward(*f64(x, w, b)),
          reference.linear_forward(*f64(ax, aw, ab)))
    need = [draw(st.booleans()) for _ in range(3)]
    outs = [maybe_out(draw, s) for s in ((N, K), (M, K), (M,))]
    got = ops.linear_backward(dy, x, w, *need, *outs)
    ref = reference.linear_backward(*f64(dy, x, w), *need)
    mag = reference.linear_backward(*f64(np.abs(dy), ax, aw), *need)
    check_grads("linear_backward", got, ref, mag, need)


@st.composite
def conv_shapes(draw):
    R, S = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, R - 1)), draw(st.integers(0, S - 1))
    stride = draw(st.sampled_from(["tuple", "list", "int", "numpy"]))
    if stride in ("int", "numpy"):
        sw = sh
    stride = {"tuple": (sh, sw), "list": [sh, sw], "int": sh, "numpy": np.int64(sh)}[stride]
    if ph < min(R, S) and draw(st.booleans()):
        pw = padding = ph
    else:
        padding = (ph, pw)
    H = draw(st.integers(max(0, R - 2 * ph), max(0, R - 2 * ph) + 9))
    W = draw(st.integers(max(0, S - 2 * pw), max(0, S - 2 * pw) + 9))
    # Up to 24 images: small outputs then pack several images into each of conv2d's groups,
    # a last group shorter than the others included.
    N, C, K = draw(st.integers(0, 24)), draw(small), draw(st.integers(0, 5))
    return (N, C, H, W), (K, C, R, S), stride, padding


@FUZZ
@given(st.data(), conv_shapes())
def test_conv2d(data, shapes):
    draw = data.draw
    xs, ws, stride, padding = shapes
    rng = np.random.default_rng(draw(seeds))
    x, w = f32(rng, xs), f32(rng, ws)
    b = f32(rng, (ws[0],)) if draw(st.booleans()) else None
    ref = reference.conv2d_forward(*f64(x, w, b), stride, padding)
    y = ops.conv2d_forward(x, w, b, stride, padding, out=maybe_out(draw, ref.shape))
    mag = reference.conv2d_forward(*f64(np.abs(x), np.abs(w), None if b is None else np.abs(b)),
                                   stride, padding)
    check("conv2d_forward", y, ref, mag)
    dy = f32(rng, ref.shape)
    need = [draw(st.booleans()) for _ in range(3)]
    outs = [maybe_out(draw, s) for s in (xs, ws, (ws[0],))]
    got = ops.conv2d_backward(dy, x, w, stride, padding, *need, *outs)
    refs = reference.conv2d_backward(*f64(dy, x, w), stride, padding, *need)
    mags = reference.conv2d_backward(*f64(np.abs(dy), np.abs(x), np.abs(w)), stride, padding,
                                     *need)
    check_grads("conv2d_backward", got, refs, mags, need)


@st.composite
def batchnorm_case(draw):
    four_d = draw(st.booleans())
    N, C = draw(small), draw(dim)
    shape = (N, C, draw(small), draw(small)) if four_d else (N, C)
    L = shape[2] * shape[3] if four_d else 1
    training = draw(st.booleans()) and N * L >= 2
    momentum = draw(st.one_of(st.sampled_from([0.0, 1.0, 0.1]), st.floats(0, 1)))
    eps = draw(st.one_of(st.sampled_from([1e-5, 1e-3]), st.floats(1e-6, 1.0)))
    return shape, training, momentum, eps


@FUZZ
@given(st.data(), batchnorm_case())
def test_batchnorm(data, case):
    draw = data.draw
    shape, training, momentum, eps = case
    C = shape[1]
    rng = np.random.default_rng(draw(seeds))
    x = f32(rng, shape, 3.0, 1.5)
    gamma, beta, rm = f32(rng, (C,), 0.5, 1.0), f32(rng, (C,)), f32(rng, (C,))
    rv = rng.uniform(0.5, 2.0, C).astype(np.float32)
    ref_rm, ref_rv = rm.astype(np.float64), rv.astype(np.float64)
    ry, rmu, rrstd = reference.batchnorm_forward(*f64(x, gamma, beta), ref_rm, ref_rv, training,
                                                 momentum, eps)
    k_rm, k_rv = rm.copy(), rv.copy()
    y, mu, rstd = ops.batchnorm_forward(x, gamma, beta, k_rm, k_rv, training, momentum, eps,
                                        maybe_out(draw, shape), maybe_out(draw, (C,)),
                                        maybe_out(draw, (C,)))
    L = math.prod(shape[2:])
    x3 = np.abs(x.reshape(shape[0], C, L).astype(np.float64))
    check("batchnorm_forward.y", y, ry,
          ((x3 + np.abs(rmu)[None, :, None]) * (rrstd * np.abs(gamma))[None, :, None]
           + np.abs(beta)[None, :, None]).reshape(shape))
    check("batchnorm_forward.mean", mu, rmu, x3.mean(axis=(0, 2)) if training else None)
    check("batchnorm_forward.rstd", rstd, rrstd)
    check("batchnorm_forward.running_mean", k_rm, ref_rm, np.abs(rm) + momentum * np.abs(rmu))
    check("batchnorm_forward.running_var", k_rv, ref_rv)

    # backward from float32 statistics, as the forward kernel stores them
    mean, rs = rmu.astype(np.float32), rrstd.astype(np.float32)
    dy = f32(rng, shape)
    rdx, rdg, rdb = reference.batchnorm_backward(*f64(dy, x, gamma, mean, rs), training)
    dx, dg, db = ops.batchnorm_backward(dy, x, gamma, mean, rs, training, maybe_out(draw, shape),
                                        maybe_out(draw, (C,)), maybe_out(draw, (C,)))
    dy3 = np.abs(dy.reshape(shape[0], C, L).astype(np.float64))
    xh = (x3 + np.abs(mean)[None, :, None]) * np.abs(rs)[None, :, None]
    n = max(dy3.shape[0] * dy3.shape[2], 1)
    sdy, sdyx = dy3.sum(axis=(0, 2)), (dy3 * xh).sum(axis=(0, 2))
    scale = np.abs(gamma * rs)[None, :, None]
    dx_floor = scale * (dy3 + (sdy[None, :, None] + xh * sdyx[None, :, None]) / n)
    check("batchnorm_backward.dx", dx, rdx, dx_floor.reshape(shape))
    check("batchnorm_backward.dgamma", dg, rdg, sdyx)
    check("batchnorm_backward.dbeta", db, rdb, sdy)


shapes_any = st.lists(small, min_size=0, max_size=4).map(tuple) | st.tuples(st.integers(0, 300))
finite_slope = st.one_of(st.sampled_from([0.0, 0.2, 1.0, -1.0]),
                         st.floats(-10, 10, allow_nan=False))


@FUZZ
@given(st.data(), shapes_any, finite_slope)
def test_elementwise(data, shape, slope):
    """slope is held in float32 by the kernels (a tiny one rounds to 0), so the reference
    gets it rounded the same way."""
    draw = data.draw
    slope32 = float(np.float32(slope))
    rng = np.random.default_rng(draw(seeds))
    x, dy = f32(rng, shape, 3.0), f32(rng, shape)
    check("leaky_relu_forward", ops.leaky_relu_forward(x, slope, maybe_out(draw, shape)),
          reference.leaky_relu_forward(*f64(x), slope32))
    check("leaky_relu_backward", ops.leaky_relu_backward(dy, x, slope, maybe_out(draw, shape)),
          reference.leaky_relu_backward(*f64(dy, x), slope32))
    y = np.asarray(np.tanh(x)).astype(np.float32)
    check("tanh_forward", ops.tanh_forward(x, maybe_out(draw, shape)), reference.tanh_forward(*f64(x)))
    check("tanh_backward", ops.tanh_backward(dy, y, maybe_out(draw, shape)),
          reference.tanh_backward(*f64(dy, y)), np.abs(dy) * (1 + y.astype(np.float64) ** 2))


dropout_p = st.one_of(st.sampled_from([0.0, 0.3, 0.5, 0.999, 1 - 2 ** -30, 2 ** -30]),
                      st.floats(0, 1, exclude_max=True))


@FUZZ
@given(st.data(), shapes_any, dropout_p, st.integers(0, 2 ** 64 - 1))
def test_dropout(data, shape, p, seed):
    """The kernels hold p in float32 (the mask compares against float32(p), see
    reference.dropout_keep_mask), so their scale is 1/(1 − float32(p)): near p = 1 that
    differs from 1/(1 − p) by float32's rounding of p over (1 − p). The reference gets p
    rounded to float32 to compare like with like; 1 − 2⁻³⁰ rounds to 1 and drops all."""
    draw = data.draw
    rng = np.random.default_rng(draw(seeds))
    x = f32(rng, shape)
    p32 = float(np.float32(p))
    with np.errstate(divide="ignore"):
        check("dropout_forward", ops.dropout_forward(x, p, seed, maybe_out(draw, shape)),
              reference.dropout_forward(*f64(x), p32, seed))
        check("dropout_backward", ops.dropout_backward(x, p, seed, maybe_out(draw, shape)),
              reference.dropout_backward(*f64(x), p32, seed))
        slope = draw(st.floats(-2, 2))
        slope32 = float(np.float32(slope))
        dy = f32(rng, shape)
        check("leaky_relu_dropout_forward",
              ops.leaky_relu_dropout_forward(x, slope, p, seed, maybe_out(draw, shape)),
              reference.leaky_relu_dropout_forward(*f64(x), slope32, p32, seed))
        check("leaky_relu_dropout_backward",
              ops.leaky_relu_dropout_backward(dy, x, slope, p, seed, maybe_out(draw, shape)),
              reference.leaky_relu_dropout_backward(*f64(dy, x), slope32, p32, seed))


@FUZZ
@given(st.data(), st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple)
       | st.tuples(st.integers(1, 300)), st.sampled_from([0.1, 1.0, 10.0, 60.0]))
def test_bce_with_logits(data, shape, scale):
    draw = data.draw
    rng = np.random.default_rng(draw(seeds))
    z = f32(rng, shape, scale)
    t = (rng.integers(0, 2, shape) if draw(st.booleans()) else rng.uniform(0, 1, shape)
         ).astype(np.float32)
    loss, dz = ops.bce_with_logits(z, t, maybe_out(draw, ()), maybe_out(draw, shape))
    rloss, rdz = reference.bce_with_logits(*f64(z, t))
    check("bce_with_logits.loss", loss, rloss)
    sig = 1 / (1 + np.exp(-np.abs(z.astype(np.float64))))
    check("bce_with_logits.dlogits", dz, rdz, (sig + t) / z.size)


@FUZZ
@given(st.data(), st.integers(0, 300), st.integers(1, 10 ** 6),
       st.floats(1e-6, 1.0), st.floats(0, 0.999), st.floats(0, 0.9999), st.floats(1e-10, 1e-3))
def test_adam(data, n, step, lr, beta1, beta2, eps):
    rng = np.random.default_rng(data.draw(seeds))
    p, m = f32(rng, (n,)), f32(rng, (n,), 0.1)
    v = rng.uniform(0, 0.1, n).astype(np.float32)
    g = f32(rng, (n,))
    rp, rm, rv = f64(p, m, v)
    reference.adam_step(rp, g.astype(np.float64), rm, rv, step, lr, beta1, beta2, eps)
    kp, km, kv = p.copy(), m.copy(), v.copy()
    assert ops.adam_step(kp, g, km, kv, step, lr, beta1, beta2, eps) is None
    check("adam_step.m", km, rm, beta1 * np.abs(m) + (1 - beta1) * np.abs(g))
    check("adam_step.v", kv, rv)
    check("adam_step.params", kp, rp, np.abs(p) + np.abs(rp - p))


# ------------------------------------------------------------------------------ invalid calls
def _f(shape, seed=0):
    return f32(np.random.default_rng(seed), shape)


def valid_calls():
    """op name -> (function, {arg: value} of one valid call, {array arg: role}); role is
    'in' (read), 'write' (written in place or an output) or 'free' (its shape is not
    fixed by the others, so only dtype/layout/rank breaks apply)."""
    x2, w2, x4, w4 = _f((4, 5)), _f((3, 5)), _f((2, 3, 6, 6)), _f((4, 3, 3, 3))
    return {
        "linear_forward": (ops.linear_forward, dict(x=x2, w=w2, b=_f((3,)), out=_f((4, 3))),
                           dict(x="free", w="in", b="in", out="write")),
        "linear_backward": (ops.linear_backward,
                            dict(dy=_f((4, 3)), x=x2, w=w2, dx=_f((4, 5)), dw=_f((3, 5)),
                                 db=_f((3,))),
                            dict(dy="in", x="free", w="in", dx="write", dw="write", db="write")),
        "conv2d_forward": (ops.conv2d_forward,
                           dict(x=x4, w=w4, b=_f((4,)), stride=1, padding=1, out=_f((2, 4, 6, 6))),
                           dict(x="free", w="in", b="in", out="write")),
        "conv2d_backward": (ops.conv2d_backward,
                            dict(dy=_f((2, 4, 6, 6)), x=x4, w=w4, stride=1, padding=1,
                                 dx=_f((2, 3, 6, 6)), dw=_f((4, 3, 3, 3)), db=_f((4,))),
                            dict(dy="in", x="free", w="in", dx="write", dw="write", db="write")),
        "batchnorm_forward": (ops.batchnorm_forward,
                              dict(x=x4, gamma=_f((3,)), beta=_f((3,)), running_mean=_f((3,)),
                                   running_var=np.ones(3, np.float32), training=True,
                                   momentum=0.1, eps=1e-5, out=_f((2, 3, 6, 6)), mean=_f((3,)),
                                   rstd=_f((3,))),
                              dict(x="free", gamma="in", beta="in", running_mean="write",
                                   running_var="write", out="write", mean="write",
                                   rstd="write")),
        "batchnorm_backward": (ops.batchnorm_backward,
                               dict(dy=_f((2, 3, 6, 6)), x=x4, gamma=_f((3,)), mean=_f((3,)),
                                    rstd=np.ones(3, np.float32), training=True,
                                    dx=_f((2, 3, 6, 6)), dgamma=_f((3,)), dbeta=_f((3,))),
                               dict(dy="in", x="free", gamma="in", mean="in", rstd="in",
                                    dx="write", dgamma="write", dbeta="write")),
        "leaky_relu_forward": (ops.leaky_relu_forward, dict(x=x2, slope=0.2, out=_f((4, 5))),
                               dict(x="free", out="write")),
        "leaky_relu_backward": (ops.leaky_relu_backward,
                                dict(dy=x2, x=_f((4, 5), 1), slope=0.2, dx=_f((4, 5))),
                                dict(dy="free", x="in", dx="write")),
        "tanh_forward": (ops.tanh_forward, dict(x=x2, out=_f((4, 5))), dict(x="free", out="write")),
        "tanh_backward": (ops.tanh_backward, dict(dy=x2, y=_f((4, 5), 1), dx=_f((4, 5))),
                          dict(dy="free", y="in", dx="write")),
        "dropout_forward": (ops.dropout_forward, dict(x=x2, p=0.3, seed=7, out=_f((4, 5))),
                            dict(x="free", out="write")),
        "dropout_backward": (ops.dropout_backward, dict(dy=x2, p=0.3, seed=7, dx=_f((4, 5))),
                             dict(dy="free", dx="write")),
        "leaky_relu_dropout_forward": (ops.leaky_relu_dropout_forward,
                                       dict(x=x2, slope=0.2, p=0.3, seed=7, out=_f((4, 5))),
                                       dict(x="free", out="write")),
        "leaky_relu_dropout_backward": (ops.leaky_relu_dropout_backward,
                                        dict(dy=x2, x=_f((4, 5), 1), slope=0.2, p=0.3, seed=7,
                                             dx=_f((4, 5))),
                                        dict(dy="free", x="in", dx="write")),
        "bce_with_logits": (ops.bce_with_logits,
                            dict(logits=_f((4, 1)), targets=np.full((4, 1), 0.5, np.float32),
                                 loss=np.zeros((), np.float32), dlogits=_f((4, 1))),
                            dict(logits="free", targets="in", loss="write", dlogits="write")),
        "adam_step": (ops.adam_step,
                      dict(params=_f((6,)), grads=_f((6,), 1), m=_f((6,), 2),
                           v=np.ones(6, np.float32), step=3, lr=1e-3, beta1=0.9, beta2=0.999,
                           eps=1e-8),
                      dict(params="write", grads="in", m="write", v="write")),
    }


# Hyperparameter breaks: op -> {argument: [invalid values]}.
NAN, INF = float("nan"), float("inf")
BAD_HYPER = {
    "conv2d_forward": {"stride": [0, -1, (1, 0), (2, -3), (1,), (1, 2, 3), 1.5, "2", None, 2 ** 70,
                                  (1.0, 1.0)],
                       "padding": [-1, 3, (0, 3), (-2, 0), 2 ** 63, "1", None, (0.5, 0)]},
    "conv2d_backward": {"stride": [0, -2, (0, 1), 2.0, None, 2 ** 64],
                        "padding": [-1, (3, 0), 10 ** 30, None]},
    "batchnorm_forward": {"momentum": [-0.1, 1.0001, NAN, INF, -INF, "0.1", None],
                          "eps": [0.0, -1e-5, NAN, INF, -INF, None]},
    "leaky_relu_forward": {"slope": [NAN, INF, -INF, "0.2", None]},
    "leaky_relu_backward": {"slope": [NAN, INF, -INF, None]},
    "dropout_forward": {"p": [-0.01, 1.0, 1.5, NAN, INF, -INF, None],
                        "seed": [-1, 2 ** 64, 1.5, None, "7"]},
    "dropout_backward": {"p": [-1e-9, 1.0, NAN, INF], "seed": [-(2 ** 63), 2 ** 65, 0.0]},
    "leaky_relu_dropout_forward": {"slope": [NAN, INF, None], "p": [-0.01, 1.0, NAN, None],
                                   "seed": [-1, 2 ** 64, 1.5]},
    "leaky_relu_dropout_backward": {"slope": [-INF, "0.2"], "p": [1.0, -INF],
                                    "seed": [-(2 ** 63), None]},
    "adam_step": {"step": [0, -1, -(2 ** 63), 2 ** 63, 1.5, None],
                  "lr": [0.0, -1e-3, NAN, INF, -INF, None],
                  "beta1": [-0.1, 1.0, 1.5, NAN, INF],
                  "beta2": [-1e-9, 1.0, NAN, -INF],
                  "eps": [0.0, -1e-8, NAN, INF]},
}

DTYPES = [np.float64, np.float16, np.int32, np.int64, np.uint8, np.bool_, np.complex64,
          np.complex128, object]


SKIP = object()


def _broken(kind, value, draw):
    """value (a valid float32 array) broken in the way kind says, or SKIP when this array
    cannot be broken that way (e.g. a 1-element array is always contiguous)."""
    if kind == "dtype":
        dtype = draw(st.sampled_from(DTYPES))
        return value.astype(dtype)
    if kind == "type":
        return draw(st.sampled_from([value.tolist(), tuple(value.ravel().tolist()), 1.0, "x",
                                     None, memoryview(value.tobytes())]))
    if kind == "noncontiguous":
        axes = [i for i, d in enumerate(value.shape) if d >= 2]
        if not axes:
            return SKIP
        axis = draw(st.sampled_from(axes))
        wide = np.repeat(value, 2, axis=axis)
        out = wide[(slice(None),) * axis + (slice(None, None, 2),)]
        if draw(st.booleans()) and value.ndim >= 2:   # or a transposed view
            out = np.ascontiguousarray(np.swapaxes(value, 0, -1)).swapaxes(0, -1)
            if out.flags.c_contiguous:
                return SKIP
        assert not out.flags.c_contiguous
        return out
    if kind == "readonly":
        out = value.copy()
        out.flags.writeable = False
        return out
    if kind == "rank_up":
        return value.reshape(value.shape + (1,) * draw(st.integers(1, 9)))
    if kind == "rank_down":
        return SKIP if value.ndim == 0 else np.ascontiguousarray(value[..., 0])
    if kind == "resize":
        if value.ndim == 0:
            return SKIP
        axis = draw(st.integers(0, value.ndim - 1))
        shape = list(value.shape)
        shape[axis] += draw(st.sampled_from([1, 2, -1])) if shape[axis] > 1 else 1
        return np.zeros(shape, np.float32)
    raise AssertionError(kind)


CALLS = valid_calls()


@FUZZ
@given(st.data(), st.sampled_from(sorted(CALLS)))
def test_broken_array_argument_raises(data, op):
    draw = data.draw
    fn, args, roles = CALLS[op]
    args = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in args.items()}
    name = draw(st.sampled_from(sorted(roles)))
    role = roles[name]
    kinds = ["dtype", "type", "noncontiguous"]
    if role == "write":
        kinds.append("readonly")
    fixed_rank = not op.startswith(("leaky", "tanh", "dropout", "bce")) or role != "free"
    if fixed_rank:
        kinds.append("rank_up")
        kinds.append("rank_down")
    if role != "free":
        kinds.append("resize")
    kind = draw(st.sampled_from(kinds))
    broken = _broken(kind, args[name], draw)
    optional = name in ("b", "out", "dx", "dw", "db", "loss", "dlogits", "mean", "rstd",
                        "dgamma", "dbeta") and op != "batchnorm_backward" or (
        op == "batchnorm_backward" and name in ("dx", "dgamma", "dbeta"))
    if broken is SKIP or (broken is None and optional):
        return  # nothing to break this way (None is how an optional argument is left out)
    args[name] = broken
    with pytest.raises((TypeError, ValueError)) as info:
        fn(**args)
    assert op in str(info.value) or "incompatible function arguments" in str(info.value), (
        f"{op}({name} {kind}): {info.value}")


def test_too_many_dimensions_raises():
    x = np.zeros((1,) * 9, np.float32)
    for fn in (ops.leaky_relu_forward, ops.tanh_forward):
        with pytest.raises(ValueError, match="dimensions"):
            fn(x)
    with pytest.raises(ValueError, match="dimensions"):
        ops.bce_with_logits(np.zeros((), np.float32), np.zeros((), np.float32))


@pytest.mark.parametrize("op,arg,value", [(op, arg, v) for op, hyper in BAD_HYPER.items()
                                          for arg, values in hyper.items() for v in values],
                         ids=lambda v: repr(v)[:20])
def test_bad_hyperparameter_raises(op, arg, value):
    fn, args, _ = CALLS[op]
    args = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in args.items()}
    args[arg] = value
    with pytest.raises((TypeError, ValueError)) as info:
        fn(**args)
    text = str(info.value)
    assert (op in text and arg in text) or "incompatible function arguments" in text, text


def test_stride_and_padding_cast_errors_are_type_errors():
    """Regression (found by this file): a float, str, None or an int beyond int64 as
    stride/padding raised pybind11's RuntimeError 'Unable to cast'; now a TypeError naming
    the op and the argument. NumPy integers are accepted like ints."""
    x, w = _f((1, 1, 5, 5)), _f((1, 1, 3, 3))
    for bad in (1.5, "2", None, 2 ** 70, [1.0, 2.0]):
        with pytest.raises(TypeError, match=r"conv2d_forward: stride: expected an int"):
            ops.conv2d_forward(x, w, stride=bad)
        with pytest.raises(TypeError, match=r"conv2d_backward: padding: expected an int"):
            ops.conv2d_backward(_f((1, 1, 3, 3)), x, w, padding=bad)
    y = ops.conv2d_forward(x, w, stride=np.int64(2), padding=(np.int32(1), 1))
    assert y.shape == (1, 1, 3, 3)


# ------------------------------------------------------------------------------ NaN/inf data
def _poison(rng, a, frac=0.3):
    a = a.copy()
    if a.size:
        flat = a.reshape(-1)
        idx = rng.random(a.size) < frac
        flat[idx] = rng.choice([np.nan, np.inf, -np.inf], int(idx.sum()))
    return a


@FUZZ
@given(st.data(), shapes_any)
def test_non_finite_data_propagates_and_never_crashes(data, shape):
    """NaN/inf in the data are not rejected: every op runs, and the elementwise ops give
    the reference's NaN/inf pattern (values compared where finite)."""
    rng = np.random.default_rng(data.draw(seeds))
    x = _poison(rng, f32(rng, shape))
    dy = _poison(rng, f32(rng, shape))
    with np.errstate(all="ignore"):
        for got, ref in [
            (ops.leaky_relu_forward(x, 0.2), reference.leaky_relu_forward(*f64(x), 0.2)),
            (ops.leaky_relu_backward(dy, x, 0.2), reference.leaky_relu_backward(*f64(dy, x), 0.2)),
            (ops.tanh_forward(x), reference.tanh_forward(*f64(x))),
            (ops.tanh_backward(dy, x), reference.tanh_backward(*f64(dy, x))),
            (ops.dropout_forward(x, 0.3, 1), reference.dropout_forward(*f64(x), 0.3, 1)),
        ]:
            np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
            np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
            finite = np.isfinite(ref)
            np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-5, atol=1e-6)
        # The reductions: they must run; a NaN in their inputs shows up in their outputs.
        n = max(1, x.size)
        x2 = _poison(rng, f32(rng, (n, 3)))
        w = _poison(rng, f32(rng, (2, 3)))
        y = ops.linear_forward(x2, w)
        ops.linear_backward(_poison(rng, f32(rng, (n, 2))), x2, w)
        if not np.isfinite(x2).all() and np.isfinite(w).all():
            assert not np.isfinite(y).all()
        x4 = _poison(rng, f32(rng, (2, 2, 4, 4)))
        w4 = _poison(rng, f32(rng, (3, 2, 3, 3)))
        ops.conv2d_backward(ops.conv2d_forward(x4, w4, None, 1, 1), x4, w4, 1, 1)
        rm, rv = np.zeros(2, np.float32), np.ones(2, np.float32)
        yb, mean, rstd = ops.batchnorm_forward(x4, np.ones(2, np.float32), np.zeros(2, np.float32),
                                               rm, rv, True)
        ops.batchnorm_backward(x4, x4, np.ones(2, np.float32), mean, rstd, True)
        ops.bce_with_logits(np.ascontiguousarray(x2[:, :1]), np.full((n, 1), 0.5, np.float32))
        p = f32(rng, (n,))
        ops.adam_step(p, _poison(rng, f32(rng, (n,))), np.zeros(n, np.float32),
                      np.zeros(n, np.float32), 1)
