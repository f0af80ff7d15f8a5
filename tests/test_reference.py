"""Check the oracle: every backward of gan_fast.reference against central finite
differences of its forward, in float64, on small random shapes.

For a forward f and a random cotangent dy, the loss L(x) = Σ f(x)·dy has gradient
backward(dy) with respect to every input; each input is perturbed element by element.
"""
import numpy as np
import pytest

from gan_fast import reference as ref

H = 1e-6          # central differences in float64: truncation ~H², rounding ~1e-16/H
FD_TOL = 1e-7     # relative-norm bound between analytic and numeric gradients


def numeric_grad(loss, x):
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + H
        up = loss()
        flat[i] = old - H
        down = loss()
        flat[i] = old
        gflat[i] = (up - down) / (2 * H)
    return g


def check(name, analytic, numeric):
    err = np.linalg.norm(analytic - numeric) / max(np.linalg.norm(numeric), 1e-300)
    assert err < FD_TOL, f"{name}: finite-difference mismatch, relative error {err:.2e}"


@pytest.mark.parametrize("N,K,M", [(1, 3, 2), (4, 5, 3)])
def test_linear_backward(rng, N, K, M):
    x, w, b = rng.standard_normal((N, K)), rng.standard_normal((M, K)), rng.standard_normal(M)
    dy = rng.standard_normal((N, M))
    loss = lambda: np.sum(ref.linear_forward(x, w, b) * dy)
    dx, dw, db = ref.linear_backward(dy, x, w)
    check("dx", dx, numeric_grad(loss, x))
    check("dw", dw, numeric_grad(loss, w))
    check("db", db, numeric_grad(loss, b))


@pytest.mark.parametrize("shape,kernel,stride,padding", [
    ((2, 2, 5, 5), (3, 2, 3, 3), 2, 1),
    ((1, 3, 6, 7), (2, 3, 3, 2), (1, 2), (2, 1)),
    ((2, 1, 4, 4), (2, 1, 1, 1), 1, 0),
])
def test_conv2d_backward(rng, shape, kernel, stride, padding):
    x, w, b = rng.standard_normal(shape), rng.standard_normal(kernel), rng.standard_normal(kernel[0])
    y = ref.conv2d_forward(x, w, b, stride, padding)
    dy = rng.standard_normal(y.shape)
    loss = lambda: np.sum(ref.conv2d_forward(x, w, b, stride, padding) * dy)
    dx, dw, db = ref.conv2d_backward(dy, x, w, stride, padding)
    check("dx", dx, numeric_grad(loss, x))
    check("dw", dw, numeric_grad(loss, w))
    check("db", db, numeric_grad(loss, b))


@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 2, 3)])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_backward(rng, shape, training):
    C = shape[1]
    x = rng.standard_normal(shape)
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    rm, rv = rng.standard_normal(C), rng.uniform(0.5, 2, C)
    dy = rng.standard_normal(shape)

    def forward():  # running statistics are copied so the loss is a pure function
        return ref.batchnorm_forward(x, gamma, beta, rm.copy(), rv.copy(), training)

    loss = lambda: np.sum(forward()[0] * dy)
    _, mean, rstd = forward()
    dx, dgamma, dbeta = ref.batchnorm_backward(dy, x, gamma, mean, rstd, training)
    check("dx", dx, numeric_grad(loss, x))
    check("dgamma", dgamma, numeric_grad(loss, gamma))
    check("dbeta", dbeta, numeric_grad(loss, beta))


def test_batchnorm_matches_the_definition_and_updates_running_stats(rng):
    x = rng.standard_normal((6, 3, 2, 2)) * 3 + 1
    rm, rv = np.zeros(3) + 0.5, np.ones(3) * 2
    y, mean, rstd = ref.batchnorm_forward(x, np.ones(3), np.zeros(3), rm, rv, True, 0.1)
    xs = x.transpose(1, 0, 2, 3).reshape(3, -1)
    np.testing.assert_allclose(mean, xs.mean(1))
    np.testing.assert_allclose(rstd, 1 / np.sqrt(xs.var(1) + 1e-5))
    np.testing.assert_allclose(rm, 0.9 * 0.5 + 0.1 * xs.mean(1))
    np.testing.assert_allclose(rv, 0.9 * 2 + 0.1 * xs.var(1, ddof=1))
    np.testing.assert_allclose(y.transpose(1, 0, 2, 3).reshape(3, -1).std(1), 1, rtol=1e-4)


