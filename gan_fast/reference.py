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
    "random_normal", "batch_indices", "gather_rows",
    "minibatch_stddev_forward", "minibatch_stddev_backward",
    "spectral_norm_forward", "spectral_norm_backward",
    "ema_update",
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
def linear_forward(x, w, b=None, out=None, activation=None, slope=0.2):
    """y = x · wᵀ + b, then the optional activation.

    x [N, K], w [M, K], b [M] or None  ->  y [N, M]
    activation: None, "tanh" (tanh_forward of the result: the generator's last layer in one
    op) or "leaky_relu" (leaky_relu_forward with this slope). Fused, the kernels compute
    exactly what the two ops compute one after the other.
    """
    y = _f64(x) @ _f64(w).T  # [N, M]
    if b is not None:
        y = y + _f64(b)
    if activation == "tanh":
        y = np.tanh(y)
    elif activation == "leaky_relu":
        y = np.where(y > 0, y, slope * y)
    elif activation is not None:
        raise ValueError(f"linear_forward: activation: expected None, 'tanh' or 'leaky_relu', "
                         f"got {activation!r}")
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


def conv2d_forward(x, w, b=None, stride=1, padding=0, out=None, activation=None, slope=0.2,
                   dropout_p=0.0, seed=0, step=None):
    """2-D cross-correlation with zero padding (PyTorch's Conv2d), NCHW, then the optional
    activation.

    x [N, C, H, W], w [K, C, R, S], b [K] or None  ->  y [N, K, P, Q]
    with P = (H + 2·pad_h − R) // stride_h + 1 and Q likewise.
    stride and padding are ints or (h, w) pairs.
    activation: None, or "leaky_relu": y is then leaky_relu_dropout_forward(conv, slope,
    dropout_p, seed, step), or leaky_relu_forward(conv, slope) when dropout_p = 0 (a layer
    of the discriminator in one op); dropout_p > 0 needs it. The dropout mask is indexed by
    y's C-order flat index and keyed by seed and step as in dropout_forward. Fused, the
    kernels compute exactly what the two ops compute one after the other.
    """
    w64 = _f64(w)
    cols = _im2col(_f64(x), w64.shape[2], w64.shape[3], stride, padding)
    y = np.einsum("ncrspq,kcrs->nkpq", cols, w64)  # [N, K, P, Q]
    if b is not None:
        y = y + _f64(b)[None, :, None, None]
    if activation == "leaky_relu":  # the separate ops, in float64 (y's flat index keys the mask)
        y = (leaky_relu_dropout_forward(y, slope, dropout_p, seed, step) if dropout_p > 0
             else leaky_relu_forward(y, slope))
    elif activation is not None:
        raise ValueError(f"conv2d_forward: activation: expected None or 'leaky_relu', "
                         f"got {activation!r}")
    elif dropout_p > 0:
        raise ValueError("conv2d_forward: dropout_p: dropout is fused only after "
                         "activation='leaky_relu'")
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
_M64 = (1 << 64) - 1


def splitmix64_mix(z):
    """The SplitMix64 finaliser on uint64 arrays (wrapping arithmetic, as in C)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _step_value(step):
    """A per-step argument's value: an int, or a one-element int64 array (a StepArg)."""
    return int(np.asarray(step).reshape(-1)[0])


def dropout_step_seed(seed, step):
    """The mask's seed of a step-keyed dropout call: mix(seed + 8·step) mod 2⁶⁴
    (csrc/dropout/dropout.h). With seed = mix(run_seed + golden) + 2·layer + pass this is
    gan_fast.model.dropout_seed(run_seed, step, layer, pass)."""
    return int(splitmix64_mix(np.uint64((int(seed) + 8 * _step_value(step)) & _M64)))


