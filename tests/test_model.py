"""The networks of gan_fast.model: the parameter layout, the initialisation, the dropout
seeds, and the wiring of forward and backward, checked against finite differences of the
losses in float64 on the NumPy reference (the trainer's gradients are only as right as
this wiring: which need_* flags, which cached activations, which dropout seeds)."""
from __future__ import annotations

import types

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
# Every optional part of the networks, alone and together (group size 2 with n = 3 rows per
# half: a short last group in each of the D step's two segments).
SPECS = {
    "seed": M.ModelSpec(),
    "minibatch_stddev": M.ModelSpec(minibatch_stddev=2),
    "spectral_norm": M.ModelSpec(spectral_norm=True),
    "no_dropout": M.ModelSpec(d_dropout=0.0),
    "conditional_projection": M.ModelSpec(conditional=True, d_conditioning="projection"),
    "conditional_channels": M.ModelSpec(conditional=True, d_conditioning="channels"),
    "everything": M.ModelSpec(conditional=True, minibatch_stddev=2, spectral_norm=True,
                              d_dropout=0.0),
}


class Nets:
    """float64 networks of a spec on the reference, with non-trivial BatchNorm affine
    parameters (so their gradients are exercised fully), a batch and its digits.

    Spectral normalisation's gradient is defined with the power iteration's u and v held
    constant (as PyTorch does): `ops` is the reference with spectral_norm_forward frozen at
    the u, v of the first call for each weight, so finite differences of the loss see the
    same definition."""

    def __init__(self, spec, n, seed=0):
        rng = np.random.default_rng(seed)
        self.spec, self.n = spec, n
        self.g, self.d = M.GeneratorNet(spec), M.DiscriminatorNet(spec)
        self.gp = M.init_params(self.g.layout, rng).astype(np.float64)
        gv = self.g.layout.views(self.gp)
        for k in (1, 2, 3):
            gv[f"bn{k}.gamma"][...] = rng.uniform(0.5, 1.5, gv[f"bn{k}.gamma"].shape)
            gv[f"bn{k}.beta"][...] = rng.uniform(-0.3, 0.3, gv[f"bn{k}.beta"].shape)
        self.dp = M.init_params(self.d.layout, rng).astype(np.float64)
        self.real = rng.uniform(-1, 1, (n, 1, 28, 28))
        self.z = rng.standard_normal((n, M.Z_DIM))
        self.labels = rng.integers(0, M.N_CLASSES, n) if spec.conditional else None
        self.labels2 = None if self.labels is None else np.concatenate([self.labels] * 2)
        self.sn_u = (self.d.new_sn_state(np, rng).astype(np.float64) if spec.spectral_norm
                     else None)
        self.sn = self.d.sn_buffers(np, dtype=np.float64) if spec.spectral_norm else None
        self.frozen = {}
        self.ops = types.SimpleNamespace(**{k: getattr(R, k) for k in R.__all__})
        self.ops.spectral_norm_forward = self._frozen_spectral_norm

    def _frozen_spectral_norm(self, w, u, eps=1e-12, out=None, v=None, sigma=None):
        key = w.shape
        if key not in self.frozen:
            R.spectral_norm_forward(w, u, eps, out, v, sigma)
            self.frozen[key] = (u.copy(), v.copy())
        u_fixed, v_fixed = self.frozen[key]
        u[...], v[...] = u_fixed, v_fixed
        sigma[...] = u_fixed @ w.reshape(w.shape[0], -1) @ v_fixed
        out[...] = w / sigma
        return out, v, sigma

    def bn(self):
        return self.g.new_bn_stats(np).astype(np.float64)

    def weights(self, dp):
        return self.d.weights(self.ops, self.d.layout.views(dp), self.sn, self.sn_u)

    def fake(self, gp):
        ws = self.g.workspace(np, self.n, dtype=np.float64)
        self.g.forward(self.ops, self.g.layout.views(gp), self.bn(), ws, self.z, self.labels)
        return ws

    def d_loss(self, dp, x):
        n = self.n
        ws = self.d.workspace(np, 2 * n, dtype=np.float64)
        logits = self.d.forward(self.ops, self.weights(dp), ws, x, 11, 7, 0, self.labels2,
                                ((0, n), (n, 2 * n)))
        t = np.concatenate([np.ones((n, 1)), np.zeros((n, 1))])
        lr, dr = R.bce_with_logits(logits[:n], t[:n])
        lf, df = R.bce_with_logits(logits[n:], t[n:])
        ws.dlogits[...] = np.concatenate([dr, df])
        return float(lr + lf), ws

    def g_loss(self, gp, dp):
        gws = self.fake(gp)
        dws = self.d.workspace(np, self.n, dtype=np.float64)
        logits = self.d.forward(self.ops, self.weights(dp), dws, gws.image, 11, 7, 1,
                                self.labels)
        loss, dlogits = R.bce_with_logits(logits, np.ones((self.n, 1)))
        dws.dlogits[...] = dlogits
        return float(loss), gws, dws


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
ALL_SPECS = pytest.mark.parametrize("spec", list(SPECS.values()), ids=list(SPECS))


