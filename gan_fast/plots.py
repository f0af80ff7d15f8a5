"""gan_fast.plots: the pictures of a training run that a person reads.

save_dashboard(rows, path)              metrics rows (those of metrics.jsonl) -> PNG, drawn
                                        with matplotlib: the losses and D's outputs against
                                        the step and, when the run was evaluated, the
                                        evaluation metrics against the epoch
save_progress_gif(png_paths, path)      the per-epoch fixed-noise grids -> an animated GIF
                                        (Pillow), each frame labelled with its epoch

matplotlib is an optional extra (`pip install "gan_fast[plots]"`), imported only when a
dashboard is drawn, so `import gan_fast` stays fast and works without it. Without it
save_dashboard raises ImportError (name "matplotlib") whose message says how to get it: a
caller that can go on without the dashboard (the trainer) prints that message once and
carries on. Drawing uses matplotlib's object API on a Figure of its own (the Agg
renderer): no pyplot state, no display, safe in scripts and threads.

The rows: a logged step has step, epoch, loss_d, loss_d_real, loss_d_fake, loss_g, d_x,
d_g_z, d_g_z_after, d_accuracy, images_per_s; an evaluation row has kind == "eval", epoch,
step, inception_score, frechet_distance, classes_covered, kl_uniform, mean_confidence,
class_fractions and, for a conditional model, conditional_accuracy. Missing keys are left
out of the plot. A run that went back to an earlier step (resumed from an older checkpoint,
or rolled back after a divergence) is drawn as the trajectory that was kept: rows from
before a rewind that the later rows replace are dropped.

    python -c "import json, gan_fast.plots as p; \\
        p.save_dashboard([json.loads(l) for l in open('runs/x/metrics.jsonl')], 'd.png')"
Tests: tests/test_plots.py.
"""
from __future__ import annotations

import pathlib
import re

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["save_dashboard", "save_progress_gif", "kept_trajectory", "smoothed", "frame_label",
           "MATPLOTLIB_MISSING"]

MATPLOTLIB_MISSING = ('the training dashboard needs matplotlib: pip install "gan_fast[plots]" '
                      '(or pip install matplotlib)')

# One colour per quantity, the same in every panel it appears in (matplotlib's tab10).
_COLOURS = {"loss_d": "tab:red", "loss_d_real": "tab:orange", "loss_d_fake": "tab:pink",
            "loss_g": "tab:blue", "d_x": "tab:green", "d_g_z": "tab:purple",
            "d_g_z_after": "tab:brown", "d_accuracy": "tab:gray"}


def kept_trajectory(rows, key):
    """rows in order of key with a rewind resolved: a row whose key is not above the one
    before it replaces every earlier row from that key on (the run went back there)."""
    kept = []
    for row in rows:
        while kept and kept[-1][key] >= row[key]:
            kept.pop()
        kept.append(row)
    return kept


def _series(rows, key):
    """The values of key as float64, NaN where a row lacks it (matplotlib leaves a gap)."""
    return np.array([np.nan if row.get(key) is None else float(row[key]) for row in rows])


def smoothed(values):
    """A centred running mean over about 1/20 of the series (None when that is a single
    point), skipping NaN: the trend of a noisy GAN loss, drawn over the logged values."""
    half = len(values) // 40
    if half == 0:
        return None
    finite = np.isfinite(values)
    sums = np.concatenate([[0.0], np.cumsum(np.where(finite, values, 0.0))])
    counts = np.concatenate([[0], np.cumsum(finite)])
    i = np.arange(len(values))
    lo, hi = np.maximum(i - half, 0), np.minimum(i + half + 1, len(values))
    with np.errstate(invalid="ignore"):          # a window without a finite value: NaN
        return (sums[hi] - sums[lo]) / (counts[hi] - counts[lo])


