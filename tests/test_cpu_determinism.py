"""CPU results do not depend on the thread count (bitwise), and ops called from several
Python threads at once give the same results as called one at a time, for every op family
(linear, conv, batchnorm, the elementwise ops and dropout, the loss and Adam, and the quality
recipe's minibatch_stddev, spectral_norm and ema_update, which are also run on 3 threads)."""
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


def quality_recipe_step(rng):
    """The quality recipe's ops (issue #12) at the model's shapes: 64 groups, the conv weight,
    and an average over as many values as the generator has parameters."""
    x, dy = random_f32(rng, (256, 128, 7, 7)), random_f32(rng, (256, 129, 7, 7))
    w, dw_sn = random_f32(rng, (128, 64, 3, 3)), random_f32(rng, (128, 64, 3, 3))
    u0 = random_f32(rng, (128,))
    a0, value = random_f32(rng, (1_486_352,)), random_f32(rng, (1_486_352,))

    def step():
        u, average = u0.copy(), a0.copy()
        w_sn, v, sigma = ops.spectral_norm_forward(w, u)
        ops.ema_update(average, value, 0.999, 7)
        return [ops.minibatch_stddev_forward(x), ops.minibatch_stddev_backward(dy, x),
                w_sn, v, sigma, u, ops.spectral_norm_backward(dw_sn, w_sn, u, v, sigma), average]
    return step


STEPS = [linear_step, conv_step, batchnorm_step, elementwise_step, loss_and_adam_step,
         quality_recipe_step]


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


def test_quality_recipe_ops_bitwise_identical_for_1_2_and_3_threads(rng, restore_threads):
    """Three threads split 64 groups, 18 inner-product chunks and the mat-vec blocks
    unevenly: still the same bits."""
    step = quality_recipe_step(rng)
    results = []
    for threads in (1, 2, 3):
        gan_fast.set_num_threads(threads)
        results.append(step())
    for threads, result in zip((2, 3), results[1:]):
        for i, (a, b) in enumerate(zip(results[0], result)):
            assert np.array_equal(a, b), f"output {i} differs between 1 and {threads} threads"
