"""gan_fast.images: PNG output with Pillow: a grid of generated digits and the loss curve.

save_grid(images, path)      images [n, 1, 28, 28] in [-1, 1] -> a nrow-wide grid PNG
save_loss_curve(rows, path)  metrics rows (dicts with "step", "loss_d", "loss_g") -> PNG
"""
from __future__ import annotations

import math
import pathlib

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["save_grid", "save_loss_curve", "grid_image"]


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


def _nice_ticks(lo, hi, count=5):
    span = hi - lo if hi > lo else 1.0
    raw = span / count
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=10 * mag)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def save_loss_curve(rows, path, series=(("loss_d", (200, 40, 40)), ("loss_g", (40, 80, 200))),
                    size=(800, 480)):
    """A line plot of the given series of the metrics rows against "step", drawn with
    Pillow's ImageDraw (axes, ticks, a legend). Returns the path."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    left, right, top, bottom = 70, 20, 20, 50
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    rows = [r for r in rows if "step" in r]
    steps = [r["step"] for r in rows]
    values = [r[k] for r in rows for k, _ in series
              if k in r and r[k] is not None and math.isfinite(r[k])]
    if not steps or not values:
        draw.text((left, top), "no metrics logged", fill="black", font=font)
        img.save(path, format="PNG")
        return path
    x0, x1 = min(steps), max(steps)
    x1 = x1 if x1 > x0 else x0 + 1
    y0, y1 = min(0.0, min(values)), max(values)
    y1 = y1 if y1 > y0 else y0 + 1
    y1 += 0.05 * (y1 - y0)

    def px(x, y):
        return (left + (x - x0) / (x1 - x0) * (width - left - right),
                height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom))

    draw.line([px(x0, y0), px(x1, y0)], fill="black")
    draw.line([px(x0, y0), px(x0, y1)], fill="black")
    for t in _nice_ticks(y0, y1):
        x, y = px(x0, t)
        draw.line([(x - 4, y), (x, y)], fill="black")
        draw.text((x - 8, y), f"{t:g}", fill="black", font=font, anchor="rm")
    for t in _nice_ticks(x0, x1):
        x, y = px(t, y0)
        draw.line([(x, y), (x, y + 4)], fill="black")
        draw.text((x, y + 6), f"{t:g}", fill="black", font=font, anchor="mt")
    draw.text(((left + width - right) / 2, height - 8), "step", fill="black", font=font,
              anchor="ms")
    for i, (key, colour) in enumerate(series):
        points = [px(r["step"], r[key]) for r in rows
                  if key in r and r[key] is not None and math.isfinite(r[key])]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        elif points:
            draw.point(points, fill=colour)
        lx, ly = width - right - 120, top + 8 + 16 * i
        draw.line([(lx, ly), (lx + 20, ly)], fill=colour, width=2)
        draw.text((lx + 26, ly), key, fill="black", font=font, anchor="lm")
    img.save(path, format="PNG")
    return path
