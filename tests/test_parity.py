"""Every op of the table (tests/op_cases.py) against gan_fast.reference, on the CPU and on
CUDA: each parity and threaded case with its outputs poisoned with NaN; the example with
the outputs left to the op. And the table itself: an op of gan_fast.ops without a case
fails here. (In-place writing where the contract allows it: tests/test_overlap.py.)"""
import pytest

from op_cases import assert_results_close, check_table, params, run_kernel, run_reference


def test_the_table_has_every_op():
    problems = check_table()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("case,dims", params("parity+threaded"))
def test_parity(backend, rng, case, dims):
    call = case.build(rng, **dims)
    want = run_reference(case, call)
    floors = case.floor(case, call, want) if case.floor else None   # sums that cancel
    assert_results_close(case, run_kernel(case, call, backend), want, floors=floors)


@pytest.mark.parametrize("case,dims", params("example"))
def test_outputs_are_allocated_when_not_given(backend, rng, case, dims):
    call = case.build(rng, **dims)
    got = run_kernel(case, call, backend, outputs="allocate")
    for name in call.outputs:
        assert isinstance(got[name], backend.xp.ndarray), f"{case.op}.{name}: {type(got[name])}"
    assert_results_close(case, got, run_reference(case, call))
