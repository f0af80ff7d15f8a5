"""The networks of gan_fast.model: the parameter layout, the initialisation, the dropout
seeds, and the wiring of forward and backward, checked against finite differences of the
losses in float64 on the NumPy reference (the trainer's gradients are only as right as
this wiring: which need_* flags, which cached activations, which dropout seeds)."""
from __future__ import annotations

import numpy as np
import pytest

from gan_fast import model as M
from gan_fast import reference as R


def test_layouts_pack_every_tensor_once_aligned():
    for layout in (M.G_LAYOUT, M.D_LAYOUT):
        flat = np.arange(layout.size, dtype=np.float32)
        views = layout.views(flat)
        seen = np.zeros(layout.size, bool)
        for name, shape in layout.entries:
            v = views[name]
            assert v.shape == shape and np.shares_memory(v, flat)
            assert layout.offsets[name] % 16 == 0
            start = layout.offsets[name]
            assert not seen[start:start + v.size].any(), name
            seen[start:start + v.size] = True
    assert M.G_LAYOUT.views(np.zeros(M.G_LAYOUT.size))["fc4.w"].shape == (784, 1024)
    assert M.D_LAYOUT.views(np.zeros(M.D_LAYOUT.size))["fc.w"].shape == (1, 6272)


def test_init_is_pytorch_default_and_seeded():
    a = M.init_params(M.G_LAYOUT, np.random.default_rng([3, 0]))
    b = M.init_params(M.G_LAYOUT, np.random.default_rng([3, 0]))
    assert a.dtype == np.float32 and np.array_equal(a, b)
    v = M.G_LAYOUT.views(a)
    for k, fan_in in ((1, 100), (2, 256), (3, 512), (4, 1024)):
        w = v[f"fc{k}.w"]
        bound = 1 / np.sqrt(fan_in)
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
        assert abs(w.std() - bound / np.sqrt(3)) < 0.05 * bound   # uniform's std
    for k in (1, 2, 3):
        assert (v[f"bn{k}.gamma"] == 1).all() and (v[f"bn{k}.beta"] == 0).all()
    d = M.D_LAYOUT.views(M.init_params(M.D_LAYOUT, np.random.default_rng(0)))
    assert np.abs(d["conv2.w"]).max() <= 1 / np.sqrt(64 * 9)
    padding = np.ones(M.G_LAYOUT.size, bool)
    for name, shape in M.G_LAYOUT.entries:
        padding[M.G_LAYOUT.offsets[name]:M.G_LAYOUT.offsets[name] + int(np.prod(shape))] = False
    assert (a[padding] == 0).all()


def test_dropout_seeds_are_distinct_and_64_bit():
    seeds = {M.dropout_seed(s, step, layer, p) for s in (0, 1) for step in range(50)
             for layer in (0, 1) for p in (0, 1)}
    assert len(seeds) == 2 * 50 * 2 * 2
    assert all(0 <= s < 2 ** 64 for s in seeds)


# ------------------------------------------------------------------------------ gradients
def _float64_nets(n, seed=0):
    rng = np.random.default_rng(seed)
    gp = M.init_params(M.G_LAYOUT, rng).astype(np.float64)
    # Non-trivial BatchNorm affine parameters, so their gradients are exercised fully.
    gv = M.G_LAYOUT.views(gp)
    for k in (1, 2, 3):
        gv[f"bn{k}.gamma"][...] = rng.uniform(0.5, 1.5, gv[f"bn{k}.gamma"].shape)
        gv[f"bn{k}.beta"][...] = rng.uniform(-0.3, 0.3, gv[f"bn{k}.beta"].shape)
    dp = M.init_params(M.D_LAYOUT, rng).astype(np.float64)
    real = rng.uniform(-1, 1, (n, 1, 28, 28))
    z = rng.standard_normal((n, M.Z_DIM))
    return gp, dp, real, z


G, D = M.GeneratorNet(), M.DiscriminatorNet()


def _bn64():
    return G.new_bn_stats(np).astype(np.float64)


def _d_loss(dp, x, n, step=7):
    ws = D.workspace(np, 2 * n, dtype=np.float64)
    logits = D.forward(R, M.D_LAYOUT.views(dp), ws, x, 11, step, 0)
    t = np.concatenate([np.ones((n, 1)), np.zeros((n, 1))])
    lr, dr = R.bce_with_logits(logits[:n], t[:n])
    lf, df = R.bce_with_logits(logits[n:], t[n:])
    return float(lr + lf), ws, np.concatenate([dr, df])


