"""gan_fast.images: grids of generated digits as PNG, with Pillow (the training
dashboard and the progress GIF are gan_fast.plots).

save_grid(images, path)      images [n, 1, 28, 28] in [-1, 1] -> a nrow-wide grid PNG
"""
from __future__ import annotations

import math
import pathlib

import numpy as np
from PIL import Image

__all__ = ["save_grid", "grid_image"]


def grid_image(images, nrow=8, padding=2, scale=2):
    """[n, 1, 28, 28] (or [n, 28, 28]) in [-1, 1] -> a PIL greyscale image: digits white on
    black as in MNIST, nrow per row, padding pixels between them, each pixel scale×scale."""
    images = np.asarray(images, dtype=np.float32).reshape(-1, 28, 28)
    n = images.shape[0]
    nrow = max(1, min(nrow, n))
    ncol = math.ceil(n / nrow)
    cell = 28 + padding
    canvas = np.zeros((ncol * cell + padding, nrow * cell + padding), dtype=np.uint8)
    pixels = np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
    for i in range(n):
        r, c = divmod(i, nrow)
        canvas[padding + r * cell:padding + r * cell + 28,
               padding + c * cell:padding + c * cell + 28] = pixels[i]
    img = Image.fromarray(canvas, mode="L")
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return img


def save_grid(images, path, nrow=8, padding=2, scale=2):
    """Write grid_image(...) to path as PNG; returns the path."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid_image(images, nrow, padding, scale).save(path, format="PNG")
    return path
