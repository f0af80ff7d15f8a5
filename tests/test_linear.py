"""linear_forward / linear_backward beyond the parity sweep of tests/op_cases.py: each
gradient on its own (need_*), and a zero-depth product."""
import numpy as np
import pytest

import gan_fast
from gan_fast import ops, reference
from conftest import Backend
from parity import assert_close

# (N, K, M): x [N, K], w [M, K]
ODD = [(1, 1, 1), (1, 7, 3), (3, 67, 5), (67, 3, 67), (5, 33, 129), (130, 257, 31)]
MODEL = [(n, k, m) for n in (64, 256)
         for k, m in [(100, 256), (256, 512), (512, 1024), (1024, 784), (6272, 1)]]


def random_f32(rng, shape):
    """Random float32 values; the reference gets exactly these, widened to float64."""
    return rng.standard_normal(shape).astype(np.float32)


def check_linear(backend, rng, N, K, M, bias=True):
    x, w, dy = random_f32(rng, (N, K)), random_f32(rng, (M, K)), random_f32(rng, (N, M))
    b = random_f32(rng, (M,)) if bias else None
    x64, w64, dy64 = x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64)
    b64 = None if b is None else b.astype(np.float64)

    y = ops.linear_forward(backend.asarray(x), backend.asarray(w),
                           None if b is None else backend.asarray(b),
                           out=backend.poisoned((N, M)))
    assert_close("linear_forward", y, reference.linear_forward(x64, w64, b64))

    dx, dw, db = ops.linear_backward(backend.asarray(dy), backend.asarray(x), backend.asarray(w),
                                     dx=backend.poisoned((N, K)), dw=backend.poisoned((M, K)),
                                     db=backend.poisoned((M,)))
    rdx, rdw, rdb = reference.linear_backward(dy64, x64, w64)
    assert_close("linear_backward.dx", dx, rdx)
    assert_close("linear_backward.dw", dw, rdw)
    assert_close("linear_backward.db", db, rdb)


@pytest.mark.parametrize("N,K,M", ODD + [(64, 1024, 784), (256, 6272, 1)], ids=str)
def test_linear_every_cpu_isa(cpu_isa, rng, N, K, M):
    assert gan_fast.cpu_isa() == cpu_isa
    check_linear(Backend("cpu"), rng, N, K, M)


@pytest.mark.parametrize("need", [(True, False, False), (False, True, False),
                                  (False, False, True), (False, False, False)], ids=str)
def test_linear_backward_skips_unneeded(backend, rng, need):
    N, K, M = 5, 9, 7
    x, w, dy = random_f32(rng, (N, K)), random_f32(rng, (M, K)), random_f32(rng, (N, M))
    got = ops.linear_backward(backend.asarray(dy), backend.asarray(x), backend.asarray(w), *need)
    want = reference.linear_backward(dy.astype(np.float64), x.astype(np.float64),
                                     w.astype(np.float64), *need)
    for name, wanted, g, r in zip(("dx", "dw", "db"), need, got, want):
        if wanted:
            assert_close(f"linear_backward.{name}", g, r)
        else:
            assert g is None, f"linear_backward.{name}: expected None when not needed"


def test_linear_zero_depth_gives_bias(backend, rng):
    """K == 0: x·wᵀ is an empty sum, so y = b exactly and dw is empty."""
    N, M = 4, 6
    b = random_f32(rng, (M,))
    y = ops.linear_forward(backend.asarray(np.zeros((N, 0))), backend.asarray(np.zeros((M, 0))),
                           backend.asarray(b), out=backend.poisoned((N, M)))
    np.testing.assert_array_equal(backend.to_numpy(y), np.broadcast_to(b, (N, M)))
