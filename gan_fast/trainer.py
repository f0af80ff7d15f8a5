"""gan_fast.trainer: gan_fast.train(), the training loop around gan_fast.engine.Engine:
data order and noise, logging, samples, evaluations, checkpoints, resume, Ctrl-C and
divergence handling.

    import gan_fast
    result = gan_fast.train(epochs=5, batch_size=64, out_dir="runs/x")
    images = result.generator(16)             # numpy [16, 1, 28, 28] in [-1, 1]

The settings are gan_fast.config.TrainConfig; the step itself is gan_fast.engine.

Randomness, all from TrainConfig.seed: initialisation from default_rng([seed, 0]), the
fixed sample noise from default_rng([seed, 1]); every step's batch order, noise and dropout
masks are counter-based, pure functions of (seed, step) drawn by the kernels on the
training device (gan_fast.engine, train_step), so a checkpoint needs only its step counts
to continue bit-identically, and the CPU and the GPU draw the same numbers.

On CUDA (device="cuda", CuPy arrays) the whole state lives on the GPU: the training images
are uploaded once, and a step reads nothing back (with cuda_graph, the default, it is one
graph launch). Losses are written into a device buffer; the host reads it (one
synchronisation) only every log_every steps, at the end of an epoch and when it
checkpoints. That is also when losses and parameters are checked for NaN/inf (one
isfinite pass over each network's flat parameter buffer), so a checkpoint is only ever
written from a state that passed the check.

Divergence (TrainConfig.on_divergence): "stop" (the default) raises NonFiniteLossError
naming the loss or parameter tensor and the step; the last checkpoint is left as it was.
"rollback" reloads checkpoints/last.npz (parameters, Adam state, BatchNorm statistics,
counters and the data generator), halves both learning rates and trains on from there;
the same data order, noise and dropout masks are redrawn, so only the smaller step changes
the trajectory. It does so at most MAX_ROLLBACKS times, then stops as "stop" would;
without a checkpoint to go back to it stops at once. The halved rates are saved in later
checkpoints' config, so a resume continues with them. metrics.jsonl keeps the rows of the
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
from dataclasses import dataclass

import numpy as np

from . import _C
from . import checkpoint as ckpt
from . import plots, quality
from .backend import backend_name, resolve_backend
from .config import TrainConfig, merge_resume
from .data import load_mnist, scale_images
from .engine import LOSSES, Engine
from .errors import ConfigError, ModeCollapseWarning, NonFiniteLossError
from .images import save_grid
from .model import N_CLASSES, Z_DIM, shape_signature
from .monitor import Monitor
from .version import __version__

__all__ = ["TrainConfig", "TrainResult", "train", "NonFiniteLossError", "ModeCollapseWarning",
           "MAX_ROLLBACKS", "KL_RISE"]

MAX_ROLLBACKS = 3   # on_divergence="rollback": give up (raise) after this many
# How far the class histogram's KL to uniform may rise above its best before a warning:
# losing one digit of ten entirely raises it by ln(10/9) = 0.105 nats.
KL_RISE = 0.1


@dataclass
class TrainResult:
    """What train() returns."""
    generator: object                   # callable: generator(n, seed=None, ...) -> images
    history: list                       # one dict per logged step (see metrics.jsonl), and
                                        # one {"kind": "eval", ...} per evaluation
    paths: dict                         # name -> path of everything written
    config: TrainConfig
    steps: int                          # global steps completed
    epochs_completed: int
    time_s: float = 0.0                 # wall time of this call


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


def train(config: TrainConfig | None = None, /, **settings) -> TrainResult:
    """Train the MNIST GAN. Settings are the fields of TrainConfig (every one has a
    default: gan_fast.train() trains 20 epochs on MNIST with the default recipe), given as
    keywords or as a TrainConfig; backend may also be a module with gan_fast.ops's API.

    Every setting is checked (ConfigError) and a resumed checkpoint read and checked
    (CheckpointError) before anything is written. Writes into out_dir: config.json,
    metrics.jsonl (one JSON line per logged step, and one "kind": "eval" line per
    evaluation when eval_every > 0), samples/epoch_XXXX.png (8x8 fixed-noise grid; one row
    per digit for a conditional model), checkpoints/last.npz (atomic; every
    checkpoint_every epochs, at the end and on Ctrl-C, after which KeyboardInterrupt is
    re-raised), dashboard.png and samples/progress.gif (gan_fast.plots). Raises
    NonFiniteLossError when a loss becomes NaN/inf (the last good checkpoint is kept).
    """
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(settings) - names
    if unknown:
        raise TypeError(f"unknown training settings: {', '.join(sorted(unknown))} "
                        f"(see gan_fast.TrainConfig)")
    backend_obj = settings.get("backend", getattr(config, "backend", "kernels"))
    if not isinstance(backend_obj, str):
        settings = {**settings, "backend": backend_name(backend_obj)}
    base = dataclasses.asdict(config) if config is not None else {}
    resume = settings.get("resume", base.get("resume"))
    restored = None
    if resume is None:
        cfg = TrainConfig(**{**base, **settings})
    else:
        arrays, meta = ckpt.load_checkpoint(resume)
        ckpt.check_training_checkpoint(resume, arrays, meta)
        cfg = merge_resume(base, settings, resume, meta)
        restored = arrays, meta
    cfg = cfg.validate(custom_backend=not isinstance(backend_obj, str))
    ops, xp, device = resolve_backend(backend_obj if not isinstance(backend_obj, str)
                                      else cfg.backend, cfg.device)
    if device != "cuda":
        cfg = dataclasses.replace(cfg, cuda_graph=False)
    if cfg.threads:
        _C.set_num_threads(cfg.threads)
    out_dir = pathlib.Path(cfg.out_dir or
                           pathlib.Path("runs") / datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    cfg = dataclasses.replace(cfg, out_dir=str(out_dir), device=device)
    images, labels = load_mnist(cfg.split, cfg.data_dir, cfg.download, progress=not cfg.quiet)
    if cfg.limit_train is not None:
        images, labels = images[:cfg.limit_train], labels[:cfg.limit_train]
    if images.shape[0] < cfg.batch_size:
        raise ConfigError(f"batch_size {cfg.batch_size} is larger than the {images.shape[0]} "
                          f"training images")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"out_dir": out_dir, "config": out_dir / "config.json",
             "metrics": out_dir / "metrics.jsonl", "checkpoint": out_dir / "checkpoints" / "last.npz",
             "dashboard": out_dir / "dashboard.png",
             "progress": out_dir / "samples" / "progress.gif", "samples": []}
    paths["config"].write_text(json.dumps(dataclasses.asdict(cfg), indent=2) + "\n")
    return _Run(cfg, ops, xp, paths, images, labels, restored).run()


class _Run:
    """One call of train(): the loop, logging, samples and checkpoints."""

    def __init__(self, cfg, ops, xp, paths, images, labels, restored):
        self.cfg, self.ops, self.xp, self.paths = cfg, ops, xp, paths
        self.say = (lambda *a: None) if cfg.quiet else print
        self.engine = Engine(cfg.model_spec(), cfg.step_config(), ops, xp, cfg.cuda_graph)
        # The images live on the training device, uploaded once; train_step draws from them.
        self.batch_sizes = self.engine.attach_data(
            scale_images(images), labels.astype(np.int64) if cfg.conditional else None,
            cfg.batch_size, cfg.drop_last).batch_sizes
        self.fixed_noise = np.random.default_rng([cfg.seed, 1]).standard_normal(
            (64, Z_DIM), dtype=np.float32)
        self.epoch, self.batch_in_epoch, self.global_step = 0, 0, 0
        if restored is not None:
            self._restore(*restored)
            self.say(f"resuming from {cfg.resume}: epoch {self.epoch + 1}, step {self.global_step}")
        self.monitor = Monitor(self.engine, cfg.log_every)
        self.history = []
        # Evaluations so far (a resumed run reads its earlier ones back): the baseline of the
        # mode-collapse warning.
        self.eval_rows = ([r for r in _read_metrics(paths["metrics"]) if r.get("kind") == "eval"
                           and r["step"] <= self.global_step] if restored is not None else [])
        self.t_start = self.t_window = time.perf_counter()
        self._saved_step = None
        self.rollbacks = 0
        self.bar = None

    def save_checkpoint(self, epoch_tag=None):
        arrays = self.engine.arrays()
        arrays["fixed_noise"] = self.fixed_noise
        cfg = self.cfg
        spec = cfg.model_spec()
        meta = {"model": spec.as_dict(), "shapes": shape_signature(spec),
                "ema": self.engine.ema_params is not None,
                "config": dataclasses.asdict(cfg), "run_dir": cfg.out_dir,
                "counters": {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                             "global_step": self.global_step},
                "adam_steps": self.engine.adam_steps(),
                "rng": {"seed_sequences": {"init": [cfg.seed, 0], "fixed_noise": [cfg.seed, 1],
                                           "spectral_norm": [cfg.seed, 3],
                                           "standing_statistics": [cfg.seed, 5]},
                        "counter_based": "batches, noise and dropout masks: pure functions "
                                         "of (seed, step), gan_fast.engine"},
                "gan_fast_version": __version__, "saved_at": time.time()}
        path = ckpt.save_checkpoint(self.paths["checkpoint"], arrays, meta)
        self._saved_step = self.global_step
        if epoch_tag is not None and cfg.keep_checkpoints:
            ckpt.save_checkpoint(path.parent / f"epoch_{epoch_tag:04d}.npz", arrays, meta)
        return path

    # -- reading the numbers back (gan_fast.monitor): the loop's only waits on the device
    def _flush(self):
        """Check (and log) every window not read yet: before a checkpoint, at the end of
        an epoch or run, on Ctrl-C."""
        for window in self.monitor.drain():
            self._check(window)

    def _check(self, w):
        """Raise NonFiniteLossError for a non-finite loss or parameter in window w; log it."""
        if w is None:
            return
        bad = ~np.isfinite(w.losses)
        if bad.any():
            row, col = map(int, np.argwhere(bad)[0])
            raise NonFiniteLossError(f"{LOSSES[col]} is {w.losses[row, col]} at step "
                                     f"{w.steps[row] + 1} " + self._stopped())
        if not all(w.params_finite.values()):
            net, name = self.engine.non_finite() or (
                next(k for k, ok in w.params_finite.items() if not ok), "?")
            raise NonFiniteLossError(f"{net} parameter {name} is not finite after step "
                                     f"{w.steps[-1] + 1} " + self._stopped())
        if w.log:
            self._log_row(w)

    def _log_row(self, w):
        n, logits, after = w.n, w.logits, w.logits_after
        sig = 1.0 / (1.0 + np.exp(-logits))
        now = time.perf_counter()
        real, fake, gen = map(float, w.losses[-1])
        row = {"step": w.steps[-1] + 1, "epoch": self.epoch + 1,
               "loss_d": real + fake, "loss_d_real": real, "loss_d_fake": fake,
               "loss_g": gen, "d_x": float(sig[:n].mean()), "d_g_z": float(sig[n:].mean()),
               "d_g_z_after": float((1.0 / (1.0 + np.exp(-after))).mean()),
               "d_accuracy": float(((logits[:n] > 0).sum() + (logits[n:] < 0).sum()) / (2 * n)),
               "images_per_s": w.images / max(now - self.t_window, 1e-9),
               "time_s": now - self.t_start}
        self._append(row)
        if self.bar is not None:
            self.bar.set_postfix(loss_d=f"{row['loss_d']:.3f}", loss_g=f"{gen:.3f}",
                                 d_x=f"{row['d_x']:.2f}", d_g_z=f"{row['d_g_z']:.2f}",
                                 img_s=f"{row['images_per_s']:.0f}", refresh=False)
        self.t_window = now

    def _append(self, row):
        self.history.append(row)
        with open(self.paths["metrics"], "a") as f:
            f.write(json.dumps(row) + "\n")

    def _stopped(self):
        """The end of a NonFiniteLossError's message: where training stopped and what is kept."""
        return (f"(epoch {self.epoch + 1}); training stopped. The last good checkpoint "
                f"({self.paths['checkpoint']}, if one was written) is left as it was.")

    def _restore(self, arrays, meta):
        """Load a checkpoint's training state and counters: the next step's batch, noise
        and masks follow from its index alone."""
        c = meta["counters"]
        if meta["adam_steps"] != {"g": c["global_step"], "d": c["global_step"]}:
            raise ckpt.CheckpointError(f"{self.cfg.resume}: Adam step counts "
                                       f"{meta['adam_steps']} differ from the global step "
                                       f"{c['global_step']}")
        self.engine.load(arrays, meta["adam_steps"])
        self.epoch, self.batch_in_epoch, self.global_step = (
            c["epoch"], c["batch_in_epoch"], c["global_step"])

    def _rollback(self, error):
        """on_divergence='rollback': reload the last checkpoint, halve both learning rates;
        False when the run should stop instead (not asked for, no checkpoint, or too many
        rollbacks)."""
        path = self.paths["checkpoint"]
        if (self.cfg.on_divergence != "rollback" or self.rollbacks >= MAX_ROLLBACKS
                or not path.exists()):
            return False
        arrays, meta = ckpt.load_checkpoint(path)
        ckpt.check_training_checkpoint(path, arrays, meta)
        self._restore(arrays, meta)
        self.monitor.discard()
        self.history = [h for h in self.history if h["step"] <= self.global_step]
        self.rollbacks += 1
        lr_d, lr_g = self.cfg.lr_d / 2, self.cfg.lr_g / 2
        self.cfg = dataclasses.replace(self.cfg, lr_d=lr_d, lr_g=lr_g,
                                       lr=None if self.cfg.lr is None else self.cfg.lr / 2)
        self.engine.set_learning_rates(lr_d, lr_g)
        self._saved_step = self.global_step
        self.say(f"rollback {self.rollbacks}/{MAX_ROLLBACKS}: {error} -> back to step "
                 f"{self.global_step} ({path}), learning rates halved to {lr_d:g} (D), "
                 f"{lr_g:g} (G)")
        return True

    def _evaluate(self):
        """Score the generator (gan_fast.evaluate, on the training device) and log an "eval"
        row; warn when the classes covered drop or the KL to uniform rises sharply."""
        m = quality.evaluate(self.engine.generator(), n=self.cfg.eval_samples,
                             seed=self.cfg.seed, device=self.cfg.device,
                             data_dir=self.cfg.data_dir)
        metrics = m.as_dict()
        metrics.pop("device", None)
        metrics["eval_time_s"] = metrics.pop("time_s")
        row = {"kind": "eval", "step": self.global_step, "epoch": self.epoch, **metrics}
        earlier = list(self.eval_rows)
        self.eval_rows.append(row)
        self._append(row)
        self.say(f"epoch {self.epoch}: " + m.summary())
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
        with _DeferInterrupt() as interrupt:
            while self.epoch < self.cfg.epochs and not self._reached_max_steps():
                try:
                    if not self._epoch(interrupt):
                        break                               # max_steps, mid-epoch
                except NonFiniteLossError as e:
                    if not self._rollback(e):
                        raise
            self._flush()
            if self._saved_step != self.global_step or not self.paths["checkpoint"].exists():
                self.save_checkpoint()
        self._plots()
        elapsed = time.perf_counter() - self.t_start
        self.say(self._summary(elapsed))
        return TrainResult(generator=self.engine.generator(), history=self.history,
                           paths=self.paths, config=self.cfg, steps=self.global_step,
                           epochs_completed=self.epoch, time_s=elapsed)

    def _plots(self):
        """The dashboard (losses, D's outputs, evaluations) and the samples' progress GIF
        (every epoch's grid, earlier runs of a resumed one included)."""
        try:
            plots.save_dashboard(_read_metrics(self.paths["metrics"]), self.paths["dashboard"])
        except ImportError as e:                    # matplotlib missing: say how to get it
            self.say(str(e))
            self.paths.pop("dashboard")
        grids = sorted((self.paths["out_dir"] / "samples").glob("epoch_*.png"))
        if grids:
            plots.save_progress_gif(grids, self.paths["progress"])
        else:
            self.paths.pop("progress")

    def _summary(self, elapsed):
        """The one completion line: steps, time, output folder, final metrics."""
        parts = [f"done: {self.global_step} steps in {elapsed:.1f} s; outputs in "
                 f"{self.paths['out_dir']}"]
        steps = [h for h in self.history if "loss_d" in h]
        if steps:
            parts.append(f"final loss_d {steps[-1]['loss_d']:.3f}, loss_g {steps[-1]['loss_g']:.3f}")
        evals = [h for h in self.history if h.get("kind") == "eval"]
        if evals:
            e = evals[-1]
            parts.append(f"IS {e['inception_score']:.2f}, FD {e['frechet_distance']:.1f}, "
                         f"{e['classes_covered']} digits")
        return "; ".join(parts)

    def _epoch(self, interrupt):
        """Train the rest of the current epoch; False when max_steps stopped it midway."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        self.bar = tqdm(total=len(self.batch_sizes), initial=self.batch_in_epoch,
                        desc=f"epoch {self.epoch + 1}/{cfg.epochs}", unit="step",
                        disable=cfg.quiet, leave=True, dynamic_ncols=True)
        try:
            while (self.batch_in_epoch < len(self.batch_sizes)
                   and not self._reached_max_steps()):
                self._one_step()
                if interrupt.requested:
                    self._flush()
                    path = self.save_checkpoint()
                    self.bar.close()
                    self.say(f"interrupted: checkpoint written to {path}; continue "
                             f"with resume='{path}'")
                    raise KeyboardInterrupt
        finally:
            self.bar.close()
        if self.batch_in_epoch < len(self.batch_sizes):
            return False                            # max_steps, mid-epoch
        self._flush()
        self.epoch += 1
        self.batch_in_epoch = 0
        if cfg.sample_every and self.epoch % cfg.sample_every == 0:
            self.paths["samples"].append(self._save_samples(
                self.paths["out_dir"] / "samples" / f"epoch_{self.epoch:04d}.png"))
        if cfg.eval_every and self.epoch % cfg.eval_every == 0:
            self._evaluate()
        if cfg.checkpoint_every and self.epoch % cfg.checkpoint_every == 0:
            self.save_checkpoint(self.epoch)
        return True

    def _save_samples(self, path):
        """The fixed-noise grid: 8 x 8 digits; for a conditional model 10 x 10, one row per
        digit, each column one of the first 10 fixed noise vectors (its style)."""
        if not self.cfg.conditional:
            return save_grid(self.engine.generator()(64, z=self.fixed_noise), path)
        z = np.tile(self.fixed_noise[:N_CLASSES], (N_CLASSES, 1))
        digits = np.repeat(np.arange(N_CLASSES), N_CLASSES)
        return save_grid(self.engine.generator()(z.shape[0], z=z, digits=digits), path,
                         nrow=N_CLASSES)

    def _one_step(self):
        cfg = self.cfg
        b = self.batch_in_epoch
        s = self.global_step
        # Log every log_every steps, and the last step of each epoch (or of a max_steps
        # run), so every epoch ends on a row in the history and metrics.jsonl.
        ends_epoch = b + 1 == len(self.batch_sizes)
        ends_run = cfg.max_steps is not None and s + 1 >= cfg.max_steps
        log = (s + 1) % cfg.log_every == 0 or ends_epoch or ends_run
        n = self.engine.train_step(losses=self.monitor.next_row())
        self.monitor.record(s, n)
        self.global_step += 1
        self.batch_in_epoch += 1
        self.bar.update(1)
        if log or self.monitor.full():
            self._check(self.monitor.exchange(log))


def _read_metrics(path):
    rows = []
    if pathlib.Path(path).exists():
        for line in pathlib.Path(path).read_text().splitlines():
            if line.strip():
                rows.append(json.loads(line))
    return rows
