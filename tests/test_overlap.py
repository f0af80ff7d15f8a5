"""Outputs that overlap inputs are refused (issue #16), and the in-place calls the contracts
allow give the out-of-place answer bitwise.

For every op of gan_fast.ops, every array the op writes (an output, or an array it
updates in place) is placed over each other array argument of the call: one float past
its start, ending one float into it, and as the very same memory when the sizes agree.
Each placement must raise a ValueError that names the op and both arguments
(bindings/arrays.h, Checker::track) before anything is written: the shared buffer, every
other argument and the written one are compared byte for byte after the failed call.
Views of one buffer that do not overlap are fine: every op also runs with all its arrays
packed side by side in one buffer and must match the call on separate arrays bitwise.

The exceptions are the contracts' own (csrc/<op>/<op>.h): an elementwise op's output may
be exactly one of its inputs, softmax_cross_entropy's dlogits may be its logits. Those
in-place calls must equal the out-of-place ones bitwise; a partial overlap is still
refused. adam_step's params, m and v are updated in place by definition (they are the
arrays it writes, so the test places each over the others and over grads).

The cases are this file's own compact table (CASES); when tests/op_cases.py (issue #14's
one table of op cases) lands, these shapes can move there. test_every_op_has_a_case fails
when an op of gan_fast.ops is missing here.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from gan_fast import _C, ops


def _f(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _positive(rng, *shape):
    return (np.abs(rng.standard_normal(shape)) + 0.5).astype(np.float32)


# op -> (make(rng) -> {argument: array}, {scalar argument: value}, written arrays,
#        exact aliases the contract allows as (written, read) pairs).
# Every array argument the binding parses is in the dict; the written ones are listed.
# Shapes are small, and where the contract lets an output and an input have one size
# (linear with K = M) it does, so the exact-alias placement is tried too.
CASES = {
    "linear_forward": (
        lambda r: dict(x=_f(r, 5, 6), w=_f(r, 6, 6), b=_f(r, 6), out=_f(r, 5, 6)),
        {}, ["out"], []),
    "linear_backward": (
        lambda r: dict(dy=_f(r, 5, 6), x=_f(r, 5, 6), w=_f(r, 6, 6), dx=_f(r, 5, 6),
                       dw=_f(r, 6, 6), db=_f(r, 6)),
        {}, ["dx", "dw", "db"], []),
    "conv2d_forward": (
        lambda r: dict(x=_f(r, 2, 3, 5, 5), w=_f(r, 4, 3, 3, 3), b=_f(r, 4), out=_f(r, 2, 4, 5, 5)),
        dict(stride=1, padding=1), ["out"], []),
    "conv2d_backward": (
        lambda r: dict(dy=_f(r, 2, 4, 5, 5), x=_f(r, 2, 3, 5, 5), w=_f(r, 4, 3, 3, 3),
                       dx=_f(r, 2, 3, 5, 5), dw=_f(r, 4, 3, 3, 3), db=_f(r, 4)),
        dict(stride=1, padding=1), ["dx", "dw", "db"], []),
    "batchnorm_forward": (
        lambda r: dict(x=_f(r, 6, 4), gamma=_f(r, 4), beta=_f(r, 4), running_mean=_f(r, 4),
                       running_var=_positive(r, 4), out=_f(r, 6, 4), mean=_f(r, 4),
                       rstd=_f(r, 4)),
        dict(training=True), ["running_mean", "running_var", "out", "mean", "rstd"], []),
    "batchnorm_backward": (
        lambda r: dict(dy=_f(r, 6, 4), x=_f(r, 6, 4), gamma=_f(r, 4), mean=_f(r, 4),
                       rstd=_positive(r, 4), dx=_f(r, 6, 4), dgamma=_f(r, 4), dbeta=_f(r, 4)),
        dict(training=True), ["dx", "dgamma", "dbeta"], []),
    "leaky_relu_forward": (
        lambda r: dict(x=_f(r, 7, 5), out=_f(r, 7, 5)), dict(slope=0.2), ["out"],
        [("out", "x")]),
    "leaky_relu_backward": (
        lambda r: dict(dy=_f(r, 7, 5), x=_f(r, 7, 5), dx=_f(r, 7, 5)), dict(slope=0.2), ["dx"],
        [("dx", "dy"), ("dx", "x")]),
    "tanh_forward": (
        lambda r: dict(x=_f(r, 7, 5), out=_f(r, 7, 5)), {}, ["out"], [("out", "x")]),
    "tanh_backward": (
        lambda r: dict(dy=_f(r, 7, 5), y=np.tanh(_f(r, 7, 5)), dx=_f(r, 7, 5)), {}, ["dx"],
        [("dx", "dy"), ("dx", "y")]),
    "dropout_forward": (
        lambda r: dict(x=_f(r, 7, 5), out=_f(r, 7, 5)), dict(p=0.3, seed=11), ["out"],
        [("out", "x")]),
    "dropout_backward": (
        lambda r: dict(dy=_f(r, 7, 5), dx=_f(r, 7, 5)), dict(p=0.3, seed=11), ["dx"],
        [("dx", "dy")]),
    "leaky_relu_dropout_forward": (
        lambda r: dict(x=_f(r, 7, 5), out=_f(r, 7, 5)), dict(slope=0.2, p=0.3, seed=11),
        ["out"], [("out", "x")]),
    "leaky_relu_dropout_backward": (
        lambda r: dict(dy=_f(r, 7, 5), x=_f(r, 7, 5), dx=_f(r, 7, 5)),
        dict(slope=0.2, p=0.3, seed=11), ["dx"], [("dx", "dy"), ("dx", "x")]),
    "bce_with_logits": (
        lambda r: dict(logits=_f(r, 8, 1), targets=r.random((8, 1)).astype(np.float32),
                       loss=_f(r), dlogits=_f(r, 8, 1)),
        {}, ["loss", "dlogits"], []),
    "softmax_cross_entropy": (
        lambda r: dict(logits=_f(r, 6, 5), labels=r.integers(0, 5, 6).astype(np.int64),
                       loss=_f(r), dlogits=_f(r, 6, 5)),
        {}, ["loss", "dlogits"], [("dlogits", "logits")]),
    "adam_step": (
        lambda r: dict(params=_f(r, 20), grads=_f(r, 20), m=_f(r, 20), v=_positive(r, 20)),
        dict(step=3, lr=1e-3), ["params", "m", "v"], []),
}

KERNEL_OPS = [name for name in ops.__all__ if hasattr(_C, name)]


def test_every_op_has_a_case():
    assert sorted(CASES) == sorted(KERNEL_OPS), "add the missing op to CASES"


def _pack(backend, arrays, offsets, nbytes):
    """The arrays as views of one byte buffer at the given byte offsets, filled with their
    values in order (a later array overwrites an earlier one where they overlap)."""
    raw = backend.xp.zeros(nbytes, dtype=np.uint8)
    views = {}
    for name, value in arrays.items():
        at = offsets[name]
        view = raw[at:at + value.nbytes].view(value.dtype).reshape(value.shape)
        view[...] = backend.xp.asarray(value)
        views[name] = view
    return raw, views


def _separate(backend, arrays):
    return {name: backend.xp.asarray(value.copy()) for name, value in arrays.items()}


def _bytes(backend, a):
    return backend.to_numpy(a).tobytes()


def _placements(arrays, written, other):
    """Byte offsets of `written` relative to `other` that overlap it: starting at its last
    float, ending at its first float, and exactly over it when the sizes agree."""
    w, o = arrays[written].nbytes, arrays[other].nbytes
    placements = {"last float": o - 4, "first float": 4 - w}
    if w == o:
        placements["same memory"] = 0
    return placements


def _overlap_params():
    for op, (_, _, written, _) in CASES.items():
        for w in written:
            for other in CASES[op][0](np.random.default_rng(0)):
                if other != w:
                    yield pytest.param(op, w, other, id=f"{op}-{w}-over-{other}")


@pytest.mark.parametrize("op,written,other", list(_overlap_params()))
def test_written_array_overlapping_another_is_refused(backend, op, written, other):
    make, scalars, _, allowed = CASES[op]
    arrays = make(np.random.default_rng(0))
    for where, shift in _placements(arrays, written, other).items():
        if shift == 0 and ((written, other) in allowed):
            continue  # the contract's in-place call: test_in_place_equals_out_of_place
        # other at a 64-byte boundary past room for written before it; written at shift.
        base = (arrays[written].nbytes + 63) // 64 * 64 + 64
        offsets = {other: base, written: base + shift}
        size = base + max(arrays[other].nbytes, shift + arrays[written].nbytes) + 64
        raw, views = _pack(backend, {k: arrays[k] for k in (written, other)}, offsets, size)
        args = _separate(backend, {k: v for k, v in arrays.items() if k not in views})
        args.update(views)
        before = {k: _bytes(backend, v) for k, v in args.items()}
        raw_before = _bytes(backend, raw)
        with pytest.raises(ValueError) as err:
            getattr(ops, op)(**args, **scalars)
        message = str(err.value)
        named = re.match(rf"{op}: (\w+): (?:is the same memory as|overlaps) (\w+)", message)
        assert named and {named[1], named[2]} == {written, other}, (where, message)
        assert _bytes(backend, raw) == raw_before, f"{where}: memory written before the error"
        assert all(_bytes(backend, v) == before[k] for k, v in args.items()), where


def _run(backend, op, args, scalars):
    """Calls op; returns every array argument's bytes afterwards (outputs and in-place
    arrays are written through the arguments themselves)."""
    getattr(ops, op)(**args, **scalars)
    return {k: _bytes(backend, v) for k, v in args.items()}


@pytest.mark.parametrize("op", sorted(CASES))
def test_disjoint_views_of_one_buffer_are_fine(backend, op):
    make, scalars, _, _ = CASES[op]
    arrays = make(np.random.default_rng(0))
    expected = _run(backend, op, _separate(backend, arrays), scalars)
    offsets, at = {}, 0
    for name, value in arrays.items():  # back to back, no gap: adjacent but disjoint
        offsets[name] = at
        at += (value.nbytes + 7) // 8 * 8
    _, views = _pack(backend, arrays, offsets, at)
    assert _run(backend, op, views, scalars) == expected


def _alias_params():
    for op, (_, _, _, allowed) in CASES.items():
        for written, read in allowed:
            yield pytest.param(op, written, read, id=f"{op}-{written}-is-{read}")


@pytest.mark.parametrize("op,written,read", list(_alias_params()))
def test_in_place_equals_out_of_place(backend, op, written, read):
    make, scalars, _, _ = CASES[op]
    arrays = make(np.random.default_rng(1))
    expected = _run(backend, op, _separate(backend, arrays), scalars)
    args = _separate(backend, {k: v for k, v in arrays.items() if k != written})
    args[written] = args[read]
    result = getattr(ops, op)(**args, **scalars)
    got = {k: _bytes(backend, v) for k, v in args.items()}
    assert got[written] == expected[written], "in-place result differs from out-of-place"
    for k in arrays:  # every other output too (softmax_cross_entropy's loss)
        if k not in (written, read):
            assert got[k] == expected[k], k
    returned = result if isinstance(result, tuple) else (result,)
    assert any(r is args[read] for r in returned), "the in-place output is returned"
