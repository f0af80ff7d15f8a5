"""gan_fast.cuda_graph and the per-step values read from device memory (GPU only; skipped
without a CUDA device): a captured sequence of ops (batch_indices + gather_rows,
random_normal, linear, leaky_relu_dropout, conv2d with its fused LeakyReLU + dropout and
adam_step with a device step, the counter increment) replayed N times leaves bitwise the arrays of the same N steps launched one by
one; a capture allocates nothing from CuPy's pool, refuses an op that would, and never
leaves its stream capturing. (The whole training step's graph is tested on the engine.)"""
import numpy as np
import pytest

from gan_fast import ops

K, N, SEED = 300, 32, 2024


class Sequence:
    """The state of a small step and the step itself, identical for every instance."""

    def __init__(self, cp):
        rng = np.random.default_rng(0)
        f32 = lambda *s: cp.asarray(rng.standard_normal(s).astype(np.float32))
        self.images, self.labels = f32(K, 1, 28, 28), cp.asarray(rng.integers(0, 10, K))
        self.w, self.b, self.wz = f32(16, 784), f32(16), f32(8, 100)
        self.wc, self.conv = f32(4, 1, 3, 3), cp.empty((N, 4, 14, 14), cp.float32)
        self.params = f32(N * 16 + N * 8)
        self.m, self.v = cp.zeros_like(self.params), cp.zeros_like(self.params)
        self.step = cp.ones(1, dtype=cp.int64)                   # the device counter
        self.idx = cp.empty(N, cp.int64)
        self.batch, self.batch_labels = cp.empty((N, 1, 28, 28), cp.float32), cp.empty(N, cp.int64)
        self.flat = self.batch.reshape(N, 784)                    # a view: no allocation later
        self.z = cp.empty((N, 100), cp.float32)
        self.grads = cp.empty_like(self.params)
        self.y = cp.empty((N, 16), cp.float32)
        self.act = self.grads[:N * 16].reshape(N, 16)             # views into the gradients
        self.yz = self.grads[N * 16:].reshape(N, 8)

    def __call__(self):
        ops.batch_indices(self.idx, SEED, self.step, K, N, K // N)
        ops.gather_rows(self.images, self.idx, out=self.batch)
        ops.gather_rows(self.labels, self.idx, out=self.batch_labels)
        ops.random_normal(self.z, SEED + 1, self.step)
        ops.linear_forward(self.flat, self.w, self.b, out=self.y)
        ops.leaky_relu_dropout_forward(self.y, 0.2, 0.3, SEED + 2, step=self.step, out=self.act)
        ops.linear_forward(self.z, self.wz, out=self.yz)
        ops.conv2d_forward(self.batch, self.wc, None, 2, 1, out=self.conv,
                           activation="leaky_relu", slope=0.2, dropout_p=0.3, seed=SEED + 3,
                           step=self.step)
        ops.adam_step(self.params, self.grads, self.m, self.v, self.step, lr=1e-3, beta1=0.5)
        self.step += 1

    def arrays(self):
        return {k: v.get() for k, v in vars(self).items() if k not in ("flat", "act", "yz")}


@pytest.mark.parametrize("steps", [1, 7])
def test_graph_replay_is_bitwise_the_launched_steps(cuda_backend, steps):
    from gan_fast.cuda_graph import capture
    cp = cuda_backend.xp
    eager = Sequence(cp)
    for _ in range(steps + 1):
        eager()
    graphed = Sequence(cp)
    graphed()                                   # warm-up: step 1, run eagerly
    graph = capture(graphed, keep=[graphed])
    for _ in range(steps):
        graph.launch()
    graph.synchronize()
    want, got = eager.arrays(), graphed.arrays()
    assert int(got["step"][0]) == steps + 2
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_capture_allocates_nothing_and_runs_nothing(cuda_backend):
    from gan_fast.cuda_graph import capture
    cp = cuda_backend.xp
    seq = Sequence(cp)
    seq()
    cp.cuda.get_current_stream().synchronize()
    pool = cp.get_default_memory_pool()
    used, total = pool.used_bytes(), pool.total_bytes()
    before = seq.arrays()
    graph = capture(seq)
    graph.synchronize()
    assert (pool.used_bytes(), pool.total_bytes()) == (used, total)
    after = seq.arrays()                        # a capture records; it runs nothing
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)


def test_an_allocating_op_is_refused_and_the_stream_is_released(cuda_backend):
    from gan_fast.cuda_graph import CaptureError, capture
    cp = cuda_backend.xp
    x = cp.ones((4, 5), cp.float32)
    ops.leaky_relu_forward(x)                   # warm-up
    stream = cp.cuda.Stream(non_blocking=True)
    with pytest.raises(CaptureError, match="rule 2"):
        capture(lambda: ops.leaky_relu_forward(x), stream=stream)   # no out=: allocates
    assert not stream.is_capturing()
    with pytest.raises(Exception):
        capture(lambda: x.get(), stream=stream)                      # a host read-back
    assert not stream.is_capturing()
    out = cp.empty_like(x)
    graph = capture(lambda: ops.leaky_relu_forward(x, out=out), stream=stream)
    graph.launch()
    graph.synchronize()
    np.testing.assert_array_equal(out.get(), np.ones((4, 5), np.float32))


def test_device_steps_equal_host_steps(cuda_backend, rng):
    """Every op taking a StepArg gives bitwise the same result with the step as a device
    array as with the same step as an int."""
    cp = cuda_backend.xp
    x = cp.asarray(rng.standard_normal((3, 64, 14, 14)).astype(np.float32))
    w = cp.asarray(rng.standard_normal((128, 64, 3, 3)).astype(np.float32))
    for step in (0, 1, 12345, 2**40 + 3):
        d = cp.asarray([step], dtype=cp.int64)
        pairs = [
            (ops.dropout_forward(x, 0.3, 77, step), ops.dropout_forward(x, 0.3, 77, d)),
            (ops.dropout_backward(x, 0.3, 77, step), ops.dropout_backward(x, 0.3, 77, d)),
            (ops.leaky_relu_dropout_forward(x, 0.2, 0.3, 77, step),
             ops.leaky_relu_dropout_forward(x, 0.2, 0.3, 77, d)),
            (ops.leaky_relu_dropout_backward(x, x, 0.2, 0.3, 77, step),
             ops.leaky_relu_dropout_backward(x, x, 0.2, 0.3, 77, d)),
            (ops.random_normal(cp.empty(1001, cp.float32), 77, step),
             ops.random_normal(cp.empty(1001, cp.float32), 77, d)),
            (ops.batch_indices(cp.empty(64, cp.int64), 77, step, 60000, 64, 937),
             ops.batch_indices(cp.empty(64, cp.int64), 77, d, 60000, 64, 937)),
            (ops.conv2d_forward(x, w, None, 2, 1, activation="leaky_relu", dropout_p=0.3,
                                seed=77, step=step),
             ops.conv2d_forward(x, w, None, 2, 1, activation="leaky_relu", dropout_p=0.3,
                                seed=77, step=d)),
        ]
        for i, (a, b) in enumerate(pairs):
            np.testing.assert_array_equal(a.get(), b.get(), err_msg=f"pair {i}, step {step}")
