"""The command line: options generated one-to-one from TrainConfig, `train`, `sample` and
`train-judge` end to end (tiny), `python -m gan_fast`, and how it fails: every expected
error is one line `gan-fast: error: ...` on stderr with status 2 (invalid setting) or 1
(failed while running), the traceback only with --debug, 130 on Ctrl-C."""
from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import gan_fast
from gan_fast import cli, trainer
from gan_fast.checkpoint import CheckpointError
from gan_fast.data import MNISTError
from gan_fast.errors import ConfigError
from gan_fast.trainer import NonFiniteLossError, TrainConfig


def _train_parser():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices["train"]


def _one_error_line(err):
    """The single stderr line of an expected error."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gan-fast: error: "), err
    return lines[0]


def _run_module(*args, cwd, env=None):
    # From a folder outside the source tree: `python -m` puts the working folder first on
    # sys.path, and the repository's gan_fast/ has no compiled extension in it.
    return subprocess.run([sys.executable, "-m", "gan_fast", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_train_options_map_one_to_one_to_config():
    dests = {a.dest for a in _train_parser()._actions if a.dest not in ("help", "debug")}
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
                       "--out", str(out), "--log-every", "1"])
    assert status == 0
    assert json.loads((out / "config.json").read_text())["limit_train"] == 16
    # One completion line (the trainer's), naming the run folder; the CLI adds none.
    stdout = capsys.readouterr().out
    done = [line for line in stdout.splitlines() if line.startswith("done:")]
    assert len(done) == 1 and str(out) in done[0] and "trained" not in stdout, stdout
    grid = tmp_path / "new" / "folder" / "grid.png"      # missing folders are created
    status = cli.main(["sample", "--checkpoint", str(out / "checkpoints" / "last.npz"),
                       "--n", "16", "--out", str(grid), "--backend", "reference"])
    assert status == 0
    with Image.open(grid) as im:
        assert im.size == ((4 * 30 + 2) * 2,) * 2


def test_python_dash_m(tmp_path):
    r = _run_module("train", "--help", cwd=tmp_path)
    assert r.returncode == 0 and "--batch-size" in r.stdout and "--resume" in r.stdout, r.stderr
    r = _run_module(cwd=tmp_path)
    assert r.returncode == 2 and "sample" in _one_error_line(r.stderr)


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    # One version: __init__.py's, which pyproject.toml reads when building the package.
    assert capsys.readouterr().out.strip() == f"gan-fast {gan_fast.__version__}"
    assert importlib.metadata.version("gan_fast") == gan_fast.__version__


# ------------------------------------------------------------------ usage errors: status 2
@pytest.mark.parametrize("bad, says", [
    (["train", "--epochs", "x"], "invalid int value: 'x'"),
    (["train", "--nope", "1"], "unrecognized arguments: --nope"),
    (["sample", "--checkpoint", "c.npz", "--n", "0"], "--n: must be at least 1, got 0"),
    (["evaluate", "--checkpoint", "c.npz", "--n", "1"], "--n: must be at least 2, got 1"),
    (["train-judge", "--epochs", "0"], "--epochs: must be at least 1, got 0"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_arguments_exit_2(bad, says, capsys):
    assert cli.main(bad) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert says in line and "--help" in line


@pytest.mark.parametrize("command", ["sample", "evaluate"])
def test_missing_checkpoint_exits_2_before_loading(command, tmp_path, capsys):
    missing = tmp_path / "nope.npz"
    assert cli.main([command, "--checkpoint", str(missing), "--out", str(tmp_path / "o")]) == 2
    assert f"--checkpoint {missing} does not exist" in _one_error_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_out_exits_2(tmp_path, capsys):
    checkpoint = tmp_path / "c.npz"
    checkpoint.write_bytes(b"")
    assert cli.main(["sample", "--checkpoint", str(checkpoint), "--out", str(tmp_path)]) == 2
    assert "is a folder" in _one_error_line(capsys.readouterr().err)
    a_file = tmp_path / "file.txt"
    a_file.write_text("")
    assert cli.main(["sample", "--checkpoint", str(checkpoint),
                     "--out", str(a_file / "sub" / "grid.png")]) == 2
    assert f"{a_file} is not a folder" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("bad, says", [
    (["--limit-train", "100", "--batch-size", "128"], "not one batch"),
    (["--lr", "0"], "--lr must be positive"),
])
def test_train_judge_settings_are_checked(bad, says, tmp_path, capsys):
    out = tmp_path / "judge.npz"
    assert cli.main(["train-judge", "--out", str(out), *bad]) == 2
    assert says in _one_error_line(capsys.readouterr().err)
    assert not out.exists()


@pytest.mark.parametrize("argv", [["train", "--batch-size", "1"], ["train", "--epochs", "-1"]])
def test_invalid_train_setting_exits_2(argv, monkeypatch, tmp_path, capsys):
    """The trainer validates its settings (TrainConfig) and raises ConfigError before it
    writes anything; the command line reports that as a usage error. A stand-in trainer
    raises it here, so that this test is about the command line alone."""
    def train(**settings):
        cfg = TrainConfig(**settings)
        if cfg.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {cfg.epochs}")
        if cfg.batch_size < 2:
            raise ConfigError(f"batch_size must be at least 2, got {cfg.batch_size}")
        raise AssertionError("not reached")
    monkeypatch.setattr(trainer, "train", train)
    assert cli.main([*argv, "--out", str(tmp_path / "run")]) == 2
    assert "must be at least" in _one_error_line(capsys.readouterr().err)


# --------------------------------------------------------------- runtime errors: status 1
@pytest.mark.parametrize("error, line", [
    (CheckpointError("c.npz: entry g.w is missing"), "c.npz: entry g.w is missing"),
    (MNISTError("MNIST files not found (looked in /a).\nPut the files into /a."),
     "MNIST files not found (looked in /a). Put the files into /a."),   # joined into one
    (NonFiniteLossError("loss_d is nan at step 3"), "loss_d is nan at step 3"),
    (FileNotFoundError(2, "No such file or directory", "/no/file"),
     "/no/file: No such file or directory"),
    (RuntimeError("device='cuda' but no usable CUDA device"),
     "device='cuda' but no usable CUDA device"),
])
def test_runtime_errors_exit_1_in_one_line(error, line, monkeypatch, capsys):
    def train(**settings):
        raise error
    monkeypatch.setattr(trainer, "train", train)
    assert cli.main(["train"]) == 1
    assert _one_error_line(capsys.readouterr().err) == "gan-fast: error: " + line


def test_damaged_checkpoint_exits_1(tmp_path, capsys):
    checkpoint = tmp_path / "c.npz"
    checkpoint.write_bytes(b"not a zip file")
    assert cli.main(["sample", "--checkpoint", str(checkpoint),
                     "--out", str(tmp_path / "g.png")]) == 1
    assert "not a readable checkpoint" in _one_error_line(capsys.readouterr().err)


def test_mnist_not_found_offline_exits_1(tmp_path):
    """--no-download with every place MNIST is looked for empty: one line naming where to
    put the files; with --debug also the traceback."""
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "HOME": str(empty), "GAN_FAST_DATA": str(empty)}
    args = ["train", "--no-download", "--data-dir", str(empty), "--out", str(tmp_path / "run"),
            "--quiet", "--epochs", "1"]
    r = _run_module(*args, cwd=tmp_path, env=env)
    assert r.returncode == 1
    line = _one_error_line(r.stderr)
    assert "MNIST files not found" in line and "train-images-idx3-ubyte.gz" in line
    r = _run_module("--debug", *args, cwd=tmp_path, env=env)
    assert r.returncode == 1
    assert "Traceback (most recent call last)" in r.stderr and "MNISTError" in r.stderr
    assert r.stderr.strip().splitlines()[-1] == line


def test_debug_after_the_command_prints_the_traceback(tmp_path, capsys):
    missing = str(tmp_path / "nope.npz")
    assert cli.main(["sample", "--checkpoint", missing, "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "ConfigError" in err
    assert err.strip().splitlines()[-1].startswith("gan-fast: error: --checkpoint")


def test_unexpected_errors_keep_their_traceback(monkeypatch):
    """A bug (an exception no one expects) is not turned into a tidy line."""
    def train(**settings):
        raise ZeroDivisionError("a bug")
    monkeypatch.setattr(trainer, "train", train)
    with pytest.raises(ZeroDivisionError):
        cli.main(["train"])


def test_ctrl_c_exits_130(monkeypatch, capsys):
    def train(**settings):
        raise KeyboardInterrupt
    monkeypatch.setattr(trainer, "train", train)
    assert cli.main(["train"]) == 130
    assert "interrupted" in capsys.readouterr().err


# ----------------------------------------------------------------------------- train-judge
def test_train_judge(mnist_dir, tmp_path, capsys):
    """A tiny judge (2 steps): the weights file and the JSON record are written, the summary
    names the accuracy and SHA-256, and an accuracy below --min-accuracy exits with 1."""
    out, record = tmp_path / "judge.npz", tmp_path / "sub" / "judge.json"
    status = cli.main(["train-judge", "--data-dir", str(mnist_dir), "--no-download",
                       "--epochs", "1", "--limit-train", "256", "--batch-size", "128",
                       "--out", str(out), "--json", str(record), "--min-accuracy", "1.0"])
    assert status == 1
    captured = capsys.readouterr()
    result = json.loads(record.read_text())
    assert out.is_file() and result["path"] == str(out)
    summary = captured.out.strip().splitlines()[-1]
    assert summary.startswith("done: test accuracy") and result["sha256"] in summary
    assert "below --min-accuracy" in _one_error_line(captured.err)
    from gan_fast.judge import load_weights
    flat, meta = load_weights(out)
    assert meta["settings"]["train_images"] == 256 and np.isfinite(flat).all()
