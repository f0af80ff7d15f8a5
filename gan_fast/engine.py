"""gan_fast.engine: the training state of the GAN on one device, and one training step.
The public step engine: what gan_fast.train() runs, and what a benchmark, a test or a user
with a loop of their own uses directly.

    engine = Engine.create(batch_size=64, device="cuda", cuda_graph=True, seed=0)
    engine.run_steps(100)                  # batches and noise drawn on the device
    engine.synchronize()

    from gan_fast.engine import Engine, StepConfig
    from gan_fast.model import ModelSpec
    from gan_fast.backend import resolve_backend
    ops, xp, _ = resolve_backend("kernels", "cpu")
    engine = Engine(ModelSpec(), StepConfig(seed=0), ops, xp)
    losses = xp.zeros(3, xp.float32)               # loss_d_real, loss_d_fake, loss_g
    engine.step(0, images, idx, z, losses)         # images [K, 1, 28, 28] in [-1, 1],
                                                   # idx [n] rows of this batch, z [n, 100]
    engine.generator()(16)                         # the generator users get (EMA if any)

Two ways to drive it. step() takes a batch from the caller (host-side indices and noise: a
loop of one's own). train_step() runs step number s = engine.steps on the data given to
attach_data(), with everything drawn on the engine's device from counters (issue #13):
the batch is epoch e = s // steps_per_epoch's permutation (ops.batch_indices, a keyed
bijection per epoch) at position s % steps_per_epoch, the noise ops.random_normal keyed by
(stream_key(seed, NOISE), s), dropout keyed by s; Adam's and the EMA's step counts are
s + 1. Those two numbers live in `counters` (int64 [2] on the device: s, s + 1), which the
kernels read when they run and one in-place add advances, so on CUDA a whole step can be
captured once as a CUDA graph (gan_fast.cuda_graph) and replayed with one launch
(cuda_graph=True; a batch size, e.g. an epoch's last partial batch, captures its own). The
first step of each batch size runs launch by launch (the capture's warm-up); replays are
bitwise the same work. Nothing crosses the host boundary inside a step; the engine's work
runs in order on its own CUDA stream (engine.stream, non-blocking: it does not wait for
CuPy's default stream by itself). So every method that touches the state runs it on that
stream, and the two streams are ordered with events where they meet: the engine waits
for what the caller queued before handing it arrays (construction, attach_data, step),
step() returns with the caller's stream waiting for the step, and what the caller reads
afterwards on another stream (arrays(), generator(), non_finite()) is read after
synchronize(). train_step() orders nothing (it would cost each step): read its results
after synchronize(), or on engine.stream as gan_fast.monitor does. On the CPU the same ops
draw the same numbers (the kernels are bitwise equal across devices).

One training step (batch size n, step s counted from 0; gan_fast.model has the networks):
  1. G(z) in training mode (batch statistics; running statistics updated). A conditional
     model draws G(z, y) for the digits y of the real batch.
  2. Discriminator step: D runs ONCE on the concatenated batch [real; G(z)] of 2n images
     (D has no BatchNorm, so this equals two separate passes; the dropout mask covers all
     2n rows, so every example draws its own; the minibatch-stddev feature keeps the two
     halves apart). The loss is the SUM of the two BCE means, BCE(D(real), real_label) +
     BCE(D(G(z)), 0), as in PyTorch's DCGAN example (errD_real + errD_fake); real_label < 1
     is one-sided label smoothing (Salimans et al. 2016). G(z) is treated as a constant.
     One Adam step for D (lr_d).
  3. Generator step, on the SAME z and G(z) as step 2 (PyTorch's DCGAN example does the
     same; it saves a generator forward pass): the non-saturating loss BCE(D(G(z)), 1)
     through the updated D (fresh dropout masks), backpropagated into G without computing
     D's weight gradients. One Adam step for G (lr_g; lr_g != lr_d is the two time-scale
     update rule, Heusel et al. 2017).
  4. With ema_decay > 0, an exponential moving average of G's parameters (ema_update:
     decay warmed up as min(decay, (1 + t)/(10 + t)), TensorFlow's num_updates ramp): the
     generator users get, sample and evaluate. Its BatchNorm statistics are its own,
     re-estimated for the averaged weights whenever it is handed out (standing statistics:
     the mean of the batch statistics of STANDING_BATCHES fixed noise batches, as
     torch.optim.swa_utils.update_bn does for averaged weights); an average of the trained
     generator's running statistics fits the averaged weights less well (benchmarks/
     RESULTS.md, the quality study).
Dropout seeds are a hash of (seed, step, layer, pass) (gan_fast.model.dropout_seed).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from . import model as M
from .backend import resolve_backend, to_host

__all__ = ["StepConfig", "Engine", "StepBuffers", "Feed", "LOSSES", "DATA_STREAM",
           "NOISE_STREAM"]

LOSSES = ("loss_d_real", "loss_d_fake", "loss_g")
STANDING_BATCHES, STANDING_BATCH_SIZE = 32, 256   # 8,192 samples re-estimate EMA statistics
DATA_STREAM, NOISE_STREAM = 2, 4                    # model.stream_key(seed, ...) of each


@dataclass(frozen=True)
class StepConfig:
    """The numbers of the training algorithm (a recipe of gan_fast.config resolves into
    one, with a ModelSpec)."""
    lr_d: float = 2e-4          # Adam learning rate of the discriminator
    lr_g: float = 2e-4          # Adam learning rate of the generator
    beta1: float = 0.5
    beta2: float = 0.999
    adam_eps: float = 1e-8
    real_label: float = 1.0     # D's target for real images (< 1: one-sided smoothing)
    ema_decay: float = 0.0      # EMA of the generator (0: none)
    seed: int = 0               # initialisation and dropout masks


def _gather(xp, data, idx, out):
    """out[...] = data[idx] along axis 0, into out without allocating."""
    if xp is np:
        np.take(data, idx, axis=0, out=out, mode="clip")  # indices are valid; 'clip' avoids a buffer
    else:
        xp.take(data, idx, axis=0, out=out)


class StepBuffers:
    """Everything one step of batch size n touches, allocated once."""

    def __init__(self, engine, n):
        xp, real_label = engine.xp, engine.config.real_label
        self.n = n
        self.x = xp.empty((2 * n, 1, 28, 28), dtype=xp.float32)   # [real; fake]
        self.real, self.fake = self.x[:n], self.x[n:]
        self.g = engine.g_net.workspace(xp, n, image=self.fake)
        self.d = engine.d_net.workspace(xp, 2 * n)                 # D step, 2n rows
        self.d_gen = self.d.rows(n, 2 * n)                         # G step, the fake rows
        targets = np.concatenate([np.full((n, 1), real_label, np.float32),
                                  np.zeros((n, 1), np.float32)])
        self.targets = xp.asarray(targets)
        self.targets_real, self.targets_fake = self.targets[:n], self.targets[n:]
        self.ones = xp.ones((n, 1), dtype=xp.float32)
        self.logits_real, self.logits_fake = self.d.logits[:n], self.d.logits[n:]
        self.dlogits_real, self.dlogits_fake = self.d.dlogits[:n], self.d.dlogits[n:]
        self.logits_snapshot = xp.empty((2 * n, 1), dtype=xp.float32)
        self.segments = ((0, n), (n, 2 * n))
        # Conditional: the digits of [real; fake] (the fake rows repeat the real ones).
        self.labels = xp.empty(2 * n, dtype=xp.int64) if engine.spec.conditional else None
        # train_step: the batch's dataset rows, its noise and its losses, drawn on the device.
        self.idx = xp.empty(n, dtype=xp.int64)
        self.z = xp.empty((n, M.Z_DIM), dtype=xp.float32)
        self.losses = xp.empty(len(LOSSES), dtype=xp.float32)


class Feed:
    """The training data on the engine's device and how train_step draws from it: images
    [K, 1, 28, 28] in [-1, 1] (and labels [K] int64), batch_size rows a step, the last
    partial batch of an epoch dropped (drop_last) or trained on when it has at least 2 rows
    (BatchNorm needs 2)."""

    def __init__(self, xp, images, labels, batch_size, drop_last):
        self.images = xp.ascontiguousarray(xp.asarray(images, dtype=xp.float32))
        self.labels = (None if labels is None
                       else xp.ascontiguousarray(xp.asarray(labels, dtype=xp.int64)))
        self.n_items, self.batch_size = int(self.images.shape[0]), int(batch_size)
        if not 2 <= self.batch_size <= self.n_items:
            raise ValueError(f"batch_size must be in [2, {self.n_items}] (the images), got "
                             f"{batch_size}")
        full, tail = divmod(self.n_items, self.batch_size)
        self.batch_sizes = [self.batch_size] * full + ([tail] if not drop_last and tail >= 2
                                                       else [])
        self.steps_per_epoch = len(self.batch_sizes)

    def size(self, step):
        """The batch size of global step `step`."""
        return self.batch_sizes[step % self.steps_per_epoch]


class Engine:
    """The training state on one device (parameters, Adam moments, BatchNorm statistics,
    the EMA generator, spectral-norm vectors, step counts) and the step.

    ops: an op module (gan_fast.ops or gan_fast.reference); xp: numpy or cupy, where the
    state lives. The state's arrays are attributes (g_params, d_params, ...); arrays()
    and load() move it to and from a checkpoint's {name: NumPy array}."""

    def __init__(self, spec: M.ModelSpec, config: StepConfig, ops, xp, cuda_graph=False):
        self.spec, self.config, self.ops, self.xp = spec, config, ops, xp
        self.g_net, self.d_net = M.GeneratorNet(spec), M.DiscriminatorNet(spec)
        gl, dl = self.g_net.layout, self.d_net.layout
        init_rng = np.random.default_rng([config.seed, 0])
        g_host = M.init_params(gl, init_rng)
        d_host = M.init_params(dl, init_rng)
        f32 = xp.float32
        self.g_params, self.d_params = xp.asarray(g_host), xp.asarray(d_host)
        self.g_grads, self.d_grads = xp.zeros(gl.size, f32), xp.zeros(dl.size, f32)
        self.g_m, self.g_v = xp.zeros(gl.size, f32), xp.zeros(gl.size, f32)
        self.d_m, self.d_v = xp.zeros(dl.size, f32), xp.zeros(dl.size, f32)
        self.bn_stats = self.g_net.new_bn_stats(xp)
        self.g_steps = self.d_steps = 0
        self.gp, self.gg = gl.views(self.g_params), gl.views(self.g_grads)
        self.dp, self.dg = dl.views(self.d_params), dl.views(self.d_grads)
        self.ema_params = self.ema_bn = None
        if config.ema_decay > 0:
            self.ema_params, self.ema_bn = self.g_params.copy(), self.bn_stats.copy()
            self._standing_at = None         # g_steps when ema_bn was last re-estimated
        self.sn_u = self.sn = None
        if spec.spectral_norm:
            self.sn_u = self.d_net.new_sn_state(xp, np.random.default_rng([config.seed, 3]))
            self.sn = self.d_net.sn_buffers(xp)
        self._buffers = {}
        # train_step's counters [s, s + 1] on the device, its data, stream and graphs.
        self.counters = xp.asarray(np.array([0, 1], dtype=np.int64))
        self._counters_at = 0
        self.feed = None
        self.data_key = M.stream_key(config.seed, DATA_STREAM)
        self.noise_key = M.stream_key(config.seed, NOISE_STREAM)
        self.on_cuda = xp is not np
        self.stream = None
        if self.on_cuda:
            import cupy
            self.stream = cupy.cuda.Stream(non_blocking=True)
        self.cuda_graph = bool(cuda_graph) and self.on_cuda
        self._graphs = {}
        self._wait_for_caller()             # the state above was uploaded on CuPy's stream

    @classmethod
    def create(cls, batch_size=128, device="auto", cuda_graph=True, seed=0, spec=None,
               config=None, backend="kernels", images=None, labels=None, drop_last=True):
        """An engine with data attached, ready for run_steps (benchmarks, quick looks):
        the seed's model and StepConfig(seed=seed) unless given, on the device chosen as
        gan_fast.backend.resolve_backend does; images default to 4·batch_size random ones
        (uniform in [-1, 1], seeded), labels to digits 0..9 in turn when the model is
        conditional."""
        ops, xp, _ = resolve_backend(backend, device)
        spec = spec or M.ModelSpec()
        engine = cls(spec, config or StepConfig(seed=seed), ops, xp, cuda_graph)
        if images is None:
            rng = np.random.default_rng([seed, 6])
            images = rng.uniform(-1, 1, (4 * batch_size, 1, 28, 28)).astype(np.float32)
        if labels is None and spec.conditional:
            labels = np.arange(images.shape[0], dtype=np.int64) % M.N_CLASSES
        engine.attach_data(images, labels, batch_size, drop_last)
        return engine

    def buffers(self, n):
        if n not in self._buffers:
            with self._on_stream():          # their uploads and fills ordered before the step
                self._buffers[n] = StepBuffers(self, n)
        return self._buffers[n]

    def set_learning_rates(self, lr_d, lr_g):
        """Change both learning rates (the trainer's rollback halves them). Captured steps
        hold the old ones as launch arguments: they are captured again."""
        self.config = dataclasses.replace(self.config, lr_d=lr_d, lr_g=lr_g)
        self._graphs.clear()

    @property
    def captured(self):
        """The batch sizes whose step has been captured as a CUDA graph."""
        return tuple(sorted(self._graphs))

    @property
    def steps(self):
        """Training steps done (the index of the next one)."""
        return self.d_steps

    def set_steps(self, steps):
        """Continue at step `steps` (a resumed or rolled-back run): Adam's step counts, and
        the device counters before the next train_step."""
        self.d_steps = self.g_steps = int(steps)

    def _write_counters(self):
        """The device counters [s, s + 1] for s = self.steps, when step() or set_steps()
        moved the host's count (train_step advances both itself)."""
        if self._counters_at == self.d_steps:
            return
        values = np.array([self.d_steps, self.d_steps + 1], dtype=np.int64)
        if self.on_cuda:
            self.counters.set(values)       # into the same memory: captured steps read it
        else:
            self.counters[...] = values
        self._counters_at = self.d_steps

    def _on_stream(self):
        """The engine's CUDA stream as CuPy's current stream (a no-op on the CPU)."""
        return self.stream if self.stream is not None else _NoStream()

    def synchronize(self):
        """Wait until the engine's queued work has finished (a no-op on the CPU)."""
        if self.stream is not None:
            self.stream.synchronize()

    def _wait_for_caller(self):
        """The engine's stream waits for the work queued so far on CuPy's current stream
        (arrays the caller made or filled there and hands to the engine)."""
        if self.stream is not None:
            import cupy
            caller = cupy.cuda.get_current_stream()
            if caller.ptr != self.stream.ptr:
                self.stream.wait_event(caller.record())

    def _caller_waits(self):
        """CuPy's current stream waits for the work queued so far on the engine's stream
        (results the caller reads there)."""
        if self.stream is not None:
            import cupy
            caller = cupy.cuda.get_current_stream()
            if caller.ptr != self.stream.ptr:
                caller.wait_event(self.stream.record())

    # -- train_step: the data and every random number drawn on the device
    def attach_data(self, images, labels=None, batch_size=128, drop_last=True):
        """The data train_step draws its batches from (see Feed)."""
        if self.spec.conditional and labels is None:
            raise ValueError("labels: a conditional model needs the images' digits")
        self._wait_for_caller()             # CuPy images are used as they are, not copied
        with self._on_stream():
            self.feed = Feed(self.xp, images, labels if self.spec.conditional else None,
                             batch_size, drop_last)
        self._graphs.clear()
        return self.feed

    def train_step(self, losses=None):
        """Step number self.steps on the attached data (see the module docstring); returns
        its batch size. losses: a [3] buffer that receives loss_d_real, loss_d_fake,
        loss_g (copied on the engine's stream: read it after synchronize(), or on
        engine.stream). The D-step logits are always kept in the step's buffers
        (logits_snapshot), for logging."""
        if self.feed is None:
            raise RuntimeError("train_step needs data: call attach_data first")
        n = self.feed.size(self.d_steps)
        b = self.buffers(n)
        with self._on_stream():
            self._write_counters()
            graph = self._graphs.get(n)
            if graph is not None:
                graph.launch(self.stream)
            else:
                self._device_step(b)
            if losses is not None:
                losses[...] = b.losses
        self.d_steps += 1
        self.g_steps += 1
        self._counters_at = self.d_steps
        if graph is None and self.cuda_graph:   # the step above was the capture's warm-up
            # Captured after the step is counted: a capture that fails (CaptureError) leaves
            # the host's count and the device counters in agreement.
            from .cuda_graph import capture
            with self._on_stream():
                self._graphs[n] = capture(lambda: self._device_step(b), self.stream, keep=(b,))
        return n

    def run_steps(self, k):
        """k train_steps, nothing read back (benchmarks)."""
        for _ in range(k):
            self.train_step()

    def _device_step(self, b):
        """One step whose batch, noise and step counts come from device memory."""
        ops, f, n = self.ops, self.feed, b.n
        s, t = self.counters[0:1], self.counters[1:2]
        ops.batch_indices(b.idx, self.data_key, s, f.n_items, f.batch_size, f.steps_per_epoch)
        ops.gather_rows(f.images, b.idx, out=b.real)
        if self.spec.conditional:
            ops.gather_rows(f.labels, b.idx, out=b.labels[:n])
            ops.gather_rows(f.labels, b.idx, out=b.labels[n:])
        ops.random_normal(b.z, self.noise_key, s)
        self._core(b, b.z, s, t, b.losses, snapshot=True)
        self.counters += 1

    # -- the step
    def step(self, step, images, idx, z, losses, labels=None, snapshot=False):
        """One D step and one G step on the real images images[idx] and noise z [n, 100].
        step: the global step index (dropout seeds). images: [K, 1, 28, 28] in [-1, 1] on
        the engine's device; idx [n] int64 rows of this batch; labels: the [K] int64 digits
        of images (conditional models only). losses: a [3] buffer receiving loss_d_real,
        loss_d_fake, loss_g. snapshot: keep the D-step logits (for logging). On CUDA the
        step runs on the engine's stream after the work queued on CuPy's current stream
        (where the arguments were made), and that stream then waits for the step, so the
        caller reads losses there as after any op."""
        xp = self.xp
        n = z.shape[0]
        if self.spec.conditional and labels is None:
            raise ValueError("labels: a conditional model needs the images' digits")
        b = self.buffers(n)
        self._wait_for_caller()
        with self._on_stream():
            _gather(xp, images, idx, b.real)
            if self.spec.conditional:
                _gather(xp, labels, idx, b.labels[:n])
                b.labels[n:] = b.labels[:n]
            self._core(b, z, step, self.d_steps + 1, losses, snapshot)
        self._caller_waits()
        self.set_steps(self.d_steps + 1)            # the device counters follow when needed

    def _core(self, b, z, step, adam_step, losses, snapshot):
        """The D step and the G step on b.real and noise z. step: dropout's step (an int or
        a device counter); adam_step: Adam's and the EMA's step count (likewise)."""
        ops, cfg, seed = self.ops, self.config, self.config.seed
        n = b.n
        y = y_fake = None
        if self.spec.conditional:
            y, y_fake = b.labels, b.labels[n:]
        self.g_net.forward(ops, self.gp, self.bn_stats, b.g, z, y_fake, training=True)  # -> b.fake
        # Discriminator step on [real; fake].
        w = self.d_net.weights(ops, self.dp, self.sn, self.sn_u)
        self.d_net.forward(ops, w, b.d, b.x, seed, step, 0, y, b.segments)
        ops.bce_with_logits(b.logits_real, b.targets_real, losses[0, ...], b.dlogits_real)
        ops.bce_with_logits(b.logits_fake, b.targets_fake, losses[1, ...], b.dlogits_fake)
        if snapshot:
            b.logits_snapshot[...] = b.d.logits
        self.d_net.backward(ops, w, self.dg, b.d, b.x, seed, step, 0, need_dweights=True,
                            need_dx=False, labels=y, segments=b.segments, sn=self.sn,
                            sn_u=self.sn_u)
        ops.adam_step(self.d_params, self.d_grads, self.d_m, self.d_v, adam_step, cfg.lr_d,
                      cfg.beta1, cfg.beta2, cfg.adam_eps)
        # Generator step: the same G(z), target 1, through the updated D.
        w = self.d_net.weights(ops, self.dp, self.sn, self.sn_u)
        self.d_net.forward(ops, w, b.d_gen, b.fake, seed, step, 1, y_fake)
        ops.bce_with_logits(b.d_gen.logits, b.ones, losses[2, ...], b.d_gen.dlogits)
        self.d_net.backward(ops, w, None, b.d_gen, b.fake, seed, step, 1, need_dweights=False,
                            need_dx=True, labels=y_fake)
        self.g_net.backward(ops, self.gp, self.gg, b.g, z, b.d_gen.dx)
        ops.adam_step(self.g_params, self.g_grads, self.g_m, self.g_v, adam_step, cfg.lr_g,
                      cfg.beta1, cfg.beta2, cfg.adam_eps)
        if self.ema_params is not None:
            ops.ema_update(self.ema_params, self.g_params, cfg.ema_decay, adam_step)

    # -- what users get
    def generator(self, ema=True):
        """The generator as a function (gan_fast.model.Generator), sharing the engine's
        arrays: the EMA generator when the recipe has one and ema is True (its standing
        statistics re-estimated first if training moved it since). The engine's queued work
        is finished first: the generator may run on any stream."""
        if ema and self.ema_params is not None:
            self.standing_statistics()
            params, bn = self.ema_params, self.ema_bn
        else:
            params, bn = self.g_params, self.bn_stats
        self.synchronize()
        return M.Generator(self.ops, self.xp, params, bn, self.spec)

    def standing_statistics(self):
        """Re-estimate the EMA generator's BatchNorm statistics for its current weights (if
        training moved them since the last time): STANDING_BATCHES batches of fixed noise
        (from default_rng([seed, 5])) through it in training mode with momentum 1/(k + 1)
        at batch k, which leaves each running statistic the mean of the batches' (the
        variance's unbiased, as BatchNorm's running estimate is). On CUDA it is queued on
        the engine's stream, after the training steps that moved the weights."""
        if self._standing_at == self.g_steps:
            return
        xp, n = self.xp, STANDING_BATCH_SIZE
        rng = np.random.default_rng([self.config.seed, 5])
        with self._on_stream():
            z = xp.asarray(rng.standard_normal((STANDING_BATCHES, n, M.Z_DIM), dtype=np.float32))
            labels = (xp.asarray(np.arange(n, dtype=np.int64) % M.N_CLASSES)
                      if self.spec.conditional else None)
            ws = self.g_net.workspace(xp, n)
            p = self.g_net.layout.views(self.ema_params)
            for k in range(STANDING_BATCHES):
                self.g_net.forward(self.ops, p, self.ema_bn, ws, z[k], labels, training=True,
                                   momentum=1.0 / (k + 1))
        self._standing_at = self.g_steps

    def non_finite(self):
        """(network, tensor name) of the first parameter tensor holding NaN or inf, or
        None. One isfinite pass per network over its flat buffer, after the engine's queued
        work."""
        xp = self.xp
        self.synchronize()
        for net, flat, views in (("generator", self.g_params, self.gp),
                                 ("discriminator", self.d_params, self.dp)):
            if not bool(xp.isfinite(flat).all()):
                return net, next((k for k, v in views.items() if not bool(xp.isfinite(v).all())),
                                 "?")
        return None

    # -- checkpoint state (names: gan_fast.checkpoint.expected_arrays)
    def _named(self, standing=True):
        if standing and self.ema_params is not None:
            self.standing_statistics()
        out = {"g.params": self.g_params, "g.adam_m": self.g_m, "g.adam_v": self.g_v,
               "d.params": self.d_params, "d.adam_m": self.d_m, "d.adam_v": self.d_v}
        out.update(_bn_named("g", self.g_net, self.bn_stats))
        if self.ema_params is not None:
            out["g_ema.params"] = self.ema_params
            out.update(_bn_named("g_ema", self.g_net, self.ema_bn))
        if self.sn_u is not None:
            for name, view in self.d_net.sn_layout.views(self.sn_u).items():
                out[f"d.sn.{name}"] = view
        return out

    def arrays(self):
        """{name: NumPy copy} of the whole training state."""
        named = self._named()                # may queue the standing statistics
        self.synchronize()
        return {name: to_host(a) for name, a in named.items()}

    def adam_steps(self):
        return {"g": self.g_steps, "d": self.d_steps}

    def load(self, arrays, adam_steps):
        """Load a checkpoint's arrays (checked by gan_fast.checkpoint) and Adam step counts.
        The copies run on the engine's stream (after its queued steps, before the next) and
        are finished when this returns."""
        xp = self.xp
        self._wait_for_caller()
        with self._on_stream():
            for name, dst in self._named(standing=False).items():
                dst[...] = xp.asarray(arrays[name])
        self.synchronize()
        if adam_steps["g"] != adam_steps["d"]:
            raise ValueError(f"adam_steps: the two networks took the same steps, got {adam_steps}")
        self.set_steps(adam_steps["d"])
        if self.ema_params is not None:
            self._standing_at = self.g_steps      # the checkpoint's are the standing ones


def _bn_named(prefix, g_net, flat):
    return {f"{prefix}.{name}": view for name, view in g_net.bn_layout.views(flat).items()}


class _NoStream:
    """The CPU's stand-in for a CUDA stream context."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
