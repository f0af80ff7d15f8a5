"""gan_fast.data: reading and validating MNIST, the lookup order, and the download path,
all without the network (the fetch function is replaced by one that fails or serves the
local files)."""
from __future__ import annotations

import gzip
import hashlib
import shutil
import struct
import urllib.error

import numpy as np
import pytest

from gan_fast import data


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No $GAN_FAST_DATA, the cache in tmp_path, and a network that always fails."""
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setattr(data, "DEFAULT_CACHE", tmp_path / "cache")

    def offline(url, dest, progress=True):
        raise urllib.error.URLError("network unreachable (test)")
    monkeypatch.setattr(data, "_fetch", offline)
    return tmp_path


@pytest.mark.parametrize("split,count", [("train", 60000), ("test", 10000), ("all", 70000)])
def test_load_splits(mnist_dir, split, count):
    images, labels = data.load_mnist(split, mnist_dir, download=False)
    assert images.shape == (count, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (count,) and labels.dtype == np.uint8 and labels.max() == 9
    if split != "test":
        assert list(labels[:8]) == [5, 0, 4, 1, 9, 2, 1, 3]
    if split == "train":
        assert images.mean() / 255 == pytest.approx(0.1307, abs=1e-4)  # the README's value


def test_scale_images_maps_to_minus_one_one():
    u8 = np.array([[0, 255], [127, 128]], np.uint8).repeat(14, 0).repeat(14, 1)[None]
    x = data.scale_images(u8)
    assert x.shape == (1, 1, 28, 28) and x.dtype == np.float32
    assert x.min() == -1.0 and x.max() == 1.0


def test_unknown_split():
    with pytest.raises(ValueError, match="split"):
        data.load_mnist("validation")


def test_lookup_order(isolated, mnist_dir, monkeypatch, tmp_path):
    assert data.find_data_dir("train", None) is None
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in data.FILES:
        shutil.copy(mnist_dir / name, cache / name)
    assert data.find_data_dir("train", None) == cache                 # 3. the cache
    monkeypatch.setenv(data.ENV_VAR, str(mnist_dir))
    assert data.find_data_dir("train", None) == mnist_dir             # 2. $GAN_FAST_DATA
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(mnist_dir / "t10k-images-idx3-ubyte.gz", other)
    shutil.copy(mnist_dir / "t10k-labels-idx1-ubyte.gz", other)
    assert data.find_data_dir("test", other) == other                 # 1. the argument
    assert data.find_data_dir("train", other) == mnist_dir            # lacks train: next


def test_offline_error_names_files_folder_and_urls(isolated):
    with pytest.raises(data.MNISTError) as e:
        data.load_mnist("train", progress=False)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and "train-labels-idx1-ubyte.gz" in msg
    assert str(isolated / "cache") in msg
    for mirror in data.MIRRORS:
        assert mirror + "train-images-idx3-ubyte.gz" in msg
    assert "yann.lecun.com" not in data.MIRRORS[0]


def test_no_download_error(isolated):
    with pytest.raises(data.MNISTError, match="not found"):
        data.load_mnist("test", download=False)


def test_download_serves_verified_files_into_cache(isolated, mnist_dir, monkeypatch):
    calls = []

    def serve(url, dest, progress=True):
        calls.append(url)
        if url.startswith(data.MIRRORS[0]):   # the first mirror is down
            raise urllib.error.URLError("down")
        shutil.copy(mnist_dir / url.rsplit("/", 1)[-1], dest)
    monkeypatch.setattr(data, "_fetch", serve)
    images, labels = data.load_mnist("test", progress=False)
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    cache = isolated / "cache"
    assert sorted(p.name for p in cache.iterdir()) == ["t10k-images-idx3-ubyte.gz",
                                                      "t10k-labels-idx1-ubyte.gz"]
    assert len(calls) == 4
    calls.clear()
    data.load_mnist("test", progress=False)   # now found in the cache: no fetch
    assert calls == []


def test_download_rejects_corrupt_mirror(isolated, mnist_dir, monkeypatch, tmp_path):
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as f:
        f.write(b"\x00" * 100)

    def serve(url, dest, progress=True):
        if url.startswith(data.MIRRORS[0]):
            shutil.copy(bad, dest)                 # wrong content: rejected
        else:
            shutil.copy(mnist_dir / url.rsplit("/", 1)[-1], dest)
    monkeypatch.setattr(data, "_fetch", serve)
    data.load_mnist("test", progress=False)
    assert not list((isolated / "cache").glob("*.part"))

    monkeypatch.setattr(data, "_fetch", lambda url, dest, progress=True: shutil.copy(bad, dest))
    with pytest.raises(data.MNISTError, match="MD5") as e:
        data.download_mnist("train", progress=False)
    assert data.MIRRORS[1] + "train-images-idx3-ubyte.gz" in str(e.value)


def test_checksum_mismatch_names_the_file(mnist_dir, tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    shutil.copy(mnist_dir / "t10k-labels-idx1-ubyte.gz", folder)
    raw = gzip.open(mnist_dir / "t10k-images-idx3-ubyte.gz").read()
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(raw[:-1] + bytes([raw[-1] ^ 1]))     # one pixel changed
    with pytest.raises(data.MNISTError) as e:
        data.load_mnist("test", folder, download=False)
    msg = str(e.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and "MD5" in msg and str(folder) in msg


@pytest.mark.parametrize("header,what", [((0x801, 10000, 28, 28), "magic"),
                                         ((0x803, 9999, 28, 28), "9999 items"),
                                         ((0x803, 10000, 28, 27), "28x27")])
def test_bad_headers_are_reported(tmp_path, monkeypatch, header, what):
    """Magic, count and size are checked after the MD5, so the MD5 table is pointed at the
    crafted file to reach those checks."""
    raw = struct.pack(">IIII", *header) + bytes(10000 * 28 * 28)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(raw)
    monkeypatch.setitem(data.FILES, path.name, (hashlib.md5(raw).hexdigest(), 0x803, 10000))
    with pytest.raises(data.MNISTError, match=what) as e:
        data.read_idx(path)
    assert path.name in str(e.value)


def test_not_gzip_is_reported(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(data.MNISTError, match="gzip"):
        data.read_idx(path)


@pytest.mark.parametrize("damage", ["truncated gzip", "trailing garbage", "empty"])
def test_damaged_gzip_names_the_file_and_keeps_it(mnist_dir, tmp_path, damage):
    """A cut-off download (or junk after it) is reported with the file's path and what is
    wrong, and load_mnist leaves the file as it found it (it never writes)."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    shutil.copy(mnist_dir / "t10k-labels-idx1-ubyte.gz", folder)
    raw = (mnist_dir / "t10k-images-idx3-ubyte.gz").read_bytes()
    broken = {"truncated gzip": raw[:len(raw) // 2], "trailing garbage": raw + b"\x00junk" * 10,
              "empty": b""}[damage]
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(broken)
    with pytest.raises(data.MNISTError) as e:
        data.load_mnist("test", folder, download=False)
    msg = str(e.value)
    assert str(path) in msg and ("gzip" in msg or "MD5" in msg), msg
    assert path.read_bytes() == broken


def test_wrong_count_with_valid_checksum_is_reported(tmp_path, monkeypatch):
    """A labels file whose header promises more items than it holds."""
    raw = struct.pack(">II", 0x801, 10000) + bytes(9999)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(raw)
    monkeypatch.setitem(data.FILES, path.name, (hashlib.md5(raw).hexdigest(), 0x801, 10000))
    with pytest.raises(data.MNISTError, match="9999 data bytes, expected 10000") as e:
        data.read_idx(path)
    assert str(path) in str(e.value)
