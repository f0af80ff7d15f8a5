"""The quality recipe's ops (issue #12) in the one table of op cases (tests/op_cases.py, which
imports this file): minibatch_stddev_forward/backward, spectral_norm_forward/backward,
ema_update. Per-op checks that are not sweeps of this table live in
tests/test_minibatch_stddev.py, tests/test_spectral_norm.py and tests/test_ema.py.

Multi-thread thresholds (csrc/common/parallel.h: kParallelGrain = 2^15):
  minibatch_stddev: groups split over the team when groups > 2^15 / (group_size·C·H·W):
    (67, 33, 3, 5) in groups of 4 (17 groups > 16, a last group of 3) and the model's
    (130, 128, 7, 7) (33 groups > 1, a last group of 2).
  spectral_norm: [128, 64, 3, 3] crosses all of them (linear's M = 1 column blocks and row
    blocks, w / sigma: 73,728 > 2^15 elements, the backward's 18 inner-product chunks of 4096
    > 8 and its 128 rows > 2^15 / 576); [1, 40000] the column blocks and the elementwise pass.
  ema_update: elementwise, n > 2^15: 300,001.
"""
from __future__ import annotations

import math

import numpy as np

from gan_fast import reference
from op_cases import Call, OpCase, add, f32, normal

BAD_EPS = [0.0, -1e-8, math.nan, math.inf, -math.inf, None]


# ------------------------------------------------------------------------------ minibatch_stddev
def build_minibatch_stddev_forward(rng, N, C, H, W, group_size=4, eps=1e-8):
    return Call(args=dict(x=normal(rng, (N, C, H, W), 2.0, 1.5), group_size=group_size, eps=eps),
                outputs=dict(out=(N, C + 1, H, W)), ref_args=dict(eps=f32(eps)))


def build_minibatch_stddev_backward(rng, N, C, H, W, group_size=4, eps=1e-8):
    return Call(args=dict(dy=normal(rng, (N, C + 1, H, W)), x=normal(rng, (N, C, H, W), 2.0, 1.5),
                          group_size=group_size, eps=eps),
                outputs=dict(dx=(N, C, H, W)), ref_args=dict(eps=f32(eps)))


def minibatch_stddev_backward_floor(case, call, want):
    """dx = dy + the statistic's part, which may cancel: each term's own size."""
    C = call.args["x"].shape[1]
    copied = call.args["dy"][:, :C].astype(np.float64)
    return dict(dx=np.abs(copied) + np.abs(want["dx"] - copied))


def _nchwg(sizes):
    return [dict(N=n, C=c, H=h, W=w, group_size=g) for n, c, h, w, g in sizes]


# (N, C, H, W, group_size): N = 1, groups of 1, a group larger than N, short last groups, and
# D's second convolution's output at the model's batches (D sees 2N rows: 130 leaves 2).
MBSTD_PARITY = _nchwg([(1, 1, 1, 1, 4), (1, 3, 5, 5, 4), (5, 3, 2, 7, 4), (7, 17, 3, 1, 2),
                       (6, 2, 3, 3, 1), (3, 5, 4, 4, 8), (9, 1, 1, 17, 3), (12, 600, 1, 1, 12),
                       (0, 3, 2, 2, 4), (64, 128, 7, 7, 4), (256, 128, 7, 7, 4)])
MBSTD_THREADED = _nchwg([(67, 33, 3, 5, 4), (130, 128, 7, 7, 4)])


def minibatch_stddev_fuzz(st):
    small = st.fixed_dictionaries(dict(
        N=st.integers(0, 12), C=st.integers(1, 5), H=st.integers(1, 5), W=st.integers(1, 5),
        group_size=st.integers(1, 9), eps=st.sampled_from([1e-8, 1e-3, 1.0])))
    # 16..24 rows of 2048 features in groups of 4: more groups than 2^15 / 8192 = 4
    threaded = st.fixed_dictionaries(dict(N=st.integers(16, 24), C=st.just(128), H=st.just(4),
                                          W=st.just(4), group_size=st.just(4)))
    return st.one_of(small, threaded)


MBSTD_BAD = dict(group_size=[0, -1, -(2 ** 63), 2 ** 63, 1.5, None, "4"], eps=BAD_EPS)

add(OpCase(
    op="minibatch_stddev_forward", build=build_minibatch_stddev_forward,
    example=dict(N=6, C=3, H=4, W=5, group_size=4),
    parity=MBSTD_PARITY, threaded=MBSTD_THREADED, fuzz=minibatch_stddev_fuzz,
    bad_scalars=MBSTD_BAD,
))

add(OpCase(
    op="minibatch_stddev_backward", build=build_minibatch_stddev_backward,
    example=dict(N=6, C=3, H=4, W=5, group_size=4),
    parity=MBSTD_PARITY, threaded=MBSTD_THREADED, fuzz=minibatch_stddev_fuzz,
    floor=minibatch_stddev_backward_floor, bad_scalars=MBSTD_BAD,
))


# ------------------------------------------------------------------------------ spectral_norm
def build_spectral_norm_forward(rng, shape, eps=1e-12):
    K, F = shape[0], math.prod(shape[1:])
    return Call(args=dict(w=normal(rng, shape), u=normal(rng, (K,)), eps=eps),
                outputs=dict(out=tuple(shape), v=(F,), sigma=()), in_place=("u",),
                ref_args=dict(eps=f32(eps)), aliases=(("out", "w"),))


