"""The conditional GAN's ops (issue #15) in the one table of op cases (tests/op_cases.py
imports this file): embedding, concat and the projection discriminator's head. Labels are
int64 arrays among the arguments; the parity sweeps draw them naming every class or only
half of the classes (the others must get exact zeros in the gradients).

Multi-thread thresholds of their CPU kernels (csrc/common/parallel.h: kParallelGrain = 2^15;
csrc/common/cpu_isa.h: parallel_range splits only when n > grain), and the dims that reach
them:
  embedding_forward: rows, when N > 2^15 / D: (N, D) = (67, 7840) and (301, 128).
  embedding_backward, and projection_head_backward's dw and dembed (class_row_sums): blocks
    of 64 columns, when ceil(D / 64) > 2^15 / (64·N) = 512 / N: (256, 7840) and (67, 6321).
  concat: samples, when N > 2^15 / (floats per joined sample): 67 x (1 + 10)x28x28.
  projection_head_forward: blocks of 4 rows, when ceil(N / 4) > 2^14 / (4·D): (67, 6321).
  projection_head_backward's dh: blocks of 512 columns, when ceil(D / 512) > 2^14 / (512·N):
    (67, 6321).
Per-op checks that are not sweeps (backward bitwise the float32 sum in increasing n, a head
row's logit independent of the other rows, the CUDA NaN for a bad label) stay in
tests/test_embedding.py, test_concat.py and test_projection_head.py.
"""
from __future__ import annotations

import numpy as np

from op_cases import CASES, Call, OpCase, add, normal, reference_on_abs

COVERAGE = ("all", "some_absent")


