"""The quality record: the default GAN trained by gan_fast and by its PyTorch twin, scored by
gan_fast.evaluate after every epoch.

    python benchmarks/quality_run.py --device cuda --data-dir DIR --out quality_out   # the record
    python benchmarks/quality_run.py --epochs 1 --limit-train 2000 --eval-samples 1000  # a smoke run

For each seed (default 0 and 1): gan_fast.train(...) with the default TrainConfig (batch 128,
Adam 2e-4, β 0.5/0.999) for E epochs on the 60,000 training images with eval_every=1, and
benchmarks/torch_twin.TorchGAN (the same model, loss, step and Adam settings, PyTorch's own
initialisation and random numbers) for the same number of steps: the same batch size,
E × (images // batch) steps, a fresh permutation of the same images each epoch (the last
partial batch dropped, as gan_fast's drop_last). After each epoch the twin's generator (in
eval mode: BatchNorm running statistics, as gan_fast's) is scored by the same
gan_fast.evaluate (n = --eval-samples, noise seed 0), its images handed over on the device
(DLPack) when it runs on CUDA.

Writes into --out (4 files): quality.json (every trajectory, timings, settings, judge SHA-256),
quality.md (the markdown table, also printed), samples_gan_fast.png and samples_torch.png
(the final 8x8 grids of seed 0 | seed 1 for the same fixed noise). Training runs go to a
temporary folder that is deleted. Budget on one H200: about 2-3 minutes for the defaults.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import platform
import sys
import tempfile
import time

import numpy as np
from PIL import Image

import gan_fast
from gan_fast.data import load_mnist, scale_images
from gan_fast.quality import evaluate, get_judge, reference_statistics
from gan_fast.images import grid_image
from gan_fast.trainer import TrainConfig

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

GRID_NOISE_SEED = 1234
METRICS = ("inception_score", "frechet_distance", "classes_covered", "kl_uniform",
           "mean_confidence")


def grid_noise():
    return np.random.default_rng(GRID_NOISE_SEED).standard_normal((64, 100), dtype=np.float32)


def _metrics_row(epoch, step, m, train_s):
    d = m.as_dict() if hasattr(m, "as_dict") else dict(m)
    return {"epoch": epoch, "step": step, "train_time_s": train_s,
            **{k: d[k] for k in METRICS}, "class_fractions": d["class_fractions"],
            "eval_time_s": d["time_s"]}


def run_gan_fast(seed, args, workdir):
    """Train with gan_fast (eval_every=1); the trajectory and the final grid."""
    t0 = time.perf_counter()
    result = gan_fast.train(epochs=args.epochs, seed=seed, batch_size=args.batch_size,
                            device=args.device, data_dir=args.data_dir, download=False,
                            limit_train=args.limit_train, eval_every=1,
                            eval_samples=args.eval_samples, out_dir=str(workdir / f"gf{seed}"),
                            sample_every=0, checkpoint_every=0, quiet=True)
    total = time.perf_counter() - t0
    evals = [r for r in result.history if r.get("kind") == "eval"]
    eval_time = 0.0
    rows = []
    for r in evals:
        eval_time += r["eval_time_s"]
        rows.append({"epoch": r["epoch"], "step": r["step"], **{k: r[k] for k in METRICS},
                     "class_fractions": r["class_fractions"], "eval_time_s": r["eval_time_s"]})
    grid = result.generator(64, z=grid_noise())
    return {"implementation": "gan_fast", "seed": seed, "steps": result.steps,
            "time_s": total, "train_time_s": total - eval_time, "trajectory": rows}, grid


def run_torch(seed, args, images):
    """The PyTorch twin for the same number of steps, scored after every epoch."""
    import torch
    from torch_twin import TorchGAN

    dev = "cuda" if args.device == "cuda" else "cpu"
    gan = TorchGAN(args.batch_size, device=dev, dropout=True, seed=seed)
    data = torch.from_numpy(images).to(dev)
    order = torch.Generator().manual_seed(seed)
    steps_per_epoch = images.shape[0] // args.batch_size
    rows, step, train_s = [], 0, 0.0

    def generator(n, seed=0, z=None):
        """The twin's generator as gan_fast.evaluate wants it: n -> images in [-1, 1]
        (CuPy on CUDA, via DLPack, so the images never leave the GPU)."""
        if z is None:
            z = np.random.default_rng(seed).standard_normal((n, 100), dtype=np.float32)
        gan.G.eval()
        with torch.no_grad():
            out = gan.G(torch.from_numpy(z).to(dev)).contiguous()
        gan.G.train()
        if dev == "cuda":
            import cupy
            torch.cuda.synchronize()
            return cupy.from_dlpack(out)
        return out.numpy()

    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(images.shape[0], generator=order).to(dev)
        for b in range(steps_per_epoch):
            gan.step(data[perm[b * args.batch_size:(b + 1) * args.batch_size]])
            step += 1
        if dev == "cuda":
            torch.cuda.synchronize()
        train_s += time.perf_counter() - t0
        m = evaluate(generator, n=args.eval_samples, seed=0, device=args.device,
                     data_dir=args.data_dir)
        rows.append(_metrics_row(epoch, step, m, train_s))
    grid = generator(64, z=grid_noise())
    grid = grid.get() if hasattr(grid, "get") else grid
    return {"implementation": "torch", "seed": seed, "steps": step, "train_time_s": train_s,
            "time_s": train_s + sum(r["eval_time_s"] for r in rows), "trajectory": rows}, grid


def side_by_side(grids, path):
    imgs = [grid_image(g) for g in grids]
    gap = 8
    canvas = Image.new("L", (sum(i.width for i in imgs) + gap * (len(imgs) - 1),
                             max(i.height for i in imgs)), 255)
    x = 0
    for img in imgs:
        canvas.paste(img, (x, 0))
        x += img.width + gap
    canvas.save(path, format="PNG")
    return path


def markdown(runs, args, judge_sha):
    cols = [(r["implementation"], r["seed"]) for r in runs]
    head = "| epoch | " + " | ".join(f"{impl} seed {s}" for impl, s in cols) + " |"
    lines = [f"Quality of the default configuration (batch {args.batch_size}, "
             f"{runs[0]['steps']} steps) on {args.device}: IS / FLD / classes / KL per epoch "
             f"(gan_fast.evaluate, n={args.eval_samples}, judge sha256 {judge_sha[:12]}…).",
             "", head, "|" + "---|" * (len(cols) + 1)]
    for e in range(args.epochs):
        cells = []
        for r in runs:
            t = r["trajectory"][e]
            cells.append(f"{t['inception_score']:.2f} / {t['frechet_distance']:.2f} / "
                         f"{t['classes_covered']} / {t['kl_uniform']:.3f}")
        lines.append(f"| {e + 1} | " + " | ".join(cells) + " |")
    lines += ["", "| run | train time (s) | eval time per epoch (s) | final IS | final FLD | "
                  "final confidence |", "|---|---|---|---|---|---|"]
    for r in runs:
        t = r["trajectory"][-1]
        per_eval = sum(x["eval_time_s"] for x in r["trajectory"]) / len(r["trajectory"])
        lines.append(f"| {r['implementation']} seed {r['seed']} | {r['train_time_s']:.1f} | "
                     f"{per_eval:.2f} | {t['inception_score']:.2f} | "
                     f"{t['frechet_distance']:.2f} | {t['mean_confidence']:.3f} |")
    lines += ["", "IS: classifier Inception Score (10 is best); FLD: Fréchet distance of the "
                  "judge's 128 penultimate features to the MNIST test set (0 is best); classes: "
                  "digits with ≥ 1% of the samples; KL: class histogram to uniform, nats."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    ap.add_argument("--eval-samples", type=int, default=10000)
    ap.add_argument("--limit-train", type=int, default=None)
    ap.add_argument("--data-dir", default=None, help="folder with the MNIST .gz files")
    ap.add_argument("--out", default="quality_out", help="output folder (4 files)")
    ap.add_argument("--skip-torch", action="store_true", help="gan_fast only")
    args = ap.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if gan_fast.cuda_available() else "cpu"
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    judge = get_judge(args.device)
    reference_statistics(judge, args.data_dir)    # once, so no epoch's eval time includes it
    images, _ = load_mnist("train", args.data_dir, download=False, progress=False)
    if args.limit_train is not None:
        images = images[:args.limit_train]
    images = scale_images(images)

    runs, grids = [], {"gan_fast": [], "torch": []}
    record = {"settings": {**vars(args), "train_images": int(images.shape[0]),
                           "grid_noise_seed": GRID_NOISE_SEED},
              "judge_sha256": judge.sha256, "judge_test_accuracy": judge.meta.get("test_accuracy"),
              "gan_fast_version": gan_fast.__version__, "python": platform.python_version(),
              "runs": runs}
    try:
        import torch
        record["torch_version"] = torch.__version__
    except ImportError:
        pass

    def save_record():  # after every run, so a run cut short still leaves its trajectories
        record["total_time_s"] = time.perf_counter() - t_start
        (out / "quality.json").write_text(json.dumps(record, indent=2) + "\n")

    with tempfile.TemporaryDirectory(prefix="quality_run_") as tmp:
        for seed in args.seeds:
            run, grid = run_gan_fast(seed, args, pathlib.Path(tmp))
            runs.append(run)
            grids["gan_fast"].append(grid)
            save_record()
            print(f"gan_fast seed {seed}: {run['time_s']:.1f} s, final "
                  f"IS {run['trajectory'][-1]['inception_score']:.2f}", flush=True)
    if not args.skip_torch:
        for seed in args.seeds:
            run, grid = run_torch(seed, args, images)
            runs.append(run)
            grids["torch"].append(grid)
            save_record()
            print(f"torch seed {seed}: {run['time_s']:.1f} s, final "
                  f"IS {run['trajectory'][-1]['inception_score']:.2f}", flush=True)

    files = {"json": out / "quality.json", "md": out / "quality.md"}
    for impl, g in grids.items():
        if g:
            files[impl] = side_by_side(g, out / f"samples_{impl}.png")
    table = markdown(runs, args, judge.sha256)
    save_record()
    files["md"].write_text(table)
    print(table)
    print(f"total {record['total_time_s']:.1f} s; wrote " + ", ".join(str(p) for p in files.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