def build_spectral_norm_backward(rng, shape):
    """The saved tensors are the forward's own (reference, rounded to float32), as a
    training step hands them over."""
    K = shape[0]
    u = normal(rng, (K,)).astype(np.float64)
    w = normal(rng, shape).astype(np.float64)
    w_sn, v, sigma = (np.asarray(a, np.float32) for a in reference.spectral_norm_forward(w, u))
    return Call(args=dict(dw_sn=normal(rng, shape), w_sn=w_sn, u=u.astype(np.float32), v=v,
                          sigma=sigma),
                outputs=dict(dw=tuple(shape)), aliases=(("dw", "dw_sn"),))


def spectral_norm_backward_floor(case, call, want):
    """dw_sn − ⟨dw_sn, w_sn⟩·u vᵀ cancels (exactly, for a [1, 1] weight): each term's size."""
    a = {k: np.asarray(v, np.float64) for k, v in call.args.items()}
    shape = a["w_sn"].shape
    inner = abs(float(np.sum(a["dw_sn"] * a["w_sn"])))
    terms = np.abs(a["dw_sn"]) + inner * np.abs(np.outer(a["u"], a["v"])).reshape(shape)
    return dict(dw=terms / abs(float(a["sigma"])))


# D's weights (conv1, conv2, the head; 6321 = 6272 + 49, a head that also reads a statistic
# channel), odd sizes, rank 2 to 4.
SN_PARITY = [dict(shape=s) for s in [(64, 1, 3, 3), (128, 64, 3, 3), (1, 6272), (1, 6321),
                                     (1, 1), (3, 5), (2, 1, 1), (7, 3, 2, 5), (67, 129),
                                     (300, 40), (33, 2, 1, 17)]]
SN_THREADED = [dict(shape=(128, 64, 3, 3)), dict(shape=(1, 40_000))]


def spectral_norm_fuzz(st, backward=False):
    """Any rank 2..4, 0-sized dimensions included (every sum empty: sigma = 0, and nothing to
    normalise), past the thresholds of the top; the forward also with an eps above the norms
    (v and u then shorter than unit vectors)."""
    shapes = st.one_of(
        st.tuples(st.integers(0, 40), st.lists(st.integers(0, 4), min_size=1, max_size=3))
        .map(lambda kt: (kt[0],) + tuple(kt[1])),
        st.just((128, 64, 3, 3)), st.tuples(st.just(1), st.integers(33_000, 40_000)))
    if backward:
        return st.fixed_dictionaries(dict(shape=shapes))
    return st.fixed_dictionaries(dict(shape=shapes,
                                      eps=st.sampled_from([1e-12, 1e-6, 1.0, 100.0])))


add(OpCase(
    op="spectral_norm_forward", build=build_spectral_norm_forward,
    example=dict(shape=(4, 3, 3, 3)),
    parity=SN_PARITY + [dict(shape=(4, 6), eps=1e3), dict(shape=(0, 4)), dict(shape=(3, 0))],
    threaded=SN_THREADED, fuzz=spectral_norm_fuzz,
    overlap=[dict(shape=(4, 3, 3, 3)), dict(shape=(1, 1))],   # [1, 1]: every array one float
    bad_scalars=dict(eps=[0.0, -1e-12, math.nan, math.inf, None, "1e-12"]),
))

add(OpCase(
    op="spectral_norm_backward", build=build_spectral_norm_backward,
    example=dict(shape=(4, 3, 3, 3)),
    parity=SN_PARITY, threaded=SN_THREADED,
    overlap=[dict(shape=(4, 3, 3, 3)), dict(shape=(1, 1))],
    fuzz=lambda st: spectral_norm_fuzz(st, backward=True),
    floor=spectral_norm_backward_floor,
))


# ------------------------------------------------------------------------------ ema_update
def build_ema_update(rng, n, decay=0.999, step=3, step_array=False):
    """step_array: the step as a one-element int64 array (on CUDA a device array, which the
    kernel reads when it runs)."""
    return Call(args=dict(average=normal(rng, (n,)), value=normal(rng, (n,)), decay=decay,
                          step=np.array([step], np.int64) if step_array else step),
                in_place=("average",))


def ema_floor(case, call, want):
    """β·average + (1 − β)·value cancels: each term's size."""
    a = call.args
    step = int(np.asarray(a["step"]).reshape(-1)[0])
    beta = min(a["decay"], (1 + step) / (10 + step))
    return dict(average=beta * np.abs(a["average"]) + (1 - beta) * np.abs(a["value"]))


add(OpCase(
    op="ema_update", build=build_ema_update, example=dict(n=6, step=3),
    parity=[dict(n=n, decay=d, step=s) for n in (1, 3, 67, 1_000, 1_486_352)
            for d in (0.999, 0.9999, 0.5, 0.0) for s in (1, 2, 5_000)]
    + [dict(n=1_000, step=s, step_array=True) for s in (1, 7, 5_000)],
    threaded=[dict(n=300_001, step=7)],   # n > 2^15
    overlap=[dict(n=6, step=3), dict(n=2, step=3, step_array=True)],   # 2 floats: one int64
    fuzz=lambda st: st.fixed_dictionaries(dict(
        n=st.one_of(st.integers(0, 300), st.integers(32_769, 36_000)),
        decay=st.floats(0, 1, exclude_max=True), step=st.integers(1, 10 ** 12),
        step_array=st.booleans())),
    floor=ema_floor,
    bad_scalars=dict(decay=[-0.1, 1.0, 1.5, math.nan, math.inf, -math.inf, None, "0.9"],
                     step=[0, -1, -(2 ** 63), 2 ** 63, 1.5, None, "3", np.array([0]),
                           np.array([1, 2]), np.array([1.0]), np.array([[1]]),
                           np.array([1], np.int32)]),
))