def _plot_steps(ax, rows, keys, labels):
    """Raw values thin, their moving average thick (when there are enough points to need
    one), one colour per key; keys never logged are left out."""
    steps = _series(rows, "step")
    for key, label in zip(keys, labels):
        values = _series(rows, key)
        if not np.isfinite(values).any():
            continue
        colour, trend = _COLOURS[key], smoothed(values)
        if trend is not None:
            ax.plot(steps, values, color=colour, alpha=0.3, linewidth=0.8)
            ax.plot(steps, trend, color=colour, linewidth=2, label=label)
        else:
            ax.plot(steps, values, color=colour, linewidth=1.5, marker=".", label=label)


def _epoch_ends(ax, rows):
    """Faint vertical lines where an epoch ends (the last logged step of each epoch)."""
    ends = [a["step"] for a, b in zip(rows, rows[1:]) if b.get("epoch") != a.get("epoch")]
    if len(ends) <= 50:
        for step in ends:
            ax.axvline(step, color="0.85", linewidth=0.8, zorder=0)


def _labels(ax, title, xlabel, ylabel):
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)


def _legend(ax):
    """The legend of the labelled lines, or a note when nothing was drawn."""
    if any(not line.get_label().startswith("_") for line in ax.get_lines()):
        ax.legend(loc="best", fontsize="small")
    else:
        ax.text(0.5, 0.5, "not logged", transform=ax.transAxes, ha="center", va="center",
                color="0.5")


def _losses_panel(ax, rows):
    _plot_steps(ax, rows, ("loss_d", "loss_d_real", "loss_d_fake", "loss_g"),
                ("D loss (real + fake)", "D loss on real", "D loss on fake", "G loss"))
    _epoch_ends(ax, rows)
    _labels(ax, "Losses (thin: as logged, thick: moving average)", "step", "BCE loss")
    _legend(ax)


def _discriminator_panel(ax, rows):
    _plot_steps(ax, rows, ("d_x", "d_g_z", "d_g_z_after", "d_accuracy"),
                ("D(x): real images", "D(G(z)) before the D step",
                 "D(G(z)) after the D step", "D's accuracy on the batch"))
    ax.axhline(0.5, color="black", linewidth=0.8, linestyle="--")
    ax.set_ylim(-0.02, 1.02)
    _epoch_ends(ax, rows)
    _labels(ax, "Discriminator (0.5: cannot tell real from fake)", "step",
            "mean probability 'real'")
    _legend(ax)


def _edges(centres):
    """Cell edges halfway between sorted centres (the outer ones as far out as the inner)."""
    if len(centres) == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    mids = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[2 * centres[0] - mids[0]], mids, [2 * centres[-1] - mids[-1]]])


def _eval_panels(axes, rows):
    epochs = _series(rows, "epoch")
    style = dict(marker="o", markersize=4, linewidth=1.5)

    # Quantities with the same range share an axis (no twin axes, so that the legend can
    # find a free corner): IS and digits covered are both at most 10; KL to uniform is at
    # most ln 10 = 2.3 nats and the fractions at most 1.
    ax = axes[0]
    ax.plot(epochs, _series(rows, "inception_score"), color="tab:blue",
            label="Inception Score", **style)
    ax.plot(epochs, _series(rows, "classes_covered"), color="tab:green", linestyle="--",
            label="digits covered", **style)
    ax.set_ylim(0, 10.5)
    _labels(ax, "Inception Score, digits covered", "epoch", "of at most 10")
    _legend(ax)

    ax = axes[1]
    distance = _series(rows, "frechet_distance")
    ax.plot(epochs, distance, color="tab:red", label="Fréchet distance", **style)
    finite = distance[np.isfinite(distance)]
    if finite.size and finite.min() > 0 and finite.max() > 10 * finite.min():
        ax.set_yscale("log")        # only where it spans a decade: early runs fall fast
    _labels(ax, "Fréchet distance (lower is better)", "epoch",
            "distance to MNIST test, judge features")
    _legend(ax)

    ax = axes[2]
    ax.plot(epochs, _series(rows, "kl_uniform"), color="tab:purple", label="KL to uniform (nats)",
            **style)
    ax.plot(epochs, _series(rows, "mean_confidence"), color="tab:gray", linestyle="--",
            label="judge's mean confidence", **style)
    if any(row.get("conditional_accuracy") is not None for row in rows):
        ax.plot(epochs, _series(rows, "conditional_accuracy"), color="tab:olive",
                linestyle=":", label="conditional accuracy", **style)
    ax.set_ylim(0, 2.4)
    _labels(ax, "Digit balance (KL 0: all equally often)", "epoch", "nats, or fraction")
    _legend(ax)

    ax = axes[3]
    _labels(ax, "Share of each digit (0.1: balanced)", "epoch",
            "digit (the judge's verdict)")
    ax.grid(False)
    shares = [row.get("class_fractions") for row in rows]
    if all(s is not None and len(s) == 10 for s in shares):
        mesh = ax.pcolormesh(_edges(epochs), np.arange(11) - 0.5,
                             np.array(shares, dtype=np.float64).T, cmap="viridis", vmin=0)
        ax.set_yticks(range(10))
        ax.figure.colorbar(mesh, ax=ax, label="share of the samples")
    else:
        _legend(ax)


