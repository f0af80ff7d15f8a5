"""Parity of batchnorm_forward / batchnorm_backward with gan_fast.reference: [N, F] and
[N, C, H, W] inputs, training (batch statistics and the running-statistics update) and
eval (running statistics, left untouched), backward in both modes."""
import numpy as np
import pytest

from gan_fast import ops, reference
from parity import assert_close

SHAPES = [(7, 1), (3, 67), (64, 256), (256, 1024), (67, 33),
          (1, 3, 5, 5), (3, 5, 4, 7), (64, 128, 7, 7), (2, 17, 1, 3)]


def random_f32(rng, shape, scale=1.0, offset=0.0):
    """Random float32 values; the reference gets exactly these, widened to float64."""
    return (offset + scale * rng.standard_normal(shape)).astype(np.float32)


def parameters(rng, C):
    """gamma, beta, running_mean, running_var as float32 (running_var positive)."""
    return (random_f32(rng, (C,), 0.5, 1.0), random_f32(rng, (C,)), random_f32(rng, (C,)),
            rng.uniform(0.5, 2.0, C).astype(np.float32))


@pytest.mark.parametrize("training", [True, False], ids=["training", "eval"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_batchnorm_forward(backend, rng, shape, training):
    C = shape[1]
    x = random_f32(rng, shape, scale=3.0, offset=1.5)
    gamma, beta, rmean, rvar = parameters(rng, C)
    momentum = 0.1 if training else 0.3
    ref_rmean, ref_rvar = rmean.astype(np.float64), rvar.astype(np.float64)
    ry, rmu, rrstd = reference.batchnorm_forward(x.astype(np.float64), gamma.astype(np.float64),
                                                 beta.astype(np.float64), ref_rmean, ref_rvar,
                                                 training, momentum, 1e-5)
    k_rmean, k_rvar = backend.asarray(rmean), backend.asarray(rvar)
    y, mu, rstd = ops.batchnorm_forward(backend.asarray(x), backend.asarray(gamma),
                                        backend.asarray(beta), k_rmean, k_rvar, training,
                                        momentum, 1e-5, out=backend.poisoned(shape),
                                        mean=backend.poisoned((C,)), rstd=backend.poisoned((C,)))
    assert_close("batchnorm_forward.y", y, ry)
    assert_close("batchnorm_forward.mean", mu, rmu)
    assert_close("batchnorm_forward.rstd", rstd, rrstd)
    if training:
        assert_close("batchnorm_forward.running_mean", k_rmean, ref_rmean)
        assert_close("batchnorm_forward.running_var", k_rvar, ref_rvar)
    else:
        np.testing.assert_array_equal(backend.to_numpy(k_rmean), rmean)
        np.testing.assert_array_equal(backend.to_numpy(k_rvar), rvar)


@pytest.mark.parametrize("training", [True, False], ids=["training", "eval"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_batchnorm_backward(backend, rng, shape, training):
    C = shape[1]
    x, dy = random_f32(rng, shape, scale=2.0, offset=-0.7), random_f32(rng, shape)
    gamma, beta, rmean, rvar = parameters(rng, C)
    # The cache backward reads: the batch statistics (training) or the running ones (eval),
    # rounded to float32 as the forward kernel would store them.
    _, mean, rstd = reference.batchnorm_forward(x, gamma, beta, rmean.copy(), rvar.copy(),
                                                training)
    f64 = [a.astype(np.float64) for a in (dy, x, gamma, mean, rstd)]
    rdx, rdgamma, rdbeta = reference.batchnorm_backward(*f64, training)
    dx, dgamma, dbeta = ops.batchnorm_backward(
        *(backend.asarray(a) for a in (dy, x, gamma, mean, rstd)), training,
        dx=backend.poisoned(shape), dgamma=backend.poisoned((C,)), dbeta=backend.poisoned((C,)))
    assert_close("batchnorm_backward.dx", dx, rdx)
    assert_close("batchnorm_backward.dgamma", dgamma, rdgamma)
    assert_close("batchnorm_backward.dbeta", dbeta, rdbeta)
