"""gan_fast.reference: every op of gan_fast.ops in plain NumPy, written to be read.

This module is the specification. Each function has the same name, signature and
docstring as its kernel in ``gan_fast.ops``; the kernels are tested against it.
Arithmetic runs in float64; results come back in the dtype of the first input, so
float32 in gives float32 out and float64 in gives float64 out (what the tests use).
Output arguments (``out=``, ``dx=``, ...) are optional: when given, the result is
written into them and they are returned, exactly as the kernels do.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "linear_forward", "linear_backward",
    "conv2d_forward", "conv2d_backward",
    "batchnorm_forward", "batchnorm_backward",
    "leaky_relu_forward", "leaky_relu_backward",
    "tanh_forward", "tanh_backward",
    "dropout_forward", "dropout_backward", "dropout_keep_mask",
    "leaky_relu_dropout_forward", "leaky_relu_dropout_backward",
    "bce_with_logits", "softmax_cross_entropy",
    "adam_step",
    "embedding_forward", "embedding_backward",
    "concat_forward", "concat_backward",
    "projection_head_forward", "projection_head_backward",
]


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _emit(value, like, out=None):
    """Return value in like's dtype, written into out when out is given."""
    value = np.asarray(value)
    if out is None:
        return value.astype(np.asarray(like).dtype)
    out[...] = value
    return out


# ------------------------------------------------------------------------------ linear
def linear_forward(x, w, b=None, out=None):
    """y = x · wᵀ + b.

    x [N, K], w [M, K], b [M] or None  ->  y [N, M]
    """
    y = _f64(x) @ _f64(w).T  # [N, M]
    if b is not None:
        y = y + _f64(b)
    return _emit(y, x, out)


def linear_backward(dy, x, w, need_dx=True, need_dw=True, need_db=True,
                    dx=None, dw=None, db=None):
    """Gradients of linear_forward.

    dy [N, M], x [N, K], w [M, K]  ->  (dx [N, K], dw [M, K], db [M]);
    an entry is None when its need_* flag is False.
    """
    dy64 = _f64(dy)
    gx = _emit(dy64 @ _f64(w), x, dx) if need_dx else None   # [N, K]
    gw = _emit(dy64.T @ _f64(x), x, dw) if need_dw else None  # [M, K]
    gb = _emit(dy64.sum(axis=0), x, db) if need_db else None  # [M]
    return gx, gw, gb


# ------------------------------------------------------------------------------ conv2d
def _pair(v):
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _im2col(x, R, S, stride, padding):
    """x [N, C, H, W] -> columns [N, C, R, S, P, Q] of the zero-padded input."""
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    N, C, H, W = x.shape
    P, Q = (H + 2 * ph - R) // sh + 1, (W + 2 * pw - S) // sw + 1
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((N, C, R, S, P, Q), dtype=x.dtype)
    for r in range(R):
        for s in range(S):
            cols[:, :, r, s] = xp[:, :, r:r + sh * (P - 1) + 1:sh, s:s + sw * (Q - 1) + 1:sw]
    return cols


def conv2d_forward(x, w, b=None, stride=1, padding=0, out=None):
    """2-D cross-correlation with zero padding (PyTorch's Conv2d), NCHW.

    x [N, C, H, W], w [K, C, R, S], b [K] or None  ->  y [N, K, P, Q]
    with P = (H + 2·pad_h − R) // stride_h + 1 and Q likewise.
    stride and padding are ints or (h, w) pairs.
    """
    w64 = _f64(w)
    cols = _im2col(_f64(x), w64.shape[2], w64.shape[3], stride, padding)
    y = np.einsum("ncrspq,kcrs->nkpq", cols, w64)  # [N, K, P, Q]
    if b is not None:
        y = y + _f64(b)[None, :, None, None]
    return _emit(y, x, out)


