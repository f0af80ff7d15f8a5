"""The benchmark cases: every op forward and backward at the model's shapes, with the
work each does (FLOP for GEMM-shaped ops, bytes moved for the rest) and the baselines
that run beside it in the same process:
  numpy  - NumPy/OpenBLAS on the CPU (GEMM-shaped ops; for conv2d the equivalent GEMMs on
           an already unfolded input),
  cupy   - CuPy/cuBLAS on the GPU (the same GEMMs),
  torch  - PyTorch on the same device, when installed (GEMM-shaped ops and conv).
Shared by the pytest-benchmark suite (test_bench_ops.py) and benchmarks/gpu/gpu_bench.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from gan_fast import ops

F32 = 4


@dataclass
class Case:
    name: str                      # e.g. "linear_forward[1024->784]"
    ours: Callable[[], object]
    flop: float = 0.0              # arithmetic work, when GEMM-shaped
    nbytes: float = 0.0            # fewest bytes moved, otherwise
    baselines: dict = field(default_factory=dict)   # label -> callable


def _torch(device):
    try:
        import torch
    except ImportError:
        return None
    if device == "cuda" and not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 against float32
    torch.backends.cudnn.allow_tf32 = False
    return torch


def model_cases(backend, batch, seed=0):
    """All cases for one backend ('cpu' or 'cuda') and batch size."""
    if backend == "cuda":
        import cupy as xp
    else:
        xp = np
    rng = np.random.default_rng(seed)
    arr = lambda *shape: xp.asarray(rng.standard_normal(shape).astype(np.float32))
    torch = _torch(backend)
    tdev = "cuda" if backend == "cuda" else "cpu"
    tt = (lambda a: torch.as_tensor(a, device=tdev)) if torch else None
    gemm_lib = "cupy" if backend == "cuda" else "numpy"
    N = batch
    cases = []

    for K, M, bias in ((100, 256, False), (256, 512, False), (512, 1024, False),
                       (1024, 784, True), (6272, 1, True)):
        x, w, b, y, dy = arr(N, K), arr(M, K), arr(M) if bias else None, arr(N, M), arr(N, M)
        dx, dw, db = arr(N, K), arr(M, K), arr(M)
        tag = f"[{K}->{M}]"
        fwd = Case(f"linear_forward{tag}", lambda x=x, w=w, b=b, y=y: ops.linear_forward(x, w, b, out=y),
                   flop=2.0 * N * K * M)
        fwd.baselines[gemm_lib] = lambda x=x, w=w: x @ w.T
        bwd = Case(f"linear_backward{tag}",
                   lambda dy=dy, x=x, w=w, dx=dx, dw=dw, db=db, bias=bias: ops.linear_backward(
                       dy, x, w, need_db=bias, dx=dx, dw=dw, db=db),
                   flop=4.0 * N * K * M)
        bwd.baselines[gemm_lib] = lambda dy=dy, x=x, w=w: (dy @ w, dy.T @ x)
        if torch:
            tx, tw, tdy = tt(x), tt(w), tt(dy)
            fwd.baselines["torch"] = lambda tx=tx, tw=tw: torch.nn.functional.linear(tx, tw)
            bwd.baselines["torch"] = lambda tdy=tdy, tx=tx, tw=tw: (tdy @ tw, tdy.T @ tx)
        cases += [fwd, bwd]

    for C, H, K in ((1, 28, 64), (64, 14, 128)):
        P = H // 2
        x, w, y, dy = arr(N, C, H, H), arr(K, C, 3, 3), arr(N, K, P, P), arr(N, K, P, P)
        dx, dw = arr(N, C, H, H), arr(K, C, 3, 3)
        flop = 2.0 * N * K * P * P * C * 9
        tag = f"[{C}x{H}x{H}->{K}x{P}x{P}]"
        fwd = Case(f"conv2d_forward{tag}", lambda x=x, w=w, y=y: ops.conv2d_forward(x, w, None, 2, 1, out=y),
                   flop=flop)
        # conv1's input gradient is never needed (its input is the image), so D's step skips it.
        need_dx = C > 1
        bwd = Case(f"conv2d_backward{tag}",
                   lambda dy=dy, x=x, w=w, dx=dx, dw=dw, need_dx=need_dx: ops.conv2d_backward(
                       dy, x, w, 2, 1, need_dx=need_dx, need_db=False, dx=dx, dw=dw),
                   flop=flop * (2 if need_dx else 1))
        # The equivalent GEMMs on an already unfolded input (cols [C·9, N·P·P]): what a BLAS
        # would multiply; the unfold itself is not timed for the baseline.
        w2, cols, dy2 = arr(K, C * 9), arr(C * 9, N * P * P), arr(K, N * P * P)
        fwd.baselines[gemm_lib] = lambda w2=w2, cols=cols: w2 @ cols
        bwd.baselines[gemm_lib] = (lambda w2=w2, cols=cols, dy2=dy2: (dy2 @ cols.T, w2.T @ dy2)) \
            if need_dx else (lambda cols=cols, dy2=dy2: dy2 @ cols.T)
        if torch:
            import torch.nn.grad as tgrad
            tx, tw, tdy = tt(x), tt(w), tt(dy)
            fwd.baselines["torch"] = lambda tx=tx, tw=tw: torch.nn.functional.conv2d(tx, tw, None, 2, 1)

            def torch_conv_bwd(tdy=tdy, tx=tx, tw=tw, need_dx=need_dx):
                gw = tgrad.conv2d_weight(tx, tw.shape, tdy, 2, 1)
                return (tgrad.conv2d_input(tx.shape, tw, tdy, 2, 1), gw) if need_dx else gw
            bwd.baselines["torch"] = torch_conv_bwd
        cases += [fwd, bwd]
        cases.append(_fused_conv_case(backend, tag, x, w, y, flop))

    F_ = 1024
    x, y, dy, dx = arr(N, F_), arr(N, F_), arr(N, F_), arr(N, F_)
    gamma, beta, rm, rv = arr(F_), arr(F_), arr(F_), xp.abs(arr(F_)) + 1
    mean, rstd, dg, dbt = arr(F_), arr(F_), arr(F_), arr(F_)
    cases.append(Case(f"batchnorm_forward[{F_}]",
                      lambda: ops.batchnorm_forward(x, gamma, beta, rm, rv, True, 0.1, 1e-5, y, mean, rstd),
                      nbytes=3.0 * N * F_ * F32))
    cases.append(Case(f"batchnorm_backward[{F_}]",
                      lambda: ops.batchnorm_backward(dy, x, gamma, mean, rstd, True, dx, dg, dbt),
                      nbytes=5.0 * N * F_ * F32))

    n = N * 64 * 14 * 14
    a, b2, c = arr(n), arr(n), arr(n)
    cases += [
        Case("leaky_relu_forward[64x14x14]", lambda: ops.leaky_relu_forward(a, 0.2, out=c), nbytes=2.0 * n * F32),
        Case("leaky_relu_backward[64x14x14]", lambda: ops.leaky_relu_backward(a, b2, 0.2, dx=c), nbytes=3.0 * n * F32),
        Case("dropout_forward[64x14x14]", lambda: ops.dropout_forward(a, 0.3, 1234, out=c), nbytes=2.0 * n * F32),
        Case("dropout_backward[64x14x14]", lambda: ops.dropout_backward(a, 0.3, 1234, dx=c), nbytes=2.0 * n * F32),
        Case("leaky_relu_dropout_forward[64x14x14]",
             lambda: ops.leaky_relu_dropout_forward(a, 0.2, 0.3, 1234, out=c), nbytes=2.0 * n * F32),
        Case("leaky_relu_dropout_backward[64x14x14]",
             lambda: ops.leaky_relu_dropout_backward(a, b2, 0.2, 0.3, 1234, dx=c), nbytes=3.0 * n * F32),
    ]
    m = N * 784
    t1, t2, t3 = arr(m), arr(m), arr(m)
    cases += [
        Case("tanh_forward[784]", lambda: ops.tanh_forward(t1, out=t2), nbytes=2.0 * m * F32),
        Case("tanh_backward[784]", lambda: ops.tanh_backward(t1, t2, dx=t3), nbytes=3.0 * m * F32),
    ]
    z, t, dz, loss = arr(2 * N), xp.ones(2 * N, dtype=np.float32), arr(2 * N), xp.empty((), np.float32)
    cases.append(Case("bce_with_logits[2N]", lambda: ops.bce_with_logits(z, t, loss, dz), nbytes=3.0 * 2 * N * F32))
    P_ = 1_488_144  # the generator's parameter count: its Adam step
    p, g, m1, v1 = arr(P_), arr(P_), arr(P_), xp.abs(arr(P_))
    cases.append(Case("adam_step[generator]", lambda: ops.adam_step(p, g, m1, v1, 10, 2e-4, 0.5),
                      nbytes=7.0 * P_ * F32))
    cases += _quality_recipe_cases(xp, arr, gemm_lib, N, P_)
    return cases + conditional_cases(backend, batch, seed)


def _fused_conv_case(backend, tag, x, w, y, flop):
    """conv2d_forward with its fused LeakyReLU + dropout (the discriminator's layer, as
    gan_fast.model runs it) beside the two ops it replaces ("unfused") and, on CUDA, beside
    itself with gemm_cuda forced to each other variant ("one_pass", "split_k",
    "small_tiles": which tiling pays for conv2 at batch 64 is unmeasured so far)."""
    from gan_fast import _C
    kw = dict(activation="leaky_relu", slope=0.2, dropout_p=0.3, seed=1234, step=7)
    case = Case(f"conv2d_forward+leaky_relu_dropout{tag}",
                lambda: ops.conv2d_forward(x, w, None, 2, 1, out=y, **kw), flop=flop)
    case.baselines["unfused"] = lambda: ops.leaky_relu_dropout_forward(
        ops.conv2d_forward(x, w, None, 2, 1, out=y), 0.2, 0.3, 1234, 7, out=y)
    if backend == "cuda":
        def forced(variant):
            def run():
                _C._set_kernel_variant("gemm_cuda", variant)
                try:
                    ops.conv2d_forward(x, w, None, 2, 1, out=y, **kw)
                finally:
                    _C._set_kernel_variant("gemm_cuda", "auto")
            return run
        for variant in _C._kernel_variants()["gemm_cuda"]:
            case.baselines[variant] = forced(variant)
    return case


# The quality recipe's ops (issue #12), each beside the same computation written with
# whole-array NumPy/CuPy operations in float32 (the baseline a user would write).
def _minibatch_stddev_xp(x, G, eps=1e-8):
    xp = _xp_of(x)
    N, C, H, W = x.shape
    s = xp.sqrt(x.reshape(N // G, G, -1).var(axis=1) + eps).mean(axis=1)   # [N/G]
    stat = xp.broadcast_to(xp.repeat(s, G)[:, None, None, None], (N, 1, H, W))
    return xp.concatenate([x, stat], axis=1)


def _minibatch_stddev_backward_xp(dy, x, G, eps=1e-8):
    N, C, H, W = x.shape
    xp = _xp_of(x)
    groups = x.reshape(N // G, G, -1)                                       # [N/G, G, F]
    dev = groups - groups.mean(axis=1, keepdims=True)
    std = xp.sqrt((dev * dev).mean(axis=1, keepdims=True) + eps)
    d_s = dy[:, C].reshape(N // G, -1).sum(axis=1)[:, None, None]
    return dy[:, :C] + (d_s * dev / (groups.shape[2] * G * std)).reshape(x.shape)


def _spectral_norm_xp(w, u, eps=1e-12):
    xp = _xp_of(w)
    W = w.reshape(w.shape[0], -1)
    t = W.T @ u
    v = t / max(float(xp.linalg.norm(t)), eps)
    s = W @ v
    u_new = s / max(float(xp.linalg.norm(s)), eps)
    sigma = u_new @ s
    return w / sigma, v, sigma, u_new


def _spectral_norm_backward_xp(dw_sn, w_sn, u, v, sigma):
    xp = _xp_of(w_sn)
    inner = xp.sum(dw_sn * w_sn)
    return (dw_sn - inner * xp.outer(u, v).reshape(dw_sn.shape)) / sigma


def _ema_update_xp(average, value, decay, step):
    beta = min(decay, (1 + step) / (10 + step))
    average *= beta
    average += (1 - beta) * value


def _xp_of(a):
    return np if isinstance(a, np.ndarray) else __import__("cupy")


def _quality_recipe_cases(xp, arr, lib, N, P_):
    cases = []
    C, H, G = 128, 7, 4            # D's second convolution's output, groups of 4
    F, L = C * H * H, H * H
    x, y, dy, dx = arr(N, C, H, H), arr(N, C + 1, H, H), arr(N, C + 1, H, H), arr(N, C, H, H)
    fwd = Case(f"minibatch_stddev_forward[{C}x{H}x{H}]",
               lambda: ops.minibatch_stddev_forward(x, G, out=y), nbytes=(2.0 * F + L) * N * F32)
    fwd.baselines[lib] = lambda: _minibatch_stddev_xp(x, G)
    bwd = Case(f"minibatch_stddev_backward[{C}x{H}x{H}]",
               lambda: ops.minibatch_stddev_backward(dy, x, G, dx=dx),
               nbytes=(3.0 * F + L) * N * F32)
    bwd.baselines[lib] = lambda: _minibatch_stddev_backward_xp(dy, x, G)
    cases += [fwd, bwd]

    for shape in ((64, 1, 3, 3), (128, 64, 3, 3), (1, 6272)):
        K = shape[0]
        n = int(np.prod(shape))
        w, dw_sn, u, out, dw = arr(*shape), arr(*shape), arr(K), arr(*shape), arr(*shape)
        u /= xp.linalg.norm(u)
        v, sigma = arr(n // K), xp.empty((), np.float32)
        w_sn, v_, s_ = ops.spectral_norm_forward(w, u.copy())
        tag = "[" + "x".join(map(str, shape)) + "]"
        fwd = Case(f"spectral_norm_forward{tag}",
                   lambda w=w, u=u, out=out, v=v, sigma=sigma: ops.spectral_norm_forward(
                       w, u, 1e-12, out, v, sigma),
                   nbytes=2.0 * n * F32)
        fwd.baselines[lib] = lambda w=w, u=u: _spectral_norm_xp(w, u)
        saved = (dw_sn, w_sn, u, v_, s_)
        bwd = Case(f"spectral_norm_backward{tag}",
                   lambda saved=saved, dw=dw: ops.spectral_norm_backward(*saved, dw),
                   nbytes=3.0 * n * F32)
        bwd.baselines[lib] = lambda saved=saved: _spectral_norm_backward_xp(*saved)
        cases += [fwd, bwd]

    average, value = arr(P_), arr(P_)
    ema = Case("ema_update[generator]", lambda: ops.ema_update(average, value, 0.999, 1000),
               nbytes=3.0 * P_ * F32)
    ema.baselines[lib] = lambda: _ema_update_xp(average, value, 0.999, 1000)
    cases.append(ema)
    return cases


def conditional_cases(backend, batch, seed=0):
    """The conditional GAN's ops (issue #15) at the model's shapes, each beside the same
    result in NumPy/CuPy: one-hot label planes (D = 10·784) and a learned embedding
    (D = 128); G's [z, label] and D's [image, label planes] concatenations; the projection
    head on D's 2N rows of 6272 features, beside linear's 6272 -> 1 head (ops.linear_*)."""
    xp = np
    if backend == "cuda":
        import cupy as xp
    rng = np.random.default_rng(seed)
    arr = lambda *shape: xp.asarray(rng.standard_normal(shape).astype(np.float32))  # noqa: E731
    lib = "cupy" if backend == "cuda" else "numpy"
    N, C = batch, 10
    labels = xp.asarray(rng.permutation(np.arange(N) % C).astype(np.int64))
    onehot = xp.eye(C, dtype=np.float32)[labels]                                  # [N, C]
    cases = []
    for D in (C * 784, 128):
        table, dy, y, dtable = arr(C, D), arr(N, D), arr(N, D), arr(C, D)
        fwd = Case(f"embedding_forward[{C}x{D}]",
                   lambda table=table, y=y: ops.embedding_forward(table, labels, out=y),
                   nbytes=2.0 * N * D * F32)
        fwd.baselines[lib] = lambda table=table, y=y: xp.take(table, labels, axis=0, out=y)
        bwd = Case(f"embedding_backward[{C}x{D}]",
                   lambda dy=dy, dtable=dtable: ops.embedding_backward(dy, labels, C, dweight=dtable),
                   nbytes=(N + C) * D * F32)
        bwd.baselines[lib] = lambda dy=dy: onehot.T @ dy
        cases += [fwd, bwd]
    for a_shape in ((N, 100), (N, 1, 28, 28), (N, 64, 14, 14)):
        A, trailing = a_shape[1], a_shape[2:]
        a, b = arr(*a_shape), arr(N, C, *trailing)
        y = xp.concatenate([a, b], axis=1)
        da, db = xp.empty_like(a), xp.empty_like(b)
        tag = "x".join(map(str, a_shape[1:])) + f"+{C}"
        fwd = Case(f"concat_forward[{tag}]", lambda a=a, b=b, y=y: ops.concat_forward(a, b, out=y),
                   nbytes=2.0 * y.size * F32)
        fwd.baselines[lib] = lambda a=a, b=b, y=y: xp.concatenate([a, b], axis=1, out=y)
        bwd = Case(f"concat_backward[{tag}]",
                   lambda y=y, da=da, db=db, A=A: ops.concat_backward(y, A, da=da, db=db),
                   nbytes=2.0 * y.size * F32)
        bwd.baselines[lib] = lambda y=y, da=da, db=db, A=A: (xp.copyto(da, y[:, :A]),
                                                             xp.copyto(db, y[:, A:]))
        cases += [fwd, bwd]
    M, D = 2 * N, 6272  # D judges the real and the fake batch at once
    labels2 = xp.concatenate([labels, labels])
    onehot2 = xp.concatenate([onehot, onehot])
    h, w, b, embed, g, logits = arr(M, D), arr(1, D), arr(1), arr(C, D), arr(M, 1), arr(M, 1)
    dh, dw, db_, dembed = arr(M, D), arr(1, D), arr(1), arr(C, D)
    fwd = Case("projection_head_forward[6272]",
               lambda: ops.projection_head_forward(h, w, b, embed, labels2, out=logits),
               nbytes=1.0 * M * D * F32)
    fwd.baselines[lib] = lambda: h @ w.T + b + xp.einsum("nd,nd->n", h, embed[labels2])[:, None]
    fwd.baselines["linear_forward"] = lambda: ops.linear_forward(h, w, b, out=logits)
    bwd = Case("projection_head_backward[6272]",
               lambda: ops.projection_head_backward(g, h, w, embed, labels2, dh=dh, dw=dw,
                                                    db=db_, dembed=dembed),
               nbytes=2.0 * M * D * F32)
    bwd.baselines[lib] = lambda: (g * (w + embed[labels2]), g.T @ h, g.sum(axis=0),
                                  onehot2.T @ (g * h))
    bwd.baselines["linear_backward"] = lambda: ops.linear_backward(g, h, w, dx=dh, dw=dw, db=db_)
    return cases + [fwd, bwd]
