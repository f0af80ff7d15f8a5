"""gan_fast.model: the generator and discriminator of the MNIST GAN, as calls into an op
backend (gan_fast.ops, or gan_fast.reference which has the same API) on preallocated
buffers.

Generator  z [N, 100] ~ N(0, 1)
    -> Linear 256 (no bias) -> BatchNorm -> LeakyReLU 0.2
    -> Linear 512 (no bias) -> BatchNorm -> LeakyReLU 0.2
    -> Linear 1024 (no bias) -> BatchNorm -> LeakyReLU 0.2
    -> Linear 784 (bias) -> tanh -> image [N, 1, 28, 28] in [-1, 1]
Discriminator  image [N, 1, 28, 28]
    -> Conv 64, 3x3, stride 2, pad 1 (no bias) -> LeakyReLU 0.2 -> Dropout 0.3   [N, 64, 14, 14]
    -> Conv 128, 3x3, stride 2, pad 1 (no bias) -> LeakyReLU 0.2 -> Dropout 0.3  [N, 128, 7, 7]
    -> Flatten [N, 6272] -> Linear 1 (bias) -> logit [N, 1]

Parameters of one network live in ONE flat float32 buffer (ParamLayout gives a view per
tensor), their gradients in a second flat buffer with the same layout, so one adam_step
call updates a whole network. BatchNorm running statistics are separate (they are not
trained). Activations and their gradients live in workspaces allocated once per batch size
and reused every step through the ops' out=/dx=/dw= arguments: a step allocates nothing.

Every function takes `xp` (numpy or cupy) for the arrays it allocates and `ops` for the
arithmetic, so the same code runs the CPU kernels, the NumPy reference and the CUDA kernels.

Initialisation (init_params): PyTorch's defaults, seeded. Linear and Conv weights and the
last Linear's biases are U(−1/√fan_in, 1/√fan_in) (kaiming_uniform with a = √5, which is
what torch.nn.Linear/Conv2d do); BatchNorm gamma = 1, beta = 0; running mean 0, var 1.
"""
from __future__ import annotations

import math
import numpy as np

__all__ = ["ParamLayout", "G_LAYOUT", "D_LAYOUT", "Z_DIM", "G_HIDDEN", "LEAKY_SLOPE",
           "DROPOUT_P", "BN_MOMENTUM", "BN_EPS", "init_params", "new_bn_stats",
           "GeneratorWorkspace", "DiscriminatorWorkspace", "generator_forward",
           "generator_backward", "discriminator_forward", "discriminator_backward",
           "dropout_seed", "shape_signature", "Generator"]

Z_DIM = 100
G_HIDDEN = (256, 512, 1024)
IMAGE_SIZE = 28 * 28
LEAKY_SLOPE = 0.2
DROPOUT_P = 0.3
BN_MOMENTUM = 0.1
BN_EPS = 1e-5
D_CONV = ((64, 1), (128, 64))   # (out channels, in channels), 3x3, stride 2, pad 1
D_FLAT = 128 * 7 * 7
_ALIGN = 16                      # tensors start on 64-byte boundaries inside the flat buffer