@pytest.mark.parametrize("slope", [0.2, 0.0])
def test_leaky_relu_backward(rng, slope):
    x = rng.standard_normal(17)
    x[np.abs(x) < 1e-3] += 0.1  # keep away from the kink, where no derivative exists
    dy = rng.standard_normal(17)
    loss = lambda: np.sum(ref.leaky_relu_forward(x, slope) * dy)
    check("dx", ref.leaky_relu_backward(dy, x, slope), numeric_grad(loss, x))


def test_tanh_backward(rng):
    x, dy = rng.standard_normal(13), rng.standard_normal(13)
    loss = lambda: np.sum(ref.tanh_forward(x) * dy)
    check("dx", ref.tanh_backward(dy, ref.tanh_forward(x)), numeric_grad(loss, x))


def test_dropout_backward(rng):
    x, dy = rng.standard_normal((4, 9)), rng.standard_normal((4, 9))
    loss = lambda: np.sum(ref.dropout_forward(x, 0.3, 11) * dy)
    check("dx", ref.dropout_backward(dy, 0.3, 11), numeric_grad(loss, x))


def test_leaky_relu_dropout_backward(rng):
    x, dy = rng.standard_normal((4, 9)), rng.standard_normal((4, 9))
    x[np.abs(x) < 1e-3] += 0.1  # keep away from the kink
    loss = lambda: np.sum(ref.leaky_relu_dropout_forward(x, 0.2, 0.3, 11) * dy)
    check("dx", ref.leaky_relu_dropout_backward(dy, x, 0.2, 0.3, 11), numeric_grad(loss, x))


def test_bce_with_logits_gradient(rng):
    z, t = 3 * rng.standard_normal(11), rng.uniform(0, 1, 11)
    loss = lambda: float(ref.bce_with_logits(z, t)[0])
    check("dlogits", ref.bce_with_logits(z, t)[1], numeric_grad(loss, z))


def test_bce_with_logits_matches_the_naive_formula(rng):
    z, t = rng.standard_normal(50), rng.uniform(0, 1, 50)
    s = 1 / (1 + np.exp(-z))
    naive = -np.mean(t * np.log(s) + (1 - t) * np.log(1 - s))
    assert float(ref.bce_with_logits(z, t)[0]) == pytest.approx(naive, rel=1e-12)


@pytest.mark.parametrize("N,C", [(1, 1), (1, 3), (5, 10), (7, 4)])
def test_softmax_cross_entropy_gradient(rng, N, C):
    z = 3 * rng.standard_normal((N, C))
    labels = rng.integers(0, C, N)
    loss = lambda: float(ref.softmax_cross_entropy(z, labels)[0])
    check("dlogits", ref.softmax_cross_entropy(z, labels)[1], numeric_grad(loss, z))


def test_softmax_cross_entropy_matches_the_naive_formula(rng):
    z, labels = rng.standard_normal((6, 10)), rng.integers(0, 10, 6)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    naive = -np.log(p[np.arange(6), labels]).mean()
    assert float(ref.softmax_cross_entropy(z, labels)[0]) == pytest.approx(naive, rel=1e-12)


def test_adam_step_matches_the_textbook_form(rng):
    n = 20
    p, g, m, v = rng.standard_normal(n), rng.standard_normal(n), rng.standard_normal(n), rng.uniform(0, 1, n)
    p0, m0, v0 = p.copy(), m.copy(), v.copy()
    ref.adam_step(p, g, m, v, 3, lr=0.01, beta1=0.8, beta2=0.99, eps=1e-8)
    m1 = 0.8 * m0 + 0.2 * g
    v1 = 0.99 * v0 + 0.01 * g * g
    mhat, vhat = m1 / (1 - 0.8 ** 3), v1 / (1 - 0.99 ** 3)
    np.testing.assert_allclose(m, m1)
    np.testing.assert_allclose(v, v1)
    np.testing.assert_allclose(p, p0 - 0.01 * mhat / (np.sqrt(vhat) + 1e-8), rtol=1e-6)


