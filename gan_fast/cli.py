"""gan_fast.cli: the command line (`gan-fast ...` or `python -m gan_fast ...`).

    gan-fast train --epochs 5 --batch-size 64 --out runs/x     # every TrainConfig field
    gan-fast train --resume runs/x/checkpoints/last.npz --epochs 10
    gan-fast sample --checkpoint runs/x/checkpoints/last.npz --n 64 --out grid.png
    gan-fast sample --checkpoint runs/c/checkpoints/last.npz --digit 7 --n 16   # conditional
    gan-fast interpolate --checkpoint runs/x/checkpoints/last.npz --out walk.gif
    gan-fast evaluate --checkpoint runs/x/checkpoints/last.npz --n 10000   # JSON metrics
    gan-fast train-judge --data-dir DIR          # retrains evaluate's judge (its weights file)
    gan-fast --version

The options of `train` are generated from the fields of gan_fast.config.TrainConfig
(name with '-' for '_', type, default and help), so the two cannot drift apart; --out is
an alias of --out-dir. Booleans take --name / --no-name.

Errors: an expected failure prints one line, `gan-fast: error: ...`, on stderr and exits
with status 2 when a setting is invalid (argparse's checks, this module's checks of numbers
and paths, gan_fast.errors.ConfigError from the trainer: nothing has been written yet) or 1
when running failed (EXIT_STATUS lists the types: a damaged checkpoint, MNIST not found,
a diverged run, a file that cannot be written, no CUDA device). `--debug` (before or after
the command) prints the traceback as well. Ctrl-C exits with 130. Any other exception is a
bug and keeps Python's traceback.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import pathlib
import sys
import traceback
import types
import typing

import numpy as np

from .checkpoint import CheckpointError
from .config import TrainConfig
from .data import MNISTError
from .errors import ConfigError, NonFiniteLossError
from .judge import WEIGHTS_PATH
from .version import __version__

__all__ = ["main", "build_parser", "EXIT_STATUS"]

# The expected failures and their exit status; the first match wins (ConfigError and
# CheckpointError are both ValueErrors, and no other ValueError is expected).
EXIT_STATUS = (
    (ConfigError, 2),          # an invalid setting or option: nothing written yet
    (CheckpointError, 1),      # a checkpoint that is damaged or of another model
    (MNISTError, 1),           # MNIST not found, not downloadable or damaged
    (NonFiniteLossError, 1),   # the run diverged (its last good checkpoint is kept)
    (OSError, 1),              # a file or folder that cannot be read or written
    (RuntimeError, 1),         # e.g. "no usable CUDA device"; errors thrown by the kernels
)


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are raised as ConfigError, so that main() reports them like
    every other invalid setting (one line, status 2) instead of printing the usage text
    (which, for `train`, lists every TrainConfig field)."""

    def error(self, message):
        raise ConfigError(f"{message} (see `{self.prog} --help`)")


def _int_at_least(minimum):
    def parse(text):
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    parse.__name__ = "int"      # argparse names the type in "invalid int value: 'x'"
    return parse


def _digit(text):
    value = int(text)
    if not 0 <= value <= 9:
        raise argparse.ArgumentTypeError(f"must be a digit 0-9, got {value}")
    return value


_digit.__name__ = "int"


def _field_type(f):
    """(python type, optional) of a TrainConfig field from its annotation."""
    hint = typing.get_type_hints(TrainConfig)[f.name]
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return hint, False


def _add_config_options(parser):
    for f in dataclasses.fields(TrainConfig):
        typ, optional = _field_type(f)
        flags = ["--" + f.name.replace("_", "-")]
        if f.name == "out_dir":
            flags.append("--out")
        help_text = f.metadata.get("help", "") + f" (default: {f.default})"
        if typ is bool:
            parser.add_argument(*flags, dest=f.name, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=help_text)
        else:
            parser.add_argument(*flags, dest=f.name, type=typ, default=argparse.SUPPRESS,
                                metavar=f.name.upper() if optional or typ is str else None,
                                help=help_text)