@ALL_SPECS
@SLOPES
def test_discriminator_step_gradients_match_finite_differences(monkeypatch, spec, slope, rel):
    monkeypatch.setattr(M, "LEAKY_SLOPE", slope)
    nets = Nets(spec, n=3)
    x = np.concatenate([nets.real, nets.fake(nets.gp).image])
    _, ws = nets.d_loss(nets.dp, x)
    dg = np.zeros(nets.d.layout.size)
    nets.d.backward(nets.ops, nets.weights(nets.dp), nets.d.layout.views(dg), ws, x, 11, 7, 0,
                    need_dweights=True, need_dx=False, labels=nets.labels2,
                    segments=((0, 3), (3, 6)), sn=nets.sn, sn_u=nets.sn_u)
    _check_coordinates(lambda p: nets.d_loss(p, x)[0], nets.dp, dg, nets.d.layout,
                       np.random.default_rng(1), rel)


@ALL_SPECS
@SLOPES
def test_generator_step_gradients_match_finite_differences(monkeypatch, spec, slope, rel):
    monkeypatch.setattr(M, "LEAKY_SLOPE", slope)
    nets = Nets(spec, n=3)
    _, gws, dws = nets.g_loss(nets.gp, nets.dp)
    nets.d.backward(nets.ops, nets.weights(nets.dp), None, dws, gws.image, 11, 7, 1,
                    need_dweights=False, need_dx=True, labels=nets.labels)
    gg = np.zeros(nets.g.layout.size)
    nets.g.backward(nets.ops, nets.g.layout.views(nets.gp), nets.g.layout.views(gg), gws,
                    nets.z, dws.dx)
    _check_coordinates(lambda p: nets.g_loss(p, nets.dp)[0], nets.gp, gg, nets.g.layout,
                       np.random.default_rng(2), rel)


def test_generator_inference_uses_running_stats_and_is_seeded():
    G = M.GeneratorNet()
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


def test_conditional_generator_draws_the_digits_asked_for():
    spec = M.ModelSpec(conditional=True)
    G = M.GeneratorNet(spec)
    gp = M.init_params(G.layout, np.random.default_rng(0))
    g = M.Generator(R, np, gp, G.new_bn_stats(np), spec)
    assert g.conditional and list(g.labels(12)) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    z = np.random.default_rng(4).standard_normal((4, M.Z_DIM), dtype=np.float32)
    sevens = g(4, z=z, digits=7)
    assert sevens.shape == (4, 1, 28, 28)
    assert np.array_equal(sevens, g(4, z=z, digits=[7, 7, 7, 7]))
    assert not np.array_equal(sevens, g(4, z=z, digits=3))       # the digit changes the image
    for bad, error in (([7, 7], ValueError), (10, ValueError), (-1, ValueError),
                       ([[7, 7, 7, 7]], ValueError), ("7", TypeError), (7.5, TypeError)):
        with pytest.raises(error, match="digits"):
            g(4, z=z, digits=bad)
    plain = M.Generator(R, np, M.init_params(M.G_LAYOUT, np.random.default_rng(0)),
                        M.GeneratorNet().new_bn_stats(np))
    with pytest.raises(ValueError, match="unconditional"):
        plain(4, digits=7)
