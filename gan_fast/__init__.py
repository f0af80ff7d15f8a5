"""gan_fast: train the classic MNIST GAN on hand-written C++ and CUDA kernels.

    import gan_fast
    result = gan_fast.train(epochs=5)        # trains, logs, checkpoints, writes samples
    images = result.generator(16)            # [16, 1, 28, 28] in [-1, 1]
    metrics = gan_fast.evaluate(result)      # classes covered, IS, Fréchet distance, ...

gan_fast.ops holds the kernels, gan_fast.reference their NumPy specification,
gan_fast.engine the training state and step, gan_fast.config the settings.

The package is layered; each module imports only modules below it (tests/test_layers.py):
    errors, version, data, images      (no gan_fast imports)
    _C, reference -> ops               (the kernels and their specification)
    backend                            (device and backend choice, host transfer)
    model -> checkpoint -> engine      (networks, file format and schema, the step)
    judge -> quality                   (scoring)
    config -> trainer                  (settings, the loop)
    cli, __init__                      (faces; nothing inside the package imports them)
"""
from __future__ import annotations

try:
    from . import _C
except ImportError as error:
    # A source tree that was never built (e.g. `python -m pytest` from the repository root,
    # which puts this folder before the installed package): say what to do instead of
    # Python's "partially initialized module". Any other failure to load _C (a missing
    # shared library, an undefined symbol) keeps its own message.
    import importlib.util
    if importlib.util.find_spec(__name__ + "._C") is not None:
        raise
    raise ImportError(
        f"{__name__}'s compiled extension _C is not in {__path__[0]}: this is a source "
        "tree that has not been built. Build it in place with `pip install -e . "
        "--no-build-isolation` (after `pip install scikit-build-core pybind11`), or install "
        "it with `pip install .` and run the tests against the installed package with "
        "`pytest` from the repository root (not `python -m pytest`, which imports this "
        "folder first).", name=__name__) from error
from . import ops, reference
from .backend import cuda_available, cuda_compiled
from .config import TrainConfig
from .quality import QualityMetrics, evaluate
from .trainer import TrainResult, train
from .version import __version__


def cpu_isa() -> str:
    """The CPU GEMM micro-kernel in use: 'avx512', 'avx2' or 'scalar'."""
    return _C.cpu_isa()


set_cpu_isa = _C.set_cpu_isa
get_num_threads = _C.get_num_threads
set_num_threads = _C.set_num_threads

__all__ = ["ops", "reference", "cuda_available", "cuda_compiled", "cpu_isa", "set_cpu_isa",
           "get_num_threads", "set_num_threads", "train", "TrainConfig", "TrainResult",
           "evaluate", "QualityMetrics", "__version__"]
