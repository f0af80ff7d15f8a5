"""gan_fast.judge: the MNIST classifier that scores generated digits (gan_fast.evaluate),
built and trained on gan_fast's own kernels.

Network (NCHW, images in [-1, 1], as the GAN produces them):
    x [N, 1, 28, 28]
    -> Conv 16, 3x3, stride 1, pad 1 (bias) -> ReLU     [N, 16, 28, 28]
    -> Conv 32, 3x3, stride 2, pad 1 (bias) -> ReLU     [N, 32, 14, 14]
    -> Conv 64, 3x3, stride 2, pad 1 (bias) -> ReLU     [N, 64, 7, 7]
    -> Flatten [N, 3136] -> Linear 128 (bias) -> ReLU   [N, 128]   "features" (penultimate)
    -> Linear 10 (bias)                                 [N, 10]    logits
ReLU is leaky_relu with slope 0. 426k parameters (1.7 MB as float32, 1.6 MB deflated);
2.3 M multiply-adds per image, so that it trains in minutes on two CPU cores.

Training (train_judge; `gan-fast train-judge` is the command that made the shipped
weights): softmax_cross_entropy + Adam (lr 1e-3 with a cosine decay to 0 over all steps,
β 0.9/0.999), batch 128, 4 epochs over the 60,000 training images, each image shifted by
a random whole-pixel offset in [-1, 1]² (background fill). Everything random comes
from numpy.random.default_rng(seed): initialisation (PyTorch's default uniform bounds, as
gan_fast.model.init_params), the order of the images and the shifts. The CPU kernels are
deterministic for any thread count, so the same seed gives the same weights bit for bit.

Weights file (gan_fast/judge_weights.npz): a deflated .npz written with
fixed zip timestamps (so identical weights give an identical file and SHA-256): one float32
array per tensor (JUDGE_LAYOUT names) and "__meta__", JSON bytes with the architecture,
training settings and the test accuracy. Loads with allow_pickle=False.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import pathlib
import time
import zipfile

import numpy as np

from .backend import resolve_backend, to_host
from .data import load_mnist, scale_images
from .model import ParamLayout, init_params

__all__ = ["JUDGE_LAYOUT", "WEIGHTS_PATH", "N_CLASSES", "FEATURES", "Judge", "JudgeWorkspace",
           "judge_forward", "judge_backward", "train_judge", "save_weights", "load_weights",
           "weights_sha256", "shift_images"]

N_CLASSES = 10
FEATURES = 128
CONV = ((16, 1, 1), (32, 16, 2), (64, 32, 2))   # (out channels, in channels, stride); 3x3 pad 1
FLAT = 64 * 7 * 7
WEIGHTS_PATH = pathlib.Path(__file__).with_name("judge_weights.npz")

JUDGE_LAYOUT = ParamLayout([
    ("conv1.w", (16, 1, 3, 3)), ("conv1.b", (16,)),
    ("conv2.w", (32, 16, 3, 3)), ("conv2.b", (32,)),
    ("conv3.w", (64, 32, 3, 3)), ("conv3.b", (64,)),
    ("fc1.w", (FEATURES, FLAT)), ("fc1.b", (FEATURES,)),
    ("fc2.w", (N_CLASSES, FEATURES)), ("fc2.b", (N_CLASSES,)),
])
_SIZES = (28, 28, 14, 7)    # spatial size of the input of conv1..3 and of conv3's output


class JudgeWorkspace:
    """Activations (and, with grads=True, their gradients) for batch size n, allocated once.
    logits/features may be given as views into larger arrays (evaluation writes each chunk
    straight into its rows of the result)."""

    def __init__(self, xp, n, grads=False):
        f32 = xp.float32
        self.n = n
        self.c, self.a = [], []
        for (k, _, _), s in zip(CONV, _SIZES[1:]):
            self.c.append(xp.empty((n, k, s, s), f32))     # conv output
            self.a.append(xp.empty((n, k, s, s), f32))     # relu
        self.h = xp.empty((n, FEATURES), f32)              # fc1 output
        self.features = xp.empty((n, FEATURES), f32)       # relu(fc1): penultimate features
        self.logits = xp.empty((n, N_CLASSES), f32)
        if grads:
            self.dlogits = xp.empty((n, N_CLASSES), f32)
            self.dfeatures = xp.empty((n, FEATURES), f32)
            self.dh = xp.empty((n, FEATURES), f32)
            self.da = [xp.empty_like(a) for a in self.a]
            self.dc = [xp.empty_like(c) for c in self.c]


def judge_forward(ops, p, ws, x, features=None, logits=None):
    """x [n, 1, 28, 28] -> logits [n, 10]; the penultimate features [n, 128] are left in
    ws.features (or written into `features`, and the logits into `logits`, when given)."""
    features = ws.features if features is None else features
    logits = ws.logits if logits is None else logits
    h = x
    for i, (_, _, stride) in enumerate(CONV):
        ops.conv2d_forward(h, p[f"conv{i + 1}.w"], p[f"conv{i + 1}.b"], stride, 1, out=ws.c[i])
        ops.leaky_relu_forward(ws.c[i], 0.0, out=ws.a[i])
        h = ws.a[i]
    ops.linear_forward(h.reshape(ws.n, FLAT), p["fc1.w"], p["fc1.b"], out=ws.h)
    ops.leaky_relu_forward(ws.h, 0.0, out=features)
    ops.linear_forward(features, p["fc2.w"], p["fc2.b"], out=logits)
    return logits


def judge_backward(ops, p, g, ws, x):
    """Parameter gradients into g (JUDGE_LAYOUT views, overwritten) from ws.dlogits and the
    activations judge_forward left in ws (with features/logits in ws itself)."""
    n = ws.n
    ops.linear_backward(ws.dlogits, ws.features, p["fc2.w"], True, True, True,
                        dx=ws.dfeatures, dw=g["fc2.w"], db=g["fc2.b"])
    ops.leaky_relu_backward(ws.dfeatures, ws.h, 0.0, dx=ws.dh)
    ops.linear_backward(ws.dh, ws.a[2].reshape(n, FLAT), p["fc1.w"], True, True, True,
                        dx=ws.da[2].reshape(n, FLAT), dw=g["fc1.w"], db=g["fc1.b"])
    for i in (2, 1, 0):
        ops.leaky_relu_backward(ws.da[i], ws.c[i], 0.0, dx=ws.dc[i])
        below = ws.a[i - 1] if i > 0 else x
        ops.conv2d_backward(ws.dc[i], below, p[f"conv{i + 1}.w"], CONV[i][2], 1, i > 0, True,
                            True, dx=ws.da[i - 1] if i > 0 else None, dw=g[f"conv{i + 1}.w"],
                            db=g[f"conv{i + 1}.b"])


# ------------------------------------------------------------------------------ weights file
def save_weights(path, flat_params, meta):
    """Write the judge's weights as a .npz with fixed timestamps (same weights, same bytes)."""
    path = pathlib.Path(path)
    views = JUDGE_LAYOUT.views(np.asarray(flat_params, dtype=np.float32))
    entries = [(name, np.ascontiguousarray(views[name])) for name, _ in JUDGE_LAYOUT.entries]
    entries.append(("__meta__", np.frombuffer(json.dumps(meta, sort_keys=True).encode(),
                                              dtype=np.uint8)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in entries:
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            data = io.BytesIO()
            np.lib.format.write_array(data, arr, allow_pickle=False)
            zf.writestr(info, data.getvalue())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return path


def load_weights(path=None):
    """(flat float32 parameters in JUDGE_LAYOUT, meta dict) from a weights file."""
    path = pathlib.Path(path or WEIGHTS_PATH)
    flat = np.zeros(JUDGE_LAYOUT.size, dtype=np.float32)
    views = JUDGE_LAYOUT.views(flat)
    with np.load(path, allow_pickle=False) as z:
        for name, shape in JUDGE_LAYOUT.entries:
            if name not in z.files or z[name].shape != shape:
                raise ValueError(f"{path}: judge weight {name} missing or not of shape {shape}")
            views[name][...] = z[name]
        meta = json.loads(z["__meta__"].tobytes().decode()) if "__meta__" in z.files else {}
    return flat, meta


def weights_sha256(path=None):
    return hashlib.sha256(pathlib.Path(path or WEIGHTS_PATH).read_bytes()).hexdigest()


# ------------------------------------------------------------------------------ inference
class Judge:
    """The trained classifier on one device: judge.run(images) -> (logits, features).

    images: [n, 1, 28, 28] float32 in [-1, 1] (NumPy, or CuPy on device "cuda"); the
    results are arrays of the same kind, [n, 10] and [n, 128], computed in chunks of
    `chunk` images written straight into their rows (no host synchronisation on CUDA).
    Default chunk: 256 on the CPU (the convolutions' scratch then stays small: 1000-image
    chunks were slower per image on two cores), 2500 on CUDA (few, large launches)."""

    def __init__(self, path=None, device="cpu", chunk=None):
        self.ops, self.xp, self.device = resolve_backend("kernels", device)
        self.path = pathlib.Path(path or WEIGHTS_PATH)
        if not self.path.exists():
            raise FileNotFoundError(f"judge weights {self.path} not found; train them with "
                                    f"`gan-fast train-judge`")
        flat, self.meta = load_weights(self.path)
        self.sha256 = weights_sha256(self.path)
        self.params = self.xp.asarray(flat)
        self.p = JUDGE_LAYOUT.views(self.params)
        self.chunk = chunk or (2500 if self.device == "cuda" else 256)
        self._workspaces = {}

    def _workspace(self, rows):
        if rows not in self._workspaces:
            self._workspaces[rows] = JudgeWorkspace(self.xp, rows)
        return self._workspaces[rows]

    def run(self, images):
        xp = self.xp
        images = xp.ascontiguousarray(xp.asarray(images, dtype=xp.float32)).reshape(-1, 1, 28, 28)
        n = images.shape[0]
        logits = xp.empty((n, N_CLASSES), xp.float32)
        features = xp.empty((n, FEATURES), xp.float32)
        for lo in range(0, n, self.chunk):
            hi = min(n, lo + self.chunk)
            judge_forward(self.ops, self.p, self._workspace(hi - lo), images[lo:hi],
                          features=features[lo:hi], logits=logits[lo:hi])
        return logits, features

    def predict(self, images):
        """Predicted class per image (NumPy int64 [n])."""
        logits, _ = self.run(images)
        return to_host(logits.argmax(axis=1)).astype(np.int64)


# ------------------------------------------------------------------------------ training
def shift_images(images, shifts):
    """images [n, 1, 28, 28] moved by whole pixels: shifts [n, 2] (dy, dx), each in [-2, 2],
    zero (−1 after scaling, i.e. background) filled. NumPy only (the training data is)."""
    n = images.shape[0]
    pad = 2
    padded = np.full((n, 1, 28 + 2 * pad, 28 + 2 * pad), -1.0, dtype=np.float32)
    padded[:, :, pad:pad + 28, pad:pad + 28] = images
    rows = (pad - shifts[:, 0])[:, None] + np.arange(28)[None, :]      # [n, 28]
    cols = (pad - shifts[:, 1])[:, None] + np.arange(28)[None, :]
    idx = np.arange(n)[:, None, None]
    return np.ascontiguousarray(
        padded[idx, 0, rows[:, :, None], cols[:, None, :]][:, None])   # [n, 1, 28, 28]


def _accuracy(ops, xp, params, images, labels, chunk=250):
    p = JUDGE_LAYOUT.views(params)
    correct = 0
    workspaces = {}
    for lo in range(0, images.shape[0], chunk):
        x = xp.asarray(images[lo:lo + chunk])
        rows = x.shape[0]
        ws = workspaces.setdefault(rows, JudgeWorkspace(xp, rows))
        logits = judge_forward(ops, p, ws, x)
        correct += int((to_host(logits).argmax(axis=1) == labels[lo:lo + chunk]).sum())
    return correct / images.shape[0]


def train_judge(data_dir=None, out=None, seed=0, epochs=4, batch_size=128, lr=1e-3,
                max_shift=1, limit_train=None, device="cpu", download=True, quiet=False):
    """Train the judge on the MNIST training split; returns a dict with the test accuracy
    per epoch, the time and, when out is given, the weights file written and its SHA-256."""
    ops, xp, device = resolve_backend("kernels", device)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    train_x, train_y = load_mnist("train", data_dir, download, progress=not quiet)
    test_x, test_y = load_mnist("test", data_dir, download, progress=not quiet)
    if limit_train is not None:
        train_x, train_y = train_x[:limit_train], train_y[:limit_train]
    train_x, test_x = scale_images(train_x), scale_images(test_x)
    train_y, test_y = train_y.astype(np.int64), test_y.astype(np.int64)

    rng = np.random.default_rng(seed)
    params = xp.asarray(init_params(JUDGE_LAYOUT, rng))
    grads = xp.zeros(JUDGE_LAYOUT.size, xp.float32)
    m, v = xp.zeros_like(grads), xp.zeros_like(grads)
    p, g = JUDGE_LAYOUT.views(params), JUDGE_LAYOUT.views(grads)
    ws = JudgeWorkspace(xp, batch_size, grads=True)
    loss = xp.zeros((), xp.float32)
    steps_per_epoch = train_x.shape[0] // batch_size        # the last partial batch is dropped
    total_steps = epochs * steps_per_epoch
    history, step, t0 = [], 0, time.perf_counter()
    for epoch in range(epochs):
        perm = rng.permutation(train_x.shape[0])
        shifts = rng.integers(-max_shift, max_shift + 1, size=(train_x.shape[0], 2))
        loss_sum = 0.0
        for b in range(steps_per_epoch):
            idx = perm[b * batch_size:(b + 1) * batch_size]
            x = xp.asarray(shift_images(train_x[idx], shifts[idx]) if max_shift else train_x[idx])
            y = xp.asarray(train_y[idx])
            judge_forward(ops, p, ws, x)
            ops.softmax_cross_entropy(ws.logits, y, loss=loss, dlogits=ws.dlogits)
            judge_backward(ops, p, g, ws, x)
            step += 1
            step_lr = lr * 0.5 * (1.0 + math.cos(math.pi * (step - 1) / total_steps))
            ops.adam_step(params, grads, m, v, step, step_lr, 0.9, 0.999, 1e-8)
            loss_sum += float(to_host(loss))
            if not quiet and (b + 1) % 100 == 0:
                say(f"epoch {epoch + 1} step {b + 1}/{steps_per_epoch} "
                    f"loss {loss_sum / (b + 1):.4f} ({time.perf_counter() - t0:.0f} s)")
        acc = _accuracy(ops, xp, params, test_x, test_y)
        history.append({"epoch": epoch + 1, "train_loss": loss_sum / steps_per_epoch,
                        "test_accuracy": acc, "time_s": time.perf_counter() - t0})
        say(f"epoch {epoch + 1}: train loss {loss_sum / steps_per_epoch:.4f}, "
            f"test accuracy {acc:.4%} ({time.perf_counter() - t0:.0f} s)")
    result = {"test_accuracy": history[-1]["test_accuracy"], "history": history,
              "time_s": time.perf_counter() - t0, "device": device,
              "settings": {"seed": seed, "epochs": epochs, "batch_size": batch_size, "lr": lr,
                           "lr_schedule": "cosine to 0 over all steps", "betas": [0.9, 0.999],
                           "max_shift": max_shift, "limit_train": limit_train,
                           "train_images": int(train_x.shape[0])},
              "params": to_host(params)}
    if out is not None:
        # No timings in the file: the same weights must give the same bytes and SHA-256.
        meta = {"architecture": "conv16-s1, conv32-s2, conv64-s2 (3x3, pad 1, ReLU), "
                                "fc128 ReLU (features), fc10",
                "test_accuracy": result["test_accuracy"], "settings": result["settings"],
                "history": [{k: v for k, v in h.items() if k != "time_s"} for h in history]}
        result["path"] = str(save_weights(out, result["params"], meta))
        result["sha256"] = weights_sha256(out)
    return result