def dropout_keep_mask(n, p, seed, step=None):
    """The keep mask of dropout for n elements: keep[i] = u(seed, i) >= p, where
    u = top 24 bits of mix(mix(seed) + i) / 2²⁴ (csrc/dropout/dropout.h) and p is
    compared as the kernels hold it, in float32: u can equal float32(p) exactly.
    With a step, seed is replaced by dropout_step_seed(seed, step) first."""
    p = float(np.float32(p))
    if step is not None:
        seed = dropout_step_seed(seed, step)
    key = splitmix64_mix(np.uint64(int(seed) & 0xFFFFFFFFFFFFFFFF))
    with np.errstate(over="ignore"):
        h = splitmix64_mix(key + np.arange(n, dtype=np.uint64))
    u = (h >> np.uint64(40)).astype(np.float64) / 16777216.0
    return u >= p


def dropout_forward(x, p, seed, step=None, out=None):
    """Inverted dropout: y = x / (1 − p) where kept, 0 where dropped; p in [0, 1).

    x any shape -> y same shape. The mask is dropout_keep_mask(x.size, p, seed, step) over
    the C-order flattened x, so kernels and reference drop the same elements.
    step (optional, ≥ 0): an int or a one-element int64 array on x's device; when given,
    the mask's seed is mix(seed + 8·step), read by a CUDA kernel when it runs (so a CUDA
    graph replays each step's mask). Without it the mask's seed is seed itself.
    """
    keep = dropout_keep_mask(np.size(x), p, seed, step).reshape(np.shape(x))
    return _emit(np.where(keep, _f64(x) / (1.0 - p), 0.0), x, out)


def dropout_backward(dy, p, seed, step=None, dx=None):
    """dx = dy / (1 − p) where kept, 0 where dropped (the mask is recomputed from seed and
    step, as in dropout_forward)."""
    keep = dropout_keep_mask(np.size(dy), p, seed, step).reshape(np.shape(dy))
    return _emit(np.where(keep, _f64(dy) / (1.0 - p), 0.0), dy, dx)


def leaky_relu_dropout_forward(x, slope, p, seed, step=None, out=None):
    """dropout_forward(leaky_relu_forward(x, slope), p, seed, step) in one op (the
    discriminator's activation).  x any shape -> y same shape."""
    return _emit(dropout_forward(leaky_relu_forward(x, slope), p, seed, step), x, out)


