"""Shared fixtures: the backend under test (CPU always; CUDA when a device is present,
skipped with a reason otherwise, or failed when GAN_FAST_REQUIRE_CUDA=1: a GPU job must
not pass by skipping), a fresh random generator per test whose seed is printed so a
failure can be replayed, and the MNIST data folder. pytest's header says whether the CUDA
tests run and why not. And a tripwire: a test file that .ci/run's sanitizer run leaves out
(its sanitize_skip list) fails if one of its tests calls a compiled kernel."""
from __future__ import annotations

import contextlib
import os
import pathlib
import re
import secrets

import numpy as np
import pytest

import gan_fast

REPO = pathlib.Path(__file__).resolve().parents[1]
# Where the tests read MNIST (never downloaded by tests): $GAN_FAST_TEST_DATA, the
# project's ../shared/data/mnist, $GAN_FAST_DATA, then the cache `gan_fast.train` fills.
MNIST_CANDIDATES = [
    os.environ.get("GAN_FAST_TEST_DATA"),
    REPO.parent / "shared" / "data" / "mnist",
    os.environ.get("GAN_FAST_DATA"),
    pathlib.Path.home() / ".cache" / "gan_fast" / "mnist",
]


class Backend:
    """Moves test arrays to one backend: NumPy for 'cpu', CuPy for 'cuda'."""

    def __init__(self, name):
        self.name = name
        if name == "cuda":
            import cupy
            self.xp = cupy
        else:
            self.xp = np

    def asarray(self, a):
        """A float32 C-contiguous copy of a on this backend (always a copy: kernels that
        update in place must not change the caller's array)."""
        return self.xp.asarray(np.array(a, dtype=np.float32, order="C", copy=True))

    def poisoned(self, shape):
        """A float32 output buffer full of NaN: an element the kernel skips stays NaN."""
        return self.xp.full(shape, np.nan, dtype=np.float32)

    def to_numpy(self, a):
        return a.get() if self.name == "cuda" else np.asarray(a)

    def __repr__(self):
        return self.name


