"""batchnorm beyond the parity sweep of tests/op_cases.py ([N, F] and [N, C, H, W],
training and eval, forward and backward): eval leaves the running statistics untouched,
bit for bit."""
import numpy as np

from gan_fast import ops


def test_eval_leaves_the_running_statistics_untouched(backend, rng):
    x = rng.standard_normal((5, 3, 4, 7)).astype(np.float32)
    gamma, beta = (rng.standard_normal(3).astype(np.float32) for _ in range(2))
    rmean, rvar = rng.standard_normal(3).astype(np.float32), rng.uniform(0.5, 2, 3).astype(np.float32)
    k_rmean, k_rvar = backend.asarray(rmean), backend.asarray(rvar)
    ops.batchnorm_forward(backend.asarray(x), backend.asarray(gamma), backend.asarray(beta),
                          k_rmean, k_rvar, training=False, momentum=0.3)
    np.testing.assert_array_equal(backend.to_numpy(k_rmean), rmean)
    np.testing.assert_array_equal(backend.to_numpy(k_rvar), rvar)
