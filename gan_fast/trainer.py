"""gan_fast.trainer: gan_fast.train(), the GAN training loop on an op backend.

    import gan_fast
    result = gan_fast.train(epochs=5, batch_size=64, out_dir="runs/x")
    images = result.generator(16)             # numpy [16, 1, 28, 28] in [-1, 1]

One training step (batch size N, step s counted from 0; gan_fast.model has the networks):
  1. z [N, 100] ~ N(0, 1); G(z) in training mode (batch statistics; running stats updated).
  2. Discriminator step: D runs ONCE on the concatenated batch [real; G(z)] of 2N images
     (D has no BatchNorm, so this equals two separate passes; the dropout mask covers all
     2N rows, so every example draws its own). The loss is the SUM of the two BCE means,
     BCE(D(real), 1) + BCE(D(G(z)), 0), as in PyTorch's DCGAN example (errD_real +
     errD_fake): each half's gradient is (σ − t)/N. G(z) is treated as a constant. One Adam
     step for D.
  3. Generator step, on the SAME z and G(z) as step 2 (PyTorch's DCGAN example does the
     same; it saves a generator forward pass): the non-saturating loss BCE(D(G(z)), 1)
     through the updated D (fresh dropout masks), backpropagated into G without computing
     D's weight gradients. One Adam step for G.
  Adam: lr 2e-4, β1 0.5, β2 0.999, eps 1e-8 (TrainConfig). Images are scaled to [-1, 1].

Randomness, all from TrainConfig.seed: initialisation from default_rng([seed, 0]); the
fixed sample noise from default_rng([seed, 1]); one data generator default_rng([seed, 2])
which, at the start of each epoch, draws the shuffling permutation and then the noise of
every step of that epoch; dropout seeds are a hash of (seed, step, layer, pass)
(gan_fast.model.dropout_seed). A checkpoint holds the data generator's state at the start
of its epoch and the position in the epoch, so a resumed run redraws the same epoch and
continues bit-identically.

On CUDA (device="cuda", CuPy arrays) the whole state lives on the GPU: the training images
are uploaded once, the permutation and the epoch's noise once per epoch, and a step
launches kernels without reading anything back. Losses are written into a device buffer;
the host reads it (one synchronisation) only every log_every steps, at the end of an epoch
and when it checkpoints. That is also when losses and parameters are checked for NaN/inf
(one isfinite pass over each network's flat parameter buffer), so a checkpoint is only
ever written from a state that passed the check.

Divergence (TrainConfig.on_divergence): "stop" (the default) raises NonFiniteLossError
naming the loss or parameter tensor and the step; the last checkpoint is left as it was.
"rollback" reloads checkpoints/last.npz (parameters, Adam state, BatchNorm statistics,
counters and the data generator), halves the learning rate of both networks and trains on
from there; the same data order, noise and dropout masks are redrawn, so only the smaller
step changes the trajectory. It does so at most MAX_ROLLBACKS times, then stops as "stop"
would; without a checkpoint to go back to it stops at once. The halved lr is saved in later
checkpoints' config, so a resume continues with it. metrics.jsonl keeps the rows of the
abandoned stretch (TrainResult.history drops them); a "rollback" message says where to.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import pathlib
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import checkpoint as ckpt
from . import model as M
from .data import load_mnist, scale_images
from .images import save_grid, save_loss_curve

__all__ = ["TrainConfig", "TrainResult", "train", "NonFiniteLossError", "ModeCollapseWarning",
           "resolve_backend", "MAX_ROLLBACKS"]

MAX_ROLLBACKS = 3   # on_divergence="rollback": give up (raise) after this many


def _doc(text):
    return {"help": text}


@dataclass
class TrainConfig:
    """Every setting of gan_fast.train(); each has a default. The command line
    (`gan-fast train --help`) is generated from these fields."""

    epochs: int = field(default=20, metadata=_doc(
        "number of passes over the training images"))
    batch_size: int = field(default=128, metadata=_doc(
        "real images per step (the discriminator also sees batch_size generated ones)"))
    lr: float = field(default=2e-4, metadata=_doc("Adam learning rate of both networks"))
    beta1: float = field(default=0.5, metadata=_doc(
        "Adam β1 (0.5, not 0.9: less momentum keeps the two-player game stable; DCGAN)"))
    beta2: float = field(default=0.999, metadata=_doc("Adam β2"))
    adam_eps: float = field(default=1e-8, metadata=_doc("Adam epsilon"))
    seed: int = field(default=0, metadata=_doc(
        "seed of everything random: initialisation, shuffling, noise, dropout"))
    data_dir: str | None = field(default=None, metadata=_doc(
        "folder with the MNIST .gz files (else $GAN_FAST_DATA, ~/.cache/gan_fast/mnist, "
        "else download)"))
    download: bool = field(default=True, metadata=_doc(
        "download MNIST when it is not found (else fail with instructions)"))
    split: str = field(default="train", metadata=_doc(
        "which MNIST images to train on: train (60,000), test (10,000) or all (70,000)"))
    limit_train: int | None = field(default=None, metadata=_doc(
        "use only the first K images of the split (quick runs and tests)"))
    drop_last: bool = field(default=True, metadata=_doc(
        "drop the last partial batch of each epoch (a different one each epoch, as the "
        "order is reshuffled); if false it is trained on as a smaller batch, unless it "
        "has fewer than 2 images (BatchNorm needs 2)"))
    out_dir: str | None = field(default=None, metadata=_doc(
        "where config.json, metrics.jsonl, samples/, checkpoints/ and loss_curve.png go "
        "(default runs/<date-time>; on resume, the checkpoint's run folder)"))
    device: str = field(default="auto", metadata=_doc(
        "cpu, cuda, or auto (cuda when gan_fast.cuda_available(), else cpu)"))
    backend: str = field(default="kernels", metadata=_doc(
        "kernels (gan_fast.ops) or reference (gan_fast.reference, NumPy, slow, cpu only)"))
    threads: int | None = field(default=None, metadata=_doc(
        "CPU threads of the kernels (gan_fast.set_num_threads; default: as is)"))
    log_every: int = field(default=50, metadata=_doc(
        "every this many steps: read the losses back, append to metrics.jsonl and history, "
        "update the progress bar, check for NaN/inf"))
    sample_every: int = field(default=1, metadata=_doc(
        "write the 8x8 fixed-noise sample grid every this many epochs (0: never)"))
    checkpoint_every: int = field(default=1, metadata=_doc(
        "write checkpoints/last.npz every this many epochs (0: only at the end and on "
        "Ctrl-C)"))
    keep_checkpoints: bool = field(default=False, metadata=_doc(
        "also keep checkpoints/epoch_XXXX.npz for every checkpointed epoch"))
    eval_every: int = field(default=0, metadata=_doc(
        "score the generator with gan_fast.evaluate every this many epochs (0: never): an "
        "\"eval\" row in history and metrics.jsonl, and a ModeCollapseWarning when the "
        "classes covered drop or the class histogram's KL to uniform rises sharply"))
    eval_samples: int = field(default=10000, metadata=_doc(
        "generated images per evaluation (noise seed: the run's seed)"))
    max_steps: int | None = field(default=None, metadata=_doc(
        "stop after this many steps in total, checkpointing there (tests, quick looks; "
        "not inherited on resume)"))
    resume: str | None = field(default=None, metadata=_doc(
        "checkpoint to continue from; settings not given are taken from it, except "
        "device, backend, threads, quiet and max_steps"))
    quiet: bool = field(default=False, metadata=_doc("no progress bars or messages"))
    on_divergence: str = field(default="stop", metadata=_doc(
        "when a loss or parameter becomes NaN/inf: stop (raise, naming it and the step) or "
        "rollback (reload the last checkpoint, halve lr, go on; at most 3 times)"))

    # Settings that define the trajectory: a resumed run must not change them.
    TRAJECTORY = ("batch_size", "lr", "beta1", "beta2", "adam_eps", "seed", "split",
                  "limit_train", "drop_last")


@dataclass
class TrainResult:
    """What train() returns."""
    generator: object                   # callable: generator(n, seed=None) -> [n, 1, 28, 28]
    history: list                       # one dict per logged step (see metrics.jsonl), and
                                        # one {"kind": "eval", ...} per evaluation
    paths: dict                         # name -> path of everything written
    config: TrainConfig
    steps: int                          # global steps completed
    epochs_completed: int


class ModeCollapseWarning(UserWarning):
    """An evaluation found fewer digits than an earlier one, or a class histogram much
    further from uniform (KL_RISE nats above the best so far): the generator may be
    collapsing onto a few modes."""


# How far the class histogram's KL to uniform may rise above its best before a warning:
# losing one digit of ten entirely raises it by ln(10/9) = 0.105 nats.
KL_RISE = 0.1


class NonFiniteLossError(FloatingPointError):
    """A loss or a parameter became NaN or infinite; the message names the loss (or the
    parameter tensor) and the step."""


# ------------------------------------------------------------------------------ backends
def resolve_backend(backend, device):
    """(ops module, array module, device name) for a backend ("kernels", "reference" or a
    module with the gan_fast.ops API) and device ("cpu", "cuda", "auto")."""
    from . import cuda_available, ops, reference

    if isinstance(backend, str):
        if backend not in ("kernels", "reference"):
            raise ValueError(f"backend must be 'kernels' or 'reference', got {backend!r}")
        mod = ops if backend == "kernels" else reference
    else:
        mod = backend
    if device == "auto":
        # Only gan_fast.ops takes CuPy arrays; the reference and custom backends stay on the CPU.
        device = "cuda" if mod is ops and cuda_available() else "cpu"
    if device == "cpu":
        return mod, np, "cpu"
    if device != "cuda":
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}")
    if mod is reference:
        raise ValueError("the reference backend is NumPy only; use device='cpu' with it")
    if not cuda_available():
        raise RuntimeError("device='cuda' but no usable CUDA device: gan_fast.cuda_available()"
                           " is False (built without CUDA, no GPU visible, or CuPy missing)")
    import cupy
    return mod, cupy, "cuda"


def _backend_name(backend):
    return backend if isinstance(backend, str) else getattr(backend, "__name__", "custom")


def _to_host(a):
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)


def _gather(xp, data, idx, out):
    """out[...] = data[idx] along axis 0, into out without allocating."""
    if xp is np:
        np.take(data, idx, axis=0, out=out, mode="clip")  # indices are valid; 'clip' avoids a buffer
    else:
        xp.take(data, idx, axis=0, out=out)


# ------------------------------------------------------------------------------ one step
class _StepBuffers:
    """Everything one step of batch size n touches, allocated once."""

    def __init__(self, xp, n):
        self.n = n
        self.x = xp.empty((2 * n, 1, 28, 28), dtype=xp.float32)   # [real; fake]
        self.real, self.fake = self.x[:n], self.x[n:]
        self.g = M.GeneratorWorkspace(xp, n, image=self.fake)
        self.d = M.DiscriminatorWorkspace(xp, 2 * n)                # D step, 2n rows
        self.d_gen = self.d.rows(n, 2 * n)                          # G step, the fake rows
        targets = np.concatenate([np.ones((n, 1), np.float32), np.zeros((n, 1), np.float32)])
        self.targets = xp.asarray(targets)
        self.ones = self.targets[:n]
        self.logits_real, self.logits_fake = self.d.logits[:n], self.d.logits[n:]
        self.dlogits_real, self.dlogits_fake = self.d.dlogits[:n], self.d.dlogits[n:]
        self.targets_real, self.targets_fake = self.targets[:n], self.targets[n:]
        self.logits_snapshot = xp.empty((2 * n, 1), dtype=xp.float32)


class _GAN:
    """The training state on one device, and the step."""

    LOSSES = ("loss_d_real", "loss_d_fake", "loss_g")

    def __init__(self, cfg, ops, xp):
        self.cfg, self.ops, self.xp = cfg, ops, xp
        init_rng = np.random.default_rng([cfg.seed, 0])
        g_host = M.init_params(M.G_LAYOUT, init_rng)
        d_host = M.init_params(M.D_LAYOUT, init_rng)
        f32 = xp.float32
        self.g_params, self.d_params = xp.asarray(g_host), xp.asarray(d_host)
        self.g_grads, self.d_grads = xp.zeros(M.G_LAYOUT.size, f32), xp.zeros(M.D_LAYOUT.size, f32)
        self.g_m, self.g_v = xp.zeros(M.G_LAYOUT.size, f32), xp.zeros(M.G_LAYOUT.size, f32)
        self.d_m, self.d_v = xp.zeros(M.D_LAYOUT.size, f32), xp.zeros(M.D_LAYOUT.size, f32)
        self.bn_stats = M.new_bn_stats(xp)
        self.g_steps = self.d_steps = 0
        self.gp, self.gg = M.G_LAYOUT.views(self.g_params), M.G_LAYOUT.views(self.g_grads)
        self.dp, self.dg = M.D_LAYOUT.views(self.d_params), M.D_LAYOUT.views(self.d_grads)
        self._buffers = {}

    def buffers(self, n):
        if n not in self._buffers:
            self._buffers[n] = _StepBuffers(self.xp, n)
        return self._buffers[n]

    def step(self, step, data, idx, z, losses, snapshot=False):
        """One D step and one G step on the real images data[idx] and noise z [n, 100].
        step: global step index (dropout seeds). losses: a [3] device buffer receiving
        loss_d_real, loss_d_fake, loss_g. snapshot: keep the D-step logits (for logging)."""
        ops, cfg, seed = self.ops, self.cfg, self.cfg.seed
        b = self.buffers(z.shape[0])
        _gather(self.xp, data, idx, b.real)
        M.generator_forward(ops, self.gp, self.bn_stats, b.g, z, training=True)  # -> b.fake
        # Discriminator step on [real; fake].
        M.discriminator_forward(ops, self.dp, b.d, b.x, seed, step, 0)
        ops.bce_with_logits(b.logits_real, b.targets_real, losses[0, ...], b.dlogits_real)
        ops.bce_with_logits(b.logits_fake, b.targets_fake, losses[1, ...], b.dlogits_fake)
        if snapshot:
            b.logits_snapshot[...] = b.d.logits
        M.discriminator_backward(ops, self.dp, self.dg, b.d, b.x, seed, step, 0,
                                 need_dweights=True, need_dx=False)
        self.d_steps += 1
        ops.adam_step(self.d_params, self.d_grads, self.d_m, self.d_v, self.d_steps, cfg.lr,
                      cfg.beta1, cfg.beta2, cfg.adam_eps)
        # Generator step: the same G(z), target 1, through the updated D.
        M.discriminator_forward(ops, self.dp, b.d_gen, b.fake, seed, step, 1)
        ops.bce_with_logits(b.d_gen.logits, b.ones, losses[2, ...], b.d_gen.dlogits)
        M.discriminator_backward(ops, self.dp, None, b.d_gen, b.fake, seed, step, 1,
                                 need_dweights=False, need_dx=True)
        M.generator_backward(ops, self.gp, self.gg, b.g, z, b.d_gen.dx)
        self.g_steps += 1
        ops.adam_step(self.g_params, self.g_grads, self.g_m, self.g_v, self.g_steps, cfg.lr,
                      cfg.beta1, cfg.beta2, cfg.adam_eps)

    # -- checkpoint state
    def arrays(self):
        out = {"g.params": self.g_params, "g.adam_m": self.g_m, "g.adam_v": self.g_v,
               "d.params": self.d_params, "d.adam_m": self.d_m, "d.adam_v": self.d_v}
        for k, (rm, rv) in enumerate(self.bn_stats, 1):
            out[f"g.bn{k}.running_mean"], out[f"g.bn{k}.running_var"] = rm, rv
        return {name: _to_host(a) for name, a in out.items()}

    def load(self, arrays, meta):
        current = self.arrays()
        for name, a in current.items():
            if name not in arrays or arrays[name].shape != a.shape:
                raise ckpt.CheckpointError(f"checkpoint entry {name} missing or misshapen")
        xp = self.xp
        for dst, name in ((self.g_params, "g.params"), (self.g_m, "g.adam_m"),
                          (self.g_v, "g.adam_v"), (self.d_params, "d.params"),
                          (self.d_m, "d.adam_m"), (self.d_v, "d.adam_v")):
            dst[...] = xp.asarray(arrays[name])
        for k, (rm, rv) in enumerate(self.bn_stats, 1):
            rm[...] = xp.asarray(arrays[f"g.bn{k}.running_mean"])
            rv[...] = xp.asarray(arrays[f"g.bn{k}.running_var"])
        self.g_steps, self.d_steps = meta["adam_steps"]["g"], meta["adam_steps"]["d"]


# ------------------------------------------------------------------------------ Ctrl-C
class _DeferInterrupt:
    """While active (main thread only), Ctrl-C sets a flag instead of raising, so the loop
    stops between steps with a consistent state to checkpoint. A second Ctrl-C raises."""

    def __init__(self):
        self.requested = False
        self._old = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


# ------------------------------------------------------------------------------ train
def _make_config(config, settings):
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(settings) - names
    if unknown:
        raise TypeError(f"unknown training settings: {', '.join(sorted(unknown))} "
                        f"(see gan_fast.TrainConfig)")
    base = dataclasses.asdict(config) if config is not None else {}
    resume = settings.get("resume", base.get("resume"))
    if resume is None:
        return TrainConfig(**{**base, **settings}), None
    arrays, meta = ckpt.load_checkpoint(resume)
    _check_checkpoint(resume, arrays, meta)
    # Where and how to run is not inherited; the rest is, unless given.
    saved = {k: v for k, v in meta["config"].items()
             if k in names and k not in ("device", "backend", "threads", "quiet", "resume",
                                            "max_steps")}
    given = {**base, **settings}
    for key in TrainConfig.TRAJECTORY:
        if key in given and given[key] != saved.get(key):
            raise ValueError(f"resume: {key}={given[key]!r} differs from the checkpoint's "
                             f"{saved.get(key)!r}; a resumed run keeps it")
    if "out_dir" not in given:
        given["out_dir"] = meta.get("run_dir", saved.get("out_dir"))
    return TrainConfig(**{**saved, **given, "resume": str(resume)}), (arrays, meta)


def _expected_arrays():
    """name -> shape of every array a training checkpoint holds (all float32)."""
    out = {"fixed_noise": (64, M.Z_DIM)}
    for net, layout in (("g", M.G_LAYOUT), ("d", M.D_LAYOUT)):
        for part in ("params", "adam_m", "adam_v"):
            out[f"{net}.{part}"] = (layout.size,)
    for k, c in enumerate(M.G_HIDDEN, 1):
        out[f"g.bn{k}.running_mean"] = out[f"g.bn{k}.running_var"] = (c,)
    return out


def _check_checkpoint(path, arrays, meta):
    """Raise CheckpointError naming path and what is wrong unless the checkpoint fits this
    model; runs before train() writes anything, so a bad checkpoint changes nothing."""
    if meta.get("shapes") != M.shape_signature():
        ours, theirs = M.shape_signature(), meta.get("shapes") or {}
        diff = [k for k in ours if ours.get(k) != theirs.get(k)]
        raise ckpt.CheckpointError(f"{path}: its model shapes do not match this model "
                                   f"(differs in: {', '.join(diff) or 'everything'})")
    for key in ("config", "counters", "adam_steps", "rng"):
        if key not in meta:
            raise ckpt.CheckpointError(f"{path}: metadata lacks {key!r}; not a training "
                                       f"checkpoint")
    for name, shape in _expected_arrays().items():
        a = arrays.get(name)
        if a is None:
            raise ckpt.CheckpointError(f"{path}: entry {name} is missing")
        if a.shape != shape or a.dtype != np.float32:
            raise ckpt.CheckpointError(f"{path}: entry {name} is {a.dtype}{list(a.shape)}, "
                                       f"expected float32{list(shape)}")


def train(config: TrainConfig | None = None, /, **settings) -> TrainResult:
    """Train the MNIST GAN. Settings are the fields of TrainConfig (every one has a
    default: gan_fast.train() trains 20 epochs on MNIST), given as keywords or as a
    TrainConfig; backend may also be a module with gan_fast.ops's API.

    Writes into out_dir: config.json, metrics.jsonl (one JSON line per logged step, and
    one "kind": "eval" line per evaluation when eval_every > 0),
    samples/epoch_XXXX.png (8x8 fixed-noise grid), checkpoints/last.npz (atomic; every
    checkpoint_every epochs, at the end and on Ctrl-C, after which KeyboardInterrupt is
    re-raised), loss_curve.png. Raises NonFiniteLossError when a loss becomes NaN/inf
    (the last good checkpoint is left as it was).
    """
    backend_obj = settings.get("backend", getattr(config, "backend", "kernels"))
    if not isinstance(backend_obj, str):
        settings = {**settings, "backend": _backend_name(backend_obj)}
    cfg, restored = _make_config(config, settings)
    ops, xp, device = resolve_backend(backend_obj if not isinstance(backend_obj, str)
                                      else cfg.backend, cfg.device)
    if cfg.batch_size < 2:
        raise ValueError("batch_size must be at least 2 (BatchNorm needs 2 samples)")
    if cfg.log_every < 1:
        raise ValueError("log_every must be at least 1")
    if cfg.on_divergence not in ("stop", "rollback"):
        raise ValueError(f"on_divergence must be 'stop' or 'rollback', got {cfg.on_divergence!r}")
    if cfg.threads:
        from . import set_num_threads
        set_num_threads(cfg.threads)
    out_dir = pathlib.Path(cfg.out_dir or
                           pathlib.Path("runs") / datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    cfg = dataclasses.replace(cfg, out_dir=str(out_dir), device=device)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"out_dir": out_dir, "config": out_dir / "config.json",
             "metrics": out_dir / "metrics.jsonl", "checkpoint": out_dir / "checkpoints" / "last.npz",
             "loss_curve": out_dir / "loss_curve.png", "samples": []}
    paths["config"].write_text(json.dumps(dataclasses.asdict(cfg), indent=2) + "\n")
    return _Run(cfg, ops, xp, paths, restored).run()


class _Run:
    """One call of train(): the loop, logging, samples and checkpoints."""

    def __init__(self, cfg, ops, xp, paths, restored):
        self.cfg, self.ops, self.xp, self.paths = cfg, ops, xp, paths
        say = (lambda *a: None) if cfg.quiet else print
        self.say = say
        images, _ = load_mnist(cfg.split, cfg.data_dir, cfg.download, progress=not cfg.quiet)
        if cfg.limit_train is not None:
            images = images[:cfg.limit_train]
        self.n_images = images.shape[0]
        if self.n_images < cfg.batch_size:
            raise ValueError(f"{self.n_images} training images, fewer than batch_size "
                             f"{cfg.batch_size}")
        self.data = xp.asarray(scale_images(images))       # [K, 1, 28, 28] on the device
        n = cfg.batch_size
        full, tail = divmod(self.n_images, n)
        self.batch_sizes = [n] * full + ([tail] if (not cfg.drop_last and tail >= 2) else [])
        self.used = sum(self.batch_sizes)
        self.noise_host = np.empty((self.used, M.Z_DIM), dtype=np.float32)
        self.perm_dev = xp.empty(self.n_images, dtype=xp.int64)
        self.noise_dev = (self.noise_host if xp is np
                          else xp.empty(self.noise_host.shape, dtype=xp.float32))
        self.gan = _GAN(cfg, ops, xp)
        self.data_rng = np.random.default_rng([cfg.seed, 2])
        self.fixed_noise = np.random.default_rng([cfg.seed, 1]).standard_normal(
            (64, M.Z_DIM), dtype=np.float32)
        self.epoch, self.batch_in_epoch, self.global_step = 0, 0, 0
        self.epoch_rng_state = self.data_rng.bit_generator.state
        if restored is not None:
            self._restore(*restored)
            say(f"resuming from {cfg.resume}: epoch {self.epoch + 1}, step {self.global_step}")
        self.generator = M.Generator(ops, xp, self.gan.g_params, self.gan.bn_stats)
        self.loss_window = xp.zeros((cfg.log_every, 3), dtype=xp.float32)
        self.window_steps = []          # global step of each row of loss_window in use
        self.history = []
        # Evaluations so far (a resumed run reads its earlier ones back): the baseline of the
        # mode-collapse warning.
        self.eval_rows = ([r for r in _read_metrics(paths["metrics"]) if r.get("kind") == "eval"
                           and r["step"] <= self.global_step] if restored is not None else [])
        self.t_start = time.perf_counter()
        self.t_window = self.t_start
        self.images_window = 0
        self._saved_step = None
        self.rollbacks = 0

    # -- epoch data: permutation then the noise of every step, from the data generator
    def _draw_epoch(self):
        self.epoch_rng_state = self.data_rng.bit_generator.state
        perm = self.data_rng.permutation(self.n_images)
        self.data_rng.standard_normal(out=self.noise_host, dtype=np.float32)
        if self.xp is np:
            self.perm_dev = perm
        else:
            self.perm_dev.set(perm)
            self.noise_dev.set(self.noise_host)

    def _checkpoint_meta(self):
        return {"shapes": M.shape_signature(), "config": dataclasses.asdict(self.cfg),
                "run_dir": self.cfg.out_dir,
                "counters": {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                             "global_step": self.global_step},
                "adam_steps": {"g": self.gan.g_steps, "d": self.gan.d_steps},
                "rng": {"data_epoch_start": self.epoch_rng_state,
                        "seed_sequences": {"init": [self.cfg.seed, 0],
                                           "fixed_noise": [self.cfg.seed, 1],
                                           "data": [self.cfg.seed, 2]},
                        "dropout": "gan_fast.model.dropout_seed(seed, step, layer, pass)"},
                "gan_fast_version": _version(), "saved_at": time.time()}

    def save_checkpoint(self, epoch_tag=None):
        arrays = self.gan.arrays()
        arrays["fixed_noise"] = self.fixed_noise
        meta = self._checkpoint_meta()
        path = ckpt.save_checkpoint(self.paths["checkpoint"], arrays, meta)
        self._saved_step = self.global_step
        if epoch_tag is not None and self.cfg.keep_checkpoints:
            ckpt.save_checkpoint(path.parent / f"epoch_{epoch_tag:04d}.npz", arrays, meta)
        return path

    # -- reading losses back: the only host synchronisation of the loop
    def _flush(self, log, epoch_done=False):
        if not self.window_steps:
            return
        count = len(self.window_steps)
        losses = _to_host(self.loss_window[:count]).astype(np.float64)
        bad = ~np.isfinite(losses)
        if bad.any():
            row, col = map(int, np.argwhere(bad)[0])
            raise NonFiniteLossError(
                f"{_GAN.LOSSES[col]} is {losses[row, col]} at step {self.window_steps[row] + 1} "
                + self._stopped())
        self._check_params()
        if log:
            b = self.gan.buffers(self.last_batch)
            logits = _to_host(b.logits_snapshot).astype(np.float64)[:, 0]
            after = _to_host(b.d_gen.logits).astype(np.float64)[:, 0]
            n = self.last_batch
            sig = 1.0 / (1.0 + np.exp(-logits))
            now = time.perf_counter()
            real, fake, gen = map(float, losses[-1])
            row = {"step": self.window_steps[-1] + 1, "epoch": self.epoch + 1,
                   "loss_d": real + fake, "loss_d_real": real, "loss_d_fake": fake,
                   "loss_g": gen, "d_x": float(sig[:n].mean()),
                   "d_g_z": float(sig[n:].mean()),
                   "d_g_z_after": float((1.0 / (1.0 + np.exp(-after))).mean()),
                   "d_accuracy": float(((logits[:n] > 0).sum() + (logits[n:] < 0).sum())
                                       / (2 * n)),
                   "images_per_s": self.images_window / max(now - self.t_window, 1e-9),
                   "time_s": now - self.t_start}
            self.history.append(row)
            with open(self.paths["metrics"], "a") as f:
                f.write(json.dumps(row) + "\n")
            if self.bar is not None:
                self.bar.set_postfix(loss_d=f"{row['loss_d']:.3f}", loss_g=f"{gen:.3f}",
                                     d_x=f"{row['d_x']:.2f}", d_g_z=f"{row['d_g_z']:.2f}",
                                     img_s=f"{row['images_per_s']:.0f}", refresh=False)
            self.t_window, self.images_window = now, 0
        self.window_steps = []

    def _check_params(self):
        """Raise NonFiniteLossError naming the first non-finite parameter tensor. One
        isfinite pass per network over its flat buffer: cheap next to log_every steps."""
        xp, step = self.xp, self.window_steps[-1] + 1
        for net, flat, views in (("generator", self.gan.g_params, self.gan.gp),
                                 ("discriminator", self.gan.d_params, self.gan.dp)):
            if bool(xp.isfinite(flat).all()):
                continue
            name = next((n for n, v in views.items() if not bool(xp.isfinite(v).all())), "?")
            raise NonFiniteLossError(
                f"{net} parameter {name} is not finite after step {step} " + self._stopped())

    def _stopped(self):
        """The end of a NonFiniteLossError's message: where training stopped and what is kept."""
        return (f"(epoch {self.epoch + 1}); training stopped. The last good checkpoint "
                f"({self.paths['checkpoint']}, if one was written) is left as it was.")

    def _restore(self, arrays, meta):
        """Load a checkpoint's training state and counters; the epoch's data draw restarts
        from the state it began with, so the same order, noise and masks follow."""
        self.gan.load(arrays, meta)
        c = meta["counters"]
        self.epoch, self.batch_in_epoch, self.global_step = (
            c["epoch"], c["batch_in_epoch"], c["global_step"])
        self.epoch_rng_state = meta["rng"]["data_epoch_start"]
        self.data_rng.bit_generator.state = self.epoch_rng_state

    def _rollback(self, error):
        """on_divergence='rollback': reload the last checkpoint, halve lr; False when the
        run should stop instead (not asked for, no checkpoint, or too many rollbacks)."""
        path = self.paths["checkpoint"]
        if (self.cfg.on_divergence != "rollback" or self.rollbacks >= MAX_ROLLBACKS
                or not path.exists()):
            return False
        arrays, meta = ckpt.load_checkpoint(path)
        _check_checkpoint(path, arrays, meta)
        self._restore(arrays, meta)
        self.window_steps = []
        self.history = [h for h in self.history if h["step"] <= self.global_step]
        self.rollbacks += 1
        self.cfg = dataclasses.replace(self.cfg, lr=self.cfg.lr / 2)
        self.gan.cfg = self.cfg
        self._saved_step = self.global_step
        self.say(f"rollback {self.rollbacks}/{MAX_ROLLBACKS}: {error} -> back to step "
                 f"{self.global_step} ({path}), lr halved to {self.cfg.lr:g}")
        return True

    def _evaluate(self):
        """Score the generator (gan_fast.evaluate, on the training device) and log an "eval"
        row; warn when the classes covered drop or the KL to uniform rises sharply."""
        from .quality import evaluate
        m = evaluate(self.generator, n=self.cfg.eval_samples, seed=self.cfg.seed,
                     device=self.cfg.device, data_dir=self.cfg.data_dir)
        metrics = m.as_dict()
        metrics.pop("device", None)
        metrics["eval_time_s"] = metrics.pop("time_s")
        row = {"kind": "eval", "step": self.global_step, "epoch": self.epoch, **metrics}
        earlier = list(self.eval_rows)
        self.eval_rows.append(row)
        self.history.append(row)
        with open(self.paths["metrics"], "a") as f:
            f.write(json.dumps(row) + "\n")
        self.say(f"epoch {self.epoch}: classes {m.classes_covered}, KL {m.kl_uniform:.3f}, "
                 f"IS {m.inception_score:.2f}, FLD {m.frechet_distance:.2f}, "
                 f"confidence {m.mean_confidence:.3f}")
        if earlier:
            most = max(r["classes_covered"] for r in earlier)
            best_kl = min(r["kl_uniform"] for r in earlier)
            if m.classes_covered < most or m.kl_uniform > best_kl + KL_RISE:
                warnings.warn(
                    f"possible mode collapse at epoch {self.epoch}: {m.classes_covered} digits "
                    f"covered (up to {most} before), KL to uniform {m.kl_uniform:.3f} nats "
                    f"(best before {best_kl:.3f})", ModeCollapseWarning, stacklevel=2)
        return row

    def _reached_max_steps(self):
        return self.cfg.max_steps is not None and self.global_step >= self.cfg.max_steps

    def run(self):
        cfg = self.cfg
        self.bar = None
        with _DeferInterrupt() as interrupt:
            while self.epoch < cfg.epochs and not self._reached_max_steps():
                try:
                    if not self._epoch(interrupt):
                        break                               # max_steps, mid-epoch
                except NonFiniteLossError as e:
                    if not self._rollback(e):
                        raise
                    cfg = self.cfg
            self._flush(log=False)
            if self._saved_step != self.global_step or not self.paths["checkpoint"].exists():
                self.save_checkpoint()
        save_loss_curve(_read_metrics(self.paths["metrics"]), self.paths["loss_curve"])
        self.say(f"done: {self.global_step} steps; outputs in {self.paths['out_dir']}")
        return TrainResult(generator=self.generator, history=self.history,
                           paths=self.paths, config=cfg, steps=self.global_step,
                           epochs_completed=self.epoch)

    def _epoch(self, interrupt):
        """Train the rest of the current epoch; False when max_steps stopped it midway."""
        cfg = self.cfg
        from tqdm.auto import tqdm

        # A fresh epoch starts from the data generator's current state; a resumed
        # one from the state its epoch started with (set in __init__): the same draw.
        self._draw_epoch()
        self.bar = tqdm(total=len(self.batch_sizes), initial=self.batch_in_epoch,
                        desc=f"epoch {self.epoch + 1}/{cfg.epochs}", unit="step",
                        disable=cfg.quiet, leave=True, dynamic_ncols=True)
        try:
            while (self.batch_in_epoch < len(self.batch_sizes)
                   and not self._reached_max_steps()):
                self._one_step()
                if interrupt.requested:
                    self._flush(log=False)
                    path = self.save_checkpoint()
                    self.bar.close()
                    self.say(f"interrupted: checkpoint written to {path}; continue "
                             f"with resume='{path}'")
                    raise KeyboardInterrupt
        finally:
            self.bar.close()
        if self.batch_in_epoch < len(self.batch_sizes):
            return False                            # max_steps, mid-epoch
        self._flush(log=False)
        self.epoch += 1
        self.batch_in_epoch = 0
        self.epoch_rng_state = self.data_rng.bit_generator.state
        if cfg.sample_every and self.epoch % cfg.sample_every == 0:
            self.paths["samples"].append(save_grid(
                self.generator(64, z=self.fixed_noise),
                self.paths["out_dir"] / "samples" / f"epoch_{self.epoch:04d}.png"))
        if cfg.eval_every and self.epoch % cfg.eval_every == 0:
            self._evaluate()
        if cfg.checkpoint_every and self.epoch % cfg.checkpoint_every == 0:
            self.save_checkpoint(self.epoch)
        return True

    def _one_step(self):
        cfg, xp = self.cfg, self.xp
        b = self.batch_in_epoch
        n = self.batch_sizes[b]
        lo = b * cfg.batch_size
        s = self.global_step
        # Log every log_every steps, and the last step of each epoch (or of a max_steps
        # run), so every epoch ends on a row in the history and metrics.jsonl.
        ends_epoch = b + 1 == len(self.batch_sizes)
        ends_run = cfg.max_steps is not None and s + 1 >= cfg.max_steps
        log = (s + 1) % cfg.log_every == 0 or ends_epoch or ends_run
        row = len(self.window_steps)
        self.gan.step(s, self.data, self.perm_dev[lo:lo + n], self.noise_dev[lo:lo + n],
                      self.loss_window[row], snapshot=log)
        self.window_steps.append(s)
        self.last_batch = n
        self.images_window += n
        self.global_step += 1
        self.batch_in_epoch += 1
        self.bar.update(1)
        if log or len(self.window_steps) == cfg.log_every:
            self._flush(log=log)


def _read_metrics(path):
    rows = []
    if pathlib.Path(path).exists():
        for line in pathlib.Path(path).read_text().splitlines():
            if line.strip():
                rows.append(json.loads(line))
    return rows


def _version():
    from . import __version__
    return __version__
