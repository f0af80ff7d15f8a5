"""The CUDA kernels against the CPU kernels on identical inputs, for every op of
tests/op_cases.py (the parity sweep holds each backend to NumPy already; this catches one
backend drifting from the other at the model's and the thread-split sizes), and bitwise
repeatability of every CUDA op. Inputs come from the table's builders: distinct random
arrays for every argument (a swapped dy and x does not cancel), soft and hard targets,
Adam from a random state with its params, m and v compared."""
import numpy as np
import pytest

from conftest import Backend
from gan_fast import ops
from op_cases import assert_results_close, assert_results_equal, params, run_kernel

CPU = Backend("cpu")


@pytest.mark.parametrize("case,dims", params("example") + params("threaded"))
def test_cuda_matches_cpu(cuda_backend, rng, case, dims):
    """Each backend is within the op's tolerance of the float64 reference, so the two are
    within twice that of each other."""
    call = case.build(rng, **dims)
    assert_results_close(case, run_kernel(case, call, cuda_backend), run_kernel(case, call, CPU),
                         label=" (cuda vs cpu)", tol_scale=2.0)


@pytest.mark.parametrize("case,dims", params("example") + params("threaded"))
def test_cuda_ops_are_bitwise_repeatable(cuda_backend, rng, case, dims):
    call = case.build(rng, **dims)
    assert_results_equal(case, run_kernel(case, call, cuda_backend),
                         run_kernel(case, call, cuda_backend), "two runs on the GPU")


def test_dropout_mask_is_bitwise_the_cpu_mask(cuda_backend, rng):
    x = rng.uniform(0.5, 1.5, 1_000_003).astype(np.float32)
    on_gpu = cuda_backend.to_numpy(ops.dropout_forward(cuda_backend.asarray(x), 0.3, 2**63 + 5))
    on_cpu = ops.dropout_forward(x, 0.3, 2**63 + 5)
    np.testing.assert_array_equal(on_gpu, on_cpu)
