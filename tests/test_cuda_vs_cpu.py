"""The CUDA kernels against the CPU kernels on identical inputs (the reference tests
hold each to NumPy already; this catches a backend drifting from the other), and
bitwise repeatability of every CUDA op."""
import numpy as np

from conftest import Backend
from gan_fast import ops
from parity import assert_close


def _calls(rng):
    """(name, op, args) for every op at a model shape; args are NumPy float32 arrays."""
    a = lambda *s: rng.standard_normal(s).astype(np.float32)
    x4, w4, dy4 = a(5, 64, 14, 14), a(128, 64, 3, 3), a(5, 128, 7, 7)
    x2, w2, dy2 = a(7, 1024), a(784, 1024), a(7, 784)
    bn = [a(256), a(256), a(256), np.abs(a(256)) + 1]
    return [
        ("linear_forward", ops.linear_forward, (x2, w2, a(784))),
        ("linear_backward", ops.linear_backward, (dy2, x2, w2)),
        ("conv2d_forward", ops.conv2d_forward, (x4, w4, a(128), 2, 1)),
        ("conv2d_backward", ops.conv2d_backward, (dy4, x4, w4, 2, 1)),
        ("batchnorm_forward", ops.batchnorm_forward, (a(9, 256), *bn)),
        ("batchnorm_backward", ops.batchnorm_backward, (a(9, 256), a(9, 256), bn[0], bn[1], bn[3])),
        ("leaky_relu_forward", ops.leaky_relu_forward, (x4, 0.2)),
        ("leaky_relu_backward", ops.leaky_relu_backward, (x4, x4, 0.2)),
        ("tanh_forward", ops.tanh_forward, (x2,)),
        ("tanh_backward", ops.tanh_backward, (x2, np.tanh(x2))),
        ("dropout_forward", ops.dropout_forward, (x4, 0.3, 99)),
        ("dropout_backward", ops.dropout_backward, (x4, 0.3, 99)),
        ("bce_with_logits", ops.bce_with_logits, (a(64, 1), np.ones((64, 1), np.float32))),
    ]


def _as_tuple(r):
    return r if isinstance(r, tuple) else (r,)


def _run(backend, op, args):
    """Run op on copies of args moved to backend; returns outputs and in-place args."""
    moved = [backend.asarray(v) if isinstance(v, np.ndarray) else v for v in args]
    outs = _as_tuple(op(*moved))
    return [backend.to_numpy(o) for o in outs] + [backend.to_numpy(v) for v in moved
                                                   if not isinstance(v, (int, float))]


def test_cuda_matches_cpu(cuda_backend, rng):
    for name, op, args in _calls(rng):
        on_cpu, on_gpu = _run(Backend("cpu"), op, args), _run(cuda_backend, op, args)
        for i, (c, g) in enumerate(zip(on_cpu, on_gpu)):
            if c is None:
                assert g is None
                continue
            assert_close(f"{name}[{i}] cuda vs cpu", g, c, op=name)


def test_dropout_mask_is_bitwise_the_cpu_mask(cuda_backend, rng):
    x = rng.uniform(0.5, 1.5, 1_000_003).astype(np.float32)
    on_gpu = cuda_backend.to_numpy(ops.dropout_forward(cuda_backend.asarray(x), 0.3, 2**63 + 5))
    on_cpu = ops.dropout_forward(x, 0.3, 2**63 + 5)
    np.testing.assert_array_equal(on_gpu, on_cpu)


def test_cuda_ops_are_bitwise_repeatable(cuda_backend, rng):
    for name, op, args in _calls(rng):
        first, second = _run(cuda_backend, op, args), _run(cuda_backend, op, args)
        for f, s in zip(first, second):
            if f is not None:
                np.testing.assert_array_equal(f, s, err_msg=f"{name} differs between two runs")
