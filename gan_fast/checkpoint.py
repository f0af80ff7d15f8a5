"""gan_fast.checkpoint: atomic training checkpoints in one .npz file, no pickle.

A checkpoint is an uncompressed NumPy .npz archive: every array of the training state by
name (parameters, Adam moments, BatchNorm running statistics, the fixed sample noise)
plus "__meta__", the UTF-8 bytes of a JSON document (format name and version, the model's
shape signature, epoch/step counters, Adam step counts, RNG states, the config). It loads
with allow_pickle=False.

Writing is atomic: the archive goes to a temporary file in the same folder, is flushed
and fsync'ed, then os.replace'd over the target and the folder fsync'ed. A write killed at
any point leaves the previous checkpoint intact (at worst a stray *.tmp file).
"""
from __future__ import annotations

import json
import os
import pathlib
import tempfile

import numpy as np

__all__ = ["FORMAT", "VERSION", "save_checkpoint", "load_checkpoint", "CheckpointError",
           "load_generator"]

FORMAT = "gan_fast-checkpoint"
VERSION = 1
_META = "__meta__"


class CheckpointError(ValueError):
    """A file is not a gan_fast checkpoint this version can read."""


def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_npz(f, arrays):
    """np.savez into the open file f (a seam for tests that simulate a killed write)."""
    np.savez(f, **arrays)


def save_checkpoint(path, arrays, meta):
    """Write arrays (name -> NumPy array) and meta (JSON-able dict) to path atomically.
    Returns the path."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(meta, format=FORMAT, version=VERSION)
    payload = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
    payload[_META] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def load_checkpoint(path):
    """(arrays, meta) of the checkpoint at path; CheckpointError if it is not one."""
    path = pathlib.Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except Exception as e:  # noqa: BLE001
        # A damaged archive surfaces as any of OSError, ValueError, EOFError,
        # zipfile.BadZipFile (bad CRC), NotImplementedError (garbled flags), zlib.error...
        raise CheckpointError(f"{path}: not a readable checkpoint "
                              f"({type(e).__name__}: {e})") from e
    if _META not in arrays:
        raise CheckpointError(f"{path}: no {_META} entry; not a gan_fast checkpoint")
    try:
        meta = json.loads(arrays.pop(_META).tobytes().decode())
    except ValueError as e:  # UnicodeDecodeError, JSONDecodeError
        raise CheckpointError(f"{path}: its {_META} entry is not JSON ({e})") from e
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: its {_META} entry is not a JSON object")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {meta.get('version')}, this "
                              f"gan_fast reads version {VERSION}")
    return arrays, meta


def load_generator(path, backend="kernels", device="cpu"):
    """The generator stored in a checkpoint, as a callable n -> [n, 1, 28, 28] in [-1, 1]
    (see gan_fast.model.Generator)."""
    from .model import G_HIDDEN, Generator, shape_signature
    from .trainer import resolve_backend

    arrays, meta = load_checkpoint(path)
    if meta["shapes"] != shape_signature():
        raise CheckpointError(f"{path}: its model shapes do not match this gan_fast's model")
    ops, xp, _ = resolve_backend(backend, device)
    g_params = xp.asarray(arrays["g.params"])
    bn_stats = [(xp.asarray(arrays[f"g.bn{k}.running_mean"]),
                 xp.asarray(arrays[f"g.bn{k}.running_var"])) for k in range(1, len(G_HIDDEN) + 1)]
    return Generator(ops, xp, g_params, bn_stats)
