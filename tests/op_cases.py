"""The one table of op cases: every op of gan_fast.ops, with the shapes and arguments its
tests use. The table-driven tests iterate over it:

    tests/test_parity.py           every case against gan_fast.reference, CPU and CUDA; the
                                   table is complete (a test fails when an op is missing)
    tests/test_cuda_vs_cpu.py      CUDA against the CPU kernels, and CUDA repeatability
    tests/test_cpu_determinism.py  bitwise equal at 1, 2 and 3 threads, and concurrently
    tests/test_cpu_isa_paths.py    every SIMD path (gan_fast.set_cpu_isa) against the reference
    tests/test_fuzz.py             Hypothesis: valid calls, broken calls, NaN/inf data
    tests/test_threads_memory.py   no op leaks memory or references
    tests/test_overlap.py          a written array over any other argument is refused with
                                   nothing written, but for the exact aliases of
                                   Call.aliases, which give the out-of-place result bitwise

Per-op test files (tests/test_<op>.py) keep only what is not a sweep of this table: need_*
skipping, the dropout mask's definition, extreme logits, and so on.

HOW TO ADD AN OP (one self-contained block; nothing else in the tests needs to change)
1. Put the block in a file of its own, tests/op_cases_<topic>.py: every such file is
   imported at the end of this one (so parallel branches do not edit the same lines). It
   starts with `from op_cases import OpCase, Call, add, normal, uniform, seed64, ...`.
2. Write a builder `build(rng, **dims) -> Call`. dims are your op's sizes and settings
   (keyword arguments with defaults). It returns a Call (see the class) holding:
     args        every input argument by name: float32 arrays of fresh random values from
                 rng (normal(), uniform(): never zeros, never np.empty), int64 arrays for
                 indices, and Python scalars;
     outputs     every output argument (out=, dx=, ...) in signature order, name -> shape
                 of a float32 output, Out(shape, dtype) for another dtype (int64 indices),
                 or None for one the call does not compute (a need_* flag False: the op
                 then returns None there). The op's return value must be exactly these
                 outputs in this order (a tuple when there are several, None when there
                 are none). An output without a default in the signature (random_normal's
                 out) is always passed, to the reference too;
     in_place    names of arguments the op updates in place (Adam's params/m/v,
                 BatchNorm's running statistics, spectral_norm's u); they are compared
                 after the call like outputs;
     ref_args    arguments the reference gets instead, for values the kernel holds in
                 float32 (e.g. slope=f32(slope)), so both compute the same thing;
     aliases     (output, input) pairs that the contract allows to be the same array (the
                 elementwise ops, out= x), exactly the pairs the binding's Checker declares
                 (csrc/bindings/bindings.cpp, `Checker c(op, {{"out", "x"}})`):
                 tests/test_overlap.py checks that writing in place gives the out-of-place
                 result bitwise, and that every other placement of a written array over
                 another argument (the same memory or a part of it) is refused.
   Inputs whose values the op assumes consistent (a backward's cached mean/rstd, y =
   tanh(x)) are computed in the builder, from the reference where needed.
3. add(OpCase(op="my_op", build=build, example=dict(...), parity=[dict(...), ...],
   threaded=[dict(...)], fuzz=my_fuzz_dims, ...)) with the fields documented on OpCase:
   a small example (every dimension >= 2, optional inputs given), the parity sweep
   (odd sizes, the model's shapes, edge sizes such as 0 and 1 where the contract allows
   them), dims that cross the CPU kernel's multi-thread threshold (say which one in a
   comment), and a Hypothesis strategy of dims for the fuzz test that reaches them too.
   Optional fields say more where the op needs it: simd (sizes for the SIMD-path test),
   overlap (sizes at which arrays of the call have equal sizes, for the overlap test),
   floor (sums that cancel), bad_scalars (invalid hyperparameters), inf_may_be_nan,
   free_sizes and nullable (exceptions for the NaN/inf test and the invalid-call breaker).
4. Add a tolerance to tests/parity.py (TOLERANCES, keyed by the op name unless tolerance=
   says otherwise) with a note on how it was chosen. The binding calls its kernels inside
   GF_DISPATCH (tests/test_threads_memory.py checks the source: the GIL is released).
Then run: pytest tests/test_parity.py tests/test_fuzz.py tests/test_cpu_determinism.py
tests/test_cpu_isa_paths.py tests/test_threads_memory.py tests/test_overlap.py -k my_op

Multi-thread thresholds of the CPU kernels (csrc/common/parallel.h: kParallelGrain =
2^15; csrc/common/cpu_isa.h: parallel_range splits only when n > grain), and which dims
below reach them:
  elementwise (leaky_relu, adam_step: n > 2^15; dropout, leaky_relu_dropout: n > 2^13;
    tanh_forward: n > 2^12, tanh_backward: n > 2^15): 300_001 elements (also a remainder
    after every vector width 16, 8, 4).
  linear (csrc/linear/linear.cpp, csrc/gemm/gemm.cpp): gemm uses the team when
    2·M·N·K >= 2^18 flops (kMinParallelFlops) and its block split leaves several blocks;
    the bias broadcast and the db column sums when N·M > 2^15 (M > 64 for two column
    tasks); the M = 1 mat-vec path when rows exceed 2^14 / K floats of x (kMatVecGrain):
    (N, K, M) = (301, 129, 131) and (67, 6272, 1).
  conv2d (csrc/conv2d/conv2d.cpp): every batch of >= 2 images is cut into groups that run
    on the team with no size threshold; one image runs its gemm on the team above 2^18
    flops: (9, 64, 14, 14) -> 128 (4 groups of up to 3 images), (13, 1, 28, 28) -> 64
    (shallow unfold, 13 groups), (1, 64, 14, 14) -> 128 (one group, gemm split).
  batchnorm (csrc/batchnorm/batchnorm.cpp): blocks of 16 channels; split when
    ceil(C / 16) > 2^15 / (N·L·16): (67, 1025) (65 blocks) and (37, 33, 7, 9) (3 blocks).
  bce_with_logits, softmax_cross_entropy: one thread by design (a batch-sized loop summed
    in index order); their `threaded` dims are just their largest case.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import pathlib
from typing import Callable

import numpy as np

from gan_fast import ops, reference
from parity import TOLERANCES, assert_close, to_numpy

# Names in gan_fast.ops.__all__ that are not kernels, with the reason they have no case.
NOT_OPS = {
    "dropout_keep_mask": "pure integer hashing, the same function object in ops and reference "
                         "(no kernel); tests/test_dropout.py checks the kernels draw exactly "
                         "this mask",
}


# ------------------------------------------------------------------------------ the format
class Out(tuple):
    """An output of another dtype than float32: Out(shape, np.int64)."""
    def __new__(cls, shape, dtype):
        return super().__new__(cls, (tuple(shape), np.dtype(dtype)))

    @property
    def shape(self):
        return self[0]

    @property
    def dtype(self):
        return self[1]


def out_spec(spec):
    """(shape, dtype) of an outputs entry."""
    return (spec.shape, spec.dtype) if isinstance(spec, Out) else (tuple(spec), np.dtype(np.float32))


def poisoned(xp, spec):
    """An output buffer that shows any element the kernel leaves unwritten: NaN for floats,
    the most negative value for integers."""
    shape, dtype = out_spec(spec)
    fill = np.nan if dtype.kind == "f" else np.iinfo(dtype).min
    return xp.full(shape, fill, dtype=dtype)


@dataclasses.dataclass
class Call:
    """One call of an op: the kernel gets args plus its outputs, the reference args updated
    with ref_args (outputs left for it to allocate)."""
    args: dict
    outputs: dict = dataclasses.field(default_factory=dict)
    in_place: tuple = ()
    ref_args: dict = dataclasses.field(default_factory=dict)
    aliases: tuple = ()


@dataclasses.dataclass
class OpCase:
    """Everything the table-driven tests need to know about one op.

    op        name in gan_fast.ops and gan_fast.reference
    build     (rng, **dims) -> Call
    example   dims of a small, typical call: every dimension >= 2, every optional input
              given (the invalid-call breaker breaks its arguments one at a time; the leak,
              allocation, aliasing and NaN/inf tests use it)
    parity    list of dims for the parity sweep (with `threaded`, on CPU and CUDA)
    threaded  list of dims at which the CPU kernel splits its work across threads (the
              determinism test runs them at 1, 2 and 3 threads; the SIMD-path and
              CUDA-vs-CPU tests use them). Say in a comment which threshold they cross.
    fuzz      st -> a Hypothesis strategy of dims (st is hypothesis.strategies, passed in
              so the table loads without Hypothesis); must reach the threaded sizes too
    simd      list of dims for the SIMD-path test (default: threaded); add the sizes that
              exercise a variant's edges (micro-kernel tiles, shallow unfolds)
    overlap   list of dims for tests/test_overlap.py (default: [example]): add sizes at which
              arrays of the call have the same number of bytes (linear with N = K = M, a
              [1, 1] weight, one label of int64 beside two floats), so that every exact
              alias is tried: refused, or (Call.aliases) equal to the out-of-place result.
              Where the op takes a step as an int64 array, one dims should pass it so.
    tolerance key of parity.TOLERANCES (default: op)
    floor     optional (call, want) -> {result name: array}: the natural size of the float32
              rounding of results that are sums of cancelling terms (the same sums over
              absolute values, see reference_on_abs). The fuzz test, whose tiny shapes
              make such cancellation likely, bounds the error by tol·max(‖want‖, ‖floor‖).
    bad_scalars {argument: [invalid values]} for the fuzz test's invalid-call checks
    inf_may_be_nan {result name: why}: results where the kernel's algebra may give NaN
              where the reference gives ±inf for NaN/inf inputs (the NaN/inf test then
              requires the same non-finite places, and NaN wherever the reference has NaN)
    free_sizes {argument: axes} whose size no other argument fixes (a table's class count),
              or "any" for an array of any shape (random_normal's out): the invalid-call
              breaker does not resize them (or change the rank of an "any" one)
    nullable  arguments for which None is valid though they have no default (the
              projection head's b): the breaker does not count None as a break
    """
    op: str
    build: Callable
    example: dict
    parity: list
    threaded: list
    fuzz: Callable
    simd: list | None = None
    overlap: list | None = None
    tolerance: str | None = None
    floor: Callable | None = None
    bad_scalars: dict = dataclasses.field(default_factory=dict)
    inf_may_be_nan: dict = dataclasses.field(default_factory=dict)
    free_sizes: dict = dataclasses.field(default_factory=dict)
    nullable: tuple = ()

    def __post_init__(self):
        self.tolerance = self.tolerance or self.op
        self.simd = self.threaded if self.simd is None else self.simd
        self.overlap = [self.example] if self.overlap is None else self.overlap

    @property
    def kernel(self):
        return getattr(ops, self.op)

    @property
    def spec(self):
        return getattr(reference, self.op)

    def __repr__(self):  # short test ids
        return self.op


CASES: dict[str, OpCase] = {}


def add(case: OpCase) -> OpCase:
    if case.op in CASES:
        raise ValueError(f"op_cases: {case.op} has two cases")
    CASES[case.op] = case
    return case


def dims_id(dims):
    """A readable test id for a dims dict: 'N=3,K=67,M=5'."""
    return ",".join(f"{k}={v}" for k, v in dims.items()).replace(" ", "")


def params(kind, cases=None):
    """pytest.param(case, dims) for every (case, dims) of one list of the table
    ('parity', 'threaded', 'simd', 'overlap', 'example' or 'parity+threaded')."""
    import pytest
    out = []
    for case in (CASES.values() if cases is None else cases):
        lists = {"example": [case.example], "parity+threaded": case.parity + case.threaded}
        for dims in lists.get(kind) or getattr(case, kind):
            out.append(pytest.param(case, dims, id=f"{case.op}[{dims_id(dims)}]"))
    return out


# ------------------------------------------------------------------------------ values
def normal(rng, shape, scale=1.0, offset=0.0):
    """Fresh random float32 values, offset + scale·N(0, 1)."""
    return np.asarray(offset + scale * rng.standard_normal(shape), np.float32)


def uniform(rng, shape, low, high):
    return np.asarray(rng.uniform(low, high, shape), np.float32)


def seed64(rng):
    """A random 64-bit seed (a Python int), as dropout takes it."""
    return int(rng.integers(0, 2 ** 64, dtype=np.uint64))


def f32(v):
    """v rounded to float32 (as a Python float): what a kernel holds a hyperparameter as."""
    return float(np.float32(v))


# ------------------------------------------------------------------------------ running a call
def to_backend(backend, value):
    """A copy of a NumPy array on the backend, dtype kept (kernels update in place, and a
    call's arrays must stay as built); scalars as they are."""
    if isinstance(value, np.ndarray):
        return backend.xp.asarray(np.array(value, copy=True))
    return value


def _results(case, call, returned, args, given):
    names = list(call.outputs)
    if not names:
        assert returned is None, f"{case.op}: expected None, got {type(returned).__name__}"
        returned = ()
    elif len(names) == 1:
        returned = (returned,)
    else:
        assert isinstance(returned, tuple) and len(returned) == len(names), (
            f"{case.op}: expected a tuple of {len(names)} ({', '.join(names)}), got {returned!r}")
    out = dict(zip(names, returned))
    for name, buf in given.items():
        assert out[name] is buf, f"{case.op}: {name}= was given, but another array came back"
    out.update({name: args[name] for name in call.in_place})
    return out


def required_outputs(case, call):
    """The outputs the op's signature gives no default (the caller must pass them)."""
    params = inspect.signature(case.spec).parameters
    return [n for n, s in call.outputs.items()
            if s is not None and params[n].default is inspect.Parameter.empty]


def run_kernel(case, call, backend, outputs="poisoned", **overrides):
    """Calls the kernel on copies of the call's arrays on backend; {result name: array}.
    outputs: 'poisoned' passes every output as a NaN-filled buffer (an element the kernel
    leaves unwritten stays NaN), 'allocate' lets the op allocate them (all but the
    required ones), or a dict of buffers to pass. overrides replace arguments (e.g. an
    output aliasing an input)."""
    args = {k: to_backend(backend, v) for k, v in call.args.items()}
    if outputs == "poisoned":
        given = {n: poisoned(backend.xp, s) for n, s in call.outputs.items() if s is not None}
    elif outputs == "allocate":
        given = {n: poisoned(backend.xp, call.outputs[n]) for n in required_outputs(case, call)}
    else:
        given = dict(outputs)
    for name, value in overrides.items():
        (given if name in call.outputs else args)[name] = value
    returned = case.kernel(**args, **given)
    return _results(case, call, returned, args, given)


def reference_args(call):
    """The call's arguments for the reference: float arrays widened to float64 (copies),
    others copied, then ref_args."""
    args = {}
    for k, v in call.args.items():
        if isinstance(v, np.ndarray):
            v = v.astype(np.float64) if v.dtype.kind == "f" else v.copy()
        args[k] = v
    args.update(call.ref_args)
    return args


def run_reference(case, call):
    """The reference on the call (float64), outputs left to it but the required ones."""
    args = reference_args(call)
    given = {}
    for name in required_outputs(case, call):
        shape, dtype = out_spec(call.outputs[name])
        given[name] = poisoned(np, Out(shape, np.float64 if dtype.kind == "f" else dtype))
    return _results(case, call, case.spec(**args, **given), args, given)


def assert_results_close(case, got, want, label="", tol_scale=1.0, floors=None):
    """Every result of got against want (reference or another backend): None exactly where
    want is None; 0-sized results by shape; integer results exactly; the rest by
    parity.assert_close with the op's tolerance (times tol_scale, widened by floors, see
    OpCase.floor)."""
    for name, w in want.items():
        g = got[name]
        full = f"{case.op}.{name}{label}"
        if w is None:
            assert g is None, f"{full}: expected None (not needed), got an array"
            continue
        assert g is not None, f"{full}: expected an array, got None"
        w = to_numpy(w)
        if w.size == 0:
            assert tuple(g.shape) == w.shape, f"{full}: shape {g.shape}, expected {w.shape}"
            continue
        if w.dtype.kind in "iu":
            g = to_numpy(g)
            assert g.dtype == w.dtype, f"{full}: dtype {g.dtype}, expected {w.dtype}"
            np.testing.assert_array_equal(g, w, err_msg=full)
            continue
        tol = TOLERANCES[case.tolerance] * tol_scale
        floor = (floors or {}).get(name)
        if floor is not None:
            tol *= max(1.0, float(np.linalg.norm(floor)) /
                       max(float(np.linalg.norm(w.astype(np.float64))), 1e-300))
        assert_close(full, g, w, tol=tol)


def assert_results_equal(case, a, b, what):
    """Bitwise equality of two runs' results (NaN equal to NaN)."""
    assert a.keys() == b.keys()
    for name in a:
        x, y = a[name], b[name]
        if x is None or y is None:
            assert x is None and y is None, f"{case.op}.{name}: None in one run only"
            continue
        x, y = to_numpy(x), to_numpy(y)
        assert x.shape == y.shape and x.dtype == y.dtype
        bits = np.dtype(f"u{x.dtype.itemsize}")
        x, y = x.reshape(-1).view(bits), y.reshape(-1).view(bits)
        if not np.array_equal(x, y):
            diff = np.flatnonzero(x != y)
            raise AssertionError(f"{case.op}.{name}: {what}: {diff.size} of {x.size} elements "
                                 f"differ, first at flat index {diff[:1]}")


def reference_on_abs(case, call, want):
    """Floor: the reference on the absolute values of every float input (for products and
    sums, ‖Σ|a||b|‖ bounds the float32 rounding of Σab however much it cancels)."""
    args = {k: np.abs(v) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
            for k, v in reference_args(call).items()}
    return _results(case, call, case.spec(**args), args, {})


# ============================================================================== the ops
# Each block: builder, then add(OpCase(...)). Dimension names as in the op's docstring.

# ------------------------------------------------------------------------------ linear
def build_linear_forward(rng, N, K, M, bias=True, activation=None, slope=0.2):
    """activation: None, "tanh" or "leaky_relu" (with slope), fused after the bias. With an
    activation, x is scaled by 1/sqrt(K): pre-activations of unit size, where tanh is not
    flat (outputs saturated at ±1 would test nothing, and shrink the norm that the error of
    the few unsaturated ones, a K-long sum's rounding, is measured against)."""
    scale = 1 / math.sqrt(max(K, 1)) if activation else 1.0
    return Call(args=dict(x=normal(rng, (N, K), scale), w=normal(rng, (M, K)),
                          b=normal(rng, (M,)) if bias else None, activation=activation,
                          slope=slope),
                outputs=dict(out=(N, M)), ref_args=dict(slope=f32(slope)))


def build_linear_backward(rng, N, K, M, need_dx=True, need_dw=True, need_db=True):
    return Call(args=dict(dy=normal(rng, (N, M)), x=normal(rng, (N, K)), w=normal(rng, (M, K)),
                          need_dx=need_dx, need_dw=need_dw, need_db=need_db),
                outputs=dict(dx=(N, K) if need_dx else None, dw=(M, K) if need_dw else None,
                             db=(M,) if need_db else None))


# (N, K, M): x [N, K], w [M, K]. Odd sizes cross every micro-kernel tile edge; the model's
# layers at batch 64 and 256 (G: 100 -> 256 -> 512 -> 1024 -> 784; D's head 6272 -> 1).
LINEAR_ODD = [(1, 1, 1), (1, 7, 3), (3, 67, 5), (67, 3, 67), (5, 33, 129), (130, 257, 31)]
LINEAR_MODEL = [(n, k, m) for n in (64, 256)
                for k, m in [(100, 256), (256, 512), (512, 1024), (1024, 784), (6272, 1)]]
# gemm, bias broadcast and db column sums all split (see the top); and the M = 1 path.
LINEAR_THREADED = [(301, 129, 131), (67, 6272, 1)]


def _nkm(sizes, **extra):
    return [dict(N=n, K=k, M=m, **extra) for n, k, m in sizes]


# The fused activations (linear_forward's activation=): LeakyReLU at the model's slope, at
# 0 (ReLU) and at a slope above 1, and tanh (the generator's last layer).
ACTIVATIONS = [dict(activation="leaky_relu", slope=0.2), dict(activation="leaky_relu", slope=0.0),
               dict(activation="leaky_relu", slope=1.7), dict(activation="tanh")]


def linear_forward_floor(case, call, want):
    """The pre-activation's sums over absolute values (reference_on_abs without the
    activation), times the activation's largest slope (tanh's is 1)."""
    plain = Call(args=dict(call.args, activation=None), outputs=call.outputs)
    floor = reference_on_abs(case, plain, want)["out"]
    if call.args["activation"] == "leaky_relu":
        floor = floor * max(1.0, abs(call.args["slope"]))
    return dict(out=floor)


def linear_fuzz(st, backward=False):
    # 182..200 crosses every threshold of the top (2·N·K·M >= 2^18, N·M > 2^15, N·K > 2^14)
    small, big = st.one_of(st.integers(0, 4), st.integers(5, 40)), st.integers(182, 200)
    flags = dict(need_dx=st.booleans(), need_dw=st.booleans(), need_db=st.booleans()) \
        if backward else dict(bias=st.booleans(),
                              activation=st.sampled_from([None, "tanh", "leaky_relu"]),
                              slope=st.one_of(st.sampled_from([0.2, 0.0, 1.0]),
                                              st.floats(-2, 2, allow_nan=False)))
    return st.one_of(st.fixed_dictionaries(dict(N=small, K=small | big, M=small | big, **flags)),
                     st.fixed_dictionaries(dict(N=big, K=big, M=small | big, **flags)))


add(OpCase(
    op="linear_forward", build=build_linear_forward,
    example=dict(N=4, K=5, M=3, bias=True, activation="leaky_relu", slope=0.2),
    parity=_nkm(LINEAR_ODD + LINEAR_MODEL, bias=True) + _nkm(LINEAR_ODD + LINEAR_MODEL, bias=False)
    + [dict(d, **a) for a in ACTIVATIONS
       for d in _nkm(LINEAR_ODD, bias=True) + _nkm([(64, 1024, 784)], bias=False)],
    threaded=[dict(d, **a) for d in _nkm(LINEAR_THREADED, bias=True)
              for a in [dict(activation=None)] + ACTIVATIONS[::3]],
    simd=_nkm(LINEAR_ODD + LINEAR_THREADED + [(64, 1024, 784), (256, 6272, 1)], bias=True)
    + [dict(d, **a) for a in ACTIVATIONS[::3] for d in _nkm(LINEAR_ODD + LINEAR_THREADED, bias=True)],
    # N = K = M: out, x and w of one size (the same memory is tried); N = 1: out, x and b.
    overlap=[dict(N=4, K=4, M=4), dict(N=1, K=4, M=4)],
    fuzz=linear_fuzz, floor=linear_forward_floor,
    bad_scalars=dict(slope=[math.nan, math.inf, -math.inf, "0.2", None]),
))

add(OpCase(
    op="linear_backward", build=build_linear_backward,
    example=dict(N=4, K=5, M=3),
    parity=_nkm(LINEAR_ODD + LINEAR_MODEL),
    threaded=_nkm(LINEAR_THREADED),
    simd=_nkm(LINEAR_ODD + LINEAR_THREADED + [(64, 1024, 784), (256, 6272, 1)]),
    overlap=[dict(N=4, K=4, M=4), dict(N=1, K=4, M=4)],
    fuzz=lambda st: linear_fuzz(st, backward=True), floor=reference_on_abs,
))


# ------------------------------------------------------------------------------ conv2d
def conv_out_shape(N, C, H, W, K, R, S, stride, padding):
    (sh, sw), (ph, pw) = [(int(v), int(v)) if np.isscalar(v) else tuple(map(int, v))
                          for v in (stride, padding)]
    return (N, K, (H + 2 * ph - R) // sh + 1, (W + 2 * pw - S) // sw + 1)


def build_conv2d_forward(rng, N, C, H, W, K, R, S, stride=1, padding=0, bias=True,
                         activation=None, slope=0.2, dropout_p=0.0, step=None, step_array=False):
    """activation="leaky_relu" passes the fused activation's arguments (a random seed); the
    step is an int, or with step_array a one-element int64 array (on CUDA a device array,
    which the kernel reads when it runs)."""
    args = dict(x=normal(rng, (N, C, H, W)), w=normal(rng, (K, C, R, S)),
                b=normal(rng, (K,)) if bias else None, stride=stride, padding=padding)
    ref_args = {}
    if activation is not None:
        if step is not None and step_array:
            step = np.array([step], np.int64)
        args.update(activation=activation, slope=slope, dropout_p=dropout_p, seed=seed64(rng),
                    step=step)
        ref_args = dict(slope=f32(slope), dropout_p=f32(dropout_p))
    return Call(args=args, outputs=dict(out=conv_out_shape(N, C, H, W, K, R, S, stride, padding)),
                ref_args=ref_args)


def build_conv2d_backward(rng, N, C, H, W, K, R, S, stride=1, padding=0, need_dx=True,
                          need_dw=True, need_db=True):
    return Call(args=dict(dy=normal(rng, conv_out_shape(N, C, H, W, K, R, S, stride, padding)),
                          x=normal(rng, (N, C, H, W)), w=normal(rng, (K, C, R, S)),
                          stride=stride, padding=padding,
                          need_dx=need_dx, need_dw=need_dw, need_db=need_db),
                outputs=dict(dx=(N, C, H, W) if need_dx else None,
                             dw=(K, C, R, S) if need_dw else None, db=(K,) if need_db else None))


def _conv(N, C, H, W, K, R, S, stride, padding, **extra):
    return dict(N=N, C=C, H=H, W=W, K=K, R=R, S=S, stride=stride, padding=padding, **extra)


CONV1 = (67, 1, 28, 28, 64, 3, 3, 2, 1)   # discriminator conv1 (partial last image group)
CONV2 = (64, 64, 14, 14, 128, 3, 3, 2, 1)  # discriminator conv2
CONV_CASES = [
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
# Several image groups on the team (forward and backward), the shallow unfold's groups,
# and one image whose gemm splits (see the top).
CONV_THREADED = [(9, 64, 14, 14, 128, 3, 3, 2, 1), (13, 1, 28, 28, 64, 3, 3, 2, 1),
                 (1, 64, 14, 14, 128, 3, 3, 2, 1)]
# The SIMD-path test adds the shallow-unfold kernels with K, C·R·S or P·Q past their blocks
# (CONV_CASES[5], [8], [11]), a plane narrower than one vector ([8]) and the rest below.
CONV_SIMD = [CONV_CASES[i] for i in (0, 2, 4, 5, 6, 8, 11, 14, 15)] + CONV_THREADED
# The forward's fused activation (conv2d_forward's activation=): LeakyReLU alone, with
# dropout keyed by a host step, by a device step (on CUDA), and by the seed alone (with a
# negative slope). On the CPU, the first two threaded cases' activation splits too:
# 56_448 and 163_072 outputs > 2^15 (leaky_relu) and > 2^13 (leaky_relu_dropout).
CONV_LEAKY = dict(activation="leaky_relu", slope=0.2)
CONV_DROPOUT = dict(activation="leaky_relu", slope=0.2, dropout_p=0.3, step=5)
CONV_DROPOUT_DEVICE_STEP = dict(activation="leaky_relu", slope=0.2, dropout_p=0.5,
                                step=2 ** 40 + 3, step_array=True)
CONV_DROPOUT_SEED = dict(activation="leaky_relu", slope=-0.7, dropout_p=0.9)
CONV_FUSED = [CONV_LEAKY, CONV_DROPOUT, CONV_DROPOUT_DEVICE_STEP, CONV_DROPOUT_SEED]


# x, w and out (dx, dw, dy) of 9 floats, then every array of one (b, db too).
CONV_OVERLAP = [(1, 1, 3, 3, 1, 3, 3, 1, 1), (1, 1, 1, 1, 1, 1, 1, 1, 0)]


def conv_fuzz(st, backward=False):
    @st.composite
    def dims(draw):
        if draw(st.integers(0, 7)) == 0:
            # one image, deep enough that its single group's gemm splits:
            # 2·K·P·Q·C·R·S >= 2·24·100·144 > 2^18 flops
            C, K, H, W = (draw(st.integers(16, 24)), draw(st.integers(24, 40)),
                          draw(st.integers(10, 14)), draw(st.integers(10, 14)))
            d = _conv(1, C, H, W, K, 3, 3, 1, 1)
        else:
            R, S = draw(st.integers(1, 4)), draw(st.integers(1, 4))
            sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
            ph, pw = draw(st.integers(0, R - 1)), draw(st.integers(0, S - 1))
            form = draw(st.sampled_from(["tuple", "list", "int", "numpy"]))
            if form in ("int", "numpy"):
                sw = sh
            stride = {"tuple": (sh, sw), "list": [sh, sw], "int": sh, "numpy": np.int64(sh)}[form]
            if ph < min(R, S) and draw(st.booleans()):
                pw = padding = ph
            else:
                padding = (ph, pw)
            H = draw(st.integers(max(0, R - 2 * ph), max(0, R - 2 * ph) + 9))
            W = draw(st.integers(max(0, S - 2 * pw), max(0, S - 2 * pw) + 9))
            # Up to 24 images: small outputs then pack several images into each group, a
            # last group shorter than the others included; N >= 2 runs groups on the team.
            N, C, K = draw(st.integers(0, 24)), draw(st.integers(0, 4)), draw(st.integers(0, 5))
            d = _conv(N, C, H, W, K, R, S, stride, padding)
        if backward:
            d.update(need_dx=draw(st.booleans()), need_dw=draw(st.booleans()),
                     need_db=draw(st.booleans()))
        else:
            d.update(bias=draw(st.booleans()))
            if draw(st.booleans()):   # the fused activation
                d.update(activation="leaky_relu", slope=draw(finite_slopes(st)),
                         dropout_p=draw(dropout_ps(st)),
                         step=draw(st.none() | st.integers(0, 2 ** 62)),
                         step_array=draw(st.booleans()))
        return d
    return dims()


BAD_STRIDE = [0, -1, (1, 0), (2, -3), (1,), (1, 2, 3), 1.5, "2", None, 2 ** 70, (1.0, 1.0)]
BAD_PADDING = [-1, 3, (0, 3), (-2, 0), 2 ** 63, "1", None, (0.5, 0), 10 ** 30]

add(OpCase(
    op="conv2d_forward", build=build_conv2d_forward,
    example=_conv(2, 3, 6, 6, 4, 3, 3, 1, 1, bias=True, **CONV_DROPOUT),
    parity=[_conv(*c, bias=True) for c in CONV_CASES] + [_conv(*c, bias=False) for c in CONV_CASES]
    + [_conv(*c, bias=True, **CONV_DROPOUT) for c in CONV_CASES]
    + [_conv(*c, bias=i % 2 == 0, **f) for c in (CONV1, CONV2, CONV_CASES[4], CONV_CASES[17])
       for i, f in enumerate(CONV_FUSED)],
    threaded=[_conv(*c, bias=True) for c in CONV_THREADED]
    + [_conv(*CONV_THREADED[0], bias=True, **CONV_LEAKY),
       _conv(*CONV_THREADED[1], bias=True, **CONV_DROPOUT)],
    simd=[_conv(*c, bias=True) for c in CONV_SIMD]
    + [_conv(*CONV_CASES[i], bias=True, **f) for i in (4, 5, 8, 11) for f in CONV_FUSED],
    overlap=[_conv(2, 3, 6, 6, 4, 3, 3, 1, 1, bias=True)] + [_conv(*c, bias=True) for c in CONV_OVERLAP],
    fuzz=conv_fuzz, floor=reference_on_abs,
    bad_scalars=dict(stride=BAD_STRIDE, padding=BAD_PADDING,
                     activation=["tanh", "relu", "", 1, 0.2],
                     # the elementwise ops' BAD_SLOPE, BAD_P and BAD_SEED (defined below)
                     slope=[math.nan, math.inf, -math.inf, "0.2", None],
                     dropout_p=[-0.01, 1.0, 1.5, -1e-9, math.nan, math.inf, -math.inf, None],
                     seed=[-1, -(2 ** 63), 2 ** 64, 2 ** 65, 1.5, 0.0, None, "7"],
                     step=[-1, -(2 ** 63), 2 ** 63, 1.5, "3", np.array([1, 2]), np.array([1.0]),
                           np.array([[1]]), np.array([1], np.int32)]),
))

add(OpCase(
    op="conv2d_backward", build=build_conv2d_backward,
    example=_conv(2, 3, 6, 6, 4, 3, 3, 1, 1),
    parity=[_conv(*c) for c in CONV_CASES],
    threaded=[_conv(*c) for c in CONV_THREADED],
    simd=[_conv(*c) for c in CONV_SIMD],
    overlap=[_conv(2, 3, 6, 6, 4, 3, 3, 1, 1)] + [_conv(*c) for c in CONV_OVERLAP],
    fuzz=lambda st: conv_fuzz(st, backward=True), floor=reference_on_abs,
    bad_scalars=dict(stride=BAD_STRIDE, padding=BAD_PADDING),
))


# ------------------------------------------------------------------------------ batchnorm
def _bn_parameters(rng, C):
    """gamma, beta, running_mean, running_var (positive)."""
    return normal(rng, (C,), 0.5, 1.0), normal(rng, (C,)), normal(rng, (C,)), uniform(rng, (C,), 0.5, 2.0)


def build_batchnorm_forward(rng, shape, training=True, momentum=0.1, eps=1e-5):
    C = shape[1]
    gamma, beta, rmean, rvar = _bn_parameters(rng, C)
    return Call(args=dict(x=normal(rng, shape, 3.0, 1.5), gamma=gamma, beta=beta,
                          running_mean=rmean, running_var=rvar, training=training,
                          momentum=momentum, eps=eps),
                outputs=dict(out=tuple(shape), mean=(C,), rstd=(C,)),
                in_place=("running_mean", "running_var"))


def build_batchnorm_backward(rng, shape, training=True):
    C = shape[1]
    x = normal(rng, shape, 2.0, -0.7)
    gamma, beta, rmean, rvar = _bn_parameters(rng, C)
    # The cache backward reads: the batch statistics (training) or the running ones (eval),
    # rounded to float32 as the forward kernel stores them.
    _, mean, rstd = reference.batchnorm_forward(x, gamma, beta, rmean, rvar, training)
    return Call(args=dict(dy=normal(rng, shape), x=x, gamma=gamma, mean=mean, rstd=rstd,
                          training=training),
                outputs=dict(dx=tuple(shape), dgamma=(C,), dbeta=(C,)))


BN_SHAPES = [(7, 1), (3, 67), (64, 256), (256, 1024), (67, 33),
             (1, 3, 5, 5), (3, 5, 4, 7), (64, 128, 7, 7), (2, 17, 1, 3)]
BN_THREADED = [(67, 1025), (37, 33, 7, 9)]   # 65 and 3 channel blocks on the team


def batchnorm_fuzz(st, backward=False):
    @st.composite
    def dims(draw):
        four_d = draw(st.booleans())
        if draw(st.booleans()):   # small
            N, C = draw(st.integers(0, 4)), draw(st.one_of(st.integers(0, 4), st.integers(5, 40)))
            shape = (N, C, draw(st.integers(0, 4)), draw(st.integers(0, 4))) if four_d else (N, C)
        elif four_d:   # N·L >= 32·36: 16·N·L >= 2^14, so the 2+ channel blocks split
            shape = (draw(st.integers(32, 48)), draw(st.integers(17, 40)),
                     draw(st.integers(6, 9)), draw(st.integers(6, 9)))
        else:          # 16·N >= 2^14
            shape = (draw(st.integers(1025, 1100)), draw(st.integers(17, 40)))
        L = math.prod(shape[2:])
        training = draw(st.booleans()) and shape[0] * L >= 2
        d = dict(shape=shape, training=training)
        if not backward:
            d.update(momentum=draw(st.one_of(st.sampled_from([0.0, 1.0, 0.1]), st.floats(0, 1))),
                     eps=draw(st.one_of(st.sampled_from([1e-5, 1e-3]), st.floats(1e-6, 1.0))))
        return d
    return dims()


def batchnorm_forward_floor(case, call, want):
    a = call.args
    x, C = a["x"], a["x"].shape[1]
    x3 = np.abs(x.reshape(x.shape[0], C, -1).astype(np.float64)) if x.size else \
        np.zeros((x.shape[0], C, math.prod(x.shape[2:])))
    mu, rstd = np.abs(want["mean"]), want["rstd"]
    gamma, beta = np.abs(a["gamma"].astype(np.float64)), np.abs(a["beta"].astype(np.float64))
    y = (x3 + mu[None, :, None]) * (rstd * gamma)[None, :, None] + beta[None, :, None]
    floors = dict(out=y.reshape(x.shape),
                  running_mean=np.abs(a["running_mean"]) + a["momentum"] * mu)
    if a["training"]:
        floors["mean"] = x3.mean(axis=(0, 2)) if x3.size else None
    return floors


def batchnorm_backward_floor(case, call, want):
    a = call.args
    shape, C = a["x"].shape, a["x"].shape[1]
    L = math.prod(shape[2:])
    x3 = np.abs(a["x"].reshape(shape[0], C, L).astype(np.float64))
    dy3 = np.abs(a["dy"].reshape(shape[0], C, L).astype(np.float64))
    mean, rs = np.abs(a["mean"].astype(np.float64)), np.abs(a["rstd"].astype(np.float64))
    xh = (x3 + mean[None, :, None]) * rs[None, :, None]
    n = max(shape[0] * L, 1)
    sdy, sdyx = dy3.sum(axis=(0, 2)), (dy3 * xh).sum(axis=(0, 2))
    scale = np.abs(a["gamma"] * rs)[None, :, None]
    dx = scale * (dy3 + (sdy[None, :, None] + xh * sdyx[None, :, None]) / n)
    return dict(dx=dx.reshape(shape), dgamma=sdyx, dbeta=sdy)


add(OpCase(
    op="batchnorm_forward", build=build_batchnorm_forward,
    example=dict(shape=(2, 3, 6, 6), training=True),
    parity=[dict(shape=s, training=True) for s in BN_SHAPES]
    + [dict(shape=s, training=False, momentum=0.3) for s in BN_SHAPES],
    threaded=[dict(shape=s, training=t) for s in BN_THREADED for t in (True, False)],
    # [1, C] in eval mode: every array of C floats
    overlap=[dict(shape=(2, 3, 6, 6), training=True), dict(shape=(1, 4), training=False)],
    fuzz=batchnorm_fuzz, floor=batchnorm_forward_floor,
    bad_scalars=dict(momentum=[-0.1, 1.0001, math.nan, math.inf, -math.inf, "0.1", None],
                     eps=[0.0, -1e-5, math.nan, math.inf, -math.inf, None]),
))

add(OpCase(
    op="batchnorm_backward", build=build_batchnorm_backward,
    example=dict(shape=(2, 3, 6, 6), training=True),
    parity=[dict(shape=s, training=t) for s in BN_SHAPES for t in (True, False)],
    threaded=[dict(shape=s, training=t) for s in BN_THREADED for t in (True, False)],
    overlap=[dict(shape=(2, 3, 6, 6), training=True), dict(shape=(1, 4), training=False)],
    fuzz=lambda st: batchnorm_fuzz(st, backward=True), floor=batchnorm_backward_floor,
    inf_may_be_nan=dict(dx="training: dx = dy·g + (x − mean)·a + d spreads g = gamma·rstd "
                           "over terms the reference adds before multiplying by it; with an "
                           "infinite gamma they are infinities of opposite signs (NaN) where "
                           "the reference has one infinity"),
))


# ------------------------------------------------------------------------------ elementwise
ELEMENTWISE_SHAPES = [(1,), (3,), (67,), (1, 1), (3, 67), (64, 256), (7, 3, 5, 9), (256, 1024),
                      (300_001,)]
# Above every elementwise grain of the top (2^15 at most), with a remainder after every
# vector width.
ELEMENTWISE_THREADED = [(300_001,)]


def elementwise_shapes(st):
    """Any rank up to 4 with tiny dimensions (0 and 1 included), 1-D up to 300, and (half
    the draws) 1-D past every elementwise grain (2^15)."""
    small = st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple) | st.tuples(st.integers(0, 300))
    return st.one_of(small, st.tuples(st.integers(32_769, 36_000)))


def finite_slopes(st):
    return st.one_of(st.sampled_from([0.0, 0.2, 1.0, -1.0]), st.floats(-10, 10, allow_nan=False))


def dropout_ps(st):
    """p across [0, 1): 1 − 2⁻³⁰ rounds to 1 in float32, so the kernels drop everything."""
    return st.one_of(st.sampled_from([0.0, 0.3, 0.5, 0.999, 1 - 2 ** -30, 2 ** -30]),
                     st.floats(0, 1, exclude_max=True))


BAD_SLOPE = [math.nan, math.inf, -math.inf, "0.2", None]
BAD_P = [-0.01, 1.0, 1.5, -1e-9, math.nan, math.inf, -math.inf, None]
BAD_SEED = [-1, -(2 ** 63), 2 ** 64, 2 ** 65, 1.5, 0.0, None, "7"]


def build_leaky_relu_forward(rng, shape, slope=0.2):
    return Call(args=dict(x=normal(rng, shape), slope=slope), outputs=dict(out=tuple(shape)),
                ref_args=dict(slope=f32(slope)), aliases=(("out", "x"),))


def build_leaky_relu_backward(rng, shape, slope=0.2):
    return Call(args=dict(dy=normal(rng, shape), x=normal(rng, shape), slope=slope),
                outputs=dict(dx=tuple(shape)), ref_args=dict(slope=f32(slope)),
                aliases=(("dx", "dy"), ("dx", "x")))


def build_tanh_forward(rng, shape):
    return Call(args=dict(x=normal(rng, shape, 3.0)), outputs=dict(out=tuple(shape)),
                aliases=(("out", "x"),))


def build_tanh_backward(rng, shape):
    y = np.asarray(np.tanh(normal(rng, shape, 3.0).astype(np.float64)), np.float32)
    return Call(args=dict(dy=normal(rng, shape), y=y), outputs=dict(dx=tuple(shape)),
                aliases=(("dx", "dy"), ("dx", "y")))


def dropout_step(rng, step):
    """The dropout family's optional step: None (left out), "int" or "array" (a one-element
    int64 array, which a CUDA kernel reads when it runs), with a random value."""
    value = int(rng.integers(0, 2 ** 40))
    return {None: {}, "int": dict(step=value), "array": dict(step=np.array([value], np.int64))}[step]


def build_dropout_forward(rng, shape, p=0.3, seed=None, step=None):
    return Call(args=dict(x=normal(rng, shape, 1.0, 0.5), p=p,
                          seed=seed64(rng) if seed is None else seed, **dropout_step(rng, step)),
                outputs=dict(out=tuple(shape)), ref_args=dict(p=f32(p)), aliases=(("out", "x"),))


def build_dropout_backward(rng, shape, p=0.3, seed=None, step=None):
    return Call(args=dict(dy=normal(rng, shape), p=p, seed=seed64(rng) if seed is None else seed,
                          **dropout_step(rng, step)),
                outputs=dict(dx=tuple(shape)), ref_args=dict(p=f32(p)), aliases=(("dx", "dy"),))


def build_leaky_relu_dropout_forward(rng, shape, slope=0.2, p=0.3, seed=None, step=None):
    return Call(args=dict(x=normal(rng, shape), slope=slope, p=p,
                          seed=seed64(rng) if seed is None else seed, **dropout_step(rng, step)),
                outputs=dict(out=tuple(shape)), ref_args=dict(slope=f32(slope), p=f32(p)),
                aliases=(("out", "x"),))


def build_leaky_relu_dropout_backward(rng, shape, slope=0.2, p=0.3, seed=None, step=None):
    return Call(args=dict(dy=normal(rng, shape), x=normal(rng, shape), slope=slope, p=p,
                          seed=seed64(rng) if seed is None else seed, **dropout_step(rng, step)),
                outputs=dict(dx=tuple(shape)), ref_args=dict(slope=f32(slope), p=f32(p)),
                aliases=(("dx", "dy"), ("dx", "x")))


def _shapes(shapes, **extra):
    return [dict(shape=s, **extra) for s in shapes]


for _op, _build in [("leaky_relu_forward", build_leaky_relu_forward),
                    ("leaky_relu_backward", build_leaky_relu_backward)]:
    add(OpCase(
        op=_op, build=_build, example=dict(shape=(4, 5), slope=0.2),
        parity=[d for slope in (0.2, 0.0, 1.7) for d in _shapes(ELEMENTWISE_SHAPES, slope=slope)],
        threaded=_shapes(ELEMENTWISE_THREADED, slope=0.2),
        fuzz=lambda st: st.fixed_dictionaries(dict(shape=elementwise_shapes(st),
                                                   slope=finite_slopes(st))),
        bad_scalars=dict(slope=BAD_SLOPE),
    ))


def tanh_backward_floor(case, call, want):
    """1 − y² cancels near |y| = 1: its rounding is of the size of 1 + y²."""
    y = call.args["y"].astype(np.float64)
    return dict(dx=np.abs(call.args["dy"]) * (1 + y * y))


add(OpCase(
    op="tanh_forward", build=build_tanh_forward, example=dict(shape=(4, 5)),
    parity=_shapes(ELEMENTWISE_SHAPES), threaded=_shapes(ELEMENTWISE_THREADED),
    fuzz=lambda st: st.fixed_dictionaries(dict(shape=elementwise_shapes(st))),
))

add(OpCase(
    op="tanh_backward", build=build_tanh_backward, example=dict(shape=(4, 5)),
    parity=_shapes(ELEMENTWISE_SHAPES), threaded=_shapes(ELEMENTWISE_THREADED),
    fuzz=lambda st: st.fixed_dictionaries(dict(shape=elementwise_shapes(st))),
    floor=tanh_backward_floor,
))

DROPOUT_SHAPES = [(1,), (67,), (3, 67), (64, 64, 14, 14), (1, 128, 7, 7)]

# The step arrays of the overlap test: 2 floats are the bytes of one int64 step.
DROPOUT_OVERLAP = [dict(shape=(4, 5), step="array"), dict(shape=(2,), step="array")]

for _op, _build in [("dropout_forward", build_dropout_forward),
                    ("dropout_backward", build_dropout_backward)]:
    add(OpCase(
        op=_op, build=_build, example=dict(shape=(4, 5), p=0.3),
        parity=[d for p in (0.0, 0.3, 0.5, 0.9) for d in _shapes(DROPOUT_SHAPES, p=p)]
        + _shapes([(67,), (3, 67)], step="int") + _shapes([(67,)], step="array"),
        threaded=_shapes(ELEMENTWISE_THREADED, p=0.3),
        overlap=DROPOUT_OVERLAP,
        fuzz=lambda st: st.fixed_dictionaries(dict(shape=elementwise_shapes(st), p=dropout_ps(st),
                                                   seed=st.integers(0, 2 ** 64 - 1),
                                                   step=st.sampled_from([None, "int", "array"]))),
        bad_scalars=dict(p=BAD_P, seed=BAD_SEED),
    ))

for _op, _build in [("leaky_relu_dropout_forward", build_leaky_relu_dropout_forward),
                    ("leaky_relu_dropout_backward", build_leaky_relu_dropout_backward)]:
    add(OpCase(
        op=_op, build=_build, example=dict(shape=(4, 5), slope=0.2, p=0.3),
        parity=[dict(shape=s, slope=0.2, p=p) for p in (0.0, 0.3)
                for s in [(1,), (67,), (3, 67), (64, 64, 14, 14)]]
        + _shapes([(67,)], step="int") + _shapes([(67,)], step="array"),
        threaded=_shapes(ELEMENTWISE_THREADED, slope=0.2, p=0.3),
        overlap=DROPOUT_OVERLAP,
        fuzz=lambda st: st.fixed_dictionaries(dict(
            shape=elementwise_shapes(st), slope=st.floats(-2, 2), p=dropout_ps(st),
            seed=st.integers(0, 2 ** 64 - 1), step=st.sampled_from([None, "int", "array"]))),
        bad_scalars=dict(slope=BAD_SLOPE, p=BAD_P, seed=BAD_SEED),
    ))


# ------------------------------------------------------------------------------ losses
def build_bce_with_logits(rng, shape, scale=4.0):
    t = uniform(rng, shape, 0, 1)
    hard = rng.random(shape) < 0.3                  # hard labels as well as soft ones
    t[hard] = rng.integers(0, 2, int(np.count_nonzero(hard)))
    return Call(args=dict(logits=normal(rng, shape, scale), targets=t),
                outputs=dict(loss=(), dlogits=tuple(shape)))


def bce_floor(case, call, want):
    """σ(z) − t cancels when the logit is confidently right."""
    z, t = call.args["logits"].astype(np.float64), call.args["targets"]
    return dict(dlogits=(1 / (1 + np.exp(-np.abs(z))) + t) / max(z.size, 1))


add(OpCase(
    op="bce_with_logits", build=build_bce_with_logits, example=dict(shape=(4, 1)),
    parity=_shapes([(1,), (3,), (67,), (64, 1), (256, 1), (1000, 3)]),
    threaded=_shapes([(4099, 1)]),   # one thread by design
    fuzz=lambda st: st.fixed_dictionaries(dict(
        shape=st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple)
        | st.tuples(st.integers(1, 300)),
        scale=st.sampled_from([0.1, 1.0, 10.0, 60.0]))),
    overlap=[dict(shape=(4, 1)), dict(shape=(1,))],   # (1,): every array one float, as loss
    floor=bce_floor,
))


def build_softmax_cross_entropy(rng, N, C, scale=4.0):
    return Call(args=dict(logits=normal(rng, (N, C), scale), labels=rng.integers(0, C, N)),
                outputs=dict(loss=(), dlogits=(N, C)), aliases=(("dlogits", "logits"),))


add(OpCase(
    op="softmax_cross_entropy", build=build_softmax_cross_entropy, example=dict(N=4, C=5),
    parity=[dict(N=n, C=c) for n, c in [(1, 1), (1, 10), (3, 7), (67, 10), (128, 10), (33, 45),
                                        (1000, 3), (5, 1000)]],
    threaded=[dict(N=4099, C=10), dict(N=67, C=1000)],   # one thread by design
    # (1, 2): logits, dlogits and the int64 labels of 8 bytes each; (1, 1): one float as loss
    overlap=[dict(N=4, C=5), dict(N=1, C=2), dict(N=1, C=1)],
    fuzz=lambda st: st.fixed_dictionaries(dict(
        N=st.integers(1, 300), C=st.one_of(st.integers(1, 12), st.integers(13, 300)),
        scale=st.sampled_from([0.1, 1.0, 10.0, 60.0]))),
))


# ------------------------------------------------------------------------------ optimiser
GAN_ADAM = dict(lr=2e-4, beta1=0.5, beta2=0.999, eps=1e-8)
OTHER_ADAM = dict(lr=1e-3, beta1=0.9, beta2=0.99, eps=1e-6)


def build_adam_step(rng, n, step=3, lr=2e-4, beta1=0.5, beta2=0.999, eps=1e-8,
                    step_array=False):
    """step_array: the step as a one-element int64 array (on CUDA read by the kernel)."""
    return Call(args=dict(params=normal(rng, (n,)), grads=normal(rng, (n,)),
                          m=normal(rng, (n,), 0.1), v=uniform(rng, (n,), 0, 0.1),
                          step=np.array([step], np.int64) if step_array else step,
                          lr=lr, beta1=beta1, beta2=beta2, eps=eps),
                in_place=("params", "m", "v"))


def adam_floor(case, call, want):
    a = call.args
    m = a["beta1"] * np.abs(a["m"]) + (1 - a["beta1"]) * np.abs(a["grads"])
    return dict(m=m, params=np.abs(a["params"]) + np.abs(want["params"] - a["params"]))


add(OpCase(
    op="adam_step", build=build_adam_step, example=dict(n=6, step=3),
    parity=[dict(n=n, step=s, **hp) for n in (1, 3, 67, 1_000, 1_486_352)
            for hp in (GAN_ADAM, OTHER_ADAM) for s in (1, 3)]
    + [dict(n=1_000, step=10_000, **GAN_ADAM)],
    threaded=[dict(n=300_001, step=2, **GAN_ADAM)],   # n > 2^15
    overlap=[dict(n=6, step=3), dict(n=2, step=3, step_array=True)],   # 2 floats: one int64
    fuzz=lambda st: st.fixed_dictionaries(dict(
        n=st.one_of(st.integers(0, 300), st.integers(32_769, 36_000)),
        step=st.integers(1, 10 ** 6), lr=st.floats(1e-6, 1.0), beta1=st.floats(0, 0.999),
        beta2=st.floats(0, 0.9999), eps=st.floats(1e-10, 1e-3))),
    floor=adam_floor,
    bad_scalars=dict(step=[0, -1, -(2 ** 63), 2 ** 63, 1.5, None],
                     lr=[0.0, -1e-3, math.nan, math.inf, -math.inf, None],
                     beta1=[-0.1, 1.0, 1.5, math.nan, math.inf],
                     beta2=[-1e-9, 1.0, math.nan, -math.inf],
                     eps=[0.0, -1e-8, math.nan, math.inf]),
))


# ------------------------------------------------------------------------------ more tables
def _load_more_tables():
    """Imports every tests/op_cases_<topic>.py: each add()s its ops' cases."""
    for path in sorted(pathlib.Path(__file__).parent.glob("op_cases_*.py")):
        importlib.import_module(path.stem)


_load_more_tables()


def check_table():
    """Problems with the table itself: ops of gan_fast.ops without a case, cases of no op,
    tolerance keys missing from parity.TOLERANCES, a Call whose outputs do not match the
    op's signature. Returns a list of messages (empty: all well)."""
    problems = []
    kernels = set(ops.__all__) - set(NOT_OPS)
    for name in sorted(kernels - set(CASES)):
        problems.append(f"gan_fast.ops.{name} has no case in tests/op_cases.py (see its "
                        f"docstring: HOW TO ADD AN OP)")
    for name in sorted(set(CASES) - kernels):
        problems.append(f"tests/op_cases.py has a case for {name}, which is not in gan_fast.ops")
    for name in sorted(set(NOT_OPS) - set(ops.__all__)):
        problems.append(f"NOT_OPS names {name}, which is not in gan_fast.ops")
    for case in CASES.values():
        if case.tolerance not in TOLERANCES:
            problems.append(f"{case.op}: no tolerance {case.tolerance!r} in tests/parity.py")
        if case.op in kernels and not case.threaded:
            problems.append(f"{case.op}: no threaded dims")
        if case.op in kernels:
            signature = inspect.signature(case.kernel).parameters
            call = case.build(np.random.default_rng(0), **case.example)
            for name in list(call.args) + list(call.outputs):
                if name not in signature:
                    problems.append(f"{case.op}: {name} is not an argument of the op")
    return problems