def conv2d_backward(dy, x, w, stride=1, padding=0, need_dx=True, need_dw=True, need_db=True,
                    dx=None, dw=None, db=None):
    """Gradients of conv2d_forward.

    dy [N, K, P, Q], x [N, C, H, W], w [K, C, R, S]
      ->  (dx [N, C, H, W], dw [K, C, R, S], db [K]); None where need_* is False.
    """
    x64, w64, dy64 = _f64(x), _f64(w), _f64(dy)
    N, C, H, W = x64.shape
    _, _, R, S = w64.shape
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    P, Q = dy64.shape[2:]
    gx = gw = gb = None
    if need_dw:
        cols = _im2col(x64, R, S, stride, padding)
        gw = _emit(np.einsum("ncrspq,nkpq->kcrs", cols, dy64), x, dw)
    if need_dx:
        dcols = np.einsum("kcrs,nkpq->ncrspq", w64, dy64)
        dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
        for r in range(R):      # col2im: scatter-add each tap back to the padded input
            for s in range(S):
                dxp[:, :, r:r + sh * (P - 1) + 1:sh, s:s + sw * (Q - 1) + 1:sw] += dcols[:, :, r, s]
        gx = _emit(dxp[:, :, ph:ph + H, pw:pw + W], x, dx)
    if need_db:
        gb = _emit(dy64.sum(axis=(0, 2, 3)), x, db)
    return gx, gw, gb


# ------------------------------------------------------------------------------ batchnorm
def _channels_view(a):
    """[N, F] -> [N, F, 1];  [N, C, H, W] -> [N, C, H·W]."""
    a = np.asarray(a)
    return a.reshape(a.shape[0], a.shape[1], int(np.prod(a.shape[2:])))  # no -1: N or C may be 0


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1,
                      eps=1e-5, out=None, mean=None, rstd=None):
    """Batch normalisation per feature ([N, F]) or per channel ([N, C, H, W]).

    x [N, F] or [N, C, H, W]; gamma, beta, running_mean, running_var [C]
      ->  (y like x, mean [C], rstd [C])
    training: normalise with the batch mean and biased variance; update running_mean and
    running_var in place: r = (1 − momentum)·r + momentum·batch, where the variance fed
    to the running estimate is unbiased (n/(n − 1)), as PyTorch does.
    eval: normalise with the running statistics, which stay untouched.
    mean and rstd = 1/sqrt(var + eps) are what batchnorm_backward needs.
    """
    x3 = _channels_view(_f64(x))  # [N, C, L]
    if training:
        n = x3.shape[0] * x3.shape[2]
        mu = x3.mean(axis=(0, 2))
        var = ((x3 - mu[None, :, None]) ** 2).mean(axis=(0, 2))  # biased
        running_mean[...] = (1 - momentum) * _f64(running_mean) + momentum * mu
        running_var[...] = (1 - momentum) * _f64(running_var) + momentum * var * n / (n - 1)
    else:
        mu, var = _f64(running_mean), _f64(running_var)
    inv = 1.0 / np.sqrt(var + eps)
    xhat = (x3 - mu[None, :, None]) * inv[None, :, None]
    y = xhat * _f64(gamma)[None, :, None] + _f64(beta)[None, :, None]
    return (_emit(y.reshape(np.shape(x)), x, out), _emit(mu, x, mean), _emit(inv, x, rstd))


def batchnorm_backward(dy, x, gamma, mean, rstd, training=True, dx=None, dgamma=None,
                       dbeta=None):
    """Gradients of batchnorm_forward, from its cached mean and rstd.

    dy, x [N, F] or [N, C, H, W]; gamma, mean, rstd [C]
      ->  (dx like x, dgamma [C], dbeta [C])
    training: the batch statistics depend on x, so dx = gamma·rstd/n · (n·dy − Σdy − xhat·Σ(dy·xhat)).
    eval: dx = dy·gamma·rstd.
    """
    x3, dy3 = _channels_view(_f64(x)), _channels_view(_f64(dy))  # [N, C, L]
    inv, g = _f64(rstd)[None, :, None], _f64(gamma)[None, :, None]
    xhat = (x3 - _f64(mean)[None, :, None]) * inv
    gbeta = dy3.sum(axis=(0, 2))
    ggamma = (dy3 * xhat).sum(axis=(0, 2))
    if training:
        n = x3.shape[0] * x3.shape[2]
        gx = g * inv / n * (n * dy3 - gbeta[None, :, None] - xhat * ggamma[None, :, None])
    else:
        gx = dy3 * g * inv
    return (_emit(gx.reshape(np.shape(x)), x, dx), _emit(ggamma, x, dgamma),
            _emit(gbeta, x, dbeta))


