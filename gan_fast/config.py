"""gan_fast.config: every setting of gan_fast.train() (TrainConfig), the named training
recipes, validation, and how a resumed run's settings are merged with its checkpoint's.

    cfg = TrainConfig(epochs=5, recipe="seed").resolved()   # recipe values filled in
    cfg.validate()                                          # ConfigError if anything is off

A recipe is a named set of values for the algorithm's settings (RECIPES). A setting left at
None takes its value from the recipe; a setting given explicitly wins. resolved() fills
them in, so config.json and checkpoints record the exact algorithm a run used.
"""
from __future__ import annotations

import dataclasses
import math
import pathlib
from dataclasses import dataclass, field

from .backend import DEVICES
from .engine import StepConfig
from .errors import ConfigError
from .model import D_CONDITIONINGS, ModelSpec

__all__ = ["TrainConfig", "RECIPES", "DEFAULT_RECIPE", "TRAJECTORY", "merge_resume"]

# The algorithm settings a recipe fixes (each is also a TrainConfig field of its own).
RECIPE_FIELDS = ("batch_size", "lr_d", "lr_g", "real_label", "ema_decay", "minibatch_stddev",
                 "spectral_norm", "d_dropout")

RECIPES = {
    # The quality study's best (benchmarks/RESULTS.md): spectral normalisation of D's
    # weights, the two time-scale update rule with D 4x faster than G, no dropout in D (with
    # spectral normalisation it only weakened D), and the EMA generator.
    "tuned": dict(batch_size=128, lr_d=4e-4, lr_g=1e-4, real_label=1.0, ema_decay=0.999,
                  minibatch_stddev=0, spectral_norm=True, d_dropout=0.0),
    # The seed's algorithm, exactly (the article's GAN): Adam 2e-4 for both networks, hard
    # labels, no EMA, D with dropout 0.3 and nothing else.
    "seed": dict(batch_size=128, lr_d=2e-4, lr_g=2e-4, real_label=1.0, ema_decay=0.0,
                 minibatch_stddev=0, spectral_norm=False, d_dropout=0.3),
}
DEFAULT_RECIPE = "tuned"


def _doc(text):
    return {"help": text}