def _add_judge_options(parser):
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST .gz files")
    parser.add_argument("--download", action=argparse.BooleanOptionalAction, default=True,
                        help="download MNIST when it is not found (default: yes)")
    parser.add_argument("--out", default=str(WEIGHTS_PATH),
                        help=f"weights file to write (default: the one `evaluate` loads, "
                             f"{WEIGHTS_PATH})")
    parser.add_argument("--seed", type=int, default=0, help="seed of everything random "
                                                            "(default: 0)")
    parser.add_argument("--epochs", type=_int_at_least(1), default=4, help="(default: 4)")
    parser.add_argument("--batch-size", type=_int_at_least(1), default=128,
                        help="(default: 128)")
    parser.add_argument("--lr", type=float, default=1e-3,
                        help="peak learning rate, cosine decay to 0 (default: 1e-3)")
    parser.add_argument("--max-shift", type=_int_at_least(0), default=1,
                        help="random shift augmentation, pixels (default: 1)")
    parser.add_argument("--limit-train", type=_int_at_least(1), default=None,
                        help="train on the first N training images only (default: all)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"],
                        help="device (default: cpu, whose result is bit-reproducible)")
    parser.add_argument("--threads", type=_int_at_least(1), default=None,
                        help="CPU threads (default: gan_fast's)")
    parser.add_argument("--min-accuracy", type=float, default=0.99,
                        help="exit with status 1 below this test accuracy (default: 0.99)")
    parser.add_argument("--json", dest="json_path", default=None,
                        help="also write the training record (accuracy per epoch, settings, "
                             "SHA-256) as JSON to this file")


def _add_checkpoint_options(parser):
    """--checkpoint and --device: where the generator comes from and where it runs."""
    parser.add_argument("--checkpoint", required=True, help="a checkpoint .npz written by train")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="device (default: auto)")