# ------------------------------------------------------------------------------ activations
def leaky_relu_forward(x, slope=0.2, out=None):
    """y = x where x > 0, slope·x elsewhere.  x any shape -> y same shape."""
    x64 = _f64(x)
    return _emit(np.where(x64 > 0, x64, slope * x64), x, out)


def leaky_relu_backward(dy, x, slope=0.2, dx=None):
    """dx = dy where x > 0, slope·dy elsewhere (x is the forward input).  Same shapes."""
    dy64 = _f64(dy)
    return _emit(np.where(_f64(x) > 0, dy64, slope * dy64), dy, dx)


def tanh_forward(x, out=None):
    """y = tanh(x).  x any shape -> y same shape."""
    return _emit(np.tanh(_f64(x)), x, out)


def tanh_backward(dy, y, dx=None):
    """dx = dy · (1 − y²) (y is the forward output).  Same shapes."""
    y64 = _f64(y)
    return _emit(_f64(dy) * (1.0 - y64 * y64), dy, dx)


# ------------------------------------------------------------------------------ dropout
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64_mix(z):
    """The SplitMix64 finaliser on uint64 arrays (wrapping arithmetic, as in C)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def dropout_keep_mask(n, p, seed):
    """The keep mask of dropout for n elements: keep[i] = u(seed, i) >= p, where
    u = top 24 bits of mix(mix(seed) + i) / 2²⁴ (csrc/dropout/dropout.h) and p is
    compared as the kernels hold it, in float32: u can equal float32(p) exactly."""
    p = float(np.float32(p))
    key = _splitmix64_mix(np.uint64(int(seed) & 0xFFFFFFFFFFFFFFFF))
    with np.errstate(over="ignore"):
        h = _splitmix64_mix(key + np.arange(n, dtype=np.uint64))
    u = (h >> np.uint64(40)).astype(np.float64) / 16777216.0
    return u >= p


def dropout_forward(x, p, seed, out=None):
    """Inverted dropout: y = x / (1 − p) where kept, 0 where dropped; p in [0, 1).

    x any shape -> y same shape. The mask is dropout_keep_mask(x.size, p, seed) over
    the C-order flattened x, so kernels and reference drop the same elements.
    """
    keep = dropout_keep_mask(np.size(x), p, seed).reshape(np.shape(x))
    return _emit(np.where(keep, _f64(x) / (1.0 - p), 0.0), x, out)


def dropout_backward(dy, p, seed, dx=None):
    """dx = dy / (1 − p) where kept, 0 where dropped (the mask is recomputed from seed)."""
    keep = dropout_keep_mask(np.size(dy), p, seed).reshape(np.shape(dy))
    return _emit(np.where(keep, _f64(dy) / (1.0 - p), 0.0), dy, dx)


def leaky_relu_dropout_forward(x, slope, p, seed, out=None):
    """dropout_forward(leaky_relu_forward(x, slope), p, seed) in one op (the
    discriminator's activation).  x any shape -> y same shape."""
    return _emit(dropout_forward(leaky_relu_forward(x, slope), p, seed), x, out)


def leaky_relu_dropout_backward(dy, x, slope, p, seed, dx=None):
    """leaky_relu_backward(dropout_backward(dy, p, seed), x, slope): the gradient of
    leaky_relu_dropout_forward (x is its input).  Same shapes."""
    return _emit(leaky_relu_backward(dropout_backward(dy, p, seed), x, slope), dy, dx)


# ------------------------------------------------------------------------------ loss
def _class_labels(op, labels, n, num_classes):
    """labels as an array of shape (n,) (any length when n is None) whose entries are class
    indices in [0, num_classes); anything else raises ValueError naming op and the first
    bad index, as the CPU kernels do."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or (n is not None and labels.shape != (n,)):
        raise ValueError(f"{op}: labels: expected shape ({'?' if n is None else n},), "
                         f"got {labels.shape}")
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{op}: labels: expected class indices in [0, {num_classes}), "
                         f"got {int(labels[i])} at index {i}")
    return labels


def bce_with_logits(logits, targets, loss=None, dlogits=None):
    """Mean binary cross-entropy on logits, and its gradient, in one pass.

    logits, targets (in [0, 1]) any equal shape with n > 0 elements
      ->  (loss: 0-d array, mean over all elements; dlogits like logits = (σ(z) − t)/n)
    Stable for any finite logit: loss_i = max(z, 0) − z·t + log(1 + exp(−|z|)).
    """
    z, t = _f64(logits), _f64(targets)
    n = z.size
    terms = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    sig = np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))),
                   np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))
    return _emit(terms.sum() / n, logits, loss), _emit((sig - t) / n, logits, dlogits)


def softmax_cross_entropy(logits, labels, loss=None, dlogits=None):
    """Mean softmax cross-entropy over a batch, and its gradient, in one pass.

    logits [N, C] (N, C > 0), labels [N] int64 class indices in [0, C)
      ->  (loss: 0-d array, mean over the rows; dlogits [N, C] = (softmax(z) − onehot)/N)
    Stable for any finite logit: each row's maximum is subtracted before exp, and the
    row's term is log Σ exp(z − m) + m − z[label]. Labels outside [0, C) raise ValueError
    (the CUDA kernel, which cannot check without a host copy, writes NaN instead).
    """
    z = _f64(logits)                                           # [N, C]
    N, C = z.shape
    labels = _class_labels("softmax_cross_entropy", labels, N, C)
    rows = np.arange(N)
    m = z.max(axis=1, keepdims=True)                           # [N, 1]
    e = np.exp(z - m)                                          # [N, C], each ≤ 1
    s = e.sum(axis=1)                                          # [N]
    terms = np.log(s) + m[:, 0] - z[rows, labels]              # [N]
    grad = e / s[:, None]
    grad[rows, labels] -= 1.0
    return _emit(terms.sum() / N, logits, loss), _emit(grad / N, logits, dlogits)


# ------------------------------------------------------------------------------ optimiser
def adam_step(params, grads, m, v, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """One bias-corrected Adam step, in place on params, m and v (flat [n] buffers).

    m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²
    params −= lr/(1 − β1^step) · m / (sqrt(v)/sqrt(1 − β2^step) + eps)
    step is the step number after this update (≥ 1). Returns None.
    """
    g = _f64(grads)
    m64 = beta1 * _f64(m) + (1 - beta1) * g
    v64 = beta2 * _f64(v) + (1 - beta2) * g * g
    bias1, bias2 = 1 - beta1 ** step, 1 - beta2 ** step
    params[...] = _f64(params) - lr / bias1 * m64 / (np.sqrt(v64) / np.sqrt(bias2) + eps)
    m[...] = m64
    v[...] = v64


# ------------------------------------------------------------------------------ conditional GAN
# Labels outside [0, C) raise ValueError here and in the CPU kernels; the CUDA kernels, which
# cannot check without a host copy, write NaN where such a label reaches (each docstring says
# where).
def embedding_forward(weight, labels, out=None):
    """y = weight[labels]: one row of the table per label.

    weight [C, D], labels [N] int64 in [0, C)  ->  y [N, D]
    A label outside [0, C) raises ValueError (CUDA: NaN in that row of y).
    """
    w64 = _f64(weight)                                         # [C, D]
    labels = _class_labels("embedding_forward", labels, None, len(w64))
    return _emit(w64[labels], weight, out)                     # [N, D]


def embedding_backward(dy, labels, num_classes, dweight=None):
    """Gradient of embedding_forward with respect to the table.

    dy [N, D], labels [N] int64 in [0, num_classes)  ->  dweight [num_classes, D] with
    dweight[c] = Σ over the n with labels[n] = c of dy[n] (summed in increasing n; a class
    no label names gets zeros). A label outside [0, num_classes) raises ValueError (CUDA:
    all of dweight is NaN).
    """
    dy64 = _f64(dy)                                            # [N, D]
    if num_classes < 0:
        raise ValueError(f"embedding_backward: num_classes: expected >= 0, got {num_classes}")
    labels = _class_labels("embedding_backward", labels, len(dy64), num_classes)
    g = np.zeros((num_classes, dy64.shape[1]))                 # [C, D]
    for c in range(num_classes):
        g[c] = dy64[labels == c].sum(axis=0)
    return _emit(g, dy, dweight)


def concat_forward(a, b, out=None):
    """y = a and b joined along axis 1 (for images [N, C, H, W]: a's channels, then b's).

    a [N, A, ...], b [N, B, ...] of rank 2 to 4 with equal N and trailing dims
      ->  y [N, A + B, ...]
    """
    return _emit(np.concatenate([_f64(a), _f64(b)], axis=1), a, out)


def concat_backward(dy, split, need_da=True, need_db=True, da=None, db=None):
    """Gradient of concat_forward: dy split along axis 1 after its first `split` entries.

    dy [N, S, ...] of rank 2 to 4, 0 ≤ split ≤ S  ->  (da [N, split, ...],
    db [N, S − split, ...]); an entry is None when its need_* flag is False.
    """
    dy64 = _f64(dy)
    if not 0 <= split <= dy64.shape[1]:
        raise ValueError(f"concat_backward: split: expected 0 <= split <= {dy64.shape[1]} "
                         f"(dy.shape[1]), got {split}")
    ga = _emit(dy64[:, :split], dy, da) if need_da else None   # [N, split, ...]
    gb = _emit(dy64[:, split:], dy, db) if need_db else None   # [N, S − split, ...]
    return ga, gb


def projection_head_forward(h, w, b, embed, labels, out=None):
    """The projection discriminator's logit (Miyato & Koyama 2018): a linear logit plus the
    inner product of the features with the embedding of the sample's class.

    h [N, D], w [1, D], b [1] or None, embed [C, D], labels [N] int64 in [0, C)
      ->  logits [N, 1] = h·wᵀ + b + Σ_d h[n, d]·embed[labels[n], d],
          computed as h[n]·(w + embed[labels[n]]) + b (as the kernels do, so that an inf
          meets the same sums: the gradient's factor is that same w + embed[labels[n]])
    A label outside [0, C) raises ValueError (CUDA: NaN in that row's logit).
    """
    h64, e64 = _f64(h), _f64(embed)                            # [N, D], [C, D]
    labels = _class_labels("projection_head_forward", labels, len(h64), len(e64))
    v = _f64(w) + e64[labels]                                  # [N, D]: each row's w + embed
    logits = np.sum(h64 * v, axis=1, keepdims=True)            # [N, 1]
    if b is not None:
        logits = logits + _f64(b)
    return _emit(logits, h, out)


def projection_head_backward(dlogits, h, w, embed, labels, need_dh=True, need_dw=True,
                             need_db=True, need_dembed=True, dh=None, dw=None, db=None,
                             dembed=None):
    """Gradients of projection_head_forward.

    dlogits [N, 1], h [N, D], w [1, D], embed [C, D], labels [N] int64 in [0, C)
      ->  (dh [N, D] = dlogits·(w + embed[labels]),  dw [1, D] = Σ_n dlogits[n]·h[n],
           db [1] = Σ_n dlogits[n],  dembed [C, D] with dembed[c] = Σ over the n with
           labels[n] = c of dlogits[n]·h[n] (summed in increasing n; zeros for a class no
           label names)); an entry is None when its need_* flag is False.
    A label outside [0, C) raises ValueError (CUDA: NaN in that row of dh and in all of
    dembed; dw and db do not depend on the labels).
    """
    g, h64, e64 = _f64(dlogits), _f64(h), _f64(embed)          # [N, 1], [N, D], [C, D]
    labels = _class_labels("projection_head_backward", labels, len(h64), len(e64))
    gh = _emit(g * (_f64(w) + e64[labels]), h, dh) if need_dh else None     # [N, D]
    gw = _emit(g.T @ h64, h, dw) if need_dw else None                       # [1, D]
    gb = _emit(g.sum(axis=0), h, db) if need_db else None                   # [1]
    ge = (_emit(embedding_backward(g * h64, labels, len(e64)), h, dembed)   # [C, D]
          if need_dembed else None)
    return gh, gw, gb, ge
