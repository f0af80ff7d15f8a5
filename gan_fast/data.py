"""gan_fast.data: the MNIST digits, read from the four original IDX gzip files.

    images, labels = load_mnist("train")        # uint8 [60000, 28, 28], uint8 [60000]
    x = scale_images(images)                    # float32 [60000, 1, 28, 28] in [-1, 1]

Where the files are looked for, in order (the first folder that holds all the files the
split needs wins):
  1. the data_dir argument,
  2. the folder in $GAN_FAST_DATA,
  3. ~/.cache/gan_fast/mnist  (DEFAULT_CACHE),
  4. nowhere: the files are downloaded into DEFAULT_CACHE from MIRRORS, in order,
     with a progress bar (download=False turns this off).
Every file is checked after decompression: its MD5 (the values of the original files;
the gzip wrappers themselves differ between mirrors, the content does not), the IDX magic
number, the image/label counts and the 28×28 size. A failure raises MNISTError naming the
file, what was wrong, the folder to put the files in and the URLs they come from.
Tests point data_dir at a local copy and never touch the network.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import pathlib
import struct
import tempfile
import urllib.error
import urllib.request

import numpy as np

__all__ = ["load_mnist", "scale_images", "find_data_dir", "download_mnist", "read_idx", "MNISTError",
           "FILES", "MIRRORS", "DEFAULT_CACHE", "ENV_VAR"]

ENV_VAR = "GAN_FAST_DATA"
DEFAULT_CACHE = pathlib.Path("~/.cache/gan_fast/mnist").expanduser()

# yann.lecun.com answers 403 to scripts, so it is not among them.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

# file name -> (MD5 of the decompressed bytes, IDX magic, item count)
FILES = {
    "train-images-idx3-ubyte.gz": ("6bbc9ace898e44ae57da46a324031adb", 0x803, 60000),
    "train-labels-idx1-ubyte.gz": ("a25bea736e30d166cdddb491f175f624", 0x801, 60000),
    "t10k-images-idx3-ubyte.gz": ("2646ac647ad5339dbf082846283269ea", 0x803, 10000),
    "t10k-labels-idx1-ubyte.gz": ("27ae3e4e09519cfbb04c329615203637", 0x801, 10000),
}

SPLITS = {
    "train": (("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),),
    "test": (("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),),
    "all": (("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
            ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")),
}


class MNISTError(RuntimeError):
    """MNIST could not be found, downloaded or validated; the message says what to do."""


def _files_of(split):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    return [name for pair in SPLITS[split] for name in pair]


def _how_to_fix(names, folder):
    urls = "\n".join(f"    {m}{n}" for n in names for m in MIRRORS)
    return (f"Put the files {', '.join(names)} into {folder} (or point data_dir / "
            f"${ENV_VAR} at a folder holding them). They can be fetched from:\n{urls}")


def _candidates(data_dir):
    if data_dir is not None:
        yield pathlib.Path(data_dir).expanduser()
    if os.environ.get(ENV_VAR):
        yield pathlib.Path(os.environ[ENV_VAR]).expanduser()
    yield DEFAULT_CACHE


def find_data_dir(split="train", data_dir=None):
    """The first folder of the lookup order that holds every file of split, or None."""
    names = _files_of(split)
    for folder in _candidates(data_dir):
        if all((folder / n).is_file() for n in names):
            return folder
    return None


# ------------------------------------------------------------------------------ download
def _fetch(url, dest, progress=True):
    """Download url into the file dest, with a tqdm progress bar. Raises OSError on failure
    (urllib.error.URLError is one). Tests replace this function to stay offline."""
    from tqdm.auto import tqdm

    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as f:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
                  disable=not progress, leave=False) as bar:
            while chunk := response.read(1 << 16):
                f.write(chunk)
                bar.update(len(chunk))


def download_mnist(split="all", folder=None, progress=True):
    """Download the files of split into folder (default DEFAULT_CACHE) from MIRRORS, trying
    each mirror in turn, verifying every file before it is moved into place. Files already
    there and valid are kept. Returns the folder; raises MNISTError when a file cannot be
    had from any mirror."""
    folder = pathlib.Path(folder or DEFAULT_CACHE).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    for name in _files_of(split):
        target = folder / name
        if target.is_file():
            try:
                read_idx(target)
                continue
            except MNISTError:
                pass  # a broken file is replaced below
        errors = []
        for mirror in MIRRORS:
            fd, tmp = tempfile.mkstemp(prefix=name + ".", suffix=".part", dir=folder)
            os.close(fd)
            try:
                _fetch(mirror + name, tmp, progress)
                read_idx(pathlib.Path(tmp), name=name)
                os.replace(tmp, target)
                break
            except (OSError, urllib.error.URLError, MNISTError) as e:
                errors.append(f"{mirror}{name}: {e}")
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        else:
            raise MNISTError(f"could not download {name} ({'; '.join(errors)}).\n"
                             + _how_to_fix(_files_of(split), folder))
    return folder


# ------------------------------------------------------------------------------ reading
def read_idx(path, name=None):
    """Decompress, checksum and parse one IDX file -> uint8 array ([n, 28, 28] or [n])."""
    path = pathlib.Path(path)
    name = name or path.name
    md5, magic, count = FILES[name]
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise MNISTError(f"{path}: not a readable gzip file ({e})") from e
    digest = hashlib.md5(raw).hexdigest()
    if digest != md5:
        raise MNISTError(f"{path}: MD5 of the decompressed bytes is {digest}, expected {md5} "
                         f"(a damaged or different file)")
    got_magic, got_count = struct.unpack(">II", raw[:8])
    if got_magic != magic:
        raise MNISTError(f"{path}: IDX magic number 0x{got_magic:08x}, expected 0x{magic:08x}")
    if got_count != count:
        raise MNISTError(f"{path}: holds {got_count} items, expected {count}")
    if magic == 0x803:
        rows, cols = struct.unpack(">II", raw[8:16])
        if (rows, cols) != (28, 28):
            raise MNISTError(f"{path}: images are {rows}x{cols}, expected 28x28")
        body, shape = raw[16:], (count, rows, cols)
    else:
        body, shape = raw[8:], (count,)
    if len(body) != int(np.prod(shape)):
        raise MNISTError(f"{path}: {len(body)} data bytes, expected {int(np.prod(shape))}")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape).copy()


def load_mnist(split="train", data_dir=None, download=True, progress=True):
    """The MNIST images and labels of split ("train": 60,000, "test": 10,000, "all": both,
    train first) as (uint8 [n, 28, 28], uint8 [n]). See the module docstring for where the
    files are looked for; download=False raises MNISTError instead of downloading."""
    names = _files_of(split)
    folder = find_data_dir(split, data_dir)
    if folder is None:
        if not download:
            raise MNISTError("MNIST files not found (looked in "
                             + ", ".join(str(c) for c in _candidates(data_dir)) + ").\n"
                             + _how_to_fix(names, DEFAULT_CACHE))
        try:
            folder = download_mnist(split, DEFAULT_CACHE, progress)
        except OSError as e:  # e.g. the cache folder cannot be created
            raise MNISTError(f"could not download MNIST into {DEFAULT_CACHE}: {e}.\n"
                             + _how_to_fix(names, DEFAULT_CACHE)) from e
    images, labels = [], []
    for image_file, label_file in SPLITS[split]:
        try:
            images.append(read_idx(folder / image_file))
            labels.append(read_idx(folder / label_file))
        except MNISTError as e:
            raise MNISTError(f"{e}.\n" + _how_to_fix(names, folder)) from e
    if len(images) == 1:
        return images[0], labels[0]
    return np.concatenate(images), np.concatenate(labels)


def scale_images(images):
    """uint8 [n, 28, 28] -> float32 [n, 1, 28, 28] in [-1, 1]: x / 127.5 − 1 (0 -> −1 and
    255 -> 1 exactly), the range of the generator's tanh output."""
    x = np.asarray(images, dtype=np.float32)
    x /= np.float32(127.5)
    x -= np.float32(1.0)
    return x.reshape(x.shape[0], 1, 28, 28)

