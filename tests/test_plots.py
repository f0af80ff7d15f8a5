"""gan_fast.plots: the dashboard PNG (with and without evaluation rows, with odd rows: keys
missing, NaN, a rewind, none at all), the message when matplotlib is missing, and the
progress GIF (one labelled frame per epoch grid, in order, the last one held)."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from gan_fast import plots
from gan_fast.images import save_grid

LOSSES = ("loss_d_real", "loss_d_fake", "loss_g")


def _step_rows(steps=90, per_epoch=30, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(1, steps + 1):
        real, fake, gen = 0.6 + 0.1 * rng.standard_normal(3)
        rows.append({"step": s, "epoch": (s - 1) // per_epoch + 1, "loss_d": real + fake,
                     "loss_d_real": real, "loss_d_fake": fake, "loss_g": gen,
                     "d_x": 0.6, "d_g_z": 0.45, "d_g_z_after": 0.4, "d_accuracy": 0.7,
                     "images_per_s": 2000.0, "time_s": s * 0.03})
    return rows


def _eval_rows(epochs=3, conditional=False):
    rows = []
    for e in range(1, epochs + 1):
        shares = np.full(10, 0.1)
        shares[e % 10] += 0.2
        shares /= shares.sum()
        row = {"kind": "eval", "epoch": e, "step": 30 * e, "inception_score": 2.0 + e,
               "frechet_distance": 1000.0 / e, "classes_covered": 6 + e, "kl_uniform": 0.5 / e,
               "mean_confidence": 0.8, "class_fractions": shares.tolist(), "n": 1000}
        if conditional:
            row["conditional_accuracy"] = 0.5 + 0.1 * e
        rows.append(row)
    return rows


def _drawn(path, size):
    """The file is a PNG of the given size with a fair amount of ink on it."""
    assert 20_000 < path.stat().st_size < 2_000_000
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == size
        grey = np.asarray(im.convert("L"))
    assert (grey < 200).mean() > 0.02


@pytest.fixture
def matplotlib():
    return pytest.importorskip("matplotlib")


def test_dashboard_with_evaluations(matplotlib, tmp_path):
    rows = _step_rows()
    rows[30:30] = _eval_rows(1)          # as in metrics.jsonl: after its epoch's last step
    rows += _eval_rows(3)[1:]
    path = plots.save_dashboard(rows, tmp_path / "sub" / "dashboard.png")
    assert path == tmp_path / "sub" / "dashboard.png"
    _drawn(path, (1600, 850))


def test_dashboard_with_a_conditional_model(matplotlib, tmp_path):
    path = plots.save_dashboard(_step_rows() + _eval_rows(3, conditional=True),
                                tmp_path / "d.png")
    _drawn(path, (1600, 850))


def test_dashboard_without_evaluations(matplotlib, tmp_path):
    _drawn(plots.save_dashboard(_step_rows(), tmp_path / "d.png"), (1600, 480))


@pytest.mark.parametrize("case", ["no rows", "one row", "keys missing", "non-finite",
                                  "rewind", "old eval rows"])
def test_dashboard_takes_odd_rows(case, matplotlib, tmp_path):
    rows = _step_rows()
    if case == "no rows":
        rows = []
    elif case == "one row":
        rows = rows[:1]
    elif case == "keys missing":
        rows = [{"step": r["step"], "epoch": r["epoch"], "loss_d": r["loss_d"]} for r in rows]
    elif case == "non-finite":
        rows[-1]["loss_g"] = float("nan")
        rows[-2]["loss_d"] = float("inf")
    elif case == "rewind":           # rolled back to step 60 and trained on
        rows += _step_rows()[60:]
    elif case == "old eval rows":    # no class_fractions, an IS of 0
        rows += [{k: v for k, v in r.items() if k != "class_fractions"} for r in _eval_rows()]
        rows[-1]["frechet_distance"] = 0.0
    path = plots.save_dashboard(rows, tmp_path / "d.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] == 1600


def test_a_rewind_keeps_the_later_trajectory():
    rows = [{"step": s} for s in (2, 4, 6, 8, 4, 6, 10)]
    kept = plots.kept_trajectory(rows, "step")
    assert [r["step"] for r in kept] == [2, 4, 6, 10] and kept[1] is rows[4]


def test_smoothing_is_a_centred_mean_that_skips_nan():
    values = np.arange(80, dtype=np.float64)
    assert np.allclose(plots.smoothed(values)[2:-2], values[2:-2])   # window 5, linear
    values[10] = np.nan
    trend = plots.smoothed(values)
    assert np.isfinite(trend).all() and trend[10] == pytest.approx((8 + 9 + 11 + 12) / 4)
    assert plots.smoothed(np.ones(39)) is None                        # too short to need it


def test_without_matplotlib_the_error_says_how_to_get_it(monkeypatch, tmp_path):
    # None in sys.modules makes `import matplotlib...` raise ImportError, installed or not.
    for name in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r'pip install "gan_fast\[plots\]"') as error:
        plots.save_dashboard(_step_rows(), tmp_path / "d.png")
    assert error.value.name == "matplotlib"
    assert str(error.value) == plots.MATPLOTLIB_MISSING
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------- the GIF
def _grids(tmp_path, epochs=(1, 2, 3)):
    paths = []
    for epoch in epochs:
        images = np.full((64, 1, 28, 28), -1.0 + 0.5 * epoch, np.float32)
        paths.append(save_grid(images, tmp_path / "samples" / f"epoch_{epoch:04d}.png"))
    return paths


def test_progress_gif(tmp_path):
    pngs = _grids(tmp_path)
    path = plots.save_progress_gif(pngs, tmp_path / "samples" / "progress.gif", duration_ms=250)
    assert path.stat().st_size < 1_000_000
    with Image.open(path) as gif, Image.open(pngs[0]) as first:
        assert gif.format == "GIF" and gif.n_frames == 3 and gif.info["loop"] == 0
        width, height = first.size
        assert gif.size[0] == width and gif.size[1] > height      # a strip for the label
        strip = gif.size[1] - height
        for i, png in enumerate(pngs):
            gif.seek(i)
            frame = np.asarray(gif.convert("L"))
            with Image.open(png) as grid:
                assert np.array_equal(frame[strip:], np.asarray(grid.convert("L")))
            assert frame[:strip].max() > 128                        # "epoch N" drawn
            assert gif.info["duration"] == (2000 if i == 2 else 250)


def test_progress_gif_labels_each_frame_with_its_epoch(tmp_path):
    images = np.zeros((64, 1, 28, 28), np.float32)       # the same grid, two names
    pngs = [save_grid(images, tmp_path / f"epoch_{e:04d}.png") for e in (1, 12)]
    with Image.open(plots.save_progress_gif(pngs, tmp_path / "p.gif")) as gif:
        strips = []
        for i in range(gif.n_frames):
            gif.seek(i)
            strips.append(np.asarray(gif.convert("L"))[:16].copy())
    assert len(strips) == 2 and not np.array_equal(strips[0], strips[1])
    assert plots.frame_label("samples/epoch_0012.png", 0) == "epoch 12"
    assert plots.frame_label("grid.png", 4) == "frame 5"


def test_progress_gif_refuses_bad_input(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        plots.save_progress_gif([], tmp_path / "p.gif")
    small = save_grid(np.zeros((4, 1, 28, 28), np.float32), tmp_path / "epoch_0002.png")
    with pytest.raises(ValueError, match="the first frame"):
        plots.save_progress_gif([*_grids(tmp_path, (1,)), small], tmp_path / "p.gif")
    assert not (tmp_path / "p.gif").exists()
