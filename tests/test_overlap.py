"""Outputs that overlap inputs are refused (issue #16), and the in-place calls the contracts
allow give the out-of-place answer bitwise: every op of the one table (tests/op_cases.py),
at each of its `overlap` dims, on the CPU and on CUDA.

Every array the op writes (an output with a shape, or an argument it updates in place) is
placed over each other array argument of the call, int64 ones (labels, indices, steps)
included: starting in the other's last element, ending in its first, and as the very same
memory when the two have the same number of bytes. Each placement must raise a ValueError
that names the op and both arguments (csrc/bindings/arrays.h, Checker::track) before
anything is written: the outputs are poisoned first, and the shared buffer and every other
argument are compared byte for byte after the failed call.

The exceptions are the contracts' own: an exact alias listed in the case's Call.aliases
(an elementwise op's out = x, softmax_cross_entropy's dlogits = logits, ...) must run, as
views of one buffer and as one array passed twice, and give the out-of-place result
bitwise; a partial overlap of such a pair is still refused. So the table and the binding's
declarations (`Checker c(op, {{"out", "x"}})` in csrc/bindings/bindings.cpp) must agree
exactly, for every pair the overlap dims give one size: a pair the binding allows and the
table does not fails "no error", one the table allows and the binding refuses fails with
the binding's message (test_every_alias_of_the_table_is_tried makes sure each of the
table's pairs is tried).

Views of one buffer that do not overlap are fine: every op also runs with all its arrays
packed back to back in one buffer (in both orders) and must match the call on separate
arrays bitwise.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from op_cases import (CASES, assert_results_equal, params, poisoned, run_kernel, to_backend,
                      to_numpy)


# ------------------------------------------------------------------------------ helpers
def _host_arrays(call):
    """{name: NumPy array} of every array the call passes: its array arguments as built,
    its outputs (those with a shape) poisoned."""
    arrays = {k: v for k, v in call.args.items() if isinstance(v, np.ndarray)}
    arrays.update({n: poisoned(np, s) for n, s in call.outputs.items() if s is not None})
    return arrays


def _written(call):
    """The arrays the op writes: its outputs with a shape, and its in-place arguments."""
    return [n for n, s in call.outputs.items() if s is not None] + list(call.in_place)


def _allowed(call, a, b):
    return (a, b) in call.aliases or (b, a) in call.aliases


def _call(case, call, backend, arrays):
    """The op with exactly these backend arrays as its array arguments and outputs;
    {result name: array}."""
    outputs = {n: a for n, a in arrays.items() if n in call.outputs}
    inputs = {n: a for n, a in arrays.items() if n not in call.outputs}
    return run_kernel(case, call, backend, outputs=outputs, **inputs)


def _separate(backend, arrays):
    return {name: to_backend(backend, value) for name, value in arrays.items()}


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


def _bytes(a):
    return to_numpy(a).tobytes()


EXACT = "exactly over {}"


def _placements(written, other):
    """{where (a format of other's name): byte offset of `written` from the start of
    `other`} for placements that overlap it, each start a multiple of written's element
    size: starting in other's last element, ending in its first element, and exactly over
    it when the sizes agree."""
    w, o, item = written.nbytes, other.nbytes, written.itemsize
    placements = {"starting in {}'s last element": (o - 1) // item * item,
                  "ending in {}'s first element": item - w}
    if w == o:
        placements[EXACT] = 0
    return {where: at for where, at in placements.items()
            if not (at == 0 and w == o and where != EXACT)}


NAMED = r"{op}: (\w+): (?:is the same memory as|overlaps) (\w+)"


def _refused(case, call, backend, arrays, written, other, where, at):
    """Places written at byte offset `at` of other in one buffer (the rest separate) and
    returns what is wrong with the call: [] when it raised a ValueError naming both and
    wrote nothing."""
    base = (arrays[written].nbytes + 63) // 64 * 64 + 64   # room for written before other
    size = base + max(arrays[other].nbytes, at + arrays[written].nbytes) + 64
    # written first: other keeps its values (labels in range, a step's value)
    raw, views = _pack(backend, {written: arrays[written], other: arrays[other]},
                       {written: base + at, other: base}, size)
    args = _separate(backend, {k: v for k, v in arrays.items() if k not in views})
    args.update(views)
    before = {k: _bytes(v) for k, v in args.items()}
    raw_before = _bytes(raw)
    label = f"{case.op}: {written} {where.format(other)}"
    try:
        _call(case, call, backend, args)
    except ValueError as e:
        named = re.match(NAMED.format(op=case.op), str(e))
        if not (named and {named[1], named[2]} == {written, other}):
            return [f"{label}: the error does not name both: {e}"]
    else:
        return [f"{label}: no error"]
    changed = [k for k, v in args.items() if _bytes(v) != before[k]]
    if _bytes(raw) != raw_before or changed:
        return [f"{label}: memory written before the error ({', '.join(changed) or 'buffer'})"]
    return []


def _in_place(case, call, backend, arrays, apart, written, other):
    """The allowed exact alias: as two views of one buffer, and as one array passed twice;
    both must give the out-of-place results bitwise. Returns what is wrong."""
    size = max(arrays[other].nbytes, 1)
    _, views = _pack(backend, {written: arrays[written], other: arrays[other]},
                     {written: 0, other: 0}, size)
    shared = to_backend(backend, arrays[other])
    problems = []
    for how, pair in [("views of one buffer", views), ("one array", {written: shared, other: shared})]:
        args = _separate(backend, {k: v for k, v in arrays.items() if k not in pair})
        args.update(pair)
        label = f"{case.op}: {written} = {other} ({how})"
        try:
            together = _call(case, call, backend, args)
            assert_results_equal(case, apart, together, f"{written} = {other} in place vs apart")
        except (ValueError, AssertionError) as e:
            problems.append(f"{label}: {e}")
    return problems


# ------------------------------------------------------------------------------ the tests
@pytest.mark.parametrize("case,dims", params("overlap"))
def test_a_written_array_over_another_is_refused_but_the_allowed_aliases(backend, case, dims):
    call = case.build(np.random.default_rng(0), **dims)
    arrays = _host_arrays(call)
    apart = _call(case, call, backend, _separate(backend, arrays))
    problems, tried = [], 0
    for written in _written(call):
        for other in arrays:
            if other == written or not arrays[written].nbytes or not arrays[other].nbytes:
                continue
            for where, at in _placements(arrays[written], arrays[other]).items():
                tried += 1
                if where == EXACT and _allowed(call, written, other):
                    problems += _in_place(case, call, backend, arrays, apart, written, other)
                else:
                    problems += _refused(case, call, backend, arrays, written, other, where, at)
    assert tried, f"{case.op}{dims}: no written array beside another: the overlap dims try nothing"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("case,dims", params("overlap"))
def test_disjoint_views_of_one_buffer_are_fine(backend, case, dims):
    """Every array of the call back to back in one buffer (adjacent, no gap but alignment),
    in both orders: the results are bitwise those on separate arrays."""
    call = case.build(np.random.default_rng(1), **dims)
    arrays = _host_arrays(call)
    apart = _call(case, call, backend, _separate(backend, arrays))
    for names in (list(arrays), list(arrays)[::-1]):
        offsets, at = {}, 0
        for name in names:
            item = arrays[name].itemsize
            at = (at + item - 1) // item * item
            offsets[name] = at
            at += arrays[name].nbytes
        _, views = _pack(backend, {n: arrays[n] for n in names}, offsets, max(at, 1))
        packed = _call(case, call, backend, views)
        assert_results_equal(case, apart, packed, f"packed as {', '.join(names)} vs apart")


@pytest.mark.parametrize("case", list(CASES.values()), ids=repr)
def test_every_alias_of_the_table_is_tried(case):
    """Each (written, read) pair of the case's Call.aliases names a written array and
    another array argument, and some overlap dims give the two one (nonzero) size, so the
    test above runs the exact alias."""
    pairs = {}
    for dims in case.overlap:
        call = case.build(np.random.default_rng(0), **dims)
        arrays = _host_arrays(call)
        for written, read in call.aliases:
            assert written in _written(call) and read in arrays and read != written, (
                f"{case.op}: alias ({written}, {read}) is not (written array, other argument)")
            pairs.setdefault((written, read), False)
            if arrays[written].nbytes == arrays[read].nbytes > 0:
                pairs[(written, read)] = True
    missing = [p for p, tried in pairs.items() if not tried]
    assert not missing, f"{case.op}: no overlap dims give {missing} one size"
