"""gan_fast.monitor: a training run's numbers read back from the training device, without
stalling it: every step's losses, D's outputs on the last logged batch, and whether the
parameters are still finite.

    monitor = Monitor(engine, log_every)
    engine.train_step(losses=monitor.next_row())      # the step writes its losses there
    monitor.record(step, n)
    if monitor.full() or log_now:
        window = monitor.exchange(log=log_now)        # the PREVIOUS window's numbers (CUDA)
    window = monitor.drain()                          # everything, now (checkpoints, ends)

Every step writes its three losses into a row of a device buffer of log_every rows. When
a window of steps is read back, the losses, the D-step logits of the last step (D(x) and
D(G(z)) before the D update), its G-step logits (D(G(z)) after it) and one isfinite
reduction per network's flat parameter buffer are copied to pinned host memory on the
engine's stream and an event is recorded (CUDA). exchange() hands back the window before
(its copies finished long ago, so waiting on its event costs nothing) and starts this
one: the host never waits for the device at a log point, the numbers arrive one window
late. drain() reads everything now (what a checkpoint, a rollback or the end of a run
needs first). On the CPU a window is read at once.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import to_host
from .engine import LOSSES

__all__ = ["Monitor", "Window"]


@dataclass
class Window:
    """The numbers of steps[0] .. steps[-1] (global indices, from 0)."""
    steps: list
    losses: np.ndarray            # [len(steps), 3] float64: loss_d_real, loss_d_fake, loss_g
    params_finite: dict           # network -> bool
    log: bool                     # a log row is wanted for the last step
    n: int = 0                    # the last step's batch size
    logits: np.ndarray | None = None       # [2n] D-step logits of the last step
    logits_after: np.ndarray | None = None  # [n] its G-step logits (through the updated D)
    images: int = 0               # images trained on in the window


class _Pending:
    """A window whose copies are queued on the device (CUDA)."""

    def __init__(self, window, staged, event):
        self.window, self.staged, self.event = window, staged, event

    def result(self):
        self.event.synchronize()
        w = self.window
        w.losses = np.array(self.staged["losses"][:len(w.steps)], dtype=np.float64)
        w.params_finite = {k: bool(self.staged[k][0]) for k in ("generator", "discriminator")}
        if w.log:
            w.logits = np.array(self.staged["logits"][:2 * w.n, 0], dtype=np.float64)
            w.logits_after = np.array(self.staged["after"][:w.n, 0], dtype=np.float64)
        return w


class Monitor:
    def __init__(self, engine, log_every):
        self.engine, self.xp = engine, engine.xp
        with engine._on_stream():         # zeroed before the steps write into it
            self.losses = self.xp.zeros((log_every, len(LOSSES)), dtype=self.xp.float32)
        self.steps, self.n, self.images = [], 0, 0
        self.pending = None
        self._staging = []                           # two sets of pinned buffers, in turn

    def next_row(self):
        """The loss buffer row the next step writes into."""
        return self.losses[len(self.steps)]

    def record(self, step, n):
        self.steps.append(step)
        self.n = n
        self.images += n

    def full(self):
        return len(self.steps) == self.losses.shape[0]

    def exchange(self, log):
        """Start reading this window back and return the previous one (None if none).
        On the CPU: this window, read at once."""
        previous = self.pending.result() if self.pending is not None else None
        self.pending = None
        if not self.steps:
            return previous
        window = self._take(log)
        if not self.engine.on_cuda:
            return window
        self.pending = self._stage(window)
        return previous

    def drain(self, log=False):
        """Every window not yet returned, read now (a list: the pending one, then this)."""
        out = []
        if self.pending is not None:
            out.append(self.pending.result())
            self.pending = None
        if self.steps:
            window = self._take(log)
            out.append(self._stage(window).result() if self.engine.on_cuda else window)
        return out

    def discard(self):
        """Forget what was recorded (a rollback restarts from a checkpoint)."""
        self.steps, self.images, self.pending = [], 0, None

    def _take(self, log):
        e = self.engine
        window = Window(steps=self.steps, losses=None, params_finite=None, log=log, n=self.n,
                        images=self.images)
        self.steps, self.images = [], 0
        if not e.on_cuda:
            window.losses = self.losses[:len(window.steps)].astype(np.float64)
            window.params_finite = {"generator": bool(np.isfinite(e.g_params).all()),
                                    "discriminator": bool(np.isfinite(e.d_params).all())}
            if log:
                b = e.buffers(window.n)
                window.logits = to_host(b.logits_snapshot)[:, 0].astype(np.float64)
                window.logits_after = to_host(b.d_gen.logits)[:, 0].astype(np.float64)
        return window

    def _stage(self, window):
        """Queue this window's copies into pinned host memory on the engine's stream.
        blocking=False: ndarray.get(stream=...) otherwise waits for the stream (CuPy >= 13),
        which would stall the host at every log point; the event says when they are done."""
        import cupy
        import cupyx
        e, xp = self.engine, self.xp
        if len(self._staging) < 2:
            rows = self.losses.shape[0]
            self._staging.append({
                "losses": cupyx.empty_pinned((rows, len(LOSSES)), np.float32),
                "generator": cupyx.empty_pinned(1, np.bool_),
                "discriminator": cupyx.empty_pinned(1, np.bool_),
                "logits": None, "after": None})
        staged = self._staging.pop(0)
        self._staging.append(staged)                 # the other set serves the next window
        with e.stream:
            self.losses.get(out=staged["losses"], stream=e.stream, blocking=False)
            for name, flat in (("generator", e.g_params), ("discriminator", e.d_params)):
                xp.isfinite(flat).all().reshape(1).get(out=staged[name], stream=e.stream,
                                                       blocking=False)
            if window.log:
                b = e.buffers(window.n)
                for key, src in (("logits", b.logits_snapshot), ("after", b.d_gen.logits)):
                    if staged[key] is None or staged[key].shape[0] < src.shape[0]:
                        staged[key] = cupyx.empty_pinned(src.shape, np.float32)
                    src.get(out=staged[key][:src.shape[0]], stream=e.stream, blocking=False)
            event = cupy.cuda.Event(disable_timing=True)
            event.record(e.stream)
        return _Pending(window, staged, event)
