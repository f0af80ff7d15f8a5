"""CPU results do not depend on the thread count (bitwise), and ops called from several
Python threads at once give the same results as called one at a time, for every op family
(linear, conv, batchnorm, the elementwise ops and dropout, the loss and Adam)."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import gan_fast
from gan_fast import ops


def random_f32(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def linear_step(rng):
    # 64 x 100 -> 256 is one C block on one thread and several on two.
    layers = [[random_f32(rng, s) for s in [(n, k), (m, k), (m,), (n, m)]]
              for n, k, m in [(256, 1024, 784), (64, 100, 256)]]
    return lambda: [out for x, w, b, dy in layers
                    for out in (ops.linear_forward(x, w, b), *ops.linear_backward(dy, x, w))]


def conv_step(rng):
    x, w, b, dy = (random_f32(rng, s) for s in [(67, 64, 14, 14), (128, 64, 3, 3), (128,),
                                                (67, 128, 7, 7)])
    return lambda: [ops.conv2d_forward(x, w, b, 2, 1), *ops.conv2d_backward(dy, x, w, 2, 1)]


def batchnorm_step(rng):
    x, dy = random_f32(rng, (64, 128, 7, 7)), random_f32(rng, (64, 128, 7, 7))
    gamma, beta = random_f32(rng, (128,)), random_f32(rng, (128,))

    def step():
        rm, rv = np.zeros(128, np.float32), np.ones(128, np.float32)
        y, mean, rstd = ops.batchnorm_forward(x, gamma, beta, rm, rv, True)
        return [y, mean, rstd, rm, rv, *ops.batchnorm_backward(dy, x, gamma, mean, rstd, True)]
    return step


def elementwise_step(rng):
    # Long enough to be split across threads (and across OpenMP chunks).
    x, dy = random_f32(rng, (257, 1031)), random_f32(rng, (257, 1031))
    y = np.tanh(x)

    def step():
        return [ops.leaky_relu_forward(x, 0.2), ops.leaky_relu_backward(dy, x, 0.2),
                ops.tanh_forward(x), ops.tanh_backward(dy, y),
                ops.dropout_forward(x, 0.3, 11), ops.dropout_backward(dy, 0.3, 11)]
    return step


def loss_and_adam_step(rng):
    z, t = random_f32(rng, (4099, 1)), (random_f32(rng, (4099, 1)) > 0).astype(np.float32)
    p0, g = random_f32(rng, (300_007,)), random_f32(rng, (300_007,))

    def step():
        p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
        for s in (1, 2):
            ops.adam_step(p, g, m, v, s, 2e-4, 0.5)
        return [*ops.bce_with_logits(z, t), p, m, v]
    return step


STEPS = [linear_step, conv_step, batchnorm_step, elementwise_step, loss_and_adam_step]


@pytest.fixture
def restore_threads():
    before = gan_fast.get_num_threads()
    yield
    gan_fast.set_num_threads(before)


@pytest.mark.parametrize("make_step", STEPS, ids=lambda f: f.__name__)
def test_bitwise_identical_for_1_and_2_threads(rng, restore_threads, make_step):
    step = make_step(rng)
    gan_fast.set_num_threads(1)
    one = step()
    gan_fast.set_num_threads(2)
    two = step()
    for i, (a, b) in enumerate(zip(one, two)):
        assert np.array_equal(a, b), f"output {i} differs between 1 and 2 threads"


@pytest.mark.parametrize("make_step", STEPS, ids=lambda f: f.__name__)
def test_concurrent_calls_match_sequential(rng, make_step):
    steps = [make_step(rng) for _ in range(4)]
    sequential = [step() for step in steps]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda step: step(), steps))
    for s, c in zip(sequential, concurrent):
        for i, (a, b) in enumerate(zip(s, c)):
            assert np.array_equal(a, b), f"output {i} differs when called concurrently"
