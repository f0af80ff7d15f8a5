"""gan_fast.checkpoint: atomic training checkpoints in one .npz file, no pickle, and their
schema (what a training checkpoint of a given model holds), in one place.

A checkpoint is an uncompressed NumPy .npz archive: every array of the training state by
name (expected_arrays: parameters, Adam moments, BatchNorm running statistics, the EMA
generator, spectral-norm vectors, the fixed sample noise) plus "__meta__", the UTF-8 bytes
of a JSON document (format name and version, the model (ModelSpec) and its shape signature,
epoch/step counters, Adam step counts, RNG states, the config). It loads with
allow_pickle=False. Version 1 files (before ModelSpec and recipes) hold the seed's model
trained with the seed's recipe; they load as such.

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

from . import model as M
from .backend import resolve_backend

__all__ = ["FORMAT", "VERSION", "save_checkpoint", "load_checkpoint", "CheckpointError",
           "expected_arrays", "check_training_checkpoint", "model_spec", "has_ema",
           "load_generator"]

FORMAT = "gan_fast-checkpoint"
VERSION = 2
READS = (1, 2)
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
    if meta.get("version") not in READS:
        raise CheckpointError(f"{path}: checkpoint version {meta.get('version')}, this "
                              f"gan_fast reads versions {', '.join(map(str, READS))}")
    return arrays, meta


# ------------------------------------------------------------------------------ the schema
def model_spec(meta, path="checkpoint"):
    """The ModelSpec a checkpoint's model was built with (version 1: the seed's model)."""
    try:
        return M.ModelSpec(**meta.get("model", {}))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: its model description is not valid ({e})") from e


def has_ema(meta):
    """Whether the checkpoint holds an EMA generator (version 1: never)."""
    return bool(meta.get("ema", False))


def expected_arrays(spec, ema):
    """name -> shape of every array a training checkpoint of this model holds (float32)."""
    g, d = M.GeneratorNet(spec), M.DiscriminatorNet(spec)
    out = {"fixed_noise": (64, M.Z_DIM)}
    for net, layout in (("g", g.layout), ("d", d.layout)):
        for part in ("params", "adam_m", "adam_v"):
            out[f"{net}.{part}"] = (layout.size,)
    bn = {name: shape for name, shape in g.bn_layout.entries}
    out.update({f"g.{name}": shape for name, shape in bn.items()})
    if ema:
        out["g_ema.params"] = (g.layout.size,)
        out.update({f"g_ema.{name}": shape for name, shape in bn.items()})
    if spec.spectral_norm:
        out.update({f"d.sn.{name}": shape for name, shape in d.sn_layout.entries})
    return out


def check_training_checkpoint(path, arrays, meta):
    """Raise CheckpointError naming path and what is wrong unless the checkpoint is a
    complete training checkpoint of the model it describes; runs before train() writes
    anything, so a bad checkpoint changes nothing. Returns its ModelSpec."""
    spec = model_spec(meta, path)
    ours, theirs = M.shape_signature(spec), meta.get("shapes") or {}
    if theirs != ours:
        diff = [k for k in ours if ours.get(k) != theirs.get(k)]
        raise CheckpointError(f"{path}: its model shapes do not match this model "
                              f"(differs in: {', '.join(diff) or 'everything'})")
    for key in ("config", "counters", "adam_steps", "rng"):
        if key not in meta:
            raise CheckpointError(f"{path}: metadata lacks {key!r}; not a training "
                                  f"checkpoint")
    for name, shape in expected_arrays(spec, has_ema(meta)).items():
        a = arrays.get(name)
        if a is None:
            raise CheckpointError(f"{path}: entry {name} is missing")
        if a.shape != shape or a.dtype != np.float32:
            raise CheckpointError(f"{path}: entry {name} is {a.dtype}{list(a.shape)}, "
                                  f"expected float32{list(shape)}")
    return spec


def load_generator(path, backend="kernels", device="cpu", ema=True, conditional=None):
    """The generator stored in a checkpoint, as a callable n -> [n, 1, 28, 28] in [-1, 1]
    (gan_fast.model.Generator): the EMA generator when the checkpoint has one and ema is
    True (what training's samples and evaluations use), else the trained weights.
    conditional: True or False to insist on a conditional (digit-drawing) or an
    unconditional generator (CheckpointError otherwise); None takes either."""
    arrays, meta = load_checkpoint(path)
    spec = check_training_checkpoint(path, arrays, meta)
    if conditional is not None and spec.conditional != conditional:
        held, wanted = (("a conditional", "an unconditional") if spec.conditional
                        else ("an unconditional", "a conditional"))
        raise CheckpointError(f"{path}: holds {held} generator (trained with conditional="
                              f"{spec.conditional}), but {wanted} one was asked for")
    ops, xp, _ = resolve_backend(backend, device)
    prefix = "g_ema" if ema and has_ema(meta) else "g"
    g = M.GeneratorNet(spec)
    bn = np.zeros(g.bn_layout.size, dtype=np.float32)
    for name, view in g.bn_layout.views(bn).items():
        view[...] = arrays[f"{prefix}.{name}"]
    return M.Generator(ops, xp, xp.asarray(arrays[f"{prefix}.params"]), xp.asarray(bn), spec)