def test_reference_returns_float32_for_float32_inputs(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    w = rng.standard_normal((2, 4)).astype(np.float32)
    assert ref.linear_forward(x, w).dtype == np.float32
    assert ref.linear_forward(x.astype(np.float64), w).dtype == np.float64


# ------------------------------------------------------------------------------ quality recipe
@pytest.mark.parametrize("shape,group_size", [((5, 2, 2, 3), 2), ((4, 3, 1, 2), 4),
                                              ((3, 2, 2, 2), 4), ((6, 1, 3, 1), 4)])
def test_minibatch_stddev_backward(rng, shape, group_size):
    """Groups of 2, 4, one group smaller than group_size, and a last group of 1 or 2. Rows
    are kept apart (offsets 0, 3, 6, ...): two rows within ~1e-3 of each other would give a
    std so small that sqrt(var + eps) curves within the finite-difference step."""
    N, C, H, W = shape
    x = rng.standard_normal(shape) + 3.0 * np.arange(N)[:, None, None, None]
    dy = rng.standard_normal((N, C + 1, H, W))
    loss = lambda: np.sum(ref.minibatch_stddev_forward(x, group_size) * dy)
    check("dx", ref.minibatch_stddev_backward(dy, x, group_size), numeric_grad(loss, x))


def test_minibatch_stddev_matches_the_definition(rng):
    """Consecutive rows form the groups: for N = 8, group_size 4, rows 0-3 and 4-7."""
    x = rng.standard_normal((8, 3, 2, 2))
    y = ref.minibatch_stddev_forward(x, 4, eps=1e-6)
    groups = x.reshape(2, 4, 3 * 2 * 2)                      # [groups, rows, features]
    s = np.sqrt(groups.var(axis=1) + 1e-6).mean(axis=1)      # [groups]
    np.testing.assert_array_equal(y[:, :3], x)
    np.testing.assert_allclose(y[:, 3], np.repeat(s, 4)[:, None, None] * np.ones((8, 2, 2)))


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 2, 2), (1, 5), (4, 1)])
def test_spectral_norm_backward(rng, shape):
    """The backward is, by definition (and as in PyTorch), the gradient of w / (uᵀ W v) with
    u and v held CONSTANT: the power iteration's vectors are not differentiated through. So
    the finite differences are of that function, with the u, v of one forward call, after
    checking that it is what the forward returned at w."""
    K = shape[0]
    w, u, dy = rng.standard_normal(shape), rng.standard_normal(K), rng.standard_normal(shape)
    w_sn, v, sigma = ref.spectral_norm_forward(w, u)             # u is now the updated u
    u_fixed, v_fixed = u.copy(), v.copy()
    at_fixed_u_v = lambda: w / (u_fixed @ w.reshape(K, -1) @ v_fixed)
    np.testing.assert_allclose(at_fixed_u_v(), w_sn, rtol=1e-12)
    loss = lambda: np.sum(at_fixed_u_v() * dy)
    check("dw", ref.spectral_norm_backward(dy, w_sn, u, v, sigma), numeric_grad(loss, w))


def test_spectral_norm_forward_matches_the_definition(rng):
    """One power iteration: v = Wᵀu/‖Wᵀu‖, u = Wv/‖Wv‖, sigma = uᵀWv ≤ ‖W‖₂ (it
    estimates the largest singular value from below), w_sn = w / sigma."""
    W, u0 = rng.standard_normal((6, 10)), rng.standard_normal(6)
    u = u0.copy()
    w_sn, v, sigma = ref.spectral_norm_forward(W, u)
    v_want = W.T @ u0 / np.linalg.norm(W.T @ u0)
    u_want = W @ v_want / np.linalg.norm(W @ v_want)
    np.testing.assert_allclose(v, v_want)
    np.testing.assert_allclose(u, u_want)
    assert float(sigma) == pytest.approx(u_want @ W @ v_want, rel=1e-12)
    assert float(sigma) <= np.linalg.norm(W, 2) * (1 + 1e-12)
    np.testing.assert_allclose(w_sn, W / float(sigma))