def build_parser():
    # --debug is accepted before the command and after it (parents=[common]).
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="on an error, print the Python traceback as well")
    parser = _Parser(
        prog="gan-fast", parents=[common],
        description="Train the MNIST GAN on gan_fast's kernels, sample digits from a "
                    "checkpoint, or score them. Exit status: 0 done, 1 failed while "
                    "running, 2 invalid option or setting, 130 interrupted.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    train_p = sub.add_parser("train", parents=[common],
                             help="train (options: the fields of TrainConfig)",
                             description="Train the MNIST GAN. Settings not given keep their "
                                         "defaults (or, with --resume, the checkpoint's).")
    _add_config_options(train_p)
    sample_p = sub.add_parser("sample", parents=[common],
                              help="write a grid of generated digits as PNG")
    _add_checkpoint_options(sample_p)
    sample_p.add_argument("--n", type=_int_at_least(1), default=None,
                          help="number of digits (default: 64; a conditional model without "
                               "--digit: 100, one row per digit)")
    sample_p.add_argument("--digit", type=_digit, default=None,
                          help="draw only this digit (0-9; a model trained with --conditional)")
    sample_p.add_argument("--out", default="samples.png",
                          help="PNG to write (default: samples.png)")
    sample_p.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    sample_p.add_argument("--nrow", type=_int_at_least(1), default=None,
                          help="digits per row (default: about sqrt(n))")
    sample_p.add_argument("--backend", default="kernels", choices=["kernels", "reference"],
                          help="op backend (default: kernels)")
    walk_p = sub.add_parser("interpolate", parents=[common],
                            help="write a latent walk (spherical interpolation) as a GIF",
                            description="Animate the generator along great circles between "
                                        "random points of its latent space (slerp), returning "
                                        "to the first so that the GIF loops. Each frame shows "
                                        "--walks walks side by side; a conditional model "
                                        "draws --digit, or without it the ten digits sharing "
                                        "one walk.")
    _add_checkpoint_options(walk_p)
    walk_p.add_argument("--out", default="walk.gif", help="GIF to write (default: walk.gif)")
    walk_p.add_argument("--digit", type=_digit, default=None,
                        help="the digit to walk through (0-9; a conditional model)")
    walk_p.add_argument("--points", type=_int_at_least(2), default=4,
                        help="random latent points visited (default: 4)")
    walk_p.add_argument("--steps", type=_int_at_least(1), default=16,
                        help="frames between two points (default: 16)")
    walk_p.add_argument("--walks", type=_int_at_least(1), default=8,
                        help="walks side by side (default: 8)")
    walk_p.add_argument("--duration-ms", type=_int_at_least(1), default=80,
                        help="time per frame (default: 80 ms)")
    walk_p.add_argument("--seed", type=int, default=0, help="seed of the points (default: 0)")
    eval_p = sub.add_parser("evaluate", parents=[common],
                            help="score a checkpoint's generator with the judge "
                                 "(prints JSON)",
                            description="Score generated digits with gan_fast's MNIST judge: "
                                        "classes covered, KL to uniform, Inception Score, "
                                        "Fréchet distance, mean confidence.")
    _add_checkpoint_options(eval_p)
    eval_p.add_argument("--n", type=_int_at_least(2), default=10000,
                        help="number of generated digits (default: 10000)")
    eval_p.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    eval_p.add_argument("--data-dir", default=None,
                        help="folder with the MNIST .gz files (for the test-set statistics)")
    eval_p.add_argument("--out", default=None, help="also write the JSON to this file")
    judge_p = sub.add_parser("train-judge", parents=[common],
                             help="retrain the judge classifier that `evaluate` scores with",
                             description="Train the judge classifier of `gan-fast evaluate` "
                                         "(gan_fast.judge.train_judge) and write its weights "
                                         "file. The same seed and settings give the same file "
                                         "bit for bit on the CPU. Prints the test accuracy per "
                                         "epoch, then the accuracy, time and SHA-256.")
    _add_judge_options(judge_p)
    return parser


# ------------------------------------------------------------------ checks before running
def _check_input_file(path, option):
    if not pathlib.Path(path).is_file():
        problem = "is not a file" if pathlib.Path(path).exists() else "does not exist"
        raise ConfigError(f"{option} {path} {problem}")


def _check_output_file(path, option):
    """path can be written: it is not a folder, and its nearest existing parent folder is a
    folder this process may write into (the missing ones are created when writing)."""
    target = pathlib.Path(path)
    if target.is_dir():
        raise ConfigError(f"{option} {path} is a folder; give a file name")
    folder = target.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"{option} {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: cannot write into {folder}")


def _check(args):
    """The checks argparse cannot make, before anything is loaded or written."""
    if args.command in ("sample", "evaluate", "interpolate"):
        _check_input_file(args.checkpoint, "--checkpoint")
    if args.command in ("sample", "evaluate", "interpolate", "train-judge") and args.out:
        _check_output_file(args.out, "--out")
    if args.command == "train-judge":
        if args.json_path is not None:
            _check_output_file(args.json_path, "--json")
        if not args.lr > 0:
            raise ConfigError(f"--lr must be positive, got {args.lr}")
        if args.limit_train is not None and args.limit_train < args.batch_size:
            raise ConfigError(f"--limit-train {args.limit_train} is smaller than --batch-size "
                              f"{args.batch_size}: not one batch to train on")


# ------------------------------------------------------------------------------ commands
def _train(args):
    from .trainer import train
    settings = {k: v for k, v in vars(args).items() if k not in ("command", "debug")}
    train(**settings)               # prints its own completion line
    return 0