@dataclass
class TrainConfig:
    """Every setting of gan_fast.train(); each has a default. The command line
    (`gan-fast train --help`) is generated from these fields. A None algorithm setting
    takes the recipe's value (see RECIPES); resolved() fills them in."""

    epochs: int = field(default=20, metadata=_doc(
        "number of passes over the training images"))
    recipe: str = field(default=DEFAULT_RECIPE, metadata=_doc(
        "named training recipe: the algorithm settings below that are not given take its "
        "values (" + ", ".join(RECIPES) + "; 'seed' is the seed's algorithm exactly)"))
    batch_size: int | None = field(default=None, metadata=_doc(
        "real images per step (the discriminator also sees batch_size generated ones)"))
    lr: float | None = field(default=None, metadata=_doc(
        "Adam learning rate of both networks (sets lr_d and lr_g unless they are given)"))
    lr_d: float | None = field(default=None, metadata=_doc(
        "Adam learning rate of the discriminator"))
    lr_g: float | None = field(default=None, metadata=_doc(
        "Adam learning rate of the generator (lr_g != lr_d: two time-scale update rule)"))
    beta1: float = field(default=0.5, metadata=_doc(
        "Adam β1 (0.5, not 0.9: less momentum keeps the two-player game stable; DCGAN)"))
    beta2: float = field(default=0.999, metadata=_doc("Adam β2"))
    adam_eps: float = field(default=1e-8, metadata=_doc("Adam epsilon"))
    real_label: float | None = field(default=None, metadata=_doc(
        "the discriminator's target for real images (0.9: one-sided label smoothing)"))
    ema_decay: float | None = field(default=None, metadata=_doc(
        "decay of an exponential moving average of the generator's weights and BatchNorm "
        "statistics, which is then what sampling and evaluation use (0: none)"))
    minibatch_stddev: int | None = field(default=None, metadata=_doc(
        "group size of the discriminator's minibatch standard-deviation feature (0: off)"))
    spectral_norm: bool | None = field(default=None, metadata=_doc(
        "spectral normalisation of the discriminator's weights"))
    d_dropout: float | None = field(default=None, metadata=_doc(
        "dropout probability after the discriminator's LeakyReLUs"))
    conditional: bool = field(default=False, metadata=_doc(
        "train a class-conditional GAN on the MNIST labels: sample a chosen digit"))
    d_conditioning: str = field(default="projection", metadata=_doc(
        "how a conditional discriminator sees the digit: projection (a projection head) "
        "or channels (one-hot label planes next to the image)"))
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
        "where config.json, metrics.jsonl, samples/, checkpoints/ and the plots go "
        "(default runs/<date-time>; on resume, the checkpoint's run folder)"))
    device: str = field(default="auto", metadata=_doc(
        "cpu, cuda, or auto (cuda when gan_fast.cuda_available(), else cpu)"))
    backend: str = field(default="kernels", metadata=_doc(
        "kernels (gan_fast.ops) or reference (gan_fast.reference, NumPy, slow, cpu only)"))
    cuda_graph: bool = field(default=True, metadata=_doc(
        "on CUDA, capture each training step once as a CUDA graph and replay it (one launch "
        "a step); false launches kernel by kernel (debugging; the same numbers)"))
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
        "rollback (reload the last checkpoint, halve both learning rates, go on; at most 3 "
        "times)"))

    def resolved(self):
        """A copy with every None algorithm setting taken from the recipe (lr, when given,
        sets both learning rates); raises ConfigError for an unknown recipe."""
        if self.recipe not in RECIPES:
            raise ConfigError(f"recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")
        values = dict(RECIPES[self.recipe])
        if self.lr is not None:
            values.update(lr_d=self.lr, lr_g=self.lr)
        given = {k: getattr(self, k) for k in RECIPE_FIELDS if getattr(self, k) is not None}
        return dataclasses.replace(self, **{**values, **given})

    def model_spec(self) -> ModelSpec:
        c = self.resolved()
        return ModelSpec(conditional=c.conditional, d_conditioning=c.d_conditioning,
                         minibatch_stddev=c.minibatch_stddev, spectral_norm=c.spectral_norm,
                         d_dropout=c.d_dropout)

    def step_config(self) -> StepConfig:
        c = self.resolved()
        return StepConfig(lr_d=c.lr_d, lr_g=c.lr_g, beta1=c.beta1, beta2=c.beta2,
                          adam_eps=c.adam_eps, real_label=c.real_label,
                          ema_decay=c.ema_decay, seed=c.seed)

    def validate(self, custom_backend=False):
        """The resolved() config; ConfigError naming the first invalid setting.
        custom_backend: backend names a module given to train() (any name goes)."""
        c = self.resolved()

        def need(ok, name, what):
            if not ok:
                raise ConfigError(f"{name} must be {what}, got {getattr(c, name)!r}")

        def is_int(v):
            return isinstance(v, int) and not isinstance(v, bool)

        def is_real(v):
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        need(is_int(c.epochs) and c.epochs >= 1, "epochs", "an integer >= 1")
        need(is_int(c.batch_size) and c.batch_size >= 2, "batch_size",
             "an integer >= 2 (BatchNorm needs 2 samples)")
        for name in ("lr_d", "lr_g", "adam_eps"):
            need(is_real(getattr(c, name)) and getattr(c, name) > 0, name, "a number > 0")
        for name in ("beta1", "beta2", "d_dropout"):
            need(is_real(getattr(c, name)) and 0 <= getattr(c, name) < 1, name, "in [0, 1)")
        need(is_real(c.real_label) and 0 < c.real_label <= 1, "real_label", "in (0, 1]")
        need(is_real(c.ema_decay) and 0 <= c.ema_decay < 1, "ema_decay", "in [0, 1)")
        need(is_int(c.minibatch_stddev) and c.minibatch_stddev >= 0, "minibatch_stddev",
             "an integer >= 0")
        need(c.d_conditioning in D_CONDITIONINGS, "d_conditioning",
             " or ".join(D_CONDITIONINGS))
        need(c.split in ("train", "test", "all"), "split", "train, test or all")
        need(c.limit_train is None or (is_int(c.limit_train) and c.limit_train >= 2),
             "limit_train", "None or an integer >= 2")
        need(c.device in DEVICES, "device", ", ".join(DEVICES))
        need(custom_backend or c.backend in ("kernels", "reference"), "backend",
             "kernels or reference")
        need(c.threads is None or (is_int(c.threads) and c.threads >= 1), "threads",
             "None or an integer >= 1")
        need(is_int(c.log_every) and c.log_every >= 1, "log_every", "an integer >= 1")
        for name in ("sample_every", "checkpoint_every", "eval_every"):
            need(is_int(getattr(c, name)) and getattr(c, name) >= 0, name, "an integer >= 0")
        need(is_int(c.eval_samples) and c.eval_samples >= 2, "eval_samples", "an integer >= 2")
        need(c.max_steps is None or (is_int(c.max_steps) and c.max_steps >= 1), "max_steps",
             "None or an integer >= 1")
        need(c.on_divergence in ("stop", "rollback"), "on_divergence", "stop or rollback")
        if c.out_dir is not None and pathlib.Path(c.out_dir).exists() \
                and not pathlib.Path(c.out_dir).is_dir():
            raise ConfigError(f"out_dir {c.out_dir!r} exists and is not a folder")
        return c


