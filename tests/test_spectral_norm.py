"""Parity of spectral_norm_forward / spectral_norm_backward with gan_fast.reference: the
discriminator's weights ([64, 1, 3, 3], [128, 64, 3, 3], the [1, 6272] head and [1, 6321]),
odd sizes, rank 2 to 4, u updated in place; the backward from the forward's own outputs.
Then what the op is for: repeated calls converge to the largest singular value and its
singular vectors, and one call matches PyTorch's spectral_norm (when installed)."""
import math

import numpy as np
import pytest

import gan_fast
from gan_fast import ops, reference
from conftest import Backend
from parity import assert_close, floored_tolerance

MODEL = [(64, 1, 3, 3), (128, 64, 3, 3), (1, 6272), (1, 6321)]
ODD = [(1, 1), (3, 5), (2, 1, 1), (7, 3, 2, 5), (67, 129), (300, 40), (33, 2, 1, 17)]


def random_f32(rng, shape):
    """Random float32 values; the reference gets exactly these, widened to float64."""
    return rng.standard_normal(shape).astype(np.float32)


def check_spectral_norm(backend, rng, shape, eps=1e-12):
    K, F = shape[0], math.prod(shape[1:])
    w, u0, dw_sn = random_f32(rng, shape), random_f32(rng, (K,)), random_f32(rng, shape)
    u = backend.asarray(u0)
    w_sn, v, sigma = ops.spectral_norm_forward(
        backend.asarray(w), u, eps, out=backend.poisoned(shape), v=backend.poisoned((F,)),
        sigma=backend.poisoned(()))
    ref_u = u0.astype(np.float64)
    rw_sn, rv, rsigma = reference.spectral_norm_forward(w.astype(np.float64), ref_u, eps)
    assert_close("spectral_norm_forward.w_sn", w_sn, rw_sn)
    assert_close("spectral_norm_forward.v", v, rv)
    assert_close("spectral_norm_forward.sigma", sigma, rsigma)
    assert_close("spectral_norm_forward.u", u, ref_u)

    # The backward gets the forward's float32 outputs, on both sides.
    saved = [backend.to_numpy(a).astype(np.float64) for a in (w_sn, u, v, sigma)]
    dw = ops.spectral_norm_backward(backend.asarray(dw_sn), w_sn, u, v, sigma,
                                    dw=backend.poisoned(shape))
    rdw = reference.spectral_norm_backward(dw_sn.astype(np.float64), *saved)
    s_w, s_u, s_v, s_sigma = saved
    inner = abs(np.sum(dw_sn * s_w))
    floor = (np.abs(dw_sn).reshape(K, F) + inner * np.abs(np.outer(s_u, s_v))) / abs(float(s_sigma))
    assert_close("spectral_norm_backward.dw", dw, rdw,
                 tol=floored_tolerance("spectral_norm_backward", rdw, floor))


@pytest.mark.parametrize("shape", MODEL + ODD, ids=str)
def test_spectral_norm(backend, rng, shape):
    check_spectral_norm(backend, rng, shape)


@pytest.mark.parametrize("shape", [(3, 5), (128, 64, 3, 3), (1, 6321)], ids=str)
def test_spectral_norm_every_cpu_isa(cpu_isa, rng, shape):
    assert gan_fast.cpu_isa() == cpu_isa
    check_spectral_norm(Backend("cpu"), rng, shape)


def test_spectral_norm_eps_clamps_small_norms(backend, rng):
    """When ‖Wᵀu‖ < eps, v = Wᵀu / eps (not a unit vector), as max(‖·‖, eps) says."""
    check_spectral_norm(backend, rng, (4, 6), eps=1e3)


@pytest.mark.parametrize("shape", [(0, 4), (3, 0), (2, 3, 0)], ids=str)
def test_spectral_norm_empty(backend, shape):
    """Every sum is empty: v and u come out 0 and sigma 0; nothing to normalise."""
    K, F = shape[0], math.prod(shape[1:])
    u = backend.asarray(np.ones(K))
    w_sn, v, sigma = ops.spectral_norm_forward(backend.asarray(np.zeros(shape)), u)
    assert w_sn.shape == shape
    np.testing.assert_array_equal(backend.to_numpy(v), np.zeros(F))
    np.testing.assert_array_equal(backend.to_numpy(u), np.zeros(K))
    assert float(backend.to_numpy(sigma)) == 0.0
    dw = ops.spectral_norm_backward(backend.asarray(np.zeros(shape)), w_sn, u, v, sigma)
    assert dw.shape == shape


def test_repeated_calls_converge_to_the_largest_singular_value(backend, rng):
    """The power iteration, carried across calls by u: sigma -> σ_max, u and v -> the
    leading singular vectors (up to a common sign), w_sn's largest singular value -> 1."""
    K, F = 40, 90
    left, _ = np.linalg.qr(rng.standard_normal((K, K)))
    right, _ = np.linalg.qr(rng.standard_normal((F, K)))
    spectrum = np.concatenate([[5.0, 2.5], np.linspace(2.0, 0.1, K - 2)])
    w = (left * spectrum) @ right.T                                    # [K, F]
    u = backend.asarray(rng.standard_normal(K))
    for _ in range(40):  # the error shrinks like (2.5 / 5)² per call
        w_sn, v, sigma = ops.spectral_norm_forward(backend.asarray(w), u)
    assert float(backend.to_numpy(sigma)) == pytest.approx(5.0, rel=1e-5)
    sign = np.sign(np.dot(backend.to_numpy(u), left[:, 0]))
    np.testing.assert_allclose(sign * backend.to_numpy(u), left[:, 0], atol=1e-5)
    np.testing.assert_allclose(sign * backend.to_numpy(v), right[:, 0], atol=1e-5)
    assert np.linalg.norm(backend.to_numpy(w_sn), 2) == pytest.approx(1.0, rel=1e-5)


def test_matches_pytorch_spectral_norm(rng):
    """One training-mode forward of torch.nn.utils.spectral_norm (n_power_iterations=1)
    from the same u: the same v, u, sigma and normalised weight."""
    torch = pytest.importorskip("torch")
    w, u0 = random_f32(rng, (128, 64, 3, 3)), random_f32(rng, (128,))
    u0 /= np.linalg.norm(u0)
    conv = torch.nn.Conv2d(64, 128, 3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w))
    conv = torch.nn.utils.spectral_norm(conv, n_power_iterations=1, eps=1e-12)
    with torch.no_grad():
        conv.weight_u.copy_(torch.from_numpy(u0))
    conv.train()
    conv(torch.zeros(1, 64, 3, 3))  # the pre-forward hook runs the power iteration
    u = u0.copy()
    w_sn, v, sigma = ops.spectral_norm_forward(w, u)
    assert_close("spectral_norm_forward.v", v, conv.weight_v.detach().double().numpy())
    assert_close("spectral_norm_forward.u", u, conv.weight_u.detach().double().numpy())
    assert_close("spectral_norm_forward.w_sn", w_sn, conv.weight.detach().double().numpy())
    torch_sigma = float(torch.linalg.vector_norm(conv.weight_orig.detach()) /
                        torch.linalg.vector_norm(conv.weight.detach()))
    assert float(sigma) == pytest.approx(torch_sigma, rel=1e-5)
