"""Property-based tests (Hypothesis) of every op of tests/op_cases.py, on the CPU.

Valid calls: each op's dims are drawn from its table strategy (OpCase.fuzz): 0-sized and
size-1 dimensions wherever the contract allows them, hyperparameters across their whole
valid range, and sizes past the op's multi-thread threshold (op_cases.py's docstring names
each; conv2d splits image groups at any batch >= 2); every output is either left to the op
or given as a NaN-poisoned buffer. Each result is compared with gan_fast.reference
(op_cases.assert_results_close, with the op's floor for sums of cancelling terms; 0-sized
results by shape). Values come from a drawn seed (fresh random data), so the search is
over shapes and settings, not over ill-conditioned numbers.

Invalid calls: one argument of the op's example call is broken (wrong dtype incl.
float64, int, bool and complex; not an array; wrong rank; a mismatched dimension;
non-contiguous; read-only where the op writes; the table's invalid hyperparameters:
negative or out-of-range sizes, strides, paddings, NaN and inf). Each must raise TypeError
or ValueError naming the op, never crash the interpreter (the sanitizer CI job runs this
file too).

NaN and inf in the DATA are not errors: the kernels never inspect values, so they
propagate as IEEE float32 says. test_non_finite_data_gives_the_reference_pattern poisons a
few elements of every input of every op and requires the reference's pattern exactly:
NaN where it has NaN, ±inf where it has ±inf (so elementwise ops keep their positions,
dropout and LeakyReLU selects turn dropped ones into 0, a GEMM's NaN fills exactly the rows
and columns of the poisoned operands, BatchNorm's the poisoned channels), and the finite
values within tolerance.

Budget: a fixed number of examples per op and test (profile "gan_fast", derandomized, no
example database) keeps CI time bounded and runs reproducible; GAN_FAST_FUZZ_EXAMPLES
scales it (e.g. 2000 for a long local search).
"""
from __future__ import annotations

import inspect
import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from conftest import Backend  # noqa: E402
from gan_fast import ops  # noqa: E402
from op_cases import (CASES, assert_results_close, out_spec, params, poisoned,  # noqa: E402
                      required_outputs, run_kernel, run_reference)
from parity import TOLERANCES, assert_close, to_numpy  # noqa: E402

