"""Class-conditional training and sampling (issue #15): train(conditional=True) a few steps,
sample by digit on both backends, the conditional accuracy of gan_fast.evaluate, the
command line's --digit and interpolate, and the clear errors when a conditional checkpoint
is used where an unconditional one is expected and the other way round."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import gan_fast
from gan_fast import checkpoint as ckpt
from gan_fast import cli
from gan_fast.errors import ConfigError


@pytest.fixture(scope="module")
def runs(mnist_dir, tmp_path_factory):
    """One short conditional run of each D conditioning and one unconditional run."""
    base = dict(epochs=1, batch_size=16, limit_train=64, split="test",
                data_dir=str(mnist_dir), quiet=True, log_every=2, device="cpu")
    out = {}
    for name, extra in (("projection", dict(conditional=True, d_conditioning="projection")),
                        ("channels", dict(conditional=True, d_conditioning="channels")),
                        ("plain", {})):
        out[name] = gan_fast.train(**base, **extra,
                                   out_dir=str(tmp_path_factory.mktemp(name)))
    return out


def test_conditional_training_writes_a_conditional_checkpoint(runs):
    for name in ("projection", "channels"):
        r = runs[name]
        assert r.steps == 4 and np.isfinite([h["loss_d"] for h in r.history]).all()
        arrays, meta = ckpt.load_checkpoint(r.paths["checkpoint"])
        assert meta["model"]["conditional"] and meta["model"]["d_conditioning"] == name
        assert ckpt.check_training_checkpoint(r.paths["checkpoint"], arrays, meta).conditional
        with Image.open(r.paths["samples"][0]) as im:       # one row per digit, 10 x 10
            assert im.size == ((10 * 30 + 2) * 2,) * 2
    assert not ckpt.load_checkpoint(runs["plain"].paths["checkpoint"])[1]["model"]["conditional"]


def test_sampling_by_digit(runs, backend):
    g = ckpt.load_generator(runs["projection"].paths["checkpoint"], device=backend.name)
    assert g.conditional
    z = np.random.default_rng(0).standard_normal((6, 100)).astype(np.float32)
    sevens = g(6, z=z, digits=7)
    assert sevens.shape == (6, 1, 28, 28) and np.isfinite(sevens).all()
    np.testing.assert_array_equal(sevens, g(6, z=z, digits=np.full(6, 7)))
    mixed = g(6, z=z, digits=[7, 7, 7, 1, 1, 1])
    np.testing.assert_array_equal(mixed[:3], sevens[:3])    # a row depends on its own digit
    assert not np.array_equal(mixed[3:], sevens[3:])
    for bad, error in ((10, ValueError), (-1, ValueError), ([7] * 5, ValueError),
                       (np.zeros((6, 1), np.int64), ValueError), ("7", TypeError)):
        with pytest.raises(error, match="digits"):
            g(6, z=z, digits=bad)


def test_a_conditional_generator_is_scored_on_the_digits_it_was_asked_for(runs, mnist_dir):
    m = gan_fast.evaluate(runs["projection"].generator, n=200, seed=0,
                          data_dir=str(mnist_dir))
    assert 0 <= m.conditional_accuracy <= 1 and len(m.conditional_accuracy_per_digit) == 10
    assert m.conditional_accuracy == pytest.approx(np.mean(m.conditional_accuracy_per_digit))
    assert "conditional accuracy" in m.summary()
    plain = gan_fast.evaluate(runs["plain"].generator, n=200, seed=0, data_dir=str(mnist_dir))
    assert plain.conditional_accuracy is None and plain.conditional_accuracy_per_digit is None


def test_conditional_accuracy_counts_hits_per_digit():
    from gan_fast.quality import conditional_accuracy
    logits = np.eye(10)[[3, 3, 5, 7]] * 5.0
    total, per = conditional_accuracy(logits, np.array([3, 4, 5, 7]))
    assert total == 0.75 and per[3] == per[5] == per[7] == 1.0 and per[4] == 0.0
    assert np.isnan(per[0])                     # no row asked for a 0


def test_a_checkpoint_of_the_other_kind_is_refused_clearly(runs):
    cond, plain = runs["projection"].paths["checkpoint"], runs["plain"].paths["checkpoint"]
    with pytest.raises(ckpt.CheckpointError, match="holds a conditional generator"):
        ckpt.load_generator(cond, conditional=False)
    with pytest.raises(ckpt.CheckpointError, match="holds an unconditional generator"):
        ckpt.load_generator(plain, conditional=True)
    with pytest.raises(ConfigError, match="holds a conditional model"):
        gan_fast.train(resume=str(cond), conditional=False, epochs=2, quiet=True)
    with pytest.raises(ConfigError, match="holds an unconditional model"):
        gan_fast.train(resume=str(plain), conditional=True, epochs=2, quiet=True)
    with pytest.raises(ValueError, match="unconditional"):
        runs["plain"].generator(4, digits=3)


def test_the_command_line_samples_a_digit_and_refuses_it_for_an_unconditional_model(
        runs, tmp_path, capsys):
    cond, plain = runs["projection"].paths["checkpoint"], runs["plain"].paths["checkpoint"]
    assert cli.main(["sample", "--checkpoint", str(cond), "--digit", "7", "--n", "16",
                     "--out", str(tmp_path / "sevens.png"), "--device", "cpu"]) == 0
    with Image.open(tmp_path / "sevens.png") as im:
        assert im.size == ((4 * 30 + 2) * 2,) * 2
    assert cli.main(["sample", "--checkpoint", str(cond), "--out", str(tmp_path / "all.png"),
                     "--device", "cpu"]) == 0
    with Image.open(tmp_path / "all.png") as im:             # 10 x 10: a row per digit
        assert im.size == ((10 * 30 + 2) * 2,) * 2
    capsys.readouterr()
    assert cli.main(["sample", "--checkpoint", str(plain), "--digit", "7",
                     "--out", str(tmp_path / "x.png")]) == 2
    assert "unconditional" in capsys.readouterr().err
    assert cli.main(["sample", "--checkpoint", str(cond), "--digit", "10",
                     "--out", str(tmp_path / "x.png")]) == 2
    assert "digit" in capsys.readouterr().err and not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("which,args,frames,walks", [
    ("plain", [], 4 * 3, 5), ("projection", ["--digit", "3"], 4 * 3, 5),
    ("projection", [], 4 * 3, 10)])
def test_interpolate_writes_a_looping_latent_walk(runs, tmp_path, which, args, frames, walks):
    out = tmp_path / "walk.gif"
    assert cli.main(["interpolate", "--checkpoint", str(runs[which].paths["checkpoint"]),
                     "--out", str(out), "--points", "4", "--steps", "3", "--walks", "5",
                     "--device", "cpu", *args]) == 0
    with Image.open(out) as im:
        assert im.format == "GIF" and im.n_frames == frames and im.info.get("loop") == 0
        assert im.size == ((walks * 30 + 2) * 2, (30 + 2) * 2)


def test_slerp_stays_on_the_arc_and_ends_at_its_points():
    from gan_fast.walk import slerp
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(100), rng.standard_normal(100)
    np.testing.assert_allclose(slerp(a, b, 0.0), a, rtol=1e-6)
    np.testing.assert_allclose(slerp(a, b, 1.0), b, rtol=1e-6)
    mid = slerp(a, b, 0.5)
    # On the great circle: the norm interpolates linearly, unlike the straight line's dip.
    assert np.linalg.norm(mid) == pytest.approx((np.linalg.norm(a) + np.linalg.norm(b)) / 2,
                                                rel=1e-5)
    assert np.linalg.norm((a + b) / 2) < 0.8 * np.linalg.norm(mid)


def test_the_cli_evaluate_json_has_the_conditional_accuracy(runs, tmp_path, capsys, mnist_dir):
    assert cli.main(["evaluate", "--checkpoint", str(runs["projection"].paths["checkpoint"]),
                     "--n", "100", "--device", "cpu", "--data-dir", str(mnist_dir)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert 0 <= metrics["conditional_accuracy"] <= 1
    assert len(metrics["conditional_accuracy_per_digit"]) == 10
