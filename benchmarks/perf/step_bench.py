"""The whole training step (one D step + one G step, dropout on), gan_fast against the
PyTorch twin (benchmarks/quality/torch_twin.py) on the same device, same batch, same run.

FLOP are counted from the layer shapes (a multiply-add is 2 FLOP) for the work
gan_fast's step does: step_flop() spells out the sum. PyTorch's step does more (it
also computes D's weight gradients in the G step and conv1's input gradient), so its
GFLOP/s column overstates nothing on our side.
"""
from __future__ import annotations

import numpy as np

from .timing import timer

G_LAYERS = ((100, 256), (256, 512), (512, 1024), (1024, 784))
CONV1 = 2 * 9 * 64 * 196          # 1 -> 64 channels, 3x3, 14x14 outputs
CONV2 = 2 * 576 * 128 * 49        # 64 -> 128 channels, 3x3, 7x7 outputs
HEAD = 2 * 6272


def step_flop(batch):
    """FLOP of gan_fast's step for one batch (GEMM work only; elementwise is negligible)."""
    g_fwd = sum(2 * k * m for k, m in G_LAYERS)
    d_fwd = CONV1 + CONV2 + HEAD
    d_wgrad = CONV1 + CONV2 + HEAD          # dW of every D layer
    d_dx = CONV2 + HEAD                     # dx of conv2 and head (conv1's is never needed)
    d_step = 2 * (d_fwd + d_wgrad + d_dx)   # real and fake
    g_step = d_fwd + d_dx + CONV1 + 2 * g_fwd  # D forward again, dx through D, G backward
    return batch * (g_fwd + d_step + g_step)


def gan_step(ops_module, xp, batch, device="cpu"):
    """A closure running one training step of gan_fast's step engine (the seed's model and
    recipe) on ops_module (gan_fast.ops, gan_fast.reference, or a wrapper of either) over
    random images."""
    from gan_fast.engine import Engine, StepConfig
    from gan_fast.model import ModelSpec
    gan = Engine(ModelSpec(), StepConfig(), ops_module, xp)
    rng = np.random.default_rng(0)
    data = xp.asarray(rng.uniform(-1, 1, (4 * batch, 1, 28, 28)).astype(np.float32))
    idx = xp.asarray(rng.permutation(4 * batch)[:batch])
    z = xp.asarray(rng.standard_normal((batch, 100)).astype(np.float32))
    losses = xp.empty(3, np.float32)
    counter = iter(range(1 << 62))
    return lambda: gan.step(next(counter), data, idx, z, losses)


def _gan_fast_step(device, batch):
    from gan_fast import ops
    xp = np if device == "cpu" else __import__("cupy")
    return gan_step(ops, xp, batch, device)


def _torch_step(device, batch, dropout):
    try:
        import torch
    except ImportError:
        return None
    from ..quality.torch_twin import TorchGAN
    gan = TorchGAN(batch, device, dropout=dropout)
    real = torch.rand(batch, 1, 28, 28, device=device) * 2 - 1
    return lambda: gan.step(real)


def step_rows(device, batches, dropout_variants=(True,), reps=20):
    """One row per (batch, implementation): ms/step, images/s, GFLOP/s, speedup vs torch."""
    time_it = timer(device)
    rows = []
    for batch in batches:
        impls = {"gan_fast": _gan_fast_step(device, batch)}
        for dropout in dropout_variants:
            fn = _torch_step(device, batch, dropout)
            if fn:
                impls["torch" + ("" if dropout else " (no dropout)")] = fn
        times = {name: time_it(fn, warmup=3, reps=reps) for name, fn in impls.items()}
        for name, sec in times.items():
            rows.append({
                "batch": batch, "impl": name, "ms_per_step": sec * 1e3,
                "images_per_s": round(batch / sec), "GFLOP_per_s": round(step_flop(batch) / sec / 1e9, 1),
                "speedup_vs_torch": (f"{times['torch'] / times['gan_fast']:.2f}x"
                                     if name == "gan_fast" and "torch" in times else ""),
            })
    return rows
