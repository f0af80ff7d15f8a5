"""The GIL and memory: a long kernel lets other Python threads run (the bindings release
the GIL around every kernel), ops called many thousand times do not grow the process, and
a training run's memory is flat after its first epoch.

Memory is the resident set size from /proc/self/statm (Linux; skipped elsewhere). The
allocator keeps freed pages, so each test measures after a warm-up and bounds the growth
over many more iterations; a leak of even 64 bytes per call would exceed the bound.
Skipped under AddressSanitizer, whose quarantine holds freed memory on purpose.
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

import gan_fast
from gan_fast import ops

UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")
needs_rss = pytest.mark.skipif(not os.path.exists("/proc/self/statm") or UNDER_ASAN,
                               reason="needs /proc/self/statm and no ASan quarantine")


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
def one_thread():
    before = gan_fast.get_num_threads()
    gan_fast.set_num_threads(1)
    yield
    gan_fast.set_num_threads(before)


def test_long_kernel_releases_the_gil(one_thread):
    """A Python thread counting in a loop keeps counting while the main thread is inside
    a ~0.2 s GEMM; with the GIL held it would stall for the whole call."""
    rng = np.random.default_rng(0)
    x, w = (rng.standard_normal((768, 768), dtype=np.float32) for _ in range(2))
    ops.linear_forward(x, w)                       # warm-up (thread pool, pages)
    counter, stop = [0], threading.Event()

    def count():
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=count)
    t.start()
    try:
        time.sleep(0.05)
        c0, t0 = counter[0], time.perf_counter()
        time.sleep(0.1)                            # the count's rate with the GIL free
        rate = (counter[0] - c0) / (time.perf_counter() - t0)
        calls, c1, t1 = 0, counter[0], time.perf_counter()
        while time.perf_counter() - t1 < 0.3:      # several calls, GIL taken between them
            ops.linear_forward(x, w)
            calls += 1
        busy = time.perf_counter() - t1
        during = counter[0] - c1
    finally:
        stop.set()
        t.join()
    # Held GIL: the counter only moves in the switch intervals between calls (well under
    # 10% of the time here). Released: it runs alongside (shares 2 cores with others).
    assert during > 0.25 * rate * busy, (
        f"counter advanced {during} in {busy:.2f}s over {calls} calls, free rate {rate:.0f}/s")


def _small_calls():
    """One small call of every op (outputs allocated by the op, the path that creates
    Python objects in C++), plus calls that raise (error paths must not leak either)."""
    rng = np.random.default_rng(0)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    x2, w2, dy2 = f(4, 6), f(3, 6), f(4, 3)
    x4, w4, dy4 = f(2, 2, 5, 5), f(3, 2, 3, 3), f(2, 3, 5, 5)
    g, b, rm, rv = f(2), f(2), np.zeros(2, np.float32), np.ones(2, np.float32)
    p, grad, m, v = f(32), f(32), np.zeros(32, np.float32), np.zeros(32, np.float32)
    z, t = f(8, 1), np.full((8, 1), 0.5, np.float32)
    bias = f(3)
    _, mean, rstd = ops.batchnorm_forward(x4, g, b, rm, rv)

    def bad():
        try:
            ops.linear_forward(x2, w4)
        except ValueError:
            pass
        try:
            ops.conv2d_forward(x4, w4, stride="x")
        except TypeError:
            pass

    return [
        lambda: ops.linear_forward(x2, w2, bias),
        lambda: ops.linear_backward(dy2, x2, w2),
        lambda: ops.conv2d_forward(x4, w4, None, 1, 1),
        lambda: ops.conv2d_backward(dy4, x4, w4, 1, 1),
        lambda: ops.batchnorm_forward(x4, g, b, rm, rv),
        lambda: ops.batchnorm_backward(x4, x4, g, mean, rstd),
        lambda: ops.leaky_relu_forward(x2),
        lambda: ops.leaky_relu_backward(x2, x2),
        lambda: ops.tanh_forward(x2),
        lambda: ops.tanh_backward(x2, x2),
        lambda: ops.dropout_forward(x2, 0.3, 1),
        lambda: ops.dropout_backward(x2, 0.3, 1),
        lambda: ops.bce_with_logits(z, t),
        lambda: ops.adam_step(p, grad, m, v, 1),
        bad,
    ]


@needs_rss
def test_ops_do_not_leak(one_thread):
    calls = _small_calls()

    def run(n):
        for _ in range(n):
            for call in calls:
                call()

    run(500)                                         # warm-up: allocator pools fill
    before = rss_bytes()
    t0 = time.perf_counter()
    run(5000)                                        # 5000 rounds x 15 ops (+ 2 raising)
    grown = rss_bytes() - before
    assert grown < 2 * 2 ** 20, (
        f"RSS grew {grown / 2 ** 20:.1f} MiB over 5000 rounds of every op "
        f"({(time.perf_counter() - t0):.1f}s): a leak of about {grown // 85000} bytes a call")


@needs_rss
def test_training_memory_is_flat_after_the_first_epoch(mnist_dir, tmp_path, monkeypatch):
    """RSS at the start of every epoch (when its data are drawn): the last is within a few
    MiB of the one after epoch 1, over 12 short epochs of the CPU kernels with logging and
    sample grids (checkpoints only at the end: their cost is disk time, not memory)."""
    from gan_fast import trainer

    seen = []
    real_draw = trainer._Run._draw_epoch

    def draw_and_measure(self):
        seen.append(rss_bytes())
        return real_draw(self)
    monkeypatch.setattr(trainer._Run, "_draw_epoch", draw_and_measure)
    gan_fast.train(backend="kernels", device="cpu", threads=1, batch_size=16, limit_train=32,
                   epochs=12, split="test", data_dir=str(mnist_dir), quiet=True, log_every=1,
                   sample_every=3, checkpoint_every=0, out_dir=str(tmp_path / "run"))
    assert len(seen) == 12
    grown = seen[-1] - seen[1]                       # seen[1]: after epoch 1
    assert grown < 4 * 2 ** 20, [f"{r / 2 ** 20:.1f}" for r in seen]
