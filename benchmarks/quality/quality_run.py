"""The quality study: named training recipes x seeds, trained by gan_fast (and, for the
variants asked for, by its PyTorch twin), scored by gan_fast.evaluate after every epoch.

    # the screen: every remedy alone against the seed's recipe, 10 epochs, one seed
    python -m benchmarks.quality.quality_run --variants screen --epochs 10 --seeds 0 --out study/screen
    # the confirmation: the best few at full length, two seeds, with the PyTorch twin
    python -m benchmarks.quality.quality_run --variants default,seed --epochs 20 --seeds 0 1 \
        --torch-variants default,seed --out study/confirm
    # a smoke run
    python -m benchmarks.quality.quality_run --variants seed --epochs 1 --limit-train 2048 \
        --eval-samples 1000 --out /tmp/q

A variant is a named set of gan_fast.train() settings (VARIANTS below): each remedy of
the study alone on top of the seed's recipe (recipe="seed"), their combinations, and
"default", gan_fast.train()'s default recipe as shipped. Every run evaluates after every
epoch (n = --eval-samples, noise seed 0); its final 8x8 grid uses the same fixed noise
for every run. Runs go to worker processes, --jobs at a time, each on --threads CPU
threads (a 2-core machine: --jobs 2 --threads 1); their training folders are temporary.

Writes into --out: study.json (every trajectory, timings, settings, the judge's SHA-256;
rewritten after every run, so a study cut short keeps what finished), study.md (the
table, also printed) and grid_<variant>_<impl>.png (the final grids of its seeds, side by
side). The PyTorch twin (benchmarks/quality/torch_twin.py) runs the same recipe with PyTorch's own
initialisation and random numbers, for the same number of steps.

Budget (2-core Zen 4 VM, one thread per run): about 40 s per epoch at batch 128 and 2-3 s
per evaluation; the twin about 3x that. On an H200 20 epochs take about 25 s.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing
import pathlib
import platform
import sys
import tempfile
import time

import numpy as np
from PIL import Image

GRID_NOISE_SEED = 1234
METRICS = ("inception_score", "frechet_distance", "classes_covered", "kl_uniform",
           "mean_confidence")

# Settings on top of recipe="seed" (the seed's algorithm), except "default".
VARIANTS = {
    "seed": {},
    "default": {"recipe": None},                     # gan_fast.train()'s default recipe
    "noema": {"ema_decay": 0.0},
    "ema99": {"ema_decay": 0.99},
    "ema999": {"ema_decay": 0.999},
    "ema9995": {"ema_decay": 0.9995},
    "ema9999": {"ema_decay": 0.9999},
    "smooth": {"real_label": 0.9},
    "ttur_d": {"lr_d": 4e-4, "lr_g": 1e-4},           # D faster
    "ttur_g": {"lr_d": 1e-4, "lr_g": 4e-4},           # G faster
    "mbstd": {"minibatch_stddev": 4},
    "sn": {"spectral_norm": True},
    "nodrop": {"d_dropout": 0.0},
    "b64": {"batch_size": 64},
    "adam0": {"beta1": 0.0, "beta2": 0.9},           # SN-GAN's Adam (Miyato et al. 2018)
    # Class-conditional (issue #15), the two ways D can see the digit.
    "cond_proj": {"conditional": True, "d_conditioning": "projection"},
    "cond_chan": {"conditional": True, "d_conditioning": "channels"},
}
GROUPS = {
    # Each remedy alone on the seed's recipe.
    "screen": ["seed", "ema999", "ema9995", "smooth", "ttur_d", "ttur_g", "mbstd", "sn",
               "nodrop", "b64"],
    # Spectral normalisation (the screen's clear winner) with each other remedy, EMA on.
    "combine": ["sn+ema999", "sn+ema999+nodrop", "sn+ema999+mbstd", "sn+ema999+ttur_d",
                "sn+ema999+smooth", "sn+ema999+b64", "sn+ema999+adam0"],
}


def grid_noise():
    return np.random.default_rng(GRID_NOISE_SEED).standard_normal((64, 100), dtype=np.float32)


def settings_of(variant):
    """The gan_fast.train() settings of a variant name ('a+b' combines variants)."""
    out = {"recipe": "seed"}
    for part in variant.split("+"):
        if part not in VARIANTS:
            raise SystemExit(f"unknown variant {part!r}; known: {', '.join(VARIANTS)}")
        out.update(VARIANTS[part])
    if out.get("recipe") is None:
        out.pop("recipe")
    return out


def _eval_row(epoch, step, m):
    d = m if isinstance(m, dict) else m.as_dict()
    return {"epoch": epoch, "step": step, **{k: d[k] for k in METRICS},
            "class_fractions": d["class_fractions"],
            "conditional_accuracy": d.get("conditional_accuracy"),
            "conditional_accuracy_per_digit": d.get("conditional_accuracy_per_digit"),
            "eval_time_s": d.get("eval_time_s", d.get("time_s"))}


def run_gan_fast(variant, seed, args):
    """Worker: train one variant with gan_fast, evaluating after every epoch."""
    import gan_fast
    settings = settings_of(variant)
    with tempfile.TemporaryDirectory(prefix="quality_run_") as tmp:
        t0 = time.perf_counter()
        result = gan_fast.train(**settings, epochs=args.epochs, seed=seed,
                                device=args.device, data_dir=args.data_dir, download=False,
                                limit_train=args.limit_train, eval_every=1,
                                eval_samples=args.eval_samples, out_dir=tmp,
                                sample_every=0, checkpoint_every=0, quiet=True,
                                threads=args.threads if args.device == "cpu" else None)
        total = time.perf_counter() - t0
    evals = [r for r in result.history if r.get("kind") == "eval"]
    rows = [_eval_row(r["epoch"], r["step"], r) for r in evals]
    grid = result.generator(64, z=grid_noise())
    resolved = {k: getattr(result.config, k) for k in
                ("recipe", "batch_size", "lr_d", "lr_g", "beta1", "beta2", "real_label",
                 "ema_decay", "minibatch_stddev", "spectral_norm", "d_dropout", "conditional",
                 "d_conditioning")}
    if result.config.conditional:              # one row per digit, the grid's first 10 noises
        z = np.tile(grid_noise()[:10], (10, 1))
        grid = result.generator(100, z=z, digits=np.repeat(np.arange(10), 10))
    return {"variant": variant, "implementation": "gan_fast", "seed": seed,
            "settings": resolved, "steps": result.steps, "time_s": total,
            "train_time_s": total - sum(r["eval_time_s"] for r in rows),
            "trajectory": rows}, grid


def run_torch(variant, seed, args):
    """Worker: the PyTorch twin of the same recipe, for the same number of steps."""
    import torch

    import gan_fast
    from .torch_twin import TorchGAN
    from gan_fast.data import load_mnist, scale_images

    cfg = gan_fast.TrainConfig(**settings_of(variant)).resolved()
    recipe = {k: getattr(cfg, k) for k in ("lr_d", "lr_g", "real_label", "ema_decay",
                                           "minibatch_stddev", "spectral_norm", "d_dropout")}
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    dev = "cuda" if args.device == "cuda" else "cpu"
    images, _ = load_mnist("train", args.data_dir, download=False, progress=False)
    if args.limit_train is not None:
        images = images[:args.limit_train]
    data = torch.from_numpy(scale_images(images)).to(dev)
    gan = TorchGAN(cfg.batch_size, device=dev, seed=seed, recipe=recipe)
    order = torch.Generator().manual_seed(seed)
    steps_per_epoch = data.shape[0] // cfg.batch_size

    def generator(n, seed=0, z=None):
        if z is None:
            z = np.random.default_rng(seed).standard_normal((n, 100), dtype=np.float32)
        g = gan.sampler()
        g.eval()
        with torch.no_grad():
            out = g(torch.from_numpy(z).to(dev)).contiguous()
        gan.G.train()
        if dev == "cuda":
            import cupy
            torch.cuda.synchronize()
            return cupy.from_dlpack(out)
        return out.numpy()

    rows, step, train_s = [], 0, 0.0
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(data.shape[0], generator=order).to(dev)
        for b in range(steps_per_epoch):
            gan.step(data[perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]])
            step += 1
        if dev == "cuda":
            torch.cuda.synchronize()
        train_s += time.perf_counter() - t0
        m = gan_fast.evaluate(generator, n=args.eval_samples, seed=0, device=args.device,
                              data_dir=args.data_dir)
        rows.append(_eval_row(epoch, step, m))
    grid = generator(64, z=grid_noise())
    grid = grid.get() if hasattr(grid, "get") else grid
    return {"variant": variant, "implementation": "torch", "seed": seed, "settings": recipe,
            "steps": step, "train_time_s": train_s,
            "time_s": train_s + sum(r["eval_time_s"] for r in rows), "trajectory": rows}, grid


def _worker(job):
    kind, variant, seed, args = job
    return (run_gan_fast if kind == "gan_fast" else run_torch)(variant, seed, args)


def side_by_side(grids, path):
    from gan_fast.images import grid_image
    imgs = [grid_image(g, nrow=10 if g.shape[0] == 100 else 8) for g in grids]
    gap = 8
    canvas = Image.new("L", (sum(i.width for i in imgs) + gap * (len(imgs) - 1),
                             max(i.height for i in imgs)), 255)
    x = 0
    for img in imgs:
        canvas.paste(img, (x, 0))
        x += img.width + gap
    canvas.save(path, format="PNG")
    return path


def _cell(t):
    text = (f"{t['inception_score']:.2f} / {t['frechet_distance']:.0f} / "
            f"{t['classes_covered']} / {t['kl_uniform']:.3f}")
    if t.get("conditional_accuracy") is not None:
        text += (f" / {t['conditional_accuracy']:.1%} "
                 f"(≥ {min(t['conditional_accuracy_per_digit']):.1%})")
    return text


def markdown(runs, args, judge_sha):
    """The study table: per run, IS / FD / classes / KL at epochs 5, 10, 20 and the last,
    the fewest classes covered from epoch 5 on, and the training time."""
    marks = [e for e in (5, 10, 20) if e < args.epochs] + [args.epochs]
    head = ("| variant | impl | seed | " + " | ".join(f"epoch {e}" for e in marks)
            + " | min classes (epoch ≥ 5) | train time (s) |")
    lines = [f"Quality study on {args.device}, {args.epochs} epochs, n = {args.eval_samples} "
             f"per evaluation (judge sha256 {judge_sha[:12]}…). Cells: classifier IS / "
             f"Fréchet distance / classes covered / KL to uniform (nats); a conditional "
             f"model adds its conditional accuracy (and its worst digit's).", "", head,
             "|" + "---|" * (len(marks) + 5)]
    for r in sorted(runs, key=lambda r: (r["variant"], r["implementation"], r["seed"])):
        traj = {t["epoch"]: t for t in r["trajectory"]}
        later = [t["classes_covered"] for t in r["trajectory"] if t["epoch"] >= 5]
        cells = [_cell(traj[e]) if e in traj else "" for e in marks]
        lines.append(f"| {r['variant']} | {r['implementation']} | {r['seed']} | "
                     + " | ".join(cells) + f" | {min(later) if later else ''} | "
                     f"{r['train_time_s']:.0f} |")
    lines += ["", "Targets (issue #12, default settings, 20 epochs): 10 classes at every "
                  "evaluation from epoch 5 on, KL ≤ 0.05, IS ≥ 8.5, FD ≤ 100 (real test "
                  "images: IS 9.59; real digits blurred by σ = 1 px: FD 309)."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="screen",
                    help="comma-separated variant names, 'a+b' for a combination, or a "
                         f"group ({', '.join(GROUPS)}); known: {', '.join(VARIANTS)}")
    ap.add_argument("--torch-variants", default="",
                    help="variants to run with the PyTorch twin too (comma-separated)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--eval-samples", type=int, default=10000)
    ap.add_argument("--limit-train", type=int, default=None)
    ap.add_argument("--data-dir", default=None, help="folder with the MNIST .gz files")
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (processes)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    ap.add_argument("--out", default="quality_out", help="output folder")
    args = ap.parse_args(argv)
    variants = [v for name in args.variants.split(",") if name
                for v in GROUPS.get(name, [name])]
    for v in variants + args.torch_variants.split(","):
        if v:
            settings_of(v)                         # unknown names fail now, not in a worker
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import gan_fast
    from gan_fast.quality import get_judge
    judge = get_judge(args.device)
    jobs = [("gan_fast", v, s, args) for v in variants for s in args.seeds]
    jobs += [("torch", v, s, args) for v in args.torch_variants.split(",") if v
             for s in args.seeds]
    record = {"settings": vars(args), "variants": {v: settings_of(v) for v in variants},
              "judge_sha256": judge.sha256,
              "judge_test_accuracy": judge.meta.get("test_accuracy"),
              "gan_fast_version": gan_fast.__version__, "python": platform.python_version(),
              "machine": platform.machine(), "cpu_isa": gan_fast.cpu_isa(), "runs": []}
    grids = {}
    t_start = time.perf_counter()

    def save():
        record["total_time_s"] = time.perf_counter() - t_start
        (out / "study.json").write_text(json.dumps(record, indent=2) + "\n")

    ctx = multiprocessing.get_context("spawn")       # fresh interpreters: no shared state
    with cf.ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
        futures = {pool.submit(_worker, job): job for job in jobs}
        for fut in cf.as_completed(futures):
            kind, variant, seed, _ = futures[fut]
            run, grid = fut.result()
            record["runs"].append(run)
            grids.setdefault((variant, kind), {})[seed] = grid
            save()
            last = run["trajectory"][-1]
            print(f"{variant} {kind} seed {seed}: {run['time_s']:.0f} s, final "
                  f"{_cell(last)}", flush=True)
    for (variant, kind), by_seed in grids.items():
        side_by_side([by_seed[s] for s in sorted(by_seed)],
                     out / f"grid_{variant.replace('+', '_')}_{kind}.png")
    table = markdown(record["runs"], args, judge.sha256)
    (out / "study.md").write_text(table)
    save()
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
