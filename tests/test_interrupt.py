"""Interrupting a real training process (`python -m gan_fast train` in a subprocess):
SIGINT writes a checkpoint and exits with status 130; SIGKILL at random moments (tiny
epochs and a checkpoint every epoch, so many kills land inside a checkpoint write) always
leaves a loadable last checkpoint; resuming from it ends bit-identical to an uninterrupted
run on the CPU. Each subprocess runs a couple of seconds on the CPU kernels.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import gan_fast
from gan_fast import checkpoint as ckpt

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@pytest.fixture
def train_cmd(mnist_dir):
    def cmd(*args, quiet=True):
        base = [sys.executable, "-m", "gan_fast", "train", "--backend", "kernels",
                "--device", "cpu", "--threads", "2", "--data-dir", str(mnist_dir),
                "--split", "test", "--batch-size", "8", "--limit-train", "16", "--log-every", "1",
                "--sample-every", "0", "--no-download"]
        return base + (["--quiet"] if quiet else []) + [str(a) for a in args]
    return cmd


def _start(cmd, cwd):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, proc, timeout=90):
    t0 = time.monotonic()
    while not predicate():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"training exited early with {proc.returncode}:\n{out}\n{err}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail("training made no progress")
        time.sleep(0.02)


def _rows(path):
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_sigint_writes_a_checkpoint_and_exits_cleanly(train_cmd, tmp_path):
    out = tmp_path / "run"
    last = out / "checkpoints" / "last.npz"
    proc = _start(train_cmd("--epochs", 100000, "--out", out, quiet=False), tmp_path)
    _wait_for(last.exists, proc)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert f"interrupted: checkpoint written to {last}" in stdout
    assert "interrupted" in stderr and "Traceback" not in stderr
    arrays, meta = ckpt.load_checkpoint(last)
    ckpt.check_training_checkpoint(last, arrays, meta)
    steps = meta["counters"]["global_step"]
    assert steps > 0 and _rows(out / "metrics.jsonl") == steps   # saved at the last step
    assert not list(last.parent.glob("*.tmp"))


def test_sigkill_anywhere_leaves_a_loadable_checkpoint_and_resume_is_bitwise(train_cmd,
                                                                             tmp_path,
                                                                             mnist_dir):
    seed = secrets.randbits(32)
    print(f"kill-time seed {seed}")
    rng = np.random.default_rng(seed)
    out = tmp_path / "run"
    last = out / "checkpoints" / "last.npz"
    kills = []

    def start_and_kill(args, in_write):
        """Start training, wait until it is under way, kill it: at a random moment, or
        (in_write) as soon as a checkpoint write is in progress. Returns whether the kill
        landed inside a write: its temporary file is left behind."""
        for stale in last.parent.glob("*.tmp") if last.parent.exists() else ():
            stale.unlink()                  # so that only this process's writes count
        rows = _rows(out / "metrics.jsonl")
        proc = _start(train_cmd(*args), tmp_path)
        # Training is under way (a new metrics row, and a first checkpoint), then a random
        # moment: most of the time goes to 23 MB checkpoint writes every 2 steps.
        _wait_for(lambda: last.exists() and _rows(out / "metrics.jsonl") > rows + 1, proc)
        if in_write:
            _wait_for(lambda: any(last.parent.glob("*.tmp")), proc)
        else:
            time.sleep(float(rng.uniform(0.0, 0.4)))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        arrays, meta = ckpt.load_checkpoint(last)           # never a torn file
        ckpt.check_training_checkpoint(last, arrays, meta)
        torn = len(list(last.parent.glob("*.tmp")))
        kills.append((meta["counters"]["global_step"], torn))
        return torn > 0

    start_and_kill(["--epochs", 100000, "--out", out], in_write=False)
    # The second kill must land inside a checkpoint write (the write may finish between
    # seeing its temporary and the kill: then try again, a few times at most).
    resume = ["--epochs", 100000, "--resume", last]
    assert any(start_and_kill(resume, in_write=True) for _ in range(5)), (
        f"no kill landed inside a checkpoint write: {kills}")
    start_and_kill(resume, in_write=False)
    print("checkpoint step and stray temporaries after each kill:", kills)
    epoch = ckpt.load_checkpoint(last)[1]["counters"]["epoch"]
    assert epoch >= 1 and kills[-1][0] >= kills[0][0]
    # Finish in this process (no checkpoints on the way: they cost disk time, not bits):
    # resumed from the killed run's checkpoint vs a fresh uninterrupted run.
    settings = dict(epochs=epoch + 2, backend="kernels", device="cpu", threads=2, quiet=True,
                    checkpoint_every=0)
    resumed = gan_fast.train(resume=str(last), **settings)
    fresh = gan_fast.train(**settings, data_dir=str(mnist_dir), split="test", batch_size=8,
                           limit_train=16,
                           log_every=1, sample_every=0, out_dir=str(tmp_path / "fresh"))
    a, meta_a = ckpt.load_checkpoint(resumed.paths["checkpoint"])
    b, meta_b = ckpt.load_checkpoint(fresh.paths["checkpoint"])
    assert meta_a["counters"] == meta_b["counters"] == {
        "epoch": epoch + 2, "batch_in_epoch": 0, "global_step": 2 * (epoch + 2)}
    assert sorted(a) == sorted(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), f"{name} differs after kill + resume"
