"""The GIL and memory: a long kernel lets other Python threads run (the bindings release
the GIL around every kernel), no op leaks memory or references however many times it is
called, and a training run leaks nothing: no Python object a step, and its memory is flat
after its first epoch.

Op leaks are measured two ways, per op of tests/op_cases.py (its example call, outputs
allocated by the op: the path that creates Python objects in C++, and a call that raises):
tracemalloc counts every Python object and NumPy buffer still alive after thousands of
calls (exact: a leak of one small array per call is hundreds of KB), reference counts of
the arguments must come back, and the resident set size (/proc/self/statm, Linux) bounds
leaks of the C++ heap, which tracemalloc does not see, over all ops called round after
round. The RSS tests are skipped under AddressSanitizer, whose quarantine holds freed
memory on purpose.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import re
import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest

import gan_fast
from conftest import REPO
from gan_fast import ops
from op_cases import CASES, poisoned, required_outputs

UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")
needs_rss = pytest.mark.skipif(not os.path.exists("/proc/self/statm") or UNDER_ASAN,
                               reason="needs /proc/self/statm and no ASan quarantine")


def rss_bytes():
    """Resident set size, after handing free heap pages back to the system where glibc can
    (malloc_trim), so that memory freed by earlier work does not blur the comparison."""
    libc = ctypes.util.find_library("c")
    if libc:
        trim = getattr(ctypes.CDLL(libc), "malloc_trim", None)
        if trim is not None:
            trim(0)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
def one_thread():
    before = gan_fast.get_num_threads()
    gan_fast.set_num_threads(1)
    yield
    gan_fast.set_num_threads(before)


# ------------------------------------------------------------------------------ the GIL
def test_a_long_kernel_releases_the_gil(one_thread):
    """A Python thread notes the time about every millisecond while the main thread is
    inside one GEMM sized to take about 0.4 s here. With the GIL released it keeps noting
    all through the call; with the GIL held it is stopped for the whole call (it can only
    run in the switch intervals just before entry and after return, ~5 ms each). So the
    longest stretch of the call without a note must be under half of the call: a margin of
    ~0.2 s either way, which scheduling on a busy 2-core machine does not eat."""
    rng = np.random.default_rng(0)
    probe = rng.standard_normal((1024, 1024), dtype=np.float32)
    ops.linear_forward(probe, probe)                       # warm-up (pages, scratch)
    t = time.perf_counter()
    ops.linear_forward(probe, probe)
    n = int(np.clip(1024 * (0.4 / (time.perf_counter() - t)) ** (1 / 3), 1024, 4096)) // 64 * 64
    x, w = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    out = np.empty((n, n), np.float32)
    stamps, stop = [], threading.Event()

    def note_the_time():
        last = 0.0
        while not stop.is_set():
            now = time.perf_counter()
            if now - last >= 1e-3:
                stamps.append(now)
                last = now

    noter = threading.Thread(target=note_the_time)
    noter.start()
    try:
        time.sleep(0.05)                                   # the noter is running
        t0 = time.perf_counter()
        ops.linear_forward(x, w, out=out)
        t1 = time.perf_counter()
    finally:
        stop.set()
        noter.join()
    during = [t0] + [s for s in stamps if t0 < s < t1] + [t1]
    longest = max(b - a for a, b in zip(during, during[1:]))
    assert longest < 0.5 * (t1 - t0), (
        f"the other thread made no progress for {longest:.3f} s of a {t1 - t0:.3f} s kernel "
        f"call ({n}x{n} GEMM; {len(during) - 2} notes during it): is the GIL held?")


def test_every_binding_runs_its_kernel_through_gf_dispatch():
    """The test above shows that GF_DISPATCH releases the GIL; this one, on the source,
    that every binding calls its CPU and CUDA entry points (gf::<name>_cpu/_cuda) inside
    GF_DISPATCH, and that both of its definitions release the GIL."""
    path = REPO / "csrc" / "bindings" / "bindings.cpp"
    if not path.exists():
        pytest.skip(f"no source tree at {REPO}")
    src = path.read_text()
    spans = []
    for m in re.finditer(r"\bGF_DISPATCH\(", src):
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(src[i], 0)
            i += 1
        spans.append((m.start(), i))
    calls = [m for m in re.finditer(r"\bgf::\w+_(?:cpu|cuda)\(", src)]
    outside = [f"line {src.count(chr(10), 0, m.start()) + 1}: {m.group()}" for m in calls
               if not any(a <= m.start() < b for a, b in spans)]
    assert calls and not outside, outside
    definitions = re.findall(r"#define GF_DISPATCH\(.*?\} while \(0\)", src, re.S)
    assert len(definitions) == 2 and all("py::gil_scoped_release" in d for d in definitions)


# ------------------------------------------------------------------------------ op leaks
def _repeated_call(case):
    """A function that calls the op once the way its example says, outputs left to the op
    (but those it requires), then once with its first array in float64 (which raises
    TypeError): the error path must not leak either. Also returns the arrays it passes."""
    call = case.build(np.random.default_rng(0), **case.example)
    args = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in call.args.items()}
    args.update({n: poisoned(np, call.outputs[n]) for n in required_outputs(case, call)})
    first = next(k for k, v in args.items() if isinstance(v, np.ndarray))
    bad = dict(args, **{first: args[first].astype(np.float64)})

    def once():
        case.kernel(**args)
        try:
            case.kernel(**bad)
        except TypeError:
            pass
    return once, [v for v in args.values() if isinstance(v, np.ndarray)]


CALLS = 2000


@pytest.mark.parametrize("case", list(CASES.values()), ids=repr)
def test_op_leaks_no_python_object_or_reference(one_thread, case):
    """After a warm-up, CALLS more calls leave less than 8 KiB of traced memory alive once
    cyclic garbage is collected, and every argument's reference count where it was. Seen:
    0.1 to 2 KB (4 KB without the collection, under ASan), a few dozen short strings of the
    raising call's message that something keeps, not growing with the calls; a leak of one
    0-d array a call leaves ~200 KB, of one short string every 8 calls 14 KB."""
    once, arrays = _repeated_call(case)
    for _ in range(100):
        once()
    refs = [sys.getrefcount(a) for a in arrays]
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(CALLS):
            once()
        gc.collect()
        alive, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert alive < 8192, f"{case.op}: {alive} bytes still allocated after {CALLS} calls"
    assert [sys.getrefcount(a) for a in arrays] == refs, f"{case.op}: an argument's reference count grew"


ROUNDS = 10_000


@needs_rss
def test_ops_do_not_grow_the_process(one_thread):
    """ROUNDS rounds of every op (and its raising call) after a warm-up grow the resident set
    by less than 256 KiB (4 KiB seen): a C++ leak of 27 bytes per call of any single op
    would exceed it, and glibc's smallest allocation takes 32."""
    calls = [_repeated_call(case)[0] for case in CASES.values()]

    def run(rounds):
        for _ in range(rounds):
            for once in calls:
                once()

    run(1000)                                        # warm-up: allocator pools fill
    before = rss_bytes()
    run(ROUNDS)
    grown = rss_bytes() - before
    assert grown < 256 * 2 ** 10, (
        f"RSS grew {grown / 2 ** 20:.2f} MiB over {ROUNDS} rounds of every op: a leak of about "
        f"{grown // ROUNDS} bytes a round")


