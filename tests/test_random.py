"""The device-side data ops of issue #13: random_normal, batch_indices, gather_rows.

random_normal: the kernels against exact Box–Muller of the same uniforms (parity), the CPU
kernel bitwise against the reference's float32 emulation of its formula (every SIMD path),
CUDA bitwise against the CPU, and the distribution (mean, variance, Kolmogorov–Smirnov on
10^6 samples). batch_indices: kernels equal to the reference integer for integer, every
epoch a permutation of the items, CUDA equal to the CPU, -1 rows for a device step without
items. gather_rows: exact copies for float32 and int64 rows, bad indices (ValueError on
the CPU; NaN / -1 rows on CUDA). Per-step arguments given as ints and as one-element
arrays agree; bad arguments raise TypeError/ValueError naming the op and the argument.
"""
import math

import numpy as np
import pytest

from gan_fast import ops, reference
from parity import assert_close


def _as_step(backend, step, kind):
    """step as an int, or as a one-element int64 array of shape (1,) or () on backend."""
    if kind == "int":
        return step
    shape = (1,) if kind == "array1" else ()
    return backend.xp.asarray(np.full(shape, step, dtype=np.int64))


def _bits(a):
    return np.asarray(a).view(np.uint32)


# ------------------------------------------------------------------------------ random_normal
@pytest.mark.parametrize("shape", [(), (0,), (1,), (7,), (64, 100), (3, 5, 29)], ids=str)
@pytest.mark.parametrize("kind", ["int", "array1", "array0"])
def test_random_normal_parity(backend, rng, shape, kind):
    seed, step = int(rng.integers(0, 2**64, dtype=np.uint64)), int(rng.integers(0, 2**40))
    out = backend.poisoned(shape)
    assert ops.random_normal(out, seed, _as_step(backend, step, kind)) is out
    assert_close("random_normal", out, reference.random_normal(np.empty(shape), seed, step))
    np.testing.assert_array_equal(_bits(backend.to_numpy(out)).ravel(),
                                  _bits(reference.random_normal_float32(int(np.prod(shape)),
                                                                        seed, step)))


def test_random_normal_is_bitwise_the_float32_formula_on_every_cpu_path(cpu_isa, rng):
    """A fused multiply-add the formula does not write (GCC's contraction, a libm call)
    would change some of the 10^6 results in the last bit."""
    n, seed, step = 1_000_001, int(rng.integers(0, 2**63)), int(rng.integers(0, 10**6))
    out = ops.random_normal(np.empty(n, np.float32), seed, step)
    want = reference.random_normal_float32(n, seed, step)
    differ = np.flatnonzero(_bits(out) != _bits(want))
    assert differ.size == 0, (f"{differ.size} of {n} values differ from the float32 formula "
                              f"(first at {differ[:5]}: {out[differ[:5]]} vs {want[differ[:5]]})")


def test_random_normal_cuda_is_bitwise_the_cpu(cuda_backend, rng):
    for n in (1, 255, 256, 257, 1_000_003):
        seed, step = int(rng.integers(0, 2**64, dtype=np.uint64)), int(rng.integers(0, 2**62))
        on_gpu = ops.random_normal(cuda_backend.poisoned(n), seed, step).get()
        on_gpu_dev_step = ops.random_normal(cuda_backend.poisoned(n), seed,
                                            _as_step(cuda_backend, step, "array1")).get()
        on_cpu = ops.random_normal(np.empty(n, np.float32), seed, step)
        np.testing.assert_array_equal(_bits(on_gpu), _bits(on_cpu))
        np.testing.assert_array_equal(_bits(on_gpu_dev_step), _bits(on_cpu))


def _normal_cdf(x):
    return 0.5 * (1 + np.frompyfunc(math.erf, 1, 1)(x / math.sqrt(2)).astype(np.float64))