class ParamLayout:
    """Names, shapes and offsets of the tensors packed in one flat float32 buffer.

    Each tensor starts at a multiple of 16 floats; the padding between tensors is zero in
    the parameters and in the gradients, so Adam leaves it at zero.
    """

    def __init__(self, entries):
        self.entries = tuple((name, tuple(shape)) for name, shape in entries)
        self.offsets = {}
        offset = 0
        for name, shape in self.entries:
            self.offsets[name] = offset
            offset += -(-math.prod(shape) // _ALIGN) * _ALIGN
        self.size = offset

    def views(self, flat):
        """{name: view of flat with the tensor's shape} (views, not copies)."""
        return {name: flat[self.offsets[name]:self.offsets[name] + math.prod(shape)]
                .reshape(shape) for name, shape in self.entries}

    def signature(self):
        return [[name, list(shape)] for name, shape in self.entries]


G_LAYOUT = ParamLayout([
    ("fc1.w", (G_HIDDEN[0], Z_DIM)), ("bn1.gamma", (G_HIDDEN[0],)), ("bn1.beta", (G_HIDDEN[0],)),
    ("fc2.w", (G_HIDDEN[1], G_HIDDEN[0])), ("bn2.gamma", (G_HIDDEN[1],)),
    ("bn2.beta", (G_HIDDEN[1],)),
    ("fc3.w", (G_HIDDEN[2], G_HIDDEN[1])), ("bn3.gamma", (G_HIDDEN[2],)),
    ("bn3.beta", (G_HIDDEN[2],)),
    ("fc4.w", (IMAGE_SIZE, G_HIDDEN[2])), ("fc4.b", (IMAGE_SIZE,)),
])
D_LAYOUT = ParamLayout([
    ("conv1.w", (64, 1, 3, 3)), ("conv2.w", (128, 64, 3, 3)),
    ("fc.w", (1, D_FLAT)), ("fc.b", (1,)),
])


def shape_signature():
    """What a checkpoint must match to be loaded into this model."""
    return {"generator": G_LAYOUT.signature(), "discriminator": D_LAYOUT.signature(),
            "generator_bn": list(G_HIDDEN)}


def init_params(layout, rng):
    """A new flat float32 parameter buffer for layout, initialised as the module docstring
    says from the numpy Generator rng (tensors drawn in layout order)."""
    flat = np.zeros(layout.size, dtype=np.float32)
    views = layout.views(flat)
    fan_in = {}
    for name, shape in layout.entries:
        layer, kind = name.split(".")
        if kind == "w":
            fan_in[layer] = math.prod(shape[1:])
            bound = 1.0 / math.sqrt(fan_in[layer])
            views[name][...] = rng.uniform(-bound, bound, size=shape)
        elif kind == "b":
            bound = 1.0 / math.sqrt(fan_in[layer])
            views[name][...] = rng.uniform(-bound, bound, size=shape)
        elif kind == "gamma":
            views[name][...] = 1.0
        elif kind == "beta":
            views[name][...] = 0.0
    return flat


def new_bn_stats(xp):
    """The generator's BatchNorm running statistics: [(running_mean, running_var)] per layer."""
    return [(xp.zeros(c, dtype=xp.float32), xp.ones(c, dtype=xp.float32)) for c in G_HIDDEN]


_M64 = (1 << 64) - 1


def _mix64(z):
    z &= _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def dropout_seed(run_seed, step, layer, pass_):
    """The uint64 dropout seed of one (step, layer, pass): a hash of the run seed and the
    counters, so masks never repeat across steps, layers or passes, and a resumed run (or
    another backend) draws exactly the same masks. pass_: 0 = discriminator step,
    1 = generator step."""
    return _mix64(_mix64(run_seed + 0x9E3779B97F4A7C15) + (step << 3) + (layer << 1) + pass_)


# ------------------------------------------------------------------------------ workspaces
class GeneratorWorkspace:
    """Activations and gradients of the generator for batch size n (allocated once).

    The image output is written into `image` when given (the trainer passes the fake half
    of the discriminator's input buffer), else into a buffer of its own."""

    def __init__(self, xp, n, image=None, dtype=None):
        f32 = dtype or xp.float32
        self.n = n
        self.h, self.y, self.a, self.mean, self.rstd = [], [], [], [], []
        self.da, self.dy, self.dh = [], [], []
        for c in G_HIDDEN:
            self.h.append(xp.empty((n, c), f32))      # linear output
            self.y.append(xp.empty((n, c), f32))      # batchnorm output
            self.a.append(xp.empty((n, c), f32))      # leaky relu output
            self.mean.append(xp.empty(c, f32))
            self.rstd.append(xp.empty(c, f32))
            self.da.append(xp.empty((n, c), f32))     # d loss / d a
            self.dy.append(xp.empty((n, c), f32))     # d loss / d y
            self.dh.append(xp.empty((n, c), f32))     # d loss / d h
        self.h4 = xp.empty((n, IMAGE_SIZE), f32)
        self.image = xp.empty((n, 1, 28, 28), f32) if image is None else image
        self.dh4 = xp.empty((n, IMAGE_SIZE), f32)


class DiscriminatorWorkspace:
    """Activations and gradients of the discriminator for batch size m (allocated once).
    rows(lo, hi) gives a workspace of views on rows lo:hi (contiguous, no copies)."""

    _FIELDS = ("c1", "d1", "c2", "d2", "logits", "dlogits", "dd2", "dc2", "dd1", "dc1", "dx")

    def __init__(self, xp, m, _views=None, dtype=None):
        if _views is not None:
            self.__dict__.update(_views)
            return
        f32 = dtype or xp.float32
        self.m = m
        self.c1 = xp.empty((m, 64, 14, 14), f32)   # conv1 output
        self.d1 = xp.empty((m, 64, 14, 14), f32)   # after LeakyReLU and dropout
        self.c2 = xp.empty((m, 128, 7, 7), f32)
        self.d2 = xp.empty((m, 128, 7, 7), f32)
        self.logits = xp.empty((m, 1), f32)
        self.dlogits = xp.empty((m, 1), f32)
        self.dd2 = xp.empty((m, 128, 7, 7), f32)
        self.dc2 = xp.empty((m, 128, 7, 7), f32)
        self.dd1 = xp.empty((m, 64, 14, 14), f32)
        self.dc1 = xp.empty((m, 64, 14, 14), f32)
        self.dx = xp.empty((m, 1, 28, 28), f32)    # d loss / d image (generator step only)

    def rows(self, lo, hi):
        views = {k: getattr(self, k)[lo:hi] for k in self._FIELDS}
        views["m"] = hi - lo
        return DiscriminatorWorkspace(None, hi - lo, _views=views)


# ------------------------------------------------------------------------------ generator
def generator_forward(ops, p, bn_stats, ws, z, training=True):
    """z [n, 100] -> ws.image [n, 1, 28, 28]. p: G_LAYOUT views of the parameters.
    training: BatchNorm normalises with batch statistics and updates bn_stats in place;
    otherwise it uses bn_stats (inference)."""
    x = z
    for i in range(3):
        k = i + 1
        ops.linear_forward(x, p[f"fc{k}.w"], None, out=ws.h[i])
        rm, rv = bn_stats[i]
        ops.batchnorm_forward(ws.h[i], p[f"bn{k}.gamma"], p[f"bn{k}.beta"], rm, rv, training,
                              BN_MOMENTUM, BN_EPS, out=ws.y[i], mean=ws.mean[i],
                              rstd=ws.rstd[i])
        ops.leaky_relu_forward(ws.y[i], LEAKY_SLOPE, out=ws.a[i])
        x = ws.a[i]
    ops.linear_forward(x, p["fc4.w"], p["fc4.b"], out=ws.h4)
    ops.tanh_forward(ws.h4, out=ws.image.reshape(ws.n, IMAGE_SIZE))
    return ws.image


def generator_backward(ops, p, g, ws, z, dimage):
    """Gradients of the generator's parameters into g (G_LAYOUT views of the gradient
    buffer, overwritten), given dimage = d loss / d image [n, 1, 28, 28] and the
    activations left in ws by generator_forward(training=True). z's gradient is not needed."""
    n = ws.n
    ops.tanh_backward(dimage.reshape(n, IMAGE_SIZE), ws.image.reshape(n, IMAGE_SIZE),
                      dx=ws.dh4)
    ops.linear_backward(ws.dh4, ws.a[2], p["fc4.w"], True, True, True,
                        dx=ws.da[2], dw=g["fc4.w"], db=g["fc4.b"])
    for i in (2, 1, 0):
        k = i + 1
        ops.leaky_relu_backward(ws.da[i], ws.y[i], LEAKY_SLOPE, dx=ws.dy[i])
        ops.batchnorm_backward(ws.dy[i], ws.h[i], p[f"bn{k}.gamma"], ws.mean[i], ws.rstd[i],
                               True, dx=ws.dh[i], dgamma=g[f"bn{k}.gamma"],
                               dbeta=g[f"bn{k}.beta"])
        x = ws.a[i - 1] if i > 0 else z
        ops.linear_backward(ws.dh[i], x, p[f"fc{k}.w"], i > 0, True, False,
                            dx=ws.da[i - 1] if i > 0 else None, dw=g[f"fc{k}.w"])


# ------------------------------------------------------------------------------ discriminator
def discriminator_forward(ops, p, ws, x, seed, step, pass_, training=True):
    """x [m, 1, 28, 28] -> ws.logits [m, 1]. Dropout masks come from
    dropout_seed(seed, step, layer, pass_); training=False skips dropout."""
    h = x
    for layer, (c, d) in enumerate(((ws.c1, ws.d1), (ws.c2, ws.d2))):
        ops.conv2d_forward(h, p[f"conv{layer + 1}.w"], None, 2, 1, out=c)
        if training:  # LeakyReLU then dropout, in one pass
            h = ops.leaky_relu_dropout_forward(c, LEAKY_SLOPE, DROPOUT_P,
                                               dropout_seed(seed, step, layer, pass_), out=d)
        else:
            h = ops.leaky_relu_forward(c, LEAKY_SLOPE, out=d)
    ops.linear_forward(h.reshape(ws.m, D_FLAT), p["fc.w"], p["fc.b"], out=ws.logits)
    return ws.logits


def discriminator_backward(ops, p, g, ws, x, seed, step, pass_, need_dweights, need_dx):
    """Backward of discriminator_forward(training=True) from ws.dlogits.
    need_dweights: write D's parameter gradients into g (discriminator step);
    need_dx: write d loss / d x into ws.dx (generator step). Work that is not needed is
    skipped: the generator step computes no weight gradients of D, the discriminator step
    no input gradient of conv1."""
    m, wd = ws.m, need_dweights
    ops.linear_backward(ws.dlogits, ws.d2.reshape(m, D_FLAT), p["fc.w"], True, wd, wd,
                        dx=ws.dd2.reshape(m, D_FLAT), dw=g["fc.w"] if wd else None,
                        db=g["fc.b"] if wd else None)
    ops.leaky_relu_dropout_backward(ws.dd2, ws.c2, LEAKY_SLOPE, DROPOUT_P,
                                    dropout_seed(seed, step, 1, pass_), dx=ws.dc2)
    ops.conv2d_backward(ws.dc2, ws.d1, p["conv2.w"], 2, 1, True, wd, False,
                        dx=ws.dd1, dw=g["conv2.w"] if wd else None)
    ops.leaky_relu_dropout_backward(ws.dd1, ws.c1, LEAKY_SLOPE, DROPOUT_P,
                                    dropout_seed(seed, step, 0, pass_), dx=ws.dc1)
    if wd or need_dx:
        ops.conv2d_backward(ws.dc1, x, p["conv1.w"], 2, 1, need_dx, wd, False,
                            dx=ws.dx if need_dx else None, dw=g["conv1.w"] if wd else None)



class Generator:
    """The trained generator as a function: generator(n) -> numpy float32 [n, 1, 28, 28] in
    [-1, 1], BatchNorm in inference mode (running statistics).

    generator(n, seed=None, z=None): z [n, 100] is drawn from N(0, 1) with
    numpy.random.default_rng(seed) unless given. Runs in chunks of at most `chunk` rows on
    the backend and device the parameters live on.
    """

    def __init__(self, ops, xp, g_params, bn_stats, chunk=256):
        self.ops, self.xp, self.chunk = ops, xp, chunk
        self.g_params, self.bn_stats = g_params, bn_stats
        self._workspaces = {}

    def __call__(self, n, seed=None, z=None):
        images = self.device_images(n, seed, z)
        return images.get() if self.xp is not np else images

    def device_images(self, n, seed=None, z=None):
        """As calling the generator, but the images stay on its device (a CuPy array on
        CUDA: gan_fast.evaluate scores them there without a round trip to the host)."""
        if z is None:
            z = np.random.default_rng(seed).standard_normal((n, Z_DIM), dtype=np.float32)
        z = np.ascontiguousarray(z, dtype=np.float32).reshape(-1, Z_DIM)
        out = self.xp.empty((z.shape[0], 1, 28, 28), dtype=np.float32)
        p = G_LAYOUT.views(self.g_params)
        z = self.xp.asarray(z)                      # one upload for all chunks
        for lo in range(0, z.shape[0], self.chunk):
            zc = z[lo:lo + self.chunk]
            rows = zc.shape[0]
            if rows not in self._workspaces:
                self._workspaces[rows] = GeneratorWorkspace(self.xp, rows)
            out[lo:lo + rows] = generator_forward(self.ops, p, self.bn_stats,
                                                  self._workspaces[rows], zc, training=False)
        return out
