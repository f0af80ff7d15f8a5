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
def linear_forward(x, w, b=None, out=None, activation=None, slope=0.2):
    return _C.linear_forward(x, w, b, out, activation, slope)


@_twin_of(reference.linear_backward)
def linear_backward(dy, x, w, need_dx=True, need_dw=True, need_db=True,
                    dx=None, dw=None, db=None):
    return _C.linear_backward(dy, x, w, need_dx, need_dw, need_db, dx, dw, db)


@_twin_of(reference.conv2d_forward)
def conv2d_forward(x, w, b=None, stride=1, padding=0, out=None, activation=None, slope=0.2,
                   dropout_p=0.0, seed=0, step=None):
    return _C.conv2d_forward(x, w, b, stride, padding, out, activation, slope, dropout_p, seed,
                             step)


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
def dropout_forward(x, p, seed, step=None, out=None):
    return _C.dropout_forward(x, p, seed, step, out)


@_twin_of(reference.dropout_backward)
def dropout_backward(dy, p, seed, step=None, dx=None):
    return _C.dropout_backward(dy, p, seed, step, dx)


@_twin_of(reference.leaky_relu_dropout_forward)
def leaky_relu_dropout_forward(x, slope, p, seed, step=None, out=None):
    return _C.leaky_relu_dropout_forward(x, slope, p, seed, step, out)


@_twin_of(reference.leaky_relu_dropout_backward)
def leaky_relu_dropout_backward(dy, x, slope, p, seed, step=None, dx=None):
    return _C.leaky_relu_dropout_backward(dy, x, slope, p, seed, step, dx)


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


# Device-side data (issue #13): noise, batch indices and the batch drawn from (seed, step).
@_twin_of(reference.random_normal)
def random_normal(out, seed, step):
    return _C.random_normal(out, seed, step)


@_twin_of(reference.batch_indices)
def batch_indices(out, seed, step, n_items, batch_size, steps_per_epoch):
    return _C.batch_indices(out, seed, step, n_items, batch_size, steps_per_epoch)


@_twin_of(reference.gather_rows)
def gather_rows(src, idx, out=None):
    return _C.gather_rows(src, idx, out)


# ------------------------------------------------------------------------------ quality recipe
@_twin_of(reference.minibatch_stddev_forward)
def minibatch_stddev_forward(x, group_size=4, eps=1e-8, out=None):
    return _C.minibatch_stddev_forward(x, group_size, eps, out)


@_twin_of(reference.minibatch_stddev_backward)
def minibatch_stddev_backward(dy, x, group_size=4, eps=1e-8, dx=None):
    return _C.minibatch_stddev_backward(dy, x, group_size, eps, dx)


@_twin_of(reference.spectral_norm_forward)
def spectral_norm_forward(w, u, eps=1e-12, out=None, v=None, sigma=None):
    return _C.spectral_norm_forward(w, u, eps, out, v, sigma)


@_twin_of(reference.spectral_norm_backward)
def spectral_norm_backward(dw_sn, w_sn, u, v, sigma, dw=None):
    return _C.spectral_norm_backward(dw_sn, w_sn, u, v, sigma, dw)


@_twin_of(reference.ema_update)
def ema_update(average, value, decay, step):
    return _C.ema_update(average, value, decay, step)


# ------------------------------------------------------------------------------ conditional GAN
@_twin_of(reference.embedding_forward)
def embedding_forward(weight, labels, out=None):
    return _C.embedding_forward(weight, labels, out)


@_twin_of(reference.embedding_backward)
def embedding_backward(dy, labels, num_classes, dweight=None):
    return _C.embedding_backward(dy, labels, num_classes, dweight)


@_twin_of(reference.concat_forward)
def concat_forward(a, b, out=None):
    return _C.concat_forward(a, b, out)


@_twin_of(reference.concat_backward)
def concat_backward(dy, split, need_da=True, need_db=True, da=None, db=None):
    return _C.concat_backward(dy, split, need_da, need_db, da, db)


@_twin_of(reference.projection_head_forward)
def projection_head_forward(h, w, b, embed, labels, out=None):
    return _C.projection_head_forward(h, w, b, embed, labels, out)


@_twin_of(reference.projection_head_backward)
def projection_head_backward(dlogits, h, w, embed, labels, need_dh=True, need_dw=True,
                             need_db=True, need_dembed=True, dh=None, dw=None, db=None,
                             dembed=None):
    return _C.projection_head_backward(dlogits, h, w, embed, labels, need_dh, need_dw, need_db,
                                       need_dembed, dh, dw, db, dembed)
