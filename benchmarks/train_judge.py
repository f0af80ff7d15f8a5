"""Train the judge classifier of gan_fast.evaluate and write gan_fast/judge_weights.npz.

    python benchmarks/train_judge.py --data-dir ../shared/data/mnist          # the shipped weights
    python benchmarks/train_judge.py --epochs 1 --limit-train 2000 --out /tmp/j.npz   # a quick look

Reproducible: the same seed and settings give the same weights file bit for bit on the CPU
(gan_fast.judge's docstring says why). Prints the test accuracy per epoch, the time and the
weights' SHA-256, and writes the same as JSON to --json when given.
The shipped weights must reach >= 99.0% test accuracy (--min-accuracy; exit status 1 if not).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import gan_fast
from gan_fast.judge import WEIGHTS_PATH, train_judge


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help="folder with the MNIST .gz files")
    ap.add_argument("--out", default=str(WEIGHTS_PATH), help="weights file to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--max-shift", type=int, default=1, help="random shift augmentation, pixels")
    ap.add_argument("--limit-train", type=int, default=None)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--min-accuracy", type=float, default=0.99)
    ap.add_argument("--json", dest="json_path", default=None,
                    help="where to write the training record (default: none)")
    args = ap.parse_args(argv)
    if args.threads:
        gan_fast.set_num_threads(args.threads)
    result = train_judge(args.data_dir, args.out, seed=args.seed, epochs=args.epochs,
                         batch_size=args.batch_size, lr=args.lr, max_shift=args.max_shift,
                         limit_train=args.limit_train, device=args.device, download=False)
    result.pop("params")
    result["threads"] = gan_fast.get_num_threads()
    print(json.dumps(result, indent=2))
    if args.json_path:
        pathlib.Path(args.json_path).write_text(json.dumps(result, indent=2) + "\n")
    ok = result["test_accuracy"] >= args.min_accuracy
    print(f"test accuracy {result['test_accuracy']:.4%} "
          f"({'>=' if ok else 'BELOW'} {args.min_accuracy:.1%}); {result['time_s']:.0f} s; "
          f"sha256 {result['sha256']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
