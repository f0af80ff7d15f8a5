"""gan_fast.cli: the command line (`gan-fast ...` or `python -m gan_fast ...`).

    gan-fast train --epochs 5 --batch-size 64 --out runs/x     # every TrainConfig field
    gan-fast train --resume runs/x/checkpoints/last.npz --epochs 10
    gan-fast sample --checkpoint runs/x/checkpoints/last.npz --n 64 --out grid.png
    gan-fast evaluate --checkpoint runs/x/checkpoints/last.npz --n 10000   # JSON metrics

The options of `train` are generated from the fields of gan_fast.trainer.TrainConfig
(name with '-' for '_', type, default and help), so the two cannot drift apart; --out is
an alias of --out-dir. Booleans take --name / --no-name.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import types
import typing

from .config import TrainConfig

__all__ = ["main", "build_parser"]


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


def build_parser():
    parser = argparse.ArgumentParser(
        prog="gan-fast", description="Train the MNIST GAN on gan_fast's kernels, sample "
                                     "digits from a checkpoint, or score them.")
    sub = parser.add_subparsers(dest="command", required=True)
    train_p = sub.add_parser("train", help="train (options: the fields of TrainConfig)",
                             description="Train the MNIST GAN. Settings not given keep their "
                                         "defaults (or, with --resume, the checkpoint's).")
    _add_config_options(train_p)
    sample_p = sub.add_parser("sample", help="write a grid of generated digits as PNG")
    sample_p.add_argument("--checkpoint", required=True, help="a checkpoint .npz written by train")
    sample_p.add_argument("--n", type=int, default=64, help="number of digits (default: 64)")
    sample_p.add_argument("--out", default="samples.png", help="PNG to write (default: "
                                                               "samples.png)")
    sample_p.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    sample_p.add_argument("--nrow", type=int, default=None,
                          help="digits per row (default: about sqrt(n))")
    sample_p.add_argument("--backend", default="kernels", choices=["kernels", "reference"],
                          help="op backend (default: kernels)")
    sample_p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                          help="device (default: auto)")
    eval_p = sub.add_parser("evaluate", help="score a checkpoint's generator with the judge "
                                             "(prints JSON)",
                            description="Score generated digits with gan_fast's MNIST judge: "
                                        "classes covered, KL to uniform, Inception Score, "
                                        "Fréchet distance, mean confidence.")
    eval_p.add_argument("--checkpoint", required=True, help="a checkpoint .npz written by train")
    eval_p.add_argument("--n", type=int, default=10000,
                        help="number of generated digits (default: 10000)")
    eval_p.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    eval_p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="device (default: auto)")
    eval_p.add_argument("--data-dir", default=None,
                        help="folder with the MNIST .gz files (for the test-set statistics)")
    eval_p.add_argument("--out", default=None, help="also write the JSON to this file")
    return parser


def main(argv=None):
    """Entry point of the `gan-fast` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "train":
        from .trainer import train
        settings = {k: v for k, v in vars(args).items() if k != "command"}
        try:
            result = train(**settings)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        print(f"trained {result.steps} steps; outputs in {result.paths['out_dir']}")
        return 0
    if args.command == "sample":
        from .checkpoint import load_generator
        from .images import save_grid
        generator = load_generator(args.checkpoint, args.backend, args.device)
        images = generator(args.n, seed=args.seed)
        nrow = args.nrow or math.ceil(math.sqrt(args.n))
        path = save_grid(images, args.out, nrow=nrow)
        print(f"wrote {args.n} digits to {path}")
        return 0
    if args.command == "evaluate":
        import json
        import pathlib

        from .quality import evaluate
        metrics = evaluate(args.checkpoint, n=args.n, seed=args.seed, device=args.device,
                           data_dir=args.data_dir)
        text = json.dumps(metrics.as_dict(), indent=2)
        print(text)
        if args.out:
            pathlib.Path(args.out).write_text(text + "\n")
        return 0
    return 2  # pragma: no cover - argparse rejects other commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
