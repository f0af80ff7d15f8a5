"""CPU results do not depend on the thread count, bit for bit, and ops called from several
Python threads at once give the results they give one at a time: every op of
tests/op_cases.py at its `threaded` dims, the sizes at which its kernel splits work across
the OpenMP team (op_cases.py's docstring names each threshold). 3 threads split work
differently from 2 (other block and chunk boundaries), and cost nothing extra to test on
a 2-core machine."""
from concurrent.futures import ThreadPoolExecutor

import pytest

import gan_fast
from conftest import Backend
from op_cases import assert_results_equal, params, run_kernel

CPU = Backend("cpu")


@pytest.fixture
def restore_threads():
    before = gan_fast.get_num_threads()
    yield
    gan_fast.set_num_threads(before)


@pytest.mark.parametrize("case,dims", params("threaded"))
def test_bitwise_identical_for_1_2_and_3_threads(rng, restore_threads, case, dims):
    call = case.build(rng, **dims)
    gan_fast.set_num_threads(1)
    one = run_kernel(case, call, CPU)
    for threads in (2, 3):
        gan_fast.set_num_threads(threads)
        assert_results_equal(case, one, run_kernel(case, call, CPU), f"1 vs {threads} threads")


@pytest.mark.parametrize("case,dims", params("threaded"))
def test_concurrent_calls_match_sequential(rng, case, dims):
    calls = [case.build(rng, **dims) for _ in range(4)]
    sequential = [run_kernel(case, call, CPU) for call in calls]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda call: run_kernel(case, call, CPU), calls))
    for s, c in zip(sequential, concurrent):
        assert_results_equal(case, s, c, "called concurrently vs one at a time")