def _g_loss(gp, dp, z, n, step=7):
    gws = G.workspace(np, n, dtype=np.float64)
    image = G.forward(R, M.G_LAYOUT.views(gp), _bn64(), gws, z, training=True)
    dws = D.workspace(np, n, dtype=np.float64)
    logits = D.forward(R, M.D_LAYOUT.views(dp), dws, image, 11, step, 1)
    loss, dlogits = R.bce_with_logits(logits, np.ones((n, 1)))
    return float(loss), gws, dws, dlogits


def _check_coordinates(f, params, grads, layout, rng, rel, per_tensor=4, h=1e-6):
    for name, shape in layout.entries:
        start = layout.offsets[name]
        for j in rng.choice(int(np.prod(shape)), size=min(per_tensor, int(np.prod(shape))),
                            replace=False):
            i = start + int(j)
            old = params[i]
            params[i] = old + h
            up = f(params)
            params[i] = old - h
            down = f(params)
            params[i] = old
            numeric = (up - down) / (2 * h)
            assert grads[i] == pytest.approx(numeric, rel=rel, abs=1e-8), (name, int(j))


# LeakyReLU's kink makes central differences inexact wherever a perturbation moves some
# activation across 0 (it happens for the first layers, whose weights reach thousands of
# activations). With slope 1 the networks are smooth and the check is tight; with the real
# slope 0.2 a looser bound still catches a wrong argument, sign or factor (errors of 10%+).
SLOPES = pytest.mark.parametrize("slope,rel", [(1.0, 1e-5), (0.2, 2e-2)])


@SLOPES
def test_discriminator_step_gradients_match_finite_differences(monkeypatch, slope, rel):
    monkeypatch.setattr(M, "LEAKY_SLOPE", slope)
    n = 3
    gp, dp, real, z = _float64_nets(n)
    gws = G.workspace(np, n, dtype=np.float64)
    fake = G.forward(R, M.G_LAYOUT.views(gp), _bn64(), gws, z).copy()
    x = np.concatenate([real, fake])
    _, ws, dlogits = _d_loss(dp, x, n)
    ws.dlogits[...] = dlogits
    dg = np.zeros(M.D_LAYOUT.size)
    D.backward(R, M.D_LAYOUT.views(dp), M.D_LAYOUT.views(dg), ws, x, 11, 7, 0,
               need_dweights=True, need_dx=False)
    _check_coordinates(lambda p: _d_loss(p, x, n)[0], dp, dg, M.D_LAYOUT,
                       np.random.default_rng(1), rel)


@SLOPES
def test_generator_step_gradients_match_finite_differences(monkeypatch, slope, rel):
    monkeypatch.setattr(M, "LEAKY_SLOPE", slope)
    n = 3
    gp, dp, _, z = _float64_nets(n)
    _, gws, dws, dlogits = _g_loss(gp, dp, z, n)
    dws.dlogits[...] = dlogits
    D.backward(R, M.D_LAYOUT.views(dp), None, dws, gws.image, 11, 7, 1,
               need_dweights=False, need_dx=True)
    gg = np.zeros(M.G_LAYOUT.size)
    G.backward(R, M.G_LAYOUT.views(gp), M.G_LAYOUT.views(gg), gws, z, dws.dx)
    _check_coordinates(lambda p: _g_loss(p, dp, z, n)[0], gp, gg, M.G_LAYOUT,
                       np.random.default_rng(2), rel)


def test_generator_inference_uses_running_stats_and_is_seeded():
    gp = M.init_params(M.G_LAYOUT, np.random.default_rng(0))
    bn = G.new_bn_stats(np)
    g = M.Generator(R, np, gp, bn)
    a, b = g(5, seed=4), g(5, seed=4)
    assert a.shape == (5, 1, 28, 28) and a.dtype == np.float32
    assert np.array_equal(a, b) and np.abs(a).max() <= 1
    assert all((rm == 0).all() and (rv == 1).all() for rm, rv in G.bn_pairs(bn))  # untouched
    z = np.random.default_rng(4).standard_normal((5, M.Z_DIM), dtype=np.float32)
    assert np.array_equal(g(5, z=z), a)
    # One sample at a time gives the same images (no batch statistics in inference).
    assert np.allclose(np.concatenate([g(1, z=z[i:i + 1]) for i in range(5)]), a, atol=1e-6)
