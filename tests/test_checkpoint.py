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
