"""gan_fast.config: recipes, resolution of the settings a recipe fills in, validation
(ConfigError before anything is written, from train() and the command line), and the
merge of a resumed run's settings with its checkpoint's."""
from __future__ import annotations

import dataclasses

import pytest

import gan_fast
from gan_fast import cli
from gan_fast.config import RECIPE_FIELDS, RECIPES, TrainConfig
from gan_fast.errors import ConfigError


def test_every_recipe_sets_every_algorithm_setting():
    for name, values in RECIPES.items():
        assert set(values) == set(RECIPE_FIELDS), name
        TrainConfig(recipe=name).validate()


def test_resolution_recipe_then_lr_then_explicit_settings():
    c = TrainConfig(recipe="seed").resolved()
    assert (c.lr_d, c.lr_g, c.real_label, c.ema_decay) == (2e-4, 2e-4, 1.0, 0.0)
    c = TrainConfig(recipe="seed", lr=1e-4, lr_g=3e-4).resolved()
    assert (c.lr_d, c.lr_g) == (1e-4, 3e-4)
    assert TrainConfig(recipe="seed", batch_size=64).resolved().batch_size == 64
    with pytest.raises(ConfigError, match="recipe"):
        TrainConfig(recipe="magic").resolved()


BAD = [
    ("epochs", 0), ("epochs", -1), ("epochs", 2.5), ("batch_size", 1), ("batch_size", True),
    ("lr_d", 0.0), ("lr_g", float("nan")), ("lr", -1e-3), ("beta1", 1.0), ("beta2", -0.1),
    ("adam_eps", 0.0), ("real_label", 0.0), ("real_label", 1.5), ("ema_decay", 1.0),
    ("minibatch_stddev", -1), ("d_dropout", 1.0), ("d_conditioning", "film"),
    ("split", "validation"), ("limit_train", 1), ("device", "tpu"), ("backend", "torch"),
    ("threads", 0), ("log_every", 0), ("sample_every", -1), ("checkpoint_every", -2),
    ("eval_every", -1), ("eval_samples", 1), ("max_steps", 0), ("on_divergence", "retry"),
]


@pytest.mark.parametrize("name,value", BAD, ids=lambda v: repr(v))
def test_invalid_settings_raise_before_anything_is_written(name, value, tmp_path, mnist_dir):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=name if name != "lr" else "lr_d"):
        gan_fast.train(**{name: value}, out_dir=str(out), data_dir=str(mnist_dir), quiet=True)
    assert not out.exists()


def test_out_dir_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="out_dir"):
        TrainConfig(out_dir=str(f)).validate()


def test_more_images_needed_than_the_data_holds(tmp_path, mnist_dir):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="batch_size 64 is larger than the 20"):
        gan_fast.train(batch_size=64, limit_train=20, split="test", data_dir=str(mnist_dir),
                       out_dir=str(out), quiet=True)
    assert not out.exists()


@pytest.mark.parametrize("args,what", [(["--epochs", "-1"], "epochs"),
                                       (["--batch-size", "1"], "batch_size"),
                                       (["--recipe", "magic"], "recipe")])
def test_the_command_line_reports_bad_settings_in_one_line(args, what, tmp_path, capsys):
    out = tmp_path / "run"
    status = cli.main(["train", *args, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("gan-fast: error: ") and what in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_config_json_records_the_resolved_settings(tmp_path, mnist_dir):
    r = gan_fast.train(recipe="seed", epochs=1, batch_size=8, limit_train=16, split="test",
                       data_dir=str(mnist_dir), out_dir=str(tmp_path / "run"), quiet=True,
                       sample_every=0)
    saved = r.config
    assert saved.recipe == "seed" and saved.lr_d == 2e-4 and saved.d_dropout == 0.3
    assert all(getattr(saved, k) is not None for k in RECIPE_FIELDS)
    assert dataclasses.asdict(saved)["minibatch_stddev"] == 0
