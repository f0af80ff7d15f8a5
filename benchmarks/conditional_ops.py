"""CPU time of the conditional GAN's ops (issue #15) at the model's shapes, each beside a
NumPy implementation of the same result, in one process:

    python benchmarks/conditional_ops.py [--threads 1] [--reps 200]

Shapes: batch N = 64 and 256; labels C = 10; the generator's [z, label] input and the
discriminator's [image, label planes] input (concat), one-hot label planes D = 10·784 and a
learned embedding D = 128 (embedding), and the projection head on D's 2N rows of 6272
features (beside linear's 6272 -> 1 head, which it should match). Prints the minimum and
median of --reps calls in µs. NumPy's BLAS follows OPENBLAS_NUM_THREADS; pass the same
count as --threads for a like-for-like table.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import gan_fast
from gan_fast import ops


def times(fn, reps):
    for _ in range(3):
        fn()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    samples.sort()
    return samples[0] * 1e6, samples[len(samples) // 2] * 1e6


def cases(N, rng):
    a = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    labels = rng.permutation(np.arange(N) % 10).astype(np.int64)
    onehot = np.eye(10, dtype=np.float32)[labels]                       # [N, 10]
    for D in (7840, 128):
        table, dy, y = a(10, D), a(N, D), a(N, D)
        yield (f"embedding_forward  [{N}] <- [10, {D}]",
               lambda: ops.embedding_forward(table, labels, out=y),
               lambda: np.take(table, labels, axis=0, out=y))
        yield (f"embedding_backward [{N}, {D}] -> [10, {D}]",
               lambda: ops.embedding_backward(dy, labels, 10),
               lambda: onehot.T @ dy)
    for a_shape, B in (((N, 100), 10), ((N, 1, 28, 28), 10), ((N, 64, 14, 14), 10)):
        x, l = a(*a_shape), a(a_shape[0], B, *a_shape[2:])
        y = np.concatenate([x, l], axis=1)
        A = a_shape[1]
        da, db = np.empty_like(x), np.empty_like(l)

        def np_split(y=y, da=da, db=db, A=A):
            np.copyto(da, y[:, :A])
            np.copyto(db, y[:, A:])
        yield (f"concat_forward  {a_shape} + {B}",
               lambda x=x, l=l, y=y: ops.concat_forward(x, l, out=y),
               lambda x=x, l=l, y=y: np.concatenate([x, l], axis=1, out=y))
        yield (f"concat_backward {y.shape} split {A}",
               lambda y=y, da=da, db=db, A=A: ops.concat_backward(y, A, da=da, db=db), np_split)
    M = 2 * N  # D sees the real and the fake batch
    h, w, b, embed, g, logits = a(M, 6272), a(1, 6272), a(1), a(10, 6272), a(M, 1), a(M, 1)
    lab2 = np.concatenate([labels, labels])
    onehot2 = np.eye(10, dtype=np.float32)[lab2]
    yield (f"linear_forward  [{M}, 6272] -> 1 (for comparison)",
           lambda: ops.linear_forward(h, w, b, out=logits), lambda: h @ w.T + b)
    yield (f"projection_head_forward  [{M}, 6272]",
           lambda: ops.projection_head_forward(h, w, b, embed, lab2, out=logits),
           lambda: h @ w.T + b + np.einsum("nd,nd->n", h, embed[lab2])[:, None])
    bufs = [np.empty_like(h), np.empty_like(w), np.empty(1, np.float32), np.empty_like(embed)]
    yield (f"linear_backward [{M}, 6272] -> 1 (for comparison)",
           lambda: ops.linear_backward(g, h, w, dx=bufs[0], dw=bufs[1], db=bufs[2]),
           lambda: (g * w, g.T @ h, g.sum(0)))
    yield (f"projection_head_backward [{M}, 6272]",
           lambda: ops.projection_head_backward(g, h, w, embed, lab2, dh=bufs[0], dw=bufs[1],
                                                db=bufs[2], dembed=bufs[3]),
           lambda: (g * (w + embed[lab2]), g.T @ h, g.sum(0), onehot2.T @ (g * h)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=gan_fast.get_num_threads())
    parser.add_argument("--reps", type=int, default=200)
    args = parser.parse_args()
    gan_fast.set_num_threads(args.threads)
    print(f"gan_fast {gan_fast.cpu_isa()}, {args.threads} thread(s); µs: min / median")
    print(f"{'op':50s} {'gan_fast':>15s} {'numpy':>15s} {'speed-up':>8s}")
    rng = np.random.default_rng(0)
    for N in (64, 256):
        for name, ours, theirs in cases(N, rng):
            (o_min, o_med), (t_min, t_med) = times(ours, args.reps), times(theirs, args.reps)
            print(f"{name:50s} {o_min:7.1f} /{o_med:7.1f} {t_min:7.1f} /{t_med:7.1f} "
                  f"{t_min / o_min:7.1f}x")


if __name__ == "__main__":
    main()
