"""The command line: options generated one-to-one from TrainConfig, `train` and `sample`
end to end (on the reference backend, tiny), and `python -m gan_fast`."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
from PIL import Image

from gan_fast import cli
from gan_fast.trainer import TrainConfig


def _train_parser():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices["train"]


def test_train_options_map_one_to_one_to_config():
    dests = {a.dest for a in _train_parser()._actions if a.dest != "help"}
    assert dests == {f.name for f in dataclasses.fields(TrainConfig)}
    args = cli.build_parser().parse_args(
        ["train", "--epochs", "5", "--batch-size", "64", "--out", "runs/x", "--no-download",
         "--limit-train", "100", "--lr", "1e-3", "--quiet"])
    settings = {k: v for k, v in vars(args).items() if k != "command"}
    assert settings == {"epochs": 5, "batch_size": 64, "out_dir": "runs/x", "download": False,
                        "limit_train": 100, "lr": 1e-3, "quiet": True}
    TrainConfig(**settings)        # every option is a config field of the right type


def test_help_documents_every_field():
    text = _train_parser().format_help()
    for f in dataclasses.fields(TrainConfig):
        assert "--" + f.name.replace("_", "-") in text


def test_train_then_sample(mnist_dir, tmp_path, capsys):
    out = tmp_path / "run"
    status = cli.main(["train", "--backend", "reference", "--batch-size", "8",
                       "--limit-train", "16", "--epochs", "1", "--data-dir", str(mnist_dir),
                       "--out", str(out), "--quiet", "--log-every", "1"])
    assert status == 0
    assert json.loads((out / "config.json").read_text())["limit_train"] == 16
    assert "trained 2 steps" in capsys.readouterr().out
    grid = tmp_path / "grid.png"
    status = cli.main(["sample", "--checkpoint", str(out / "checkpoints" / "last.npz"),
                       "--n", "16", "--out", str(grid), "--backend", "reference"])
    assert status == 0
    with Image.open(grid) as im:
        assert im.size == ((4 * 30 + 2) * 2,) * 2


def test_python_dash_m(tmp_path):
    # From a folder outside the source tree: `python -m` puts the working folder first on
    # sys.path, and the repository's gan_fast/ has no compiled extension in it.
    run = lambda *args: subprocess.run([sys.executable, "-m", "gan_fast", *args], cwd=tmp_path,
                                       capture_output=True, text=True, timeout=120)
    r = run("train", "--help")
    assert r.returncode == 0 and "--batch-size" in r.stdout and "--resume" in r.stdout, r.stderr
    r = run()
    assert r.returncode == 2 and "sample" in r.stderr


@pytest.mark.parametrize("bad", [["train", "--epochs", "x"], ["train", "--nope", "1"]])
def test_bad_arguments_exit_2(bad):
    with pytest.raises(SystemExit) as e:
        cli.main(bad)
    assert e.value.code == 2
