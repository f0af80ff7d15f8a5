"""gan_fast.checkpoint: round trip without pickle, atomic replacement, and a killed write
leaving the previous checkpoint intact."""
from __future__ import annotations

import json

import numpy as np
import pytest

from gan_fast import checkpoint as ckpt


def _arrays(value):
    return {"g.params": np.full(10, value, np.float32), "g.step": np.array(3, np.int64)}


def test_round_trip(tmp_path):
    path = ckpt.save_checkpoint(tmp_path / "c" / "last.npz", _arrays(1.5),
                                {"counters": {"epoch": 2}, "rng": {"state": 2 ** 100}})
    arrays, meta = ckpt.load_checkpoint(path)
    assert np.array_equal(arrays["g.params"], _arrays(1.5)["g.params"])
    assert meta["counters"] == {"epoch": 2} and meta["rng"]["state"] == 2 ** 100
    assert meta["format"] == ckpt.FORMAT and meta["version"] == ckpt.VERSION
    with np.load(path, allow_pickle=False) as z:        # a plain .npz, no pickled objects
        assert json.loads(z["__meta__"].tobytes())["counters"]["epoch"] == 2
    assert [p.name for p in path.parent.iterdir()] == ["last.npz"]


def test_killed_write_leaves_previous_checkpoint(tmp_path, monkeypatch):
    path = ckpt.save_checkpoint(tmp_path / "last.npz", _arrays(1.0), {"n": 1})
    before = path.read_bytes()

    def dies_halfway(f, arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt  # the process is interrupted in the middle of the write
    monkeypatch.setattr(ckpt, "_write_npz", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(path, _arrays(2.0), {"n": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.npz"]   # no temporary left
    monkeypatch.undo()
    ckpt.save_checkpoint(path, _arrays(2.0), {"n": 2})
    assert ckpt.load_checkpoint(path)[1]["n"] == 2


def test_replace_is_atomic_rename(tmp_path, monkeypatch):
    """The target is only ever replaced by os.replace of a complete, fsync'ed file."""
    import os

    events = []
    real_replace, real_fsync = os.replace, os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace",
                        lambda a, b: (events.append(("replace", str(b))), real_replace(a, b))[1])
    ckpt.save_checkpoint(tmp_path / "last.npz", _arrays(1.0), {})
    assert events[0] == "fsync" and events[1] == ("replace", str(tmp_path / "last.npz"))
    assert events[2:] == ["fsync"]      # the folder


def test_rejects_other_files(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ckpt.CheckpointError, match="not a readable checkpoint"):
        ckpt.load_checkpoint(tmp_path / "junk.npz")
    np.savez(tmp_path / "plain.npz", x=np.zeros(2))
    with pytest.raises(ckpt.CheckpointError, match="not a gan_fast checkpoint"):
        ckpt.load_checkpoint(tmp_path / "plain.npz")
    path = ckpt.save_checkpoint(tmp_path / "future.npz", {}, {})
    arrays = dict(np.load(path))
    meta = json.loads(arrays["__meta__"].tobytes())
    arrays["__meta__"] = np.frombuffer(json.dumps({**meta, "version": 99}).encode(), np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(ckpt.CheckpointError, match="version 99"):
        ckpt.load_checkpoint(path)


# ------------------------------------------------------------------------------ bad files
@pytest.fixture(scope="module")
def trained(mnist_dir, tmp_path_factory):
    """A real training checkpoint (one step of the CPU kernels) and its run folder."""
    import gan_fast

    out = tmp_path_factory.mktemp("trained")
    r = gan_fast.train(backend="kernels", device="cpu", split="test", batch_size=8, limit_train=16,
                       max_steps=1, data_dir=str(mnist_dir), quiet=True, sample_every=0,
                       out_dir=str(out))
    return r.paths["checkpoint"]


def _rewrite(src, dst, change_arrays=None, change_meta=None):
    arrays, meta = ckpt.load_checkpoint(src)
    if change_arrays:
        change_arrays(arrays)
    if change_meta:
        change_meta(meta)
    return ckpt.save_checkpoint(dst, arrays, meta)


def _bad_checkpoints(trained, folder):
    """name -> (path of a broken copy of trained, words the error must contain)."""
    folder.mkdir(exist_ok=True)
    raw = trained.read_bytes()
    (folder / "truncated.npz").write_bytes(raw[:len(raw) // 2])
    (folder / "empty.npz").write_bytes(b"")
    flipped = bytearray(raw)
    flipped[len(raw) - 200] ^= 0xFF                    # inside the zip's central directory
    (folder / "corrupt.npz").write_bytes(bytes(flipped))

    def other_shape(meta):
        meta["shapes"]["generator_bn"] = [128, 256, 512]
    def other_version(meta):
        meta["version"] = ckpt.VERSION + 1
    return {
        "truncated": (folder / "truncated.npz", ["not a readable checkpoint"]),
        "empty": (folder / "empty.npz", ["not a readable checkpoint"]),
        "corrupt": (folder / "corrupt.npz", ["not a readable checkpoint"]),
        "other model": (_rewrite(trained, folder / "shape.npz", change_meta=other_shape),
                        ["model shapes do not match", "generator_bn"]),
        "missing entry": (_rewrite(trained, folder / "missing.npz",
                                   change_arrays=lambda a: a.pop("d.adam_v")),
                          ["entry d.adam_v is missing"]),
        "misshapen entry": (_rewrite(trained, folder / "short.npz",
                                     change_arrays=lambda a: a.update({"g.params": a["g.params"][:10]})),
                            ["entry g.params", "float32[10]", "expected float32["]),
        "float64 entry": (_rewrite(trained, folder / "f64.npz",
                                   change_arrays=lambda a: a.update({"g.adam_m": a["g.adam_m"].astype(np.float64)})),
                          ["entry g.adam_m is float64"]),
    }


@pytest.mark.parametrize("case", ["truncated", "empty", "corrupt", "other model",
                                  "missing entry", "misshapen entry", "float64 entry"])
def test_resume_from_a_bad_checkpoint_names_it_and_changes_nothing(trained, tmp_path, case):
    """The error names the file and what is wrong, and is raised before train() writes
    anything: the checkpoint, its run folder's config.json and metrics are untouched."""
    import gan_fast

    path, words = _bad_checkpoints(trained, tmp_path / "bad")[case]
    # a checkpoint that names trained's run folder (the folder a resume would write into)
    run_dir = trained.parent.parent
    before = {p: p.read_bytes() for p in [path, *run_dir.rglob("*")] if p.is_file()}
    with pytest.raises(ckpt.CheckpointError) as e:
        gan_fast.train(resume=str(path), quiet=True)
    assert str(path) in str(e.value)
    for word in words:
        assert word in str(e.value), (word, str(e.value))
    after = {p: p.read_bytes() for p in [path, *run_dir.rglob("*")] if p.is_file()}
    assert after == before


def test_load_generator_rejects_another_model(trained, tmp_path):
    path, _ = _bad_checkpoints(trained, tmp_path / "bad")["other model"]
    with pytest.raises(ckpt.CheckpointError, match="model shapes"):
        ckpt.load_generator(path)