def class_labels(rng, N, C, coverage="all"):
    """N int64 labels in [0, C): "all" names every class (when N >= C) in random order;
    "some_absent" draws from a random half of the classes."""
    if N == 0:
        return np.zeros(0, np.int64)
    if coverage == "all":
        return rng.permutation(np.arange(N) % C).astype(np.int64)
    present = rng.choice(C, size=max(1, C // 2), replace=False)
    return rng.choice(present, size=N).astype(np.int64)


def _coverage(dims_list):
    return [dict(d, coverage=c) for d in dims_list for c in COVERAGE]


# ------------------------------------------------------------------------------ embedding
def build_embedding_forward(rng, N, C, D, coverage="all"):
    return Call(args=dict(weight=normal(rng, (C, D)), labels=class_labels(rng, N, C, coverage)),
                outputs=dict(out=(N, D)))


def build_embedding_backward(rng, N, C, D, coverage="all", extra_classes=0):
    """num_classes = C + extra_classes: classes past every label get zeros."""
    return Call(args=dict(dy=normal(rng, (N, D)), labels=class_labels(rng, N, C, coverage),
                          num_classes=C + extra_classes),
                outputs=dict(dweight=(C + extra_classes, D)))


# (N, C, D): labels [N], weight [C, D]. The model: one-hot label planes (D = 10·784) and
# learned embeddings (D = 10 .. 128) at batch 64 and 256.
EMBEDDING_ODD = [(1, 1, 1), (3, 2, 5), (7, 10, 17), (67, 3, 129), (130, 13, 257), (5, 1, 300),
                 (2, 7, 0), (0, 3, 4)]
EMBEDDING_MODEL = [(n, 10, d) for n in (64, 256) for d in (10, 128, 7840)]


def _ncd(sizes, **extra):
    return [dict(N=n, C=c, D=d, **extra) for n, c, d in sizes]


def _draw_ncd(draw, st, big_n, big_d):
    """C classes, N rows and D features, small or (one draw in two) in the ranges big_n and
    big_d, past the kernel's thresholds; no rows when there are no classes to label them."""
    C, big = draw(st.integers(0, 12)), draw(st.booleans())
    N = 0 if C == 0 else draw(st.integers(*big_n) if big else st.integers(0, 40))
    D = draw(st.integers(*big_d) if big else st.integers(0, 40))
    return dict(N=N, C=C, D=D, coverage=draw(st.sampled_from(COVERAGE)))


def embedding_fuzz(st, backward=False):
    @st.composite
    def dims(draw):
        # big: N·D past both thresholds of the top (forward rows, backward blocks)
        d = _draw_ncd(draw, st, (260, 300), (129, 200))
        if backward:
            d["extra_classes"] = draw(st.integers(0, 3))
        return d
    return dims()


# Two facts tests/test_fuzz.py's invalid-call breaker needs, set after add() because OpCase
# has no such fields yet (see the report of issue #15's helper):
#   free_sizes {argument: axes}: an axis whose size no other argument fixes (a table's class
#     count): a larger table is a valid call, not a broken one;
#   nullable (arguments): None is valid for them though they have no default (the head's b).
add(OpCase(
    op="embedding_forward", build=build_embedding_forward,
    example=dict(N=4, C=3, D=5),
    parity=_coverage(_ncd(EMBEDDING_ODD + EMBEDDING_MODEL)),
    threaded=_ncd([(67, 10, 7840), (301, 10, 128)]),
    overlap=_ncd([(4, 3, 5), (2, 2, 2)]),   # (2, 2, 2): weight, out and the int64 labels alike
    fuzz=embedding_fuzz,
)).free_sizes = {"weight": (0,)}

add(OpCase(
    op="embedding_backward", build=build_embedding_backward,
    example=dict(N=4, C=3, D=5),
    parity=_coverage(_ncd(EMBEDDING_ODD + EMBEDDING_MODEL)) + _ncd([(9, 3, 6)], extra_classes=2),
    threaded=_ncd([(256, 10, 7840), (67, 10, 6321)], coverage="some_absent"),
    overlap=_ncd([(4, 3, 5), (2, 2, 2)]),
    fuzz=lambda st: embedding_fuzz(st, backward=True), floor=reference_on_abs,
    bad_scalars=dict(num_classes=[-1, -(2 ** 63), 2 ** 64, 2.5, None, "3"]),
))


# ------------------------------------------------------------------------------ concat
def _with_axis1(shape, size):
    return (shape[0], size) + tuple(shape[2:])


def build_concat_forward(rng, a_shape, B):
    return Call(args=dict(a=normal(rng, a_shape), b=normal(rng, _with_axis1(a_shape, B))),
                outputs=dict(out=_with_axis1(a_shape, a_shape[1] + B)))


def build_concat_backward(rng, shape, split, need_da=True, need_db=True):
    return Call(args=dict(dy=normal(rng, shape), split=split, need_da=need_da, need_db=need_db),
                outputs=dict(da=_with_axis1(shape, split) if need_da else None,
                             db=_with_axis1(shape, shape[1] - split) if need_db else None))


# (a's shape, b's size along axis 1): ranks 2 to 4, empty parts and batches; the model's
# [z, label] into G and [image or features, label planes] into D.
CONCAT_ODD = [((1, 1), 1), ((3, 5), 2), ((7, 0), 3), ((7, 3), 0), ((4, 3, 5), 2),
              ((2, 1, 1, 1), 1), ((3, 2, 5, 7), 3), ((5, 1, 3, 3), 0), ((0, 4, 2, 2), 3),
              ((67, 33), 129)]
CONCAT_MODEL = [(s, 10) for n in (64, 256) for s in [(n, 100), (n, 1, 28, 28), (n, 64, 14, 14)]]
CONCAT_THREADED = [((67, 1, 28, 28), 10)]


def concat_fuzz(st, backward=False):
    @st.composite
    def dims(draw):
        rank = draw(st.integers(2, 4))
        if rank == 4 and draw(st.booleans()):   # past the threshold of the top
            N, A, B = draw(st.integers(40, 60)), draw(st.integers(1, 3)), draw(st.integers(1, 12))
            trailing = (draw(st.integers(20, 28)), draw(st.integers(20, 28)))
        else:
            size = st.one_of(st.integers(0, 4), st.integers(5, 40))
            N, A, B = draw(size), draw(size), draw(size)
            trailing = tuple(draw(st.integers(0, 4)) for _ in range(rank - 2))
        if not backward:
            return dict(a_shape=(N, A) + trailing, B=B)
        return dict(shape=(N, A + B) + trailing, split=draw(st.integers(0, A + B)),
                    need_da=draw(st.booleans()), need_db=draw(st.booleans()))
    return dims()


add(OpCase(
    op="concat_forward", build=build_concat_forward,
    example=dict(a_shape=(2, 3, 4, 4), B=2),
    parity=[dict(a_shape=s, B=b) for s, b in CONCAT_ODD + CONCAT_MODEL],
    threaded=[dict(a_shape=s, B=b) for s, b in CONCAT_THREADED],
    # an empty part: out the size of the other
    overlap=[dict(a_shape=(2, 3, 4, 4), B=2), dict(a_shape=(2, 3), B=0), dict(a_shape=(2, 0), B=3)],
    fuzz=concat_fuzz,
))

add(OpCase(
    op="concat_backward", build=build_concat_backward,
    example=dict(shape=(2, 5, 4, 4), split=3),
    parity=[dict(shape=_with_axis1(s, s[1] + b), split=s[1]) for s, b in CONCAT_ODD + CONCAT_MODEL]
    + [dict(shape=(3, 7, 2, 2), split=4, need_da=da, need_db=db)
       for da, db in [(True, False), (False, True), (False, False)]],
    threaded=[dict(shape=_with_axis1(s, s[1] + b), split=s[1]) for s, b in CONCAT_THREADED],
    # da and db of one size; one of them the size of dy (the other empty)
    overlap=[dict(shape=(2, 5, 4, 4), split=3), dict(shape=(2, 4), split=2),
             dict(shape=(2, 3), split=3), dict(shape=(2, 3), split=0)],
    fuzz=lambda st: concat_fuzz(st, backward=True),
    bad_scalars=dict(split=[-1, 6, 2 ** 64, -(2 ** 63), 1.5, None, "2"]),
))


# ------------------------------------------------------------------------------ projection head
def build_projection_head_forward(rng, N, D, C, bias=True, coverage="all"):
    return Call(args=dict(h=normal(rng, (N, D)), w=normal(rng, (1, D)),
                          b=normal(rng, (1,)) if bias else None, embed=normal(rng, (C, D)),
                          labels=class_labels(rng, N, C, coverage)),
                outputs=dict(out=(N, 1)))


def build_projection_head_backward(rng, N, D, C, coverage="all", need_dh=True, need_dw=True,
                                   need_db=True, need_dembed=True):
    return Call(args=dict(dlogits=normal(rng, (N, 1)), h=normal(rng, (N, D)),
                          w=normal(rng, (1, D)), embed=normal(rng, (C, D)),
                          labels=class_labels(rng, N, C, coverage), need_dh=need_dh,
                          need_dw=need_dw, need_db=need_db, need_dembed=need_dembed),
                outputs=dict(dh=(N, D) if need_dh else None, dw=(1, D) if need_dw else None,
                             db=(1,) if need_db else None,
                             dembed=(C, D) if need_dembed else None))


# (N, D, C): h [N, D], embed [C, D]. The model: D's 2N rows (N = 64 .. 256) of 6272 features
# (6321 is odd: a remainder after every vector width), C = 10.
HEAD_ODD = [(1, 1, 1), (3, 5, 2), (5, 33, 3), (4, 16, 1), (67, 129, 10), (130, 257, 7),
            (9, 6321, 10), (6, 0, 3), (0, 7, 2)]
HEAD_MODEL = [(n, d, 10) for n in (128, 512) for d in (6272, 6321)]
HEAD_THREADED = [(67, 6321, 10)]


def _ndc(sizes, **extra):
    return [dict(N=n, D=d, C=c, **extra) for n, d, c in sizes]


# The example; every float array one float (N = D = C = 1); h, embed and the two int64
# labels of 16 bytes beside w and out of 2 floats (N = D = C = 2).
HEAD_OVERLAP = _ndc([(4, 5, 3), (1, 1, 1), (2, 2, 2)])


def head_fuzz(st, backward=False):
    @st.composite
    def dims(draw):
        # big: past every threshold of the top (4-row blocks, dh's and the sums' blocks)
        d = _draw_ncd(draw, st, (60, 80), (600, 800))
        if backward:
            d.update({f"need_{g}": draw(st.booleans()) for g in ("dh", "dw", "db", "dembed")})
        else:
            d["bias"] = draw(st.booleans())
        return d
    return dims()


add(OpCase(
    op="projection_head_forward", build=build_projection_head_forward,
    example=dict(N=4, D=5, C=3, bias=True),
    parity=[dict(d, bias=b) for d in _coverage(_ndc(HEAD_ODD + HEAD_MODEL)) for b in (True, False)],
    threaded=_ndc(HEAD_THREADED),
    simd=_ndc([(1, 1, 1), (5, 33, 3), (67, 129, 10), (512, 6321, 10)] + HEAD_THREADED,
              coverage="some_absent"),
    overlap=HEAD_OVERLAP,
    fuzz=head_fuzz, floor=reference_on_abs,
))
CASES["projection_head_forward"].free_sizes = {"embed": (0,)}
CASES["projection_head_forward"].nullable = ("b",)

add(OpCase(
    op="projection_head_backward", build=build_projection_head_backward,
    example=dict(N=4, D=5, C=3),
    parity=_coverage(_ndc(HEAD_ODD + HEAD_MODEL))
    + [dict(N=7, D=9, C=4, need_dh=a, need_dw=b, need_db=c, need_dembed=d)
       for a, b, c, d in [(True, False, False, False), (False, True, False, False),
                          (False, False, True, False), (False, False, False, True),
                          (False, True, False, True), (False, False, False, False)]],
    threaded=_ndc(HEAD_THREADED),
    simd=_ndc([(1, 1, 1), (5, 33, 3), (67, 129, 10), (512, 6321, 10)] + HEAD_THREADED,
              coverage="some_absent"),
    overlap=HEAD_OVERLAP,
    fuzz=lambda st: head_fuzz(st, backward=True), floor=reference_on_abs,
))