def draw_labels(rng, N, C, coverage="all"):
    """N int64 class labels in [0, C). coverage "all": every class appears (when N >= C), in
    random order; "some_absent": drawn from a random half of the classes, so the others
    have no rows (their gradient rows must come out as exact zeros)."""
    if coverage == "all":
        return rng.permutation(np.arange(N) % C).astype(np.int64)
    present = rng.choice(C, size=max(1, C // 2), replace=False)
    return rng.choice(present, size=N).astype(np.int64)


def results_per_thread_count(fn, counts=(1, 2, 3)):
    """fn() (a list of NumPy arrays) run under each CPU thread count; the count is restored."""
    before = gan_fast.get_num_threads()
    try:
        results = []
        for n in counts:
            gan_fast.set_num_threads(n)
            results.append(fn())
        return results
    finally:
        gan_fast.set_num_threads(before)


def _cuda_skip_reason():
    if not gan_fast._C.cuda_compiled():
        return "gan_fast was built without CUDA (no nvcc at build time)"
    if gan_fast._C.cuda_device_count() < 1:
        return "no CUDA device visible"
    if not gan_fast.cuda_available():
        return "CuPy is not installed (pip install \".[test,cuda]\" runs the CUDA tests)"
    return None


# Set to 1 on a GPU machine: a CUDA test that cannot run fails instead of skipping.
REQUIRE_CUDA = os.environ.get("GAN_FAST_REQUIRE_CUDA") == "1"


def _skip_without_cuda():
    reason = _cuda_skip_reason()
    if reason:
        (pytest.fail if REQUIRE_CUDA else pytest.skip)(reason + (
            " (GAN_FAST_REQUIRE_CUDA=1)" if REQUIRE_CUDA else ""))


def pytest_report_header(config):
    reason = _cuda_skip_reason()
    if reason is None:
        return f"gan_fast CUDA tests: run (cpu isa {gan_fast.cpu_isa()})"
    return (f"gan_fast CUDA tests: {'FAIL' if REQUIRE_CUDA else 'skipped'}: {reason} "
            f"(cpu isa {gan_fast.cpu_isa()})")


@pytest.fixture(params=["cpu", "cuda"])
def backend(request):
    if request.param == "cuda":
        _skip_without_cuda()
    return Backend(request.param)


@pytest.fixture
def cuda_backend():
    _skip_without_cuda()
    return Backend("cuda")


@pytest.fixture
def rng():
    seed = secrets.randbits(32)
    print(f"rng seed: {seed}  (replay with numpy.random.default_rng({seed}))")
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def mnist_dir():
    for folder in filter(None, MNIST_CANDIDATES):
        if (pathlib.Path(folder) / "train-images-idx3-ubyte.gz").exists():
            return pathlib.Path(folder)
    pytest.fail("MNIST not found in any of " + ", ".join(map(str, filter(None, MNIST_CANDIDATES)))
                + "; set GAN_FAST_TEST_DATA to the folder holding the four .gz files")


def pytest_collection_modifyitems(items):
    """Mark every test that runs on the GPU with `cuda`, so `-m cuda` selects them all."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_gpu = "cuda_backend" in getattr(item, "fixturenames", ()) or (
            callspec is not None and callspec.params.get("backend") == "cuda")
        if on_gpu:
            item.add_marker(pytest.mark.cuda)


@pytest.fixture(params=["avx512", "avx2", "scalar"])
def cpu_isa(request):
    """Forces every CPU kernel onto one SIMD path for a test, restoring 'auto' after;
    skipped when this CPU cannot run that path."""
    try:
        gan_fast.set_cpu_isa(request.param)
    except ValueError:
        pytest.skip(f"this CPU cannot run the {request.param} path")
    yield request.param
    gan_fast.set_cpu_isa("auto")


# ------------------------------------------------------------------------------ sanitize_skip
CI_SCRIPT = REPO / ".ci" / "run"
# gan_fast._C's functions that are settings and queries (no array memory touched); every
# other function of the extension is a kernel for the tripwire below, a new one included.
NOT_KERNELS = {"cpu_isa", "set_cpu_isa", "get_num_threads", "set_num_threads", "cuda_compiled",
               "cuda_device_count", "_kernel_variant", "_kernel_variants", "_set_kernel_variant"}


def sanitize_skip_entries():
    """The (file, reason) entries of .ci/run's sanitize_skip array ([] without the script:
    an installed copy of the tests)."""
    if not CI_SCRIPT.exists():
        return []
    block = re.search(r"^sanitize_skip=\((.*?)^\)", CI_SCRIPT.read_text(), re.S | re.M)
    assert block, "no sanitize_skip=( ... ) array in .ci/run"
    entries = []
    for line in filter(None, map(str.strip, block.group(1).splitlines())):
        path, _, reason = line.partition("#")
        entries.append((path.strip(), reason.strip()))
    return entries


@contextlib.contextmanager
def kernel_calls_recorded():
    """Every kernel of gan_fast._C (all its functions but NOT_KERNELS) wrapped to note its
    name in the yielded list, then called as usual; restored on exit."""
    from gan_fast import _C
    calls, saved = [], {}
    for name in dir(_C):
        fn = getattr(_C, name)
        if name.startswith("__") or name in NOT_KERNELS or not callable(fn) or isinstance(fn, type):
            continue
        saved[name] = fn

        def noted(*args, _name=name, _fn=fn, **kwargs):
            calls.append(_name)
            return _fn(*args, **kwargs)
        setattr(_C, name, noted)
    try:
        yield calls
    finally:
        for name, fn in saved.items():
            setattr(_C, name, fn)


SANITIZE_SKIP_FILES = {REPO / path for path, _ in sanitize_skip_entries()}


@pytest.fixture(autouse=True)
def _no_kernel_in_a_file_the_sanitizers_skip(request):
    """A file in .ci/run's sanitize_skip must call no kernel (that is the only reason a file
    may stay out of the ASan/UBSan run): each of its tests runs with the kernels noted, and
    fails at teardown if it called one. tests/test_ci.py checks the tripwire itself."""
    if pathlib.Path(str(request.node.path)) not in SANITIZE_SKIP_FILES:
        yield
        return
    with kernel_calls_recorded() as calls:
        yield
    assert not calls, (f"{request.node.path.name} is in .ci/run's sanitize_skip (files that call "
                       f"no kernel) but called gan_fast._C.{', '.join(sorted(set(calls)))}: take it "
                       f"out of that list, so the sanitizers see these calls")
