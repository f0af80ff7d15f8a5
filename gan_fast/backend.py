"""gan_fast.backend: where the arithmetic runs, chosen in one place.

    ops, xp, device = resolve_backend("kernels", "auto")   # gan_fast.ops on CuPy or NumPy
    host = to_host(array)                                  # NumPy, from either

The op layer below (gan_fast._C, gan_fast.reference, gan_fast.ops) knows nothing of devices
beyond the arrays it is given; every module above asks this one which op module and which
array module (numpy or cupy) to use, and how to bring an array back to the host.
"""
from __future__ import annotations

import numpy as np

from . import _C, ops, reference
from .errors import ConfigError

__all__ = ["cuda_compiled", "cuda_available", "resolve_backend", "resolve_device",
           "backend_name", "to_host", "array_module", "is_device_array", "DEVICES"]

DEVICES = ("auto", "cpu", "cuda")


def cuda_compiled() -> bool:
    """True when the extension was built with the CUDA kernels (nvcc found at build time)."""
    return bool(_C.cuda_compiled())


def cuda_available() -> bool:
    """True when gan_fast was built with CUDA, a CUDA device is visible and CuPy imports."""
    if not _C.cuda_compiled() or _C.cuda_device_count() < 1:
        return False
    try:
        import cupy  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_device(device) -> str:
    """"cpu" or "cuda" for a device name ("auto": cuda when cuda_available())."""
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device == "cuda" and not cuda_available():
        raise RuntimeError("device='cuda' but no usable CUDA device: gan_fast.cuda_available()"
                           " is False (built without CUDA, no GPU visible, or CuPy missing)")
    return device


def resolve_backend(backend, device):
    """(op module, array module, device name) for a backend ("kernels", "reference" or a
    module with the gan_fast.ops API) and a device ("cpu", "cuda", "auto").

    Only gan_fast.ops takes CuPy arrays: with the reference or a custom backend "auto"
    means the CPU, and "cuda" is refused for the reference."""
    if isinstance(backend, str):
        if backend not in ("kernels", "reference"):
            raise ConfigError(f"backend must be 'kernels' or 'reference', got {backend!r}")
        mod = ops if backend == "kernels" else reference
    else:
        mod = backend
    if device == "auto" and mod is not ops:
        device = "cpu"
    if device == "cuda" and mod is reference:
        raise ConfigError("the reference backend is NumPy only; use device='cpu' with it")
    device = resolve_device(device)
    if device == "cpu":
        return mod, np, "cpu"
    import cupy
    return mod, cupy, "cuda"


def backend_name(backend) -> str:
    """The name a backend is recorded under (a custom module: its __name__)."""
    return backend if isinstance(backend, str) else getattr(backend, "__name__", "custom")


def is_device_array(a) -> bool:
    """True for a CUDA array (anything with __cuda_array_interface__, e.g. CuPy)."""
    return hasattr(a, "__cuda_array_interface__") and not isinstance(a, np.ndarray)


def to_host(a) -> np.ndarray:
    """A NumPy array of a NumPy or CuPy array (a copy from the device; NumPy as is)."""
    return a.get() if is_device_array(a) else np.asarray(a)


def array_module(a):
    """numpy or cupy: the module of an array."""
    if is_device_array(a):
        import cupy
        return cupy
    return np
