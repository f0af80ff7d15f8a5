"""ema_update against the reference over several steps (the warm-up, where beta follows
(1 + step)/(10 + step), and later steps, where it is decay), the step as an int or a
one-element int64 array on the call's device, and on CUDA the step read from device memory
when the kernel runs (a captured CUDA graph replayed with new steps)."""
import numpy as np
import pytest

from gan_fast import ops, reference
from parity import assert_close, floored_tolerance

STEPS = [1, 2, 3, 50, 5000]


def check_steps(backend, rng, n, decay, step_arg=lambda s: s):
    a64 = rng.standard_normal(n).astype(np.float32).astype(np.float64)
    average = backend.asarray(a64)
    for step in STEPS:
        value = rng.standard_normal(n).astype(np.float32)
        beta = min(decay, (1 + step) / (10 + step))
        floor = np.abs(beta * a64) + np.abs((1 - beta) * value)
        assert ops.ema_update(average, backend.asarray(value), decay, step_arg(step)) is None
        reference.ema_update(a64, value.astype(np.float64), decay, step)
        assert_close(f"ema_update.average (step {step})", average, a64,
                     tol=floored_tolerance("ema_update", a64, floor))


@pytest.mark.parametrize("n", [1, 3, 67, 1_000, 1_486_352])
@pytest.mark.parametrize("decay", [0.999, 0.9999, 0.5, 0.0])
def test_ema_update_over_steps(backend, rng, n, decay):
    check_steps(backend, rng, n, decay)


@pytest.mark.parametrize("shape", [(1,), ()], ids=str)
def test_ema_update_step_as_an_array(backend, rng, shape):
    """A one-element int64 array on the call's device (NumPy on the CPU, CuPy on CUDA,
    where the kernel dereferences it) gives the same result as the int."""
    check_steps(backend, rng, 1000, 0.999,
                lambda s: backend.xp.asarray(np.full(shape, s, dtype=np.int64)))
    value = backend.asarray(rng.standard_normal(999))
    by_int, by_array = backend.asarray(np.ones(999)), backend.asarray(np.ones(999))
    ops.ema_update(by_int, value, 0.99, 7)
    ops.ema_update(by_array, value, 0.99, backend.xp.asarray(np.full(shape, 7, dtype=np.int64)))
    np.testing.assert_array_equal(backend.to_numpy(by_int), backend.to_numpy(by_array))


def test_ema_update_empty(backend):
    ops.ema_update(backend.asarray(np.zeros(0)), backend.asarray(np.zeros(0)), 0.999, 1)


def test_ema_update_reads_the_step_when_it_runs(cuda_backend, rng):
    """A CUDA graph freezes launch arguments at capture; the step lives in device memory, so
    each replay uses the value the array holds then (common/step_arg.h)."""
    import cupy
    n, decay = 10_000, 0.999
    a64 = rng.standard_normal(n).astype(np.float32).astype(np.float64)
    value = rng.standard_normal(n).astype(np.float32)
    average, value_dev = cupy.asarray(a64.astype(np.float32)), cupy.asarray(value)
    step = cupy.ones(1, dtype=cupy.int64)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        ops.ema_update(average, value_dev, decay, step)
        graph = stream.end_capture()
    for s in (1, 2, 3000):
        step.fill(s)
        cupy.cuda.get_current_stream().synchronize()
        graph.launch(stream)
        stream.synchronize()
        floor = np.abs(a64) + np.abs(value)
        reference.ema_update(a64, value.astype(np.float64), decay, s)
        assert_close(f"ema_update.average (graph replay, step {s})", average, a64,
                     tol=floored_tolerance("ema_update", a64, floor))
