"""Train on the GPU for a few epochs of real MNIST and report wall time, images/s and
the losses; copies the last sample grid to the given folder. Part of gpu_check.sh.

    python benchmarks/gpu_train_smoke.py OUT_DIR [--epochs 3] [--batch-size 64]
"""
import argparse
import pathlib
import shutil
import tempfile
import time

import gan_fast

ap = argparse.ArgumentParser()
ap.add_argument("out", type=pathlib.Path)
ap.add_argument("--epochs", type=int, default=3)
ap.add_argument("--batch-size", type=int, default=64)
args = ap.parse_args()
with tempfile.TemporaryDirectory() as run_dir:
    t0 = time.perf_counter()
    result = gan_fast.train(epochs=args.epochs, batch_size=args.batch_size, device="cuda",
                            out_dir=run_dir, quiet=True, download=False)
    seconds = time.perf_counter() - t0
    last = result.history[-1]
    print(f"{args.epochs} epochs, batch {args.batch_size}, {result.steps} steps on the GPU: "
          f"{seconds:.1f} s wall ({result.steps * args.batch_size / seconds:.0f} real images/s "
          f"including logging, samples and checkpoints)")
    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in last.items()})
    shutil.copy(result.paths["samples"][-1], args.out / "gpu_samples.png")