@pytest.mark.parametrize("seed,step", [(0, 0), (12345, 1), (2**64 - 1, 10**9)])
def test_random_normal_distribution(seed, step):
    """Fixed seeds (a statistical test must not fail at random). Bounds: mean and variance
    within 5 standard errors; KS statistic below 1.95/sqrt(n) (the 0.1% critical value)."""
    n = 1_000_000
    z = ops.random_normal(np.empty(n, np.float32), seed, step).astype(np.float64)
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    assert np.abs(z).max() <= math.sqrt(48 * math.log(2)) + 1e-6
    zs = np.sort(z[::10])  # 10^5 values: erf per value is the slow part
    cdf = _normal_cdf(zs)
    k = np.arange(1, zs.size + 1) / zs.size
    ks = max(np.max(k - cdf), np.max(cdf - (k - 1 / zs.size)))
    assert ks < 1.95 / math.sqrt(zs.size), ks
    # Even and odd elements (the cosine and sine of one pair) are uncorrelated, as are
    # neighbouring pairs.
    assert abs(np.corrcoef(z[0::2], z[1::2])[0, 1]) < 5 / math.sqrt(n / 2)
    assert abs(np.corrcoef(z[:-2], z[2:])[0, 1]) < 5 / math.sqrt(n)


def test_random_normal_is_a_pure_function_of_seed_step_and_index():
    a = ops.random_normal(np.empty(1000, np.float32), 5, 3)
    np.testing.assert_array_equal(a, ops.random_normal(np.empty((10, 300), np.float32), 5, 3)
                                  .ravel()[:1000])
    for other in (ops.random_normal(np.empty(1000, np.float32), 5, 4),
                  ops.random_normal(np.empty(1000, np.float32), 6, 3)):
        assert abs(np.corrcoef(a, other)[0, 1]) < 0.15


# ------------------------------------------------------------------------------ batch_indices
def _epoch(backend, seed, epoch, n_items, batch, spe):
    """Every index drawn in one epoch, step by step (the last step partial if need be)."""
    rows = []
    for s in range(epoch * spe, (epoch + 1) * spe):
        n = min(batch, n_items - (s % spe) * batch)
        rows.append(backend.to_numpy(ops.batch_indices(backend.xp.full(n, -7, np.int64), seed,
                                                       s, n_items, batch, spe)))
    return np.concatenate(rows)


@pytest.mark.parametrize("n_items,batch,drop_last", [(1, 1, True), (2, 1, True), (5, 2, False),
                                                     (1000, 64, True), (1000, 64, False),
                                                     (4096, 256, True), (4097, 100, False)])
def test_every_epoch_visits_every_item_once(backend, rng, n_items, batch, drop_last):
    seed = int(rng.integers(0, 2**64, dtype=np.uint64))
    spe = n_items // batch if drop_last else -(-n_items // batch)
    epochs = [_epoch(backend, seed, e, n_items, batch, spe) for e in (0, 1, 7)]
    for drawn in epochs:
        assert np.unique(drawn).size == drawn.size == min(n_items, spe * batch)
        assert drawn.min() >= 0 and drawn.max() < n_items
    if spe * batch >= n_items:  # the epoch reaches every item
        assert all(np.array_equal(np.sort(d), np.arange(n_items)) for d in epochs)
    if n_items >= 1000:  # fresh orders: the epochs' orders share almost nothing
        assert np.mean(epochs[0] == epochs[1]) < 0.02 and np.mean(epochs[1] == epochs[2]) < 0.02


@pytest.mark.parametrize("kind", ["int", "array1", "array0"])
def test_batch_indices_match_the_reference(backend, rng, kind):
    seed = int(rng.integers(0, 2**64, dtype=np.uint64))
    for n_items, batch, spe, step in ((60000, 64, 937, 0), (60000, 64, 937, 936),
                                      (60000, 256, 235, 10**6 + 234), (3, 2, 2, 3),
                                      (2**40 + 3, 7, 10**9, 5 * 10**9 + 1)):
        n = min(batch, n_items - (step % spe) * batch)
        got = ops.batch_indices(backend.xp.full(n, -7, np.int64), seed,
                                _as_step(backend, step, kind), n_items, batch, spe)
        want = reference.batch_indices(np.empty(n, np.int64), seed, step, n_items, batch, spe)
        np.testing.assert_array_equal(backend.to_numpy(got), want)