def save_dashboard(rows, path):
    """Draw the training dashboard of the metrics rows into the PNG path; returns the path.

    Top: the losses and D's outputs against the step. Below, when there are evaluation
    rows (kind == "eval"), against the epoch: Inception Score with the digits covered, the
    Fréchet distance (log scale when it spans a decade), KL to uniform with the judge's
    mean confidence (and the conditional accuracy when logged), and the share of each
    digit. Raises ImportError (MATPLOTLIB_MISSING) when matplotlib is not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(MATPLOTLIB_MISSING, name="matplotlib") from error
    rows = list(rows)
    steps = kept_trajectory([r for r in rows if r.get("kind") != "eval" and "step" in r],
                             "step")
    evals = kept_trajectory([r for r in rows if r.get("kind") == "eval"], "epoch")
    fig = Figure(figsize=(16, 8.5 if evals else 4.8), dpi=100, layout="constrained")
    grid = fig.add_gridspec(2 if evals else 1, 4)
    _losses_panel(fig.add_subplot(grid[0, 0:2]), steps)
    _discriminator_panel(fig.add_subplot(grid[0, 2:4]), steps)
    if evals:
        _eval_panels([fig.add_subplot(grid[1, i]) for i in range(4)], evals)
    last = steps[-1] if steps else {}
    fig.suptitle(f"gan_fast training run: {last.get('step', 0)} steps, "
                 f"{last.get('epoch', 0)} epochs"
                 + (f", {len(evals)} evaluations" if evals else ""), fontsize="large")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def frame_label(png_path, index):
    match = re.search(r"epoch_(\d+)", pathlib.Path(png_path).stem)
    return f"epoch {int(match.group(1))}" if match else f"frame {index + 1}"


def save_progress_gif(png_paths, path, duration_ms=400, hold_last_ms=2000):
    """The sample grids png_paths (samples/epoch_XXXX.png, all the same size) as an
    animated GIF that loops: each frame shown duration_ms, the last hold_last_ms, each
    labelled with its epoch (from the file name) in a strip above the grid. Returns path."""
    png_paths = list(png_paths)
    if not png_paths:
        raise ValueError("save_progress_gif: no frames (png_paths is empty)")
    font = ImageFont.load_default()
    strip = 16
    frames = []
    for i, png in enumerate(png_paths):
        with Image.open(png) as im:
            grid = im.convert("L")
        if frames and grid.size != (frames[0].width, frames[0].height - strip):
            raise ValueError(f"save_progress_gif: {png} is {grid.size[0]}x{grid.size[1]}, "
                             f"the first frame {frames[0].width}x{frames[0].height - strip}")
        frame = Image.new("L", (grid.width, grid.height + strip), 0)
        frame.paste(grid, (0, strip))
        ImageDraw.Draw(frame).text((4, strip // 2), frame_label(png, i), fill=255, font=font,
                                   anchor="lm")
        frames.append(frame)
    durations = [duration_ms] * (len(frames) - 1) + [max(duration_ms, hold_last_ms)]
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                   duration=durations)
    return path

