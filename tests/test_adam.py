"""Adam beyond the parity sweep of tests/op_cases.py (one step from a random state, params
and both moments): three steps in a row, each starting from the state the last one left,
and the size of the first step."""
import numpy as np
import pytest

from gan_fast import ops, reference
from parity import assert_close


@pytest.mark.parametrize("n", [67, 300_001])
def test_adam_parity_over_steps(backend, rng, n):
    hp = dict(lr=2e-4, beta1=0.5, beta2=0.999, eps=1e-8)
    p64, m64, v64 = rng.standard_normal(n), 0.1 * rng.standard_normal(n), rng.uniform(0, 0.1, n)
    # The kernel's float32 state is the reference's float64 state rounded: start both equal.
    p32, m32, v32 = (a.astype(np.float32) for a in (p64, m64, v64))
    p64, m64, v64 = (a.astype(np.float64) for a in (p32, m32, v32))
    p, m, v = backend.asarray(p32), backend.asarray(m32), backend.asarray(v32)
    for step in range(1, 4):
        g = rng.standard_normal(n)
        ops.adam_step(p, backend.asarray(g), m, v, step, **hp)
        reference.adam_step(p64, g, m64, v64, step, **hp)
    assert_close("adam_step.params", p, p64)
    assert_close("adam_step.m", m, m64)
    assert_close("adam_step.v", v, v64)


def test_first_step_moves_every_parameter_by_about_lr(backend, rng):
    """Bias correction makes the first update ≈ lr·sign(g) for every element."""
    n, lr = 10_000, 2e-4
    p0 = 0.01 * rng.standard_normal(n)  # small, so float32 resolves a 2e-4 step finely
    g = rng.choice([-1, 1], n) * rng.uniform(0.5, 2, n)  # |g| >> eps
    p = backend.asarray(p0)
    ops.adam_step(p, backend.asarray(g), backend.asarray(np.zeros(n)), backend.asarray(np.zeros(n)),
                  1, lr=lr, beta1=0.5)
    np.testing.assert_allclose(p0.astype(np.float32) - backend.to_numpy(p), lr * np.sign(g), rtol=1e-3)


@pytest.mark.parametrize("kind", ["array1", "array0"])
def test_step_as_an_array_is_bitwise_the_int(backend, rng, kind):
    """adam_step's step as a one-element int64 array on the parameters' device (read by the
    CUDA kernel when it runs) updates exactly as the same int."""
    n = 1001
    p0, g = rng.standard_normal(n), rng.standard_normal(n)
    runs = []
    for as_array in (False, True):
        p, m, v = backend.asarray(p0), backend.asarray(np.zeros(n)), backend.asarray(np.zeros(n))
        for step in (1, 2, 7):
            s = backend.xp.asarray(np.full((1,) if kind == "array1" else (), step, np.int64)) \
                if as_array else step
            ops.adam_step(p, backend.asarray(g), m, v, s, lr=2e-4, beta1=0.5)
        runs.append([backend.to_numpy(a) for a in (p, m, v)])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