EXAMPLES = int(os.environ.get("GAN_FAST_FUZZ_EXAMPLES", "30"))
settings.register_profile(
    "gan_fast", max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
    print_blob=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FUZZ = settings.get_profile("gan_fast")
CPU = Backend("cpu")
# By name: Hypothesis prints a falsifying example's arguments in full.
ALL_OPS = pytest.mark.parametrize("op", list(CASES))
seeds = st.integers(0, 2 ** 32 - 1)


# ------------------------------------------------------------------------------ valid calls
@ALL_OPS
@FUZZ
@given(data=st.data())
def test_valid_call_matches_the_reference(op, data):
    case = CASES[op]
    dims = data.draw(case.fuzz(st), label="dims")
    call = case.build(np.random.default_rng(data.draw(seeds, label="seed")), **dims)
    required = required_outputs(case, call)
    given_outputs = {name: poisoned(np, spec) for name, spec in call.outputs.items()
                     if spec is not None and (name in required
                                              or data.draw(st.booleans(), label=f"give {name}"))}
    got = run_kernel(case, call, CPU, outputs=given_outputs)
    # dropout at p = float32(1 − 2⁻³⁰) = 1: the reference's x/(1 − p) is inf (NaN where x
    # is 0), unused: nothing is kept
    with np.errstate(divide="ignore", invalid="ignore"):
        want = run_reference(case, call)
        floors = case.floor(case, call, want) if case.floor else None
    assert_results_close(case, got, want, floors=floors)


# ------------------------------------------------------------------------------ invalid calls
DTYPES = [np.float32, np.float64, np.float16, np.int32, np.int64, np.uint8, np.bool_,
          np.complex64, np.complex128, object]
SKIP = object()


def _broken(kind, value, draw, free_axes=()):
    """value (a valid array) broken in the way kind says, or SKIP when this array cannot be
    broken that way (e.g. a 1-element array is always contiguous, or the axis drawn for a
    resize is one of free_axes, whose size no other argument fixes)."""
    if kind == "dtype":
        return value.astype(draw(st.sampled_from([d for d in DTYPES if np.dtype(d) != value.dtype])))
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
        return SKIP if value.ndim == 0 else np.array(value[..., 0])  # 1-D -> 0-d, a copy
    if kind == "resize":
        if value.ndim == 0:
            return SKIP
        axis = draw(st.integers(0, value.ndim - 1))
        if axis in free_axes:
            return SKIP
        shape = list(value.shape)
        shape[axis] += draw(st.sampled_from([1, 2, -1])) if shape[axis] > 1 else 1
        return np.zeros(shape, value.dtype)
    raise AssertionError(kind)


def _example_call(case):
    """The op's example call with every output given: {argument: value}, and the names of
    the arguments the op writes."""
    call = case.build(np.random.default_rng(0), **case.example)
    args = dict(call.args)
    for name, spec in call.outputs.items():
        shape, dtype = out_spec(spec)
        args[name] = np.full(shape, 0.5 if dtype.kind == "f" else 0, dtype)
    return args, set(call.outputs) | set(call.in_place)


@ALL_OPS
@FUZZ
@given(data=st.data())
def test_broken_array_argument_raises(op, data):
    """In the example call every array's shape is pinned by the others (outputs given), so
    any change of size or rank is an error, like a wrong dtype, layout or type."""
    case, draw = CASES[op], data.draw
    args, written = _example_call(case)
    case.kernel(**args)   # the unbroken call is valid
    args, _ = _example_call(case)
    arrays = sorted(k for k, v in args.items() if isinstance(v, np.ndarray))
    name = draw(st.sampled_from(arrays), label="argument")
    free = case.free_sizes.get(name, ())
    kinds = ["dtype", "type", "noncontiguous", "readonly", "rank_up", "rank_down", "resize"]
    kind = draw(st.sampled_from([k for k in kinds if (k != "readonly" or name in written)
                                 and (free != "any" or k in kinds[:4])]), label="break")
    broken = _broken(kind, args[name], draw, free)
    optional = inspect.signature(case.kernel).parameters[name].default is None \
        or name in case.nullable
    if broken is SKIP or (broken is None and optional):
        return  # nothing to break this way (None is how an optional argument is left out)
    args[name] = broken
    with pytest.raises((TypeError, ValueError)) as info:
        case.kernel(**args)
    assert case.op in str(info.value) or "incompatible function arguments" in str(info.value), (
        f"{case.op}({name} {kind}): {info.value}")


@pytest.mark.parametrize("case,arg,value", [
    pytest.param(case, arg, v, id=f"{case.op}-{arg}={v!r:.20}")
    for case in CASES.values() for arg, values in case.bad_scalars.items() for v in values])
def test_bad_hyperparameter_raises(case, arg, value):
    args, _ = _example_call(case)
    args[arg] = value
    with pytest.raises((TypeError, ValueError)) as info:
        case.kernel(**args)
    text = str(info.value)
    assert (case.op in text and arg in text) or "incompatible function arguments" in text, text


def test_too_many_dimensions_raises():
    x = np.zeros((1,) * 9, np.float32)
    for fn in (ops.leaky_relu_forward, ops.tanh_forward):
        with pytest.raises(ValueError, match="dimensions"):
            fn(x)
    with pytest.raises(ValueError, match="dimensions"):
        ops.bce_with_logits(np.zeros((), np.float32), np.zeros((), np.float32))


def test_stride_and_padding_cast_errors_are_type_errors(rng):
    """Regression (found by this file): a float, str, None or an int beyond int64 as
    stride/padding raised pybind11's RuntimeError 'Unable to cast'; now a TypeError naming
    the op and the argument. NumPy integers are accepted like ints."""
    x, w = (rng.standard_normal(s).astype(np.float32) for s in [(1, 1, 5, 5), (1, 1, 3, 3)])
    dy = rng.standard_normal((1, 1, 3, 3)).astype(np.float32)
    for bad in (1.5, "2", None, 2 ** 70, [1.0, 2.0]):
        with pytest.raises(TypeError, match=r"conv2d_forward: stride: expected an int"):
            ops.conv2d_forward(x, w, stride=bad)
        with pytest.raises(TypeError, match=r"conv2d_backward: padding: expected an int"):
            ops.conv2d_backward(dy, x, w, padding=bad)
    y = ops.conv2d_forward(x, w, stride=np.int64(2), padding=(np.int32(1), 1))
    assert y.shape == (1, 1, 3, 3)


# ------------------------------------------------------------------------------ NaN/inf data
def _poison(rng, a):
    """a with 1 + size/1000 elements (at random places) set to NaN, +inf or -inf: few enough
    that the pattern they leave says which rows, columns or channels they reached."""
    a = a.copy()
    if a.size:
        k = min(a.size, 1 + a.size // 1000)
        a.reshape(-1)[rng.choice(a.size, k, replace=False)] = rng.choice([np.nan, np.inf, -np.inf], k)
    return a


@pytest.mark.parametrize("case,dims", params("example") + params("threaded"))
def test_non_finite_data_gives_the_reference_pattern(rng, case, dims):
    call = case.build(rng, **dims)
    call.args = {k: _poison(rng, v) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
                 for k, v in call.args.items()}
    got = run_kernel(case, call, CPU)
    with np.errstate(all="ignore"):
        want = run_reference(case, call)
    for name, w in want.items():
        g, w, full = to_numpy(got[name]), np.asarray(w), f"{case.op}.{name}"
        patterns = [("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)]
        if name in case.inf_may_be_nan:   # see OpCase.inf_may_be_nan for why
            patterns = [("non-finite", lambda a: ~np.isfinite(a)),
                        ("NaN for the reference's NaN", lambda a: np.isnan(w) & ~np.isnan(a))]
        for what, pattern in patterns:
            differs = np.flatnonzero(pattern(g).reshape(-1) != pattern(w).reshape(-1))
            assert differs.size == 0, (
                f"{full}: {what} at {differs.size} places where the reference differs "
                f"(first at flat index {differs[0]}: got {g.reshape(-1)[differs[0]]}, "
                f"reference {w.reshape(-1)[differs[0]]}); {int(pattern(w).sum())} expected")
        if w.dtype.kind in "iu":   # integer results: no NaN to carry, equal as they are
            np.testing.assert_array_equal(g, w, err_msg=full)
            continue
        finite = np.isfinite(w)
        if finite.any():
            # a subset's relative error can exceed the whole array's: 10x the tolerance
            assert_close(f"{full} (finite part)", g[finite], w[finite],
                         tol=10 * TOLERANCES[case.tolerance])
