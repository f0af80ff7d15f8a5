"""gan_fast.ops: the hand-written kernels, float32, on NumPy (CPU) or CuPy (CUDA) arrays.

Every function has the name, signature and docstring of its twin in gan_fast.reference
(checked when this module is imported). Inputs must be float32 and C-contiguous; all
arrays of one call live on one device, and results come back on it: NumPy in, NumPy out;
CuPy in, CuPy out (launched on CuPy's current stream, never synchronised). Optional
output arguments are written in place and returned, so a training step can reuse its
buffers; missing ones are allocated. Bad arguments raise TypeError or ValueError naming
the op and the argument. An output (or an array updated in place) must not share memory
with any other argument (ValueError naming both), except that an elementwise op's output
may be exactly one of its inputs and softmax_cross_entropy's dlogits its logits (in place).
"""
from __future__ import annotations

import inspect

from . import _C, reference

__all__ = list(reference.__all__)


def _twin_of(ref_fn):
    """Give a kernel wrapper its reference twin's docstring, insisting on one signature."""
    def attach(fn):
        if inspect.signature(fn) != inspect.signature(ref_fn):
            raise ImportError(f"gan_fast.ops.{fn.__name__} and gan_fast.reference."
                              f"{ref_fn.__name__} have different signatures")
        fn.__doc__ = ref_fn.__doc__
        return fn
    return attach


@_twin_of(reference.linear_forward)
def linear_forward(x, w, b=None, out=None):
    return _C.linear_forward(x, w, b, out)


@_twin_of(reference.linear_backward)
def linear_backward(dy, x, w, need_dx=True, need_dw=True, need_db=True,
                    dx=None, dw=None, db=None):
    return _C.linear_backward(dy, x, w, need_dx, need_dw, need_db, dx, dw, db)


@_twin_of(reference.conv2d_forward)
def conv2d_forward(x, w, b=None, stride=1, padding=0, out=None):
    return _C.conv2d_forward(x, w, b, stride, padding, out)


@_twin_of(reference.conv2d_backward)
def conv2d_backward(dy, x, w, stride=1, padding=0, need_dx=True, need_dw=True, need_db=True,
                    dx=None, dw=None, db=None):
    return _C.conv2d_backward(dy, x, w, stride, padding, need_dx, need_dw, need_db, dx, dw, db)


@_twin_of(reference.batchnorm_forward)
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1,
                      eps=1e-5, out=None, mean=None, rstd=None):
    return _C.batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum,
                                eps, out, mean, rstd)


@_twin_of(reference.batchnorm_backward)
def batchnorm_backward(dy, x, gamma, mean, rstd, training=True, dx=None, dgamma=None,
                       dbeta=None):
    return _C.batchnorm_backward(dy, x, gamma, mean, rstd, training, dx, dgamma, dbeta)


@_twin_of(reference.leaky_relu_forward)
def leaky_relu_forward(x, slope=0.2, out=None):
    return _C.leaky_relu_forward(x, slope, out)


@_twin_of(reference.leaky_relu_backward)
def leaky_relu_backward(dy, x, slope=0.2, dx=None):
    return _C.leaky_relu_backward(dy, x, slope, dx)


@_twin_of(reference.tanh_forward)
def tanh_forward(x, out=None):
    return _C.tanh_forward(x, out)


@_twin_of(reference.tanh_backward)
def tanh_backward(dy, y, dx=None):
    return _C.tanh_backward(dy, y, dx)


@_twin_of(reference.dropout_forward)
def dropout_forward(x, p, seed, out=None):
    return _C.dropout_forward(x, p, seed, out)


@_twin_of(reference.dropout_backward)
def dropout_backward(dy, p, seed, dx=None):
    return _C.dropout_backward(dy, p, seed, dx)


@_twin_of(reference.leaky_relu_dropout_forward)
def leaky_relu_dropout_forward(x, slope, p, seed, out=None):
    return _C.leaky_relu_dropout_forward(x, slope, p, seed, out)


@_twin_of(reference.leaky_relu_dropout_backward)
def leaky_relu_dropout_backward(dy, x, slope, p, seed, dx=None):
    return _C.leaky_relu_dropout_backward(dy, x, slope, p, seed, dx)


# The mask itself is pure integer hashing, the same in NumPy as in the kernels.
dropout_keep_mask = reference.dropout_keep_mask


@_twin_of(reference.bce_with_logits)
def bce_with_logits(logits, targets, loss=None, dlogits=None):
    return _C.bce_with_logits(logits, targets, loss, dlogits)


@_twin_of(reference.softmax_cross_entropy)
def softmax_cross_entropy(logits, labels, loss=None, dlogits=None):
    return _C.softmax_cross_entropy(logits, labels, loss, dlogits)


@_twin_of(reference.adam_step)
def adam_step(params, grads, m, v, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    return _C.adam_step(params, grads, m, v, step, lr, beta1, beta2, eps)