# ------------------------------------------------------------------------------ training leaks
STEPS = 200


def test_training_steps_leak_no_python_object(one_thread):
    """After a warm-up, STEPS Engine.train_step() calls on the CPU (the step gan_fast.train
    runs: batch, noise, both networks' steps and Adam, all through the kernels) leave less
    than 1 KiB of traced memory alive (48..112 bytes seen: the step counters' new ints). A
    leak of one 0-d array a step would leave ~20 KB, one Python int ~6 KB."""
    from gan_fast.engine import Engine

    engine = Engine.create(batch_size=16, device="cpu", seed=0)
    for _ in range(2 * engine.feed.steps_per_epoch):   # every buffer allocated, an epoch turned
        engine.train_step()
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(STEPS):
            engine.train_step()
        gc.collect()
        alive, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert alive < 1024, f"{alive} bytes still allocated after {STEPS} training steps"


@needs_rss
def test_training_memory_is_flat_after_the_first_epoch(mnist_dir, tmp_path, monkeypatch):
    """RSS at the end of every epoch (when its sample grid is written) over 12 epochs of 25
    steps of the CPU kernels, with logging every 5 steps and a sample grid every epoch
    (checkpoints only at the end: their cost is disk time, not memory): the last is within
    1 MiB of the one after epoch 2. Seen: 76 KiB (the run's history rows, growing by design);
    a leak of one 16 KB array a step adds 4 MiB over those 250 steps (seen: 4116 KiB)."""
    from gan_fast import images, trainer

    seen = []
    real_save = images.save_grid

    def save_and_measure(*args, **kwargs):
        seen.append(rss_bytes())
        return real_save(*args, **kwargs)
    monkeypatch.setattr(trainer, "save_grid", save_and_measure)
    gan_fast.train(backend="kernels", device="cpu", threads=1, batch_size=16, limit_train=400,
                   epochs=12, split="test", data_dir=str(mnist_dir), quiet=True, log_every=5,
                   sample_every=1, checkpoint_every=0, out_dir=str(tmp_path / "run"))
    assert len(seen) == 12
    grown = seen[-1] - seen[1]                       # seen[1]: after epoch 2
    assert grown < 2 ** 20, (f"RSS grew {grown / 2 ** 10:.0f} KiB from epoch 2 to 12 (250 "
                             f"steps); at each epoch, MiB: {[f'{r / 2 ** 20:.2f}' for r in seen]}")
