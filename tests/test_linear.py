"""linear_forward / linear_backward beyond the parity sweep of tests/op_cases.py: each
gradient on its own (need_*), a zero-depth product, the fused activation equal to the two
ops, and bad activations."""
import numpy as np
import pytest

from gan_fast import ops, reference
from parity import assert_close

def random_f32(rng, shape):
    """Random float32 values; the reference gets exactly these, widened to float64."""
    return rng.standard_normal(shape).astype(np.float32)


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


# ------------------------------------------------------------------------------ fused activation
@pytest.mark.parametrize("activation", ["tanh", "leaky_relu"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("N,K,M", [(1, 1, 1), (3, 67, 5), (130, 257, 31), (64, 1024, 784),
                                   (256, 1024, 784), (64, 6272, 1)], ids=str)
def test_linear_fused_activation_is_the_two_ops(backend, rng, N, K, M, bias, activation):
    """linear_forward(..., activation=...) is bitwise the linear op followed by the
    activation op on the same backend (CUDA: the GEMM epilogue, split-K shapes included,
    against the separate launches). Its parity with the reference is in the table
    (tests/op_cases.py, linear_forward's activation dims)."""
    x, w = random_f32(rng, (N, K)), random_f32(rng, (M, K))
    b = random_f32(rng, (M,)) if bias else None
    xb, wb, bb = backend.asarray(x), backend.asarray(w), None if b is None else backend.asarray(b)
    y = ops.linear_forward(xb, wb, bb, out=backend.poisoned((N, M)), activation=activation,
                           slope=0.3)
    plain = ops.linear_forward(xb, wb, bb)
    two_ops = (ops.tanh_forward(plain) if activation == "tanh"
               else ops.leaky_relu_forward(plain, 0.3))
    np.testing.assert_array_equal(backend.to_numpy(y), backend.to_numpy(two_ops))


@pytest.mark.parametrize("activation,error", [("relu", ValueError), ("TANH", ValueError),
                                              (3, TypeError), (b"tanh", TypeError)])
def test_linear_bad_activation(activation, error):
    x, w = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32)
    with pytest.raises(error, match="linear_forward: activation"):
        ops.linear_forward(x, w, activation=activation)
    with pytest.raises(ValueError, match="linear_forward: slope"):
        ops.linear_forward(x, w, activation="leaky_relu", slope=float("nan"))
