"""gan_fast: train the classic MNIST GAN on hand-written C++ and CUDA kernels.

    import gan_fast
    result = gan_fast.train(epochs=5)        # trains, logs, checkpoints, writes samples
    images = result.generator(16)            # [16, 1, 28, 28] in [-1, 1]
    metrics = gan_fast.evaluate(result)      # classes covered, IS, Fréchet distance, ...

gan_fast.ops holds the kernels, gan_fast.reference their NumPy specification.
"""
from __future__ import annotations

from . import _C, ops, reference
from .quality import QualityMetrics, evaluate
from .trainer import train

__version__ = "0.1.0"


def cuda_available() -> bool:
    """True when gan_fast was built with CUDA, a CUDA device is visible and CuPy imports."""
    if not _C.cuda_compiled() or _C.cuda_device_count() < 1:
        return False
    try:
        import cupy  # noqa: F401
    except ImportError:
        return False
    return True


def cpu_isa() -> str:
    """The CPU GEMM micro-kernel in use: 'avx512', 'avx2' or 'scalar'."""
    return _C.cpu_isa()


set_cpu_isa = _C.set_cpu_isa
get_num_threads = _C.get_num_threads
set_num_threads = _C.set_num_threads

__all__ = ["ops", "reference", "cuda_available", "cpu_isa", "set_cpu_isa", "get_num_threads",
           "set_num_threads", "train", "evaluate", "QualityMetrics", "__version__"]
