"""Every op of the table (tests/op_cases.py) against gan_fast.reference, on the CPU and on
CUDA: each parity and threaded case with its outputs poisoned with NaN; the example with
the outputs left to the op; in-place writing where the contract allows it. And the table
itself: an op of gan_fast.ops without a case fails here."""
import numpy as np
import pytest

from op_cases import (CASES, assert_results_close, assert_results_equal, check_table, params,
                      run_kernel, run_reference, to_backend)


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


def _with_aliases():
    rng = np.random.default_rng(0)
    return [case for case in CASES.values() if case.build(rng, **case.example).aliases]


@pytest.mark.parametrize("case,dims", params("example", _with_aliases()))
def test_writing_in_place_gives_the_out_of_place_result(backend, rng, case, dims):
    """Where the contract lets an output be an input (elementwise ops: out= x), the result
    is bitwise the one written into a separate buffer."""
    call = case.build(rng, **dims)
    apart = run_kernel(case, call, backend)
    for out, into in call.aliases:
        buf = to_backend(backend, call.args[into])
        together = run_kernel(case, call, backend, **{into: buf, out: buf})
        assert_results_equal(case, apart, together, f"{out} = {into} (in place) vs apart")