def test_ema_update_matches_the_definition(rng):
    """beta = (1 + step)/(10 + step) while that is below decay, then decay; the step may be a
    one-element int64 array."""
    a, v = rng.standard_normal(7), rng.standard_normal(7)
    for step, beta in [(1, 2 / 11), (np.array([5], np.int64), 6 / 15), (10_000, 0.999)]:
        average = a.copy()
        assert ref.ema_update(average, v, 0.999, step) is None
        np.testing.assert_allclose(average, beta * a + (1 - beta) * v, rtol=1e-14)
# ------------------------------------------------------------------------------ conditional GAN
@pytest.mark.parametrize("N,C,D", [(1, 1, 2), (7, 3, 4), (5, 6, 3)])  # (5, 6, 3): absent classes
def test_embedding_backward(rng, N, C, D):
    weight, dy = rng.standard_normal((C, D)), rng.standard_normal((N, D))
    labels = rng.integers(0, C, N)
    loss = lambda: np.sum(ref.embedding_forward(weight, labels) * dy)
    check("dweight", ref.embedding_backward(dy, labels, C), numeric_grad(loss, weight))


@pytest.mark.parametrize("a_shape,B", [((3, 2), 3), ((2, 1, 3, 2), 2), ((2, 0, 4), 1)])
def test_concat_backward(rng, a_shape, B):
    a = rng.standard_normal(a_shape)
    b = rng.standard_normal((a_shape[0], B) + a_shape[2:])
    dy = rng.standard_normal((a_shape[0], a_shape[1] + B) + a_shape[2:])
    loss = lambda: np.sum(ref.concat_forward(a, b) * dy)
    da, db = ref.concat_backward(dy, a_shape[1])
    check("da", da, numeric_grad(loss, a))
    check("db", db, numeric_grad(loss, b))


@pytest.mark.parametrize("N,D,C", [(1, 1, 1), (6, 4, 3), (5, 3, 7)])  # (5, 3, 7): absent classes
def test_projection_head_backward(rng, N, D, C):
    h, w, b = rng.standard_normal((N, D)), rng.standard_normal((1, D)), rng.standard_normal(1)
    embed, dlogits = rng.standard_normal((C, D)), rng.standard_normal((N, 1))
    labels = rng.integers(0, C, N)
    loss = lambda: np.sum(ref.projection_head_forward(h, w, b, embed, labels) * dlogits)
    dh, dw, db, dembed = ref.projection_head_backward(dlogits, h, w, embed, labels)
    check("dh", dh, numeric_grad(loss, h))
    check("dw", dw, numeric_grad(loss, w))
    check("db", db, numeric_grad(loss, b))
    check("dembed", dembed, numeric_grad(loss, embed))


def test_projection_head_matches_its_definition(rng):
    """Miyato & Koyama's head: ψ(h) + yᵀVh with y the one-hot label; and embedding_forward is
    the one-hot matrix times the table."""
    N, D, C = 6, 5, 4
    h, w, b, embed = (rng.standard_normal(s) for s in [(N, D), (1, D), (1,), (C, D)])
    labels = np.array([0, 3, 3, 1, 0, 2])
    onehot = np.eye(C)[labels]                                   # [N, C]
    want = h @ w.T + b + np.sum((onehot @ embed) * h, axis=1, keepdims=True)
    np.testing.assert_allclose(ref.projection_head_forward(h, w, b, embed, labels), want, rtol=1e-12)
    np.testing.assert_allclose(ref.embedding_forward(embed, labels), onehot @ embed, rtol=1e-12)
