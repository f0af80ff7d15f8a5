"""gan_fast.walk: a latent walk, an animation that moves smoothly between random points of
the generator's latent space.

    frames = latent_walk(generator, points=4, steps=16, walks=8, seed=0)   # [F, 8, 1, 28, 28]
    save_walk_gif(frames, "walk.gif")

Between two points z0, z1 of the N(0, I) latent space the walk follows the great circle
(spherical interpolation, slerp: Shoemake 1985; White 2016 for GANs): a straight line
would pass through the low-norm middle of the Gaussian, where the generator saw no noise
in training, and the digits there fade. The walk visits `points` random points and returns
to the first, so the animation loops. Each frame shows `walks` independent walks side by
side; for a conditional generator every walk draws `digit`, or, when digit is None, the
ten digits 0..9 share one walk (the same style, each digit).
"""
from __future__ import annotations

import pathlib

import numpy as np

from .images import grid_image

__all__ = ["slerp", "latent_walk", "save_walk_gif"]


def slerp(z0, z1, t):
    """Spherical interpolation between z0 and z1 ([..., d]) at t in [0, 1]: the great-circle
    arc between their directions, with the norm interpolated linearly. Falls back to the
    straight line when the two are (anti)parallel."""
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    n0 = np.linalg.norm(z0, axis=-1, keepdims=True)
    n1 = np.linalg.norm(z1, axis=-1, keepdims=True)
    u0, u1 = z0 / np.maximum(n0, 1e-12), z1 / np.maximum(n1, 1e-12)
    omega = np.arccos(np.clip((u0 * u1).sum(axis=-1, keepdims=True), -1.0, 1.0))
    so = np.sin(omega)
    safe = so > 1e-6
    a = np.where(safe, np.sin((1 - t) * omega) / np.where(safe, so, 1), 1 - t)
    b = np.where(safe, np.sin(t * omega) / np.where(safe, so, 1), t)
    direction = a * u0 + b * u1
    return (direction * ((1 - t) * n0 + t * n1)).astype(np.float32)


def latent_walk(generator, points=4, steps=16, walks=8, seed=0, digit=None, z_dim=100):
    """Frames [points·steps, m, 1, 28, 28] of the walk (m = walks, or 10 for a conditional
    generator without a digit). generator: gan_fast.model.Generator or any callable
    generator(n, z=z[, digits=...])."""
    if points < 2 or steps < 1 or walks < 1:
        raise ValueError(f"latent_walk: expected points >= 2, steps >= 1, walks >= 1, got "
                         f"{points}, {steps}, {walks}")
    conditional = getattr(generator, "conditional", False)
    if digit is not None and not conditional:
        raise ValueError("digit: this generator is unconditional (trained without "
                         "conditional=True); it cannot draw a chosen digit")
    every_digit = conditional and digit is None
    m = 10 if every_digit else walks
    rng = np.random.default_rng(seed)
    anchors = rng.standard_normal((points, 1 if every_digit else m, z_dim))
    frames = []
    for p in range(points):
        z0, z1 = anchors[p], anchors[(p + 1) % points]        # back to the start: a loop
        for s in range(steps):
            z = slerp(z0, z1, s / steps)
            if every_digit:
                z = np.repeat(z, 10, axis=0)
                frames.append(generator(m, z=z, digits=np.arange(10)))
            elif conditional:
                frames.append(generator(m, z=z, digits=int(digit)))
            else:
                frames.append(generator(m, z=z))
    return np.stack([np.asarray(f) for f in frames])


def save_walk_gif(frames, path, duration_ms=80):
    """Write frames [F, m, 1, 28, 28] as a looping GIF, each frame the m digits in a row."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [grid_image(f, nrow=f.shape[0]).convert("P") for f in frames]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                   duration=duration_ms, loop=0, optimize=False)
    return path