def leaky_relu_dropout_backward(dy, x, slope, p, seed, step=None, dx=None):
    """leaky_relu_backward(dropout_backward(dy, p, seed, step), x, slope): the gradient of
    leaky_relu_dropout_forward (x is its input).  Same shapes."""
    return _emit(leaky_relu_backward(dropout_backward(dy, p, seed, step), x, slope), dy, dx)


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
    step is the step number after this update (≥ 1): an int or a one-element int64 array
    on the parameters' device (read by the CUDA kernel when it runs). Returns None.
    """
    step = _step_value(step)
    g = _f64(grads)
    m64 = beta1 * _f64(m) + (1 - beta1) * g
    v64 = beta2 * _f64(v) + (1 - beta2) * g * g
    bias1, bias2 = 1 - beta1 ** step, 1 - beta2 ** step
    params[...] = _f64(params) - lr / bias1 * m64 / (np.sqrt(v64) / np.sqrt(bias2) + eps)
    m[...] = m64
    v[...] = v64


# ------------------------------------------------------------------------------ device-side data
# Counter-based random numbers (csrc/common/counter_rng.h): pure functions of (seed, counter),
# the same integers here as in the kernels.
_GOLDEN = 0x9E3779B97F4A7C15


def _counter_key(seed, counter):
    """counter_key(seed, c) = mix(seed + golden·c) mod 2⁶⁴, as a Python int."""
    return int(splitmix64_mix(np.uint64((int(seed) + _GOLDEN * int(counter)) & _M64)))


def _counter_bits(key, j):
    """counter_bits(key, j) = mix(key + golden·(j + 1)) for a uint64 array j."""
    with np.errstate(over="ignore"):
        return splitmix64_mix(np.uint64(key) + np.uint64(_GOLDEN) * (j + np.uint64(1)))


def _normal_draws(n, seed, step):
    """The integers behind random_normal's element i < n: k1 in [1, 2²⁴] (u1 = k1/2²⁴),
    k2 in [0, 2²⁴) (u2 = k2/2²⁴) and whether i is odd (sine) or even (cosine)."""
    i = np.arange(n, dtype=np.uint64)
    h = _counter_bits(_counter_key(seed, _step_value(step)), i >> np.uint64(1))
    k1 = (1 << 24) - (h >> np.uint64(40)).astype(np.int64)
    k2 = ((h >> np.uint64(16)) & np.uint64(0xFFFFFF)).astype(np.int64)
    return k1, k2, (i & np.uint64(1)).astype(bool)


def random_normal(out, seed, step):
    """Fill out (float32, any shape, overwritten) with N(0, 1) samples; returns out.

    Element i (C order) is a pure function of (seed, step, i): with h = 64 random bits of
    (seed, step, i // 2) (counter-based, csrc/common/counter_rng.h), u1 = (2²⁴ − h[63:40])/2²⁴
    in (0, 1] and u2 = h[39:16]/2²⁴ in [0, 1), out[i] = sqrt(−2·ln u1)·cos(2π·u2) for even i,
    ·sin(2π·u2) for odd i (Box–Muller; |out| ≤ 5.77). The CPU and CUDA kernels compute it
    with correctly rounded float32 operations only and agree bitwise; this reference is
    exact Box–Muller of the same u1, u2 (the kernels are within a few float32 ulp of it).
    seed: uint64; step ≥ 0: an int or a one-element int64 array on out's device (read by
    the CUDA kernel when it runs, so a CUDA graph draws each replay's noise).
    """
    k1, k2, odd = _normal_draws(np.size(out), seed, step)
    theta = 2 * np.pi * (k2 / 2.0 ** 24)
    z = np.sqrt(-2 * np.log(k1 / 2.0 ** 24)) * np.where(odd, np.sin(theta), np.cos(theta))
    out[...] = z.reshape(np.shape(out))
    return out


def _fma32(a, b, c):
    """Correctly rounded float32 fma(a, b, c) (float32 arrays): a·b is exact in float64,
    and the float64 sum's rounding error e (TwoSum, exact) decides the one case where
    rounding the float64 sum to float32 differs from rounding the exact value: the sum
    landing exactly halfway between two float32 with e != 0."""
    p = a.astype(np.float64) * b.astype(np.float64)
    c64 = np.asarray(c, np.float32).astype(np.float64)
    s = p + c64
    bb = s - p
    e = (p - (s - bb)) + (c64 - bb)
    r = s.astype(np.float32)
    d = s - r.astype(np.float64)
    other = np.nextafter(r, np.where(d > 0, np.float32(np.inf), np.float32(-np.inf)))
    halfway = (d != 0) & ((r.astype(np.float64) + other.astype(np.float64)) * 0.5 == s)
    return np.where(halfway & (e != 0) & ((e > 0) == (d > 0)), other, r)


def random_normal_float32(n, seed, step):
    """random_normal's first n values as the kernels compute them, bit for bit: the
    float32 formula of csrc/random_normal/random_normal.h emulated in NumPy (its float32
    +, −, ×, ÷ and sqrt are correctly rounded, and _fma32 is exact). Tests hold the CPU
    kernel to this bitwise."""
    f = np.float32
    k1, k2, odd = _normal_draws(n, seed, step)
    # log(k1 / 2^24): k1 = m·2^e, m in [sqrt(1/2), sqrt(2)); log m = 2·atanh((m−1)/(m+1))
    bits = k1.astype(np.float32).view(np.uint32)
    e = (bits >> np.uint32(23)).astype(np.int32) - 127 - 24
    m = ((bits & np.uint32(0x007FFFFF)) | np.uint32(0x3F800000)).view(np.float32)
    high = m > f(float.fromhex("0x1.6a09e6p+0"))
    m = np.where(high, m * f(0.5), m)
    e = np.where(high, e + 1, e)
    fm = m - f(1)
    s = fm / (fm + f(2))
    w = s * s
    p = _fma32(w, f(float.fromhex("0x1.c71c72p-3")), f(float.fromhex("0x1.24924ap-2")))
    p = _fma32(w, p, f(float.fromhex("0x1.99999ap-2")))
    p = _fma32(w, p, f(float.fromhex("0x1.555556p-1")))
    log_m = _fma32(s, w * p, s + s)
    ef = e.astype(np.float32)
    log_u1 = _fma32(ef, f(float.fromhex("0x1.62ep-1")),
                    _fma32(ef, f(float.fromhex("0x1.0bfbe8p-15")), log_m))
    radius = np.sqrt(f(-2) * log_u1)
    # sin / cos of 2π·k2/2^24 after the exact quadrant reduction
    q = (k2 + (1 << 21)) >> 22
    t = (k2 - (q << 22)).astype(np.float32) * f(2.0 ** -24)
    t2 = t * t
    ps = _fma32(t2, f(float.fromhex("0x1.507834p+5")), f(float.fromhex("-0x1.32d2ccp+6")))
    for c in ("0x1.466bc6p+6", "-0x1.4abbcep+5", "0x1.921fb6p+2"):
        ps = _fma32(t2, ps, f(float.fromhex(c)))
    sin_t = t * ps
    pc = _fma32(t2, f(float.fromhex("-0x1.a6d1f2p+4")), f(float.fromhex("0x1.e1f506p+5")))
    for c in ("-0x1.55d3c8p+6", "0x1.03c1f0p+6", "-0x1.3bd3ccp+4"):
        pc = _fma32(t2, pc, f(float.fromhex(c)))
    cos_t = _fma32(t2, pc, f(1))
    qq = (q - odd) & 3
    v = np.where(qq & 1, sin_t, cos_t)
    v = np.where((qq == 1) | (qq == 2), -v, v)
    return (radius * v).astype(np.float32)


_FEISTEL_ROUNDS = 6


def _feistel_permute(x, key, bits):
    """One pass of batch_indices' Feistel network over [0, 2^bits) (uint64 array x)."""
    lo_bits, hi_bits = bits // 2, bits - bits // 2
    for r in range(_FEISTEL_ROUNDS):
        lo = x & np.uint64((1 << lo_bits) - 1)
        hi = x >> np.uint64(lo_bits)
        f = _counter_bits(key, (np.uint64(r) << np.uint64(32)) | lo)
        x = (lo << np.uint64(hi_bits)) | (hi ^ (f & np.uint64((1 << hi_bits) - 1)))
        lo_bits, hi_bits = hi_bits, lo_bits
    return x


def batch_indices(out, seed, step, n_items, batch_size, steps_per_epoch):
    """The dataset indices of the rows of one training step, into int64 out [n]; returns out.

    epoch e = step // steps_per_epoch; row r < n (n ≤ batch_size) is position
    j = (step % steps_per_epoch)·batch_size + r of epoch e, and gets item perm_e(j), where
    perm_e is a bijection of [0, n_items) keyed by (seed, e): a 6-round Feistel network on
    the smallest power of two ≥ n_items, with cycle walking (csrc/batch_indices/
    batch_indices.h). Every epoch visits every item exactly once, in a fresh order.
    steps_per_epoch ≤ ceil(n_items / batch_size): the last step of an epoch may be partial
    (drop_last=False), its rows past n_items have no item. seed: uint64; step ≥ 0: an int
    or a one-element int64 array on out's device. A step known on the host must have an
    item for every row (ValueError otherwise); a CUDA kernel reading a device step writes
    −1 for rows without one.
    """
    step = _step_value(step)
    n = np.shape(out)[0]
    if not 1 <= n_items <= 2 ** 62 or batch_size < 1 or n > batch_size:
        raise ValueError("batch_indices: expected 1 <= n_items <= 2**62, batch_size >= 1 "
                         f"and n <= batch_size, got n_items={n_items}, "
                         f"batch_size={batch_size}, n={n}")
    if not 1 <= steps_per_epoch <= -(-n_items // batch_size):
        raise ValueError(f"batch_indices: steps_per_epoch: expected 1 <= steps_per_epoch <= "
                         f"ceil(n_items / batch_size), got {steps_per_epoch}")
    epoch, position = divmod(step, steps_per_epoch)
    if step < 0 or position * batch_size + n > n_items:
        raise ValueError(f"batch_indices: out: step {step} has no item for some of its {n} "
                         f"rows (n_items = {n_items})")
    key = _counter_key(seed, epoch)
    bits = int(n_items - 1).bit_length()
    x = np.arange(position * batch_size, position * batch_size + n, dtype=np.uint64)
    pending = np.ones(n, bool)
    while pending.any():  # cycle walking: apply the network again where it left the range
        x[pending] = _feistel_permute(x[pending], key, bits)
        pending = x >= np.uint64(n_items)
    out[...] = x.astype(np.int64)
    return out


def gather_rows(src, idx, out=None):
    """out[r] = src[idx[r]] along axis 0: the batch taken from resident data.

    src [K, ...] float32 or int64, idx [n] int64  ->  out [n, ...] of src's dtype.
    Indices outside [0, K) raise ValueError (the CUDA kernel, which cannot check without a
    host copy, writes NaN rows for float32 and −1 for int64 instead).
    """
    src, idx = np.asarray(src), np.asarray(idx)
    K = src.shape[0]
    bad = (idx < 0) | (idx >= K)
    if bad.any():
        r = int(np.argmax(bad))
        raise ValueError(f"gather_rows: idx: expected row indices in [0, {K}), got "
                         f"{int(idx[r])} at index {r}")
    rows = src[idx]                                            # [n, ...]
    if out is None:
        return rows
    out[...] = rows
    return out


# ------------------------------------------------------------------------------ quality recipe
# Issue #12: the discriminator's minibatch standard deviation and spectral normalisation, and
# the generator's weight average.
def minibatch_stddev_forward(x, group_size=4, eps=1e-8, out=None):
    """ProGAN's minibatch standard deviation feature (Karras et al. 2018): one more channel
    holding how much a group of rows differs, so D can see a generator repeating itself.

    x [N, C, H, W] (C, H, W ≥ 1)  ->  y [N, C + 1, H, W];  y[:, :C] = x.
    Rows form consecutive groups g = n // group_size (the last may be smaller). Per group,
    for every feature (c, h, w): the biased variance over the group's rows; s_g = mean over
    the C·H·W features of sqrt(var + eps); y[n, C, :, :] = s_g for the group's rows.
    """
    x64 = _f64(x)                                       # [N, C, H, W]
    N, C, H, W = x64.shape
    y = np.empty((N, C + 1, H, W))
    y[:, :C] = x64
    for n0 in range(0, N, group_size):
        group = x64[n0:n0 + group_size]                 # [m, C, H, W]
        std = np.sqrt(group.var(axis=0) + eps)          # [C, H, W], biased over the m rows
        y[n0:n0 + group_size, C] = std.mean()           # s_g, over the group's [m, H, W]
    return _emit(y, x, out)


def minibatch_stddev_backward(dy, x, group_size=4, eps=1e-8, dx=None):
    """Gradient of minibatch_stddev_forward (the group statistics are recomputed from x).

    dy [N, C + 1, H, W], x [N, C, H, W]  ->  dx [N, C, H, W]
    dx = dy[:, :C] + D_g · (x − mean) / (F · m · std) for a group of m rows, where
    F = C·H·W, mean and std are the group's per-feature statistics and D_g sums dy's
    statistic channel over the group (s_g was broadcast to all of it).
    """
    dy64, x64 = _f64(dy), _f64(x)
    N, C, H, W = x64.shape
    F = C * H * W
    gx = dy64[:, :C].copy()                             # [N, C, H, W], the copied channels
    for n0 in range(0, N, group_size):
        group = x64[n0:n0 + group_size]                 # [m, C, H, W]
        m = group.shape[0]
        mean = group.mean(axis=0)                       # [C, H, W]
        std = np.sqrt(group.var(axis=0) + eps)          # [C, H, W]
        d_s = dy64[n0:n0 + group_size, C].sum()         # D_g
        # ∂s_g/∂x[r] = (x[r] − mean) / (F·m·std): the mean's own dependence on x cancels
        gx[n0:n0 + group_size] += d_s * (group - mean) / (F * m * std)
    return _emit(gx, x, dx)


def _matrix_view(a):
    """[K, ...] -> [K, F], F the product of the trailing dimensions."""
    a = np.asarray(a)
    return a.reshape(a.shape[0], int(np.prod(a.shape[1:])))  # no -1: K or F may be 0


def spectral_norm_forward(w, u, eps=1e-12, out=None, v=None, sigma=None):
    """Spectral normalisation with one power iteration (Miyato et al. 2018; PyTorch's
    spectral_norm in training mode, n_power_iterations=1).

    w [K, ...] (rank ≥ 2) viewed as W [K, F]; u [K], updated IN PLACE
      ->  (w_sn like w, v [F], sigma: 0-d array)
    v = Wᵀu / max(‖Wᵀu‖, eps);  u ← W v / max(‖W v‖, eps);  sigma = uᵀ W v (the new u);
    w_sn = w / sigma. u and v are what spectral_norm_backward needs (with w_sn and sigma).
    """
    W = _matrix_view(_f64(w))                                   # [K, F]
    t = W.T @ _f64(u)                                           # [F]
    v64 = t / max(np.linalg.norm(t), eps)                       # [F]
    s = W @ v64                                                 # [K]
    u_new = s / max(np.linalg.norm(s), eps)                     # [K]
    sig = u_new @ s                                             # uᵀ W v
    u[...] = u_new
    return _emit(W.reshape(np.shape(w)) / sig, w, out), _emit(v64, w, v), _emit(sig, w, sigma)


def spectral_norm_backward(dw_sn, w_sn, u, v, sigma, dw=None):
    """Gradient of spectral_norm_forward with u, v (and so the direction of sigma) held
    constant, as PyTorch does: the gradient of w / (uᵀ W v) at fixed u, v.

    dw_sn, w_sn like w [K, ...]; u [K] and v [F] from the forward (u after its update);
    sigma the forward's 0-d sigma  ->  dw like w
    dw = (dw_sn − ⟨dw_sn, w_sn⟩ · u vᵀ) / sigma
    """
    G = _matrix_view(_f64(dw_sn))                               # [K, F]
    inner = np.sum(G * _matrix_view(_f64(w_sn)))                # ⟨dw_sn, w_sn⟩
    gw = (G - inner * np.outer(_f64(u), _f64(v))) / float(np.asarray(sigma))   # [K, F]
    return _emit(gw.reshape(np.shape(w_sn)), dw_sn, dw)


def ema_update(average, value, decay, step):
    """An exponential moving average, in place on average (flat [n] buffers):

    beta = min(decay, (1 + step) / (10 + step))   (the warm-up of TensorFlow's
    ExponentialMovingAverage with num_updates); average = beta·average + (1 − beta)·value.
    decay in [0, 1); step ≥ 1 is the number of updates including this one, an int or a
    one-element int64 array (the kernels can read it from device memory). Returns None.
    """
    step = int(np.asarray(step).reshape(-1)[0])
    beta = min(decay, (1 + step) / (10 + step))
    average[...] = beta * _f64(average) + (1 - beta) * _f64(value)


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