def test_batch_indices_cuda_marks_rows_without_items(cuda_backend):
    """A device step whose rows run past n_items (the partial last batch read with a full
    batch's buffer) gets -1 there; the rows that exist match the CPU."""
    cp = cuda_backend.xp
    n_items, batch, spe = 1000, 64, 16          # the last step of an epoch has 40 rows
    step = cp.asarray([15 + 3 * spe], dtype=cp.int64)
    got = ops.batch_indices(cp.full(batch, -7, cp.int64), 9, step, n_items, batch, spe).get()
    want = ops.batch_indices(np.empty(40, np.int64), 9, 15 + 3 * spe, n_items, batch, spe)
    np.testing.assert_array_equal(got[:40], want)
    assert (got[40:] == -1).all()
    neg = ops.batch_indices(cp.full(5, -7, cp.int64), 9, cp.asarray([-1], cp.int64), n_items,
                            batch, spe).get()
    assert (neg == -1).all()


# ------------------------------------------------------------------------------ gather_rows
@pytest.mark.parametrize("src_shape", [(7,), (300, 1, 28, 28), (5, 3)], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
@pytest.mark.parametrize("with_out", [True, False])
def test_gather_rows(backend, rng, src_shape, dtype, with_out):
    src = (rng.standard_normal(src_shape) * 1000).astype(dtype)
    idx = rng.integers(0, src_shape[0], 13).astype(np.int64)
    out_shape = (13,) + src_shape[1:]
    out = None
    if with_out:
        out = (backend.poisoned(out_shape) if dtype == np.float32
               else backend.xp.full(out_shape, -7, np.int64))
    got = ops.gather_rows(backend.xp.asarray(src), backend.xp.asarray(idx), out=out)
    if with_out:
        assert got is out
    assert got.dtype == dtype and got.shape == out_shape
    np.testing.assert_array_equal(backend.to_numpy(got), reference.gather_rows(src, idx))
    empty = ops.gather_rows(backend.xp.asarray(src), backend.xp.zeros(0, np.int64))
    assert empty.shape == (0,) + src_shape[1:]


def test_gather_rows_bad_index_raises_on_the_cpu():
    src, out = np.ones((4, 3), np.float32), np.full((3, 3), np.nan, np.float32)
    for bad in (4, -1, 2**62):
        with pytest.raises(ValueError, match=r"gather_rows: idx: expected row indices in \[0, 4\)"):
            ops.gather_rows(src, np.array([0, bad, 1], np.int64), out=out)
        with pytest.raises(ValueError, match="gather_rows: idx"):
            reference.gather_rows(src, np.array([0, bad, 1], np.int64))
    assert np.isnan(out).all()  # nothing written before the check


def test_gather_rows_bad_index_gives_nan_or_minus_one_rows_on_cuda(cuda_backend):
    cp = cuda_backend.xp
    idx = cp.asarray([0, 4, -1, 3], dtype=cp.int64)
    rows = ops.gather_rows(cp.arange(12, dtype=cp.float32).reshape(4, 3), idx).get()
    np.testing.assert_array_equal(rows[[0, 3]], [[0, 1, 2], [9, 10, 11]])
    assert np.isnan(rows[[1, 2]]).all()
    labels = ops.gather_rows(cp.arange(4, dtype=cp.int64), idx).get()
    np.testing.assert_array_equal(labels, [0, -1, -1, 3])


# ------------------------------------------------------------------------------ bad arguments
def _valid():
    """op -> (function, valid keyword arguments), NumPy on the CPU."""
    return {
        "random_normal": (ops.random_normal, dict(out=np.empty(6, np.float32), seed=1, step=2)),
        "batch_indices": (ops.batch_indices, dict(out=np.empty(4, np.int64), seed=1, step=2,
                                                  n_items=100, batch_size=4,
                                                  steps_per_epoch=25)),
        "gather_rows": (ops.gather_rows, dict(src=np.ones((5, 2), np.float32),
                                              idx=np.zeros(3, np.int64),
                                              out=np.empty((3, 2), np.float32))),
        "dropout_forward": (ops.dropout_forward, dict(x=np.ones(4, np.float32), p=0.3, seed=1,
                                                      step=2)),
        "leaky_relu_dropout_backward": (ops.leaky_relu_dropout_backward,
                                        dict(dy=np.ones(4, np.float32), x=np.ones(4, np.float32),
                                             slope=0.2, p=0.3, seed=1, step=2)),
        "adam_step": (ops.adam_step, dict(params=np.ones(3, np.float32),
                                          grads=np.ones(3, np.float32),
                                          m=np.zeros(3, np.float32), v=np.zeros(3, np.float32),
                                          step=2)),
    }


BAD = [
    # per-step arguments: negative (adam: < 1), not an integer, too big, wrong dtype or size
    *[(op, "step", v) for op in ("random_normal", "batch_indices", "dropout_forward",
                                 "leaky_relu_dropout_backward", "adam_step")
      for v in (-1, 1.5, "2", 2**63, np.zeros(1, np.float32), np.zeros(2, np.int64),
                np.zeros((1, 1), np.int64), np.zeros(0, np.int64), np.array([-3], np.int64))],
    ("adam_step", "step", 0),
    ("random_normal", "seed", -1), ("random_normal", "seed", 2**64),
    ("random_normal", "out", np.empty(3, np.float64)),
    ("random_normal", "out", np.empty((4, 4), np.float32)[:, ::2]),
    ("random_normal", "out", None),
    ("batch_indices", "out", np.empty(4, np.int32)), ("batch_indices", "out", None),
    ("batch_indices", "out", np.empty(5, np.int64)),          # more rows than batch_size
    ("batch_indices", "out", np.empty((2, 2), np.int64)),
    ("batch_indices", "n_items", 0), ("batch_indices", "n_items", 2**62 + 1),
    ("batch_indices", "batch_size", 0), ("batch_indices", "steps_per_epoch", 0),
    ("batch_indices", "steps_per_epoch", 26),                 # > ceil(100 / 4)
    ("gather_rows", "src", np.ones((5, 2), np.float64)), ("gather_rows", "src", np.float32(1)),
    ("gather_rows", "src", np.ones((), np.float32)),
    ("gather_rows", "idx", np.zeros(3, np.int32)), ("gather_rows", "idx", np.zeros((3, 1), np.int64)),
    ("gather_rows", "out", np.empty((3, 2), np.int64)), ("gather_rows", "out", np.empty((4, 2), np.float32)),
]


def _param_id(v):
    """Stable test ids (xdist compares them across workers): arrays by dtype and shape."""
    return f"{v.dtype}{list(v.shape)}" if isinstance(v, np.ndarray) else repr(v)[:24]


@pytest.mark.parametrize("op,arg,value", BAD, ids=_param_id)
def test_bad_argument_raises(op, arg, value):
    fn, args = _valid()[op]
    fn(**args)  # valid as it is
    args[arg] = value
    with pytest.raises((TypeError, ValueError)) as info:
        fn(**args)
    text = str(info.value)
    assert (op in text and arg in text) or "incompatible function arguments" in text, text


def test_batch_indices_refuses_a_host_step_past_the_last_item():
    """100 items in batches of 8: 13 steps per epoch, the last with 4 rows. A full batch
    buffer at that step has rows without items: refused, naming the step."""
    with pytest.raises(ValueError, match="batch_indices: out: step 25"):
        ops.batch_indices(np.empty(8, np.int64), 1, 25, 100, 8, 13)
    ops.batch_indices(np.empty(4, np.int64), 1, 25, 100, 8, 13)
    with pytest.raises(ValueError, match="batch_indices"):
        reference.batch_indices(np.empty(8, np.int64), 1, 25, 100, 8, 13)


def test_step_array_must_be_on_the_call_device(cuda_backend):
    cp = cuda_backend.xp
    with pytest.raises(ValueError, match="random_normal: step"):
        ops.random_normal(np.empty(4, np.float32), 1, cp.zeros(1, cp.int64))
    with pytest.raises(ValueError, match="dropout_forward: step"):
        ops.dropout_forward(cp.ones(4, cp.float32), 0.3, 1, step=np.zeros(1, np.int64))
