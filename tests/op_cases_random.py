"""The device-side data ops of issue #13 in the one table of op cases (tests/op_cases.py
imports this file): random_normal, batch_indices, gather_rows. Their outputs are required
arguments (random_normal's and batch_indices' out: the op fills the caller's buffer, so a
CUDA graph can replay into it), batch_indices' is int64 (compared exactly), and step is
an int or a one-element int64 array (a StepArg) on the call's device.

Multi-thread thresholds of their CPU kernels (csrc/common/parallel.h: kParallelGrain =
2^15; csrc/common/cpu_isa.h: parallel_range splits only when n > grain), and the dims that
reach them:
  random_normal: n > 2^15 / 16 values: 300_001.
  batch_indices: rows, n > 2^12 (kGrain): a batch of 5003 rows.
  gather_rows: n·row_size > 2^15 values: 67 rows of 784.
Per-op checks that are not sweeps (the CPU bitwise against the float32 formula, the
distribution, epoch permutations, CUDA's NaN / -1 rows for bad indices) stay in
tests/test_random.py.
"""
from __future__ import annotations

import numpy as np

from op_cases import (BAD_SEED, Call, OpCase, Out, add, elementwise_shapes, normal,
                      seed64)

STEP_KINDS = ("int", "array1", "array0")


def step_arg(step, kind):
    """step as an int, or as a one-element int64 array of shape (1,) or ()."""
    return step if kind == "int" else np.full((1,) if kind == "array1" else (), step, np.int64)


# ------------------------------------------------------------------------------ random_normal
def build_random_normal(rng, shape, step_kind="int", seed=None, step=None):
    step = int(rng.integers(0, 2 ** 40)) if step is None else step
    return Call(args=dict(seed=seed64(rng) if seed is None else seed,
                          step=step_arg(step, step_kind)),
                outputs=dict(out=tuple(shape)))


add(OpCase(
    op="random_normal", build=build_random_normal,
    example=dict(shape=(4, 5)),   # an int step: a (1,) array may lose its axis and stay valid
    parity=[dict(shape=s, step_kind=k) for s in [(), (0,), (1,), (7,), (64, 100), (3, 5, 29)]
            for k in STEP_KINDS],
    threaded=[dict(shape=(300_001,))],   # n > 2^15 / 16
    # out over an int64 step array: (2,) floats are its 8 bytes
    overlap=[dict(shape=(2,), step_kind="array1"), dict(shape=(4, 5), step_kind="array0")],
    fuzz=lambda st: st.fixed_dictionaries(dict(
        shape=elementwise_shapes(st), step_kind=st.sampled_from(STEP_KINDS),
        seed=st.integers(0, 2 ** 64 - 1), step=st.integers(0, 2 ** 62))),
    bad_scalars=dict(seed=BAD_SEED, step=[-1, -(2 ** 63), 2 ** 63, 1.5, None, "3"]),
    free_sizes={"out": "any"},
))


# ------------------------------------------------------------------------------ batch_indices
def build_batch_indices(rng, n_items, batch_size, step, step_kind="int", seed=None):
    """The rows of `step`: a full batch, or the epoch's last, partial one."""
    steps_per_epoch = -(-n_items // batch_size)
    position = step % steps_per_epoch
    n = min(batch_size, n_items - position * batch_size)
    return Call(args=dict(seed=seed64(rng) if seed is None else seed,
                          step=step_arg(step, step_kind), n_items=n_items,
                          batch_size=batch_size, steps_per_epoch=steps_per_epoch),
                outputs=dict(out=Out((n,), np.int64)))


def batch_indices_fuzz(st):
    @st.composite
    def dims(draw):
        if draw(st.booleans()):   # small
            n_items, batch_size = draw(st.integers(1, 300)), draw(st.integers(1, 64))
        else:                     # rows past 2^12
            n_items, batch_size = draw(st.integers(10_000, 70_000)), draw(st.integers(4_097, 6_000))
        return dict(n_items=n_items, batch_size=batch_size, step=draw(st.integers(0, 10 ** 6)),
                    step_kind=draw(st.sampled_from(STEP_KINDS)), seed=draw(st.integers(0, 2 ** 64 - 1)))
    return dims()


add(OpCase(
    op="batch_indices", build=build_batch_indices,
    example=dict(n_items=10, batch_size=4, step=1),
    parity=[dict(n_items=n, batch_size=b, step=s, step_kind=k)
            for n, b, s in [(1, 1, 0), (10, 4, 0), (10, 4, 2), (10, 4, 5), (60_000, 64, 937),
                            (60_000, 64, 938), (10_000, 256, 123_456), (2 ** 20 + 1, 3, 7)]
            for k in STEP_KINDS],
    threaded=[dict(n_items=60_000, batch_size=5003, step=3)],   # rows > 2^12
    # out over an int64 step array: 4 rows, and 1 (the step's size)
    overlap=[dict(n_items=10, batch_size=4, step=1, step_kind="array1"),
             dict(n_items=1, batch_size=1, step=0, step_kind="array0")],
    fuzz=batch_indices_fuzz,
    bad_scalars=dict(seed=BAD_SEED, step=[-1, 1.5, None], n_items=[0, -1, 2 ** 63, None],
                     batch_size=[0, -3, None], steps_per_epoch=[0, 10 ** 6, None]),
    free_sizes={"out": (0,)},   # any n <= batch_size rows the epoch still has
))


# ------------------------------------------------------------------------------ gather_rows
def build_gather_rows(rng, K, n, row=(), dtype="float32"):
    src = normal(rng, (K,) + tuple(row)) if dtype == "float32" else \
        rng.integers(-2 ** 62, 2 ** 62, (K,) + tuple(row))
    idx = rng.integers(0, K, n) if K else np.zeros(0, np.int64)
    shape = (n,) + tuple(row)
    return Call(args=dict(src=src, idx=idx),
                outputs=dict(out=shape if dtype == "float32" else Out(shape, np.int64)))


def gather_rows_fuzz(st):
    @st.composite
    def dims(draw):
        dtype = draw(st.sampled_from(["float32", "int64"]))
        if draw(st.booleans()):   # small, 0-sized rows and batches included
            K = draw(st.integers(0, 40))
            n = 0 if K == 0 else draw(st.integers(0, 80))
            row = draw(st.lists(st.integers(0, 5), max_size=3).map(tuple))
        else:                     # n·row_size past 2^15
            K, n, row = draw(st.integers(1, 200)), draw(st.integers(60, 80)), (draw(st.integers(550, 900)),)
        return dict(K=K, n=n, row=row, dtype=dtype)
    return dims()


add(OpCase(
    op="gather_rows", build=build_gather_rows,
    example=dict(K=5, n=4, row=(3,)),
    parity=[dict(K=k, n=n, row=r, dtype=d) for k, n, r in
            [(1, 1, ()), (5, 7, ()), (3, 0, (4,)), (10, 64, (1, 28, 28)), (1000, 67, (784,)),
             (7, 3, (2, 0))] for d in ("float32", "int64")],
    threaded=[dict(K=1000, n=67, row=(784,), dtype=d) for d in ("float32", "int64")],
    # src, idx and out of 16 bytes (two float rows of 2, two int64 indices); all int64
    overlap=[dict(K=5, n=4, row=(3,)), dict(K=2, n=2, row=(2,)),
             dict(K=4, n=4, row=(), dtype="int64")],
    fuzz=gather_rows_fuzz,
    free_sizes={"src": (0,)},   # K: any table the indices fall inside
))