# Settings that define the trajectory: a resumed run must not change them.
TRAJECTORY = ("recipe", *RECIPE_FIELDS, "beta1", "beta2", "adam_eps", "seed", "split",
              "limit_train", "drop_last", "conditional", "d_conditioning")
# Settings a resumed run takes from its call, never from the checkpoint.
NOT_INHERITED = ("device", "backend", "threads", "quiet", "resume", "max_steps", "cuda_graph")


def _saved_config(meta):
    """The checkpoint's resolved settings; a version 1 checkpoint (one lr, no recipe) is
    the seed's recipe with lr for both networks."""
    saved = dict(meta["config"])
    if "recipe" not in saved:
        lr = saved.pop("lr", RECIPES["seed"]["lr_d"])
        saved = {**RECIPES["seed"], **saved, "recipe": "seed", "lr_d": lr, "lr_g": lr}
    saved["lr"] = None
    return saved


def merge_resume(base, settings, resume, meta):
    """The TrainConfig of a run resumed from a checkpoint with metadata meta: where and how
    to run comes from the call; everything else from the checkpoint unless given; changing
    a trajectory setting is a ConfigError."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    saved = {k: v for k, v in _saved_config(meta).items()
             if k in names and k not in NOT_INHERITED}
    given = {**base, **settings}
    trial = TrainConfig(**{**saved, **given}).resolved()
    if "conditional" in saved and trial.conditional != saved["conditional"]:
        kind = "a conditional" if saved["conditional"] else "an unconditional"
        raise ConfigError(f"resume: the checkpoint holds {kind} model (trained with "
                          f"conditional={saved['conditional']}); a resumed run cannot change "
                          f"that: leave conditional out, or start a new run")
    for key in TRAJECTORY:
        if key in saved and getattr(trial, key) != saved[key]:
            raise ConfigError(f"resume: {key}={getattr(trial, key)!r} differs from the "
                              f"checkpoint's {saved[key]!r}; a resumed run keeps it")
    if "out_dir" not in given:
        given["out_dir"] = meta.get("run_dir", saved.get("out_dir"))
    return TrainConfig(**{**saved, **given, "resume": str(resume)})