def _generator(args):
    """The checkpoint's generator (its EMA one when it has one); --digit needs a
    conditional model."""
    from .checkpoint import load_generator
    generator = load_generator(args.checkpoint, getattr(args, "backend", "kernels"),
                               args.device)
    if args.digit is not None and not generator.conditional:
        raise ConfigError(f"--digit: {args.checkpoint} holds an unconditional generator; "
                          f"choosing a digit needs a model trained with --conditional")
    return generator


def _sample(args):
    from .images import save_grid
    generator = _generator(args)
    if generator.conditional and args.digit is None:   # one row per digit, a style a column
        n = args.n or 100
        if n % 10:
            raise ConfigError(f"--n {n}: a conditional model draws one row per digit, so "
                              f"--n must be a multiple of 10 (or give --digit)")
        z = np.random.default_rng(args.seed).standard_normal((n // 10, 100), dtype=np.float32)
        images = generator(n, z=np.tile(z, (10, 1)), digits=np.repeat(np.arange(10), n // 10))
        nrow = args.nrow or n // 10
    else:
        n = args.n or 64
        images = generator(n, seed=args.seed, digits=args.digit)
        nrow = args.nrow or math.ceil(math.sqrt(n))
    path = save_grid(images, args.out, nrow=nrow)
    what = f"digit {args.digit}" if args.digit is not None else "digits"
    print(f"wrote {n} {what} to {path}")
    return 0


def _interpolate(args):
    from .walk import latent_walk, save_walk_gif
    generator = _generator(args)
    frames = latent_walk(generator, args.points, args.steps, args.walks, args.seed, args.digit)
    path = save_walk_gif(frames, args.out, args.duration_ms)
    print(f"wrote a latent walk of {frames.shape[0]} frames x {frames.shape[1]} digits to {path}")
    return 0


def _evaluate(args):
    import json

    from .quality import evaluate
    metrics = evaluate(args.checkpoint, n=args.n, seed=args.seed, device=args.device,
                       data_dir=args.data_dir)
    text = json.dumps(metrics.as_dict(), indent=2)
    print(text)
    if args.out:
        out = pathlib.Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    return 0


def _train_judge(args):
    import json

    from ._C import get_num_threads, set_num_threads
    from .judge import train_judge
    if args.threads:
        set_num_threads(args.threads)
    result = train_judge(args.data_dir, args.out, seed=args.seed, epochs=args.epochs,
                         batch_size=args.batch_size, lr=args.lr, max_shift=args.max_shift,
                         limit_train=args.limit_train, device=args.device,
                         download=args.download)
    result.pop("params")
    result["threads"] = get_num_threads()
    if args.json_path:
        out = pathlib.Path(args.json_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    accuracy = result["test_accuracy"]
    print(f"done: test accuracy {accuracy:.4%} in {result['time_s']:.0f} s; wrote "
          f"{result['path']} (sha256 {result['sha256']})")
    if accuracy < args.min_accuracy:
        _report(f"test accuracy {accuracy:.4%} is below --min-accuracy "
                f"{args.min_accuracy:.2%}")
        return 1
    return 0


_COMMANDS = {"train": _train, "sample": _sample, "interpolate": _interpolate,
             "evaluate": _evaluate, "train-judge": _train_judge}


def _report(message):
    """The one line of an expected error (a multi-line message is joined into it)."""
    print("gan-fast: error: " + " ".join(str(message).split()), file=sys.stderr)


def _message(error):
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return str(error) or type(error).__name__


def main(argv=None):
    """Entry point of the `gan-fast` console script; returns the exit status (argparse's
    --help and --version exit with status 0 through SystemExit, as usual)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv       # known before parsing, so parse errors honour it too
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.error("a command is required: " + ", ".join(_COMMANDS))
        _check(args)
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("gan-fast: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        status = next((s for kind, s in EXIT_STATUS if isinstance(error, kind)), None)
        if status is None:
            raise                   # not an expected failure: a bug, with its traceback
        if debug:
            traceback.print_exc()
        _report(_message(error))
        return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
