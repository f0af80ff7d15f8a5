"""gan_fast.model: the generator and discriminator of the MNIST GAN, as calls into an op
backend (gan_fast.ops, or gan_fast.reference which has the same API) on preallocated
buffers.

Generator  z [N, 100] ~ N(0, 1)  (conditional: z ⊕ one-hot(digit) [N, 110])
    -> Linear 256 (no bias) -> BatchNorm -> LeakyReLU 0.2
    -> Linear 512 (no bias) -> BatchNorm -> LeakyReLU 0.2
    -> Linear 1024 (no bias) -> BatchNorm -> LeakyReLU 0.2
    -> Linear 784 (bias) -> tanh -> image [N, 1, 28, 28] in [-1, 1]
Discriminator  image [N, 1, 28, 28]  (conditional "channels": ⊕ 10 one-hot label planes)
    -> Conv 64, 3x3, stride 2, pad 1 (no bias) -> LeakyReLU 0.2 -> Dropout p  [N, 64, 14, 14]
    -> Conv 128, 3x3, stride 2, pad 1 (no bias) -> LeakyReLU 0.2 -> Dropout p [N, 128, 7, 7]
    -> [minibatch standard deviation: + 1 channel]                             [N, 129, 7, 7]
    -> Flatten -> Linear 1 (bias) -> logit [N, 1]
       (conditional "projection": + <embed[digit], features>, Miyato & Koyama 2018)
ModelSpec chooses the optional parts; ModelSpec() is the seed's model. With
spectral_norm, every weight of D is divided by its largest singular value, estimated by
one power iteration per training-mode forward (Miyato et al. 2018; the u vectors are
state, kept in DiscriminatorNet.sn_layout's flat buffer and checkpointed).

Parameters of one network live in ONE flat float32 buffer (ParamLayout gives a view per
tensor), their gradients in a second flat buffer with the same layout, so one adam_step
call updates a whole network. BatchNorm running statistics live in one flat buffer of their
own (not trained; one ema_update call averages them). Activations and their gradients live
in workspaces allocated once per batch size and reused every step through the ops'
out=/dx=/dw= arguments: a step allocates nothing.

Every function takes `xp` (numpy or cupy) for the arrays it allocates and `ops` for the
arithmetic, so the same code runs the CPU kernels, the NumPy reference and the CUDA kernels.

Initialisation (init_params): PyTorch's defaults, seeded. Linear and Conv weights and the
last Linear's biases are U(−1/√fan_in, 1/√fan_in) (kaiming_uniform with a = √5, which is
what torch.nn.Linear/Conv2d do); BatchNorm gamma = 1, beta = 0; running mean 0, var 1;
projection embeddings U(−1/√D, 1/√D) like the head's weight.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["ModelSpec", "ParamLayout", "GeneratorNet", "DiscriminatorNet", "G_LAYOUT",
           "D_LAYOUT", "Z_DIM", "N_CLASSES", "G_HIDDEN", "LEAKY_SLOPE", "DROPOUT_P",
           "BN_MOMENTUM", "BN_EPS", "init_params", "dropout_seed", "dropout_key", "stream_key",
           "shape_signature", "Generator", "GeneratorWorkspace", "DiscriminatorWorkspace"]

Z_DIM = 100
N_CLASSES = 10
G_HIDDEN = (256, 512, 1024)
IMAGE_SIZE = 28 * 28
LEAKY_SLOPE = 0.2
DROPOUT_P = 0.3
BN_MOMENTUM = 0.1
BN_EPS = 1e-5
D_CONV = (64, 128)               # output channels of conv1, conv2; 3x3, stride 2, pad 1
D_FEATURES = 128 * 7 * 7
_ALIGN = 16                      # tensors start on 64-byte boundaries inside the flat buffer
D_CONDITIONINGS = ("projection", "channels")


@dataclass(frozen=True)
class ModelSpec:
    """The optional parts of the networks (ModelSpec() is the seed's model)."""
    conditional: bool = False             # G takes a digit; D judges (image, digit) pairs
    d_conditioning: str = "projection"    # how D sees the digit: projection head or channels
    minibatch_stddev: int = 0             # group size of D's minibatch-stddev feature (0: off)
    spectral_norm: bool = False           # D's weights divided by their spectral norm
    d_dropout: float = DROPOUT_P          # dropout after D's LeakyReLUs (0: none)

    def __post_init__(self):
        if self.d_conditioning not in D_CONDITIONINGS:
            raise ValueError(f"d_conditioning must be one of {D_CONDITIONINGS}, "
                             f"got {self.d_conditioning!r}")
        if self.minibatch_stddev < 0:
            raise ValueError(f"minibatch_stddev must be >= 0, got {self.minibatch_stddev}")
        if not 0 <= self.d_dropout < 1:
            raise ValueError(f"d_dropout must be in [0, 1), got {self.d_dropout}")

    def as_dict(self):
        return dataclasses.asdict(self)


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
        elif kind in ("b", "embed"):
            bound = 1.0 / math.sqrt(fan_in[layer])
            views[name][...] = rng.uniform(-bound, bound, size=shape)
        elif kind == "gamma":
            views[name][...] = 1.0
        elif kind == "beta":
            views[name][...] = 0.0
    return flat


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


def stream_key(run_seed, stream):
    """The uint64 key of one of a run's counter-based random streams (the batches' order,
    the noise): the ops draw element i of step s from (key, s, i), so a step's random
    numbers depend on nothing but the run's seed and the step's index."""
    return _mix64(_mix64(run_seed + 0x9E3779B97F4A7C15) + (stream << 32) + 0xD1B54A32D192ED03)


def dropout_key(run_seed, layer, pass_):
    """The seed to give the dropout ops together with step=s: they draw with
    mix(key + 8·s), which is dropout_seed(run_seed, s, layer, pass_), so the step can be a
    counter in device memory (a CUDA graph's replays each draw their own masks)."""
    return (_mix64(run_seed + 0x9E3779B97F4A7C15) + (layer << 1) + pass_) & _M64


def _one_hot(width):
    """[10, 10 * width] float32: row c is 1 on the c-th block of width entries (one-hot
    digits for width 1, one-hot label planes of width 784 for D's input channels)."""
    table = np.zeros((N_CLASSES, N_CLASSES * width), dtype=np.float32)
    for c in range(N_CLASSES):
        table[c, c * width:(c + 1) * width] = 1.0
    return table


# ------------------------------------------------------------------------------ generator
class GeneratorWorkspace:
    """Activations and gradients of the generator for batch size n (allocated once).

    The image output is written into `image` when given (the trainer passes the fake half
    of the discriminator's input buffer), else into a buffer of its own."""

    def __init__(self, xp, n, image=None, dtype=None, conditional=False):
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
        self.image = xp.empty((n, 1, 28, 28), f32) if image is None else image
        self.dh4 = xp.empty((n, IMAGE_SIZE), f32)
        if conditional:
            self.onehot = xp.empty((n, N_CLASSES), f32)          # one-hot digits
            self.zin = xp.empty((n, Z_DIM + N_CLASSES), f32)     # z ⊕ one-hot


class GeneratorNet:
    """The generator of a ModelSpec: its parameter layout, forward and backward."""

    def __init__(self, spec=ModelSpec()):
        self.spec = spec
        z_in = Z_DIM + (N_CLASSES if spec.conditional else 0)
        self.layout = ParamLayout([
            ("fc1.w", (G_HIDDEN[0], z_in)), ("bn1.gamma", (G_HIDDEN[0],)),
            ("bn1.beta", (G_HIDDEN[0],)),
            ("fc2.w", (G_HIDDEN[1], G_HIDDEN[0])), ("bn2.gamma", (G_HIDDEN[1],)),
            ("bn2.beta", (G_HIDDEN[1],)),
            ("fc3.w", (G_HIDDEN[2], G_HIDDEN[1])), ("bn3.gamma", (G_HIDDEN[2],)),
            ("bn3.beta", (G_HIDDEN[2],)),
            ("fc4.w", (IMAGE_SIZE, G_HIDDEN[2])), ("fc4.b", (IMAGE_SIZE,)),
        ])
        # BatchNorm running statistics of every layer in one flat buffer.
        self.bn_layout = ParamLayout([(f"bn{k}.running_{s}", (c,))
                                      for k, c in enumerate(G_HIDDEN, 1)
                                      for s in ("mean", "var")])
        self._tables = {}

    def new_bn_stats(self, xp):
        """A flat buffer of running statistics at their initial values (mean 0, var 1)."""
        flat = np.zeros(self.bn_layout.size, dtype=np.float32)
        for name, view in self.bn_layout.views(flat).items():
            view[...] = 1.0 if name.endswith("var") else 0.0
        return xp.asarray(flat)

    def bn_pairs(self, bn_flat):
        """[(running_mean, running_var)] per layer: views of the flat statistics buffer."""
        v = self.bn_layout.views(bn_flat)
        return [(v[f"bn{k}.running_mean"], v[f"bn{k}.running_var"])
                for k in range(1, len(G_HIDDEN) + 1)]

    def workspace(self, xp, n, image=None, dtype=None):
        return GeneratorWorkspace(xp, n, image, dtype, self.spec.conditional)

    def _table(self, xp, dtype):
        key = (xp.__name__, np.dtype(dtype).str)
        if key not in self._tables:
            self._tables[key] = xp.asarray(_one_hot(1), dtype=dtype)
        return self._tables[key]

    def forward(self, ops, p, bn_stats, ws, z, labels=None, training=True,
                momentum=BN_MOMENTUM):
        """z [n, 100] (and labels [n] int64 when conditional) -> ws.image [n, 1, 28, 28].
        p: layout views of the parameters; bn_stats: the flat running-statistics buffer.
        training: BatchNorm normalises with batch statistics and updates bn_stats in place
        with this momentum; otherwise it uses bn_stats (inference)."""
        x = z
        if self.spec.conditional:
            ops.embedding_forward(self._table(_xp_of(ws.onehot), ws.onehot.dtype), labels,
                                  out=ws.onehot)
            x = ops.concat_forward(z, ws.onehot, out=ws.zin)
        for i, (rm, rv) in enumerate(self.bn_pairs(bn_stats)):
            k = i + 1
            ops.linear_forward(x, p[f"fc{k}.w"], None, out=ws.h[i])
            ops.batchnorm_forward(ws.h[i], p[f"bn{k}.gamma"], p[f"bn{k}.beta"], rm, rv, training,
                                  momentum, BN_EPS, out=ws.y[i], mean=ws.mean[i],
                                  rstd=ws.rstd[i])
            ops.leaky_relu_forward(ws.y[i], LEAKY_SLOPE, out=ws.a[i])
            x = ws.a[i]
        # The last layer and tanh in one op (on CUDA: tanh in the GEMM's epilogue).
        ops.linear_forward(x, p["fc4.w"], p["fc4.b"], out=ws.image.reshape(ws.n, IMAGE_SIZE),
                           activation="tanh")
        return ws.image

    def backward(self, ops, p, g, ws, z, dimage):
        """Gradients of the parameters into g (layout views of the gradient buffer,
        overwritten), given dimage = d loss / d image [n, 1, 28, 28] and the activations
        left in ws by forward(training=True). z's gradient is not needed."""
        n = ws.n
        ops.tanh_backward(dimage.reshape(n, IMAGE_SIZE), ws.image.reshape(n, IMAGE_SIZE),
                          dx=ws.dh4)
        ops.linear_backward(ws.dh4, ws.a[2], p["fc4.w"], True, True, True,
                            dx=ws.da[2], dw=g["fc4.w"], db=g["fc4.b"])
        z_in = ws.zin if self.spec.conditional else z
        for i in (2, 1, 0):
            k = i + 1
            ops.leaky_relu_backward(ws.da[i], ws.y[i], LEAKY_SLOPE, dx=ws.dy[i])
            ops.batchnorm_backward(ws.dy[i], ws.h[i], p[f"bn{k}.gamma"], ws.mean[i],
                                   ws.rstd[i], True, dx=ws.dh[i], dgamma=g[f"bn{k}.gamma"],
                                   dbeta=g[f"bn{k}.beta"])
            x = ws.a[i - 1] if i > 0 else z_in
            ops.linear_backward(ws.dh[i], x, p[f"fc{k}.w"], i > 0, True, False,
                                dx=ws.da[i - 1] if i > 0 else None, dw=g[f"fc{k}.w"])


def _xp_of(a):
    if isinstance(a, np.ndarray):
        return np
    import cupy
    return cupy


# ------------------------------------------------------------------------------ discriminator
class DiscriminatorWorkspace:
    """Activations and gradients of the discriminator for batch size m (allocated once).
    rows(lo, hi) gives a workspace of views on rows lo:hi (contiguous, no copies)."""

    _ROWS = ("xin", "d1", "d2", "feat", "logits", "dlogits", "dfeat", "dd2",
             "dc2", "dd1", "dc1", "dxin", "dx", "planes")

    def __init__(self, xp, m, spec=ModelSpec(), dtype=None, _views=None):
        self.spec = spec
        if _views is not None:
            self.__dict__.update(_views)
            return
        f32 = dtype or xp.float32
        self.m = m
        cin = 1 + (N_CLASSES if spec.conditional and spec.d_conditioning == "channels" else 0)
        fch = D_CONV[1] + (1 if spec.minibatch_stddev else 0)
        self.xin = self.dxin = self.planes = None
        if cin > 1:
            self.planes = xp.empty((m, N_CLASSES, 28, 28), f32)   # one-hot label planes
            self.xin = xp.empty((m, cin, 28, 28), f32)             # image ⊕ planes
            self.dxin = xp.empty((m, cin, 28, 28), f32)
        # conv1 and conv2 after LeakyReLU and dropout (fused into the convolutions; the
        # backward needs only these: see DiscriminatorNet._activation_backward)
        self.d1 = xp.empty((m, D_CONV[0], 14, 14), f32)
        self.d2 = xp.empty((m, D_CONV[1], 7, 7), f32)
        self.logits = xp.empty((m, 1), f32)
        self.dlogits = xp.empty((m, 1), f32)
        self.dd2 = xp.empty((m, D_CONV[1], 7, 7), f32)
        self.dc2 = xp.empty((m, D_CONV[1], 7, 7), f32)
        self.dd1 = xp.empty((m, D_CONV[0], 14, 14), f32)
        self.dc1 = xp.empty((m, D_CONV[0], 14, 14), f32)
        self.dx = xp.empty((m, 1, 28, 28), f32)    # d loss / d image (generator step only)
        if spec.minibatch_stddev:
            self.feat = xp.empty((m, fch, 7, 7), f32)     # d2 ⊕ the stddev channel
            self.dfeat = xp.empty((m, fch, 7, 7), f32)
        else:
            self.feat, self.dfeat = self.d2, self.dd2

    def rows(self, lo, hi):
        views = {k: (None if getattr(self, k) is None else getattr(self, k)[lo:hi])
                 for k in self._ROWS}
        if not self.spec.minibatch_stddev:   # feat is d2 itself: keep the aliasing
            views["feat"], views["dfeat"] = views["d2"], views["dd2"]
        views["m"] = hi - lo
        return DiscriminatorWorkspace(None, hi - lo, self.spec, _views=views)


class DiscriminatorNet:
    """The discriminator of a ModelSpec: its parameter layout, forward and backward.

    With spectral_norm, the normalised weights, v and sigma of each weight live in
    sn_buffers(xp) (allocated once, shared by every workspace), and the power iteration's
    u vectors in a flat buffer laid out by sn_layout."""

    SN_WEIGHTS = ("conv1.w", "conv2.w", "fc.w")

    def __init__(self, spec=ModelSpec()):
        self.spec = spec
        cin = 1 + (N_CLASSES if spec.conditional and spec.d_conditioning == "channels" else 0)
        flat = D_FEATURES + (7 * 7 if spec.minibatch_stddev else 0)
        self.flat = flat
        entries = [("conv1.w", (D_CONV[0], cin, 3, 3)), ("conv2.w", (D_CONV[1], D_CONV[0], 3, 3)),
                   ("fc.w", (1, flat)), ("fc.b", (1,))]
        if spec.conditional and spec.d_conditioning == "projection":
            entries.append(("fc.embed", (N_CLASSES, flat)))
        self.layout = ParamLayout(entries)
        shapes = dict(self.layout.entries)
        self.sn_layout = (ParamLayout([(f"{name}.u", (shapes[name][0],))
                                       for name in self.SN_WEIGHTS])
                          if spec.spectral_norm else None)
        self._tables = {}

    def workspace(self, xp, m, dtype=None):
        return DiscriminatorWorkspace(xp, m, self.spec, dtype)

    def new_sn_state(self, xp, rng):
        """The power iteration's u vectors, random unit vectors (PyTorch's initialisation:
        normal, normalised), drawn from the numpy Generator rng."""
        flat = np.zeros(self.sn_layout.size, dtype=np.float32)
        for name, view in self.sn_layout.views(flat).items():
            u = rng.standard_normal(view.shape)
            view[...] = u / max(np.linalg.norm(u), 1e-12)
        return xp.asarray(flat)

    def sn_buffers(self, xp, dtype=None):
        """Per spectrally normalised weight: (w_sn, dw_sn, v, sigma) buffers."""
        f32 = dtype or xp.float32
        shapes = dict(self.layout.entries)
        return {name: (xp.empty(shapes[name], f32), xp.empty(shapes[name], f32),
                       xp.empty(math.prod(shapes[name][1:]), f32), xp.empty((), f32))
                for name in self.SN_WEIGHTS}

    def _planes(self, xp, dtype):
        key = (xp.__name__, np.dtype(dtype).str)
        if key not in self._tables:
            self._tables[key] = xp.asarray(_one_hot(28 * 28), dtype=dtype)
        return self._tables[key]

    def weights(self, ops, p, sn, sn_u):
        """The weights forward uses: p itself, or with spectral_norm one power iteration
        per weight (u updated in place) and the normalised weights from sn."""
        if not self.spec.spectral_norm:
            return p
        w = dict(p)
        u = self.sn_layout.views(sn_u)
        for name in self.SN_WEIGHTS:
            w_sn, _, v, sigma = sn[name]
            ops.spectral_norm_forward(p[name], u[f"{name}.u"], out=w_sn, v=v, sigma=sigma)
            w[name] = w_sn
        return w

    def forward(self, ops, w, ws, x, seed, step, pass_, labels=None, segments=None,
                training=True):
        """x [m, 1, 28, 28] (and labels [m] when conditional) -> ws.logits [m, 1].
        w: the weights (weights() of the parameters). Dropout masks come from
        dropout_seed(seed, step, layer, pass_), drawn by the ops from dropout_key and step
        (an int, or a one-element int64 array the kernels read when they run: a CUDA
        graph's replays draw their own masks); training=False skips dropout. segments:
        row ranges whose examples the minibatch-stddev feature keeps apart (the trainer's
        real and generated halves); default one segment of all rows."""
        spec = self.spec
        h = x
        if ws.xin is not None:                           # conditional, label channels
            ops.embedding_forward(self._planes(_xp_of(ws.planes), ws.planes.dtype), labels,
                                  out=ws.planes.reshape(ws.m, -1))
            h = ops.concat_forward(x, ws.planes, out=ws.xin)
        p = spec.d_dropout if training else 0.0
        for layer, d in enumerate((ws.d1, ws.d2)):
            # convolution, LeakyReLU and dropout in one op (the activation in its epilogue)
            h = ops.conv2d_forward(h, w[f"conv{layer + 1}.w"], None, 2, 1, out=d,
                                   activation="leaky_relu", slope=LEAKY_SLOPE, dropout_p=p,
                                   seed=dropout_key(seed, layer, pass_), step=step)
        if spec.minibatch_stddev:
            for lo, hi in segments or ((0, ws.m),):
                ops.minibatch_stddev_forward(ws.d2[lo:hi], spec.minibatch_stddev,
                                             out=ws.feat[lo:hi])
        feat = ws.feat.reshape(ws.m, self.flat)
        if spec.conditional and spec.d_conditioning == "projection":
            ops.projection_head_forward(feat, w["fc.w"], w["fc.b"], w["fc.embed"], labels,
                                        out=ws.logits)
        else:
            ops.linear_forward(feat, w["fc.w"], w["fc.b"], out=ws.logits)
        return ws.logits

    def backward(self, ops, w, g, ws, x, seed, step, pass_, need_dweights, need_dx,
                 labels=None, segments=None, sn=None, sn_u=None):
        """Backward of forward(training=True) from ws.dlogits. w: the weights forward used.
        need_dweights: write D's parameter gradients into g (discriminator step; with
        spectral_norm through the normalisation, using sn and sn_u as forward left them);
        need_dx: write d loss / d x into ws.dx (generator step). Work that is not needed is
        skipped: the generator step computes no weight gradients of D, the discriminator
        step no input gradient of conv1."""
        spec, m, wd = self.spec, ws.m, need_dweights
        gw = g
        if wd and spec.spectral_norm:     # the normalised weights' gradients go to sn first
            gw = dict(g)
            for name in self.SN_WEIGHTS:
                gw[name] = sn[name][1]
        feat = ws.feat.reshape(m, self.flat)
        dfeat = ws.dfeat.reshape(m, self.flat)
        if spec.conditional and spec.d_conditioning == "projection":
            ops.projection_head_backward(ws.dlogits, feat, w["fc.w"], w["fc.embed"], labels,
                                         True, wd, wd, wd, dh=dfeat,
                                         dw=gw["fc.w"] if wd else None,
                                         db=gw["fc.b"] if wd else None,
                                         dembed=gw["fc.embed"] if wd else None)
        else:
            ops.linear_backward(ws.dlogits, feat, w["fc.w"], True, wd, wd, dx=dfeat,
                                dw=gw["fc.w"] if wd else None, db=gw["fc.b"] if wd else None)
        if spec.minibatch_stddev:
            for lo, hi in segments or ((0, m),):
                ops.minibatch_stddev_backward(ws.dfeat[lo:hi], ws.d2[lo:hi],
                                              spec.minibatch_stddev, dx=ws.dd2[lo:hi])
        self._activation_backward(ops, ws.dd2, ws.d2, seed, step, 1, pass_, ws.dc2)
        ops.conv2d_backward(ws.dc2, ws.d1, w["conv2.w"], 2, 1, True, wd, False,
                            dx=ws.dd1, dw=gw["conv2.w"] if wd else None)
        self._activation_backward(ops, ws.dd1, ws.d1, seed, step, 0, pass_, ws.dc1)
        if wd or need_dx:
            xin = ws.xin if ws.xin is not None else x
            dxin = (ws.dxin if ws.xin is not None else ws.dx) if need_dx else None
            ops.conv2d_backward(ws.dc1, xin, w["conv1.w"], 2, 1, need_dx, wd, False,
                                dx=dxin, dw=gw["conv1.w"] if wd else None)
            if need_dx and ws.xin is not None:
                ops.concat_backward(ws.dxin, 1, True, False, da=ws.dx)
        if wd and spec.spectral_norm:
            u = self.sn_layout.views(sn_u)
            for name in self.SN_WEIGHTS:
                w_sn, dw_sn, v, sigma = sn[name]
                ops.spectral_norm_backward(dw_sn, w_sn, u[f"{name}.u"], v, sigma, dw=g[name])

    def _activation_backward(self, ops, dy, d, seed, step, layer, pass_, dx):
        """The gradient through LeakyReLU and dropout, given their output d in place of the
        convolution's output c (which forward no longer keeps): the backward ops test x > 0
        only, and d > 0 exactly where c > 0 for every kept element (d = c·scale or
        slope·c·scale, slope > 0), while a dropped element's gradient is 0 either way. So the
        result is bitwise the one from c."""
        p = self.spec.d_dropout
        if p > 0:
            ops.leaky_relu_dropout_backward(dy, d, LEAKY_SLOPE, p,
                                            dropout_key(seed, layer, pass_), step, dx=dx)
        else:
            ops.leaky_relu_backward(dy, d, LEAKY_SLOPE, dx=dx)


G_LAYOUT = GeneratorNet().layout
D_LAYOUT = DiscriminatorNet().layout


def shape_signature(spec=ModelSpec()):
    """What a checkpoint must match to be loaded into this model."""
    g, d = GeneratorNet(spec), DiscriminatorNet(spec)
    return {"generator": g.layout.signature(), "discriminator": d.layout.signature(),
            "generator_bn": list(G_HIDDEN)}


# ------------------------------------------------------------------------------ sampling
class Generator:
    """A trained generator as a function: generator(n) -> numpy float32 [n, 1, 28, 28] in
    [-1, 1], BatchNorm in inference mode (running statistics).

    generator(n, seed=None, z=None, digits=None): z [n, 100] is drawn from N(0, 1) with
    numpy.random.default_rng(seed) unless given. A conditional generator draws the digits
    `digits` (an int for all n, or n labels in 0..9; default: 0, 1, ..., 9, 0, 1, ... so
    that every digit is drawn equally often); an unconditional one refuses digits. Runs in
    chunks of at most `chunk` rows on the backend and device the parameters live on.
    """

    def __init__(self, ops, xp, g_params, bn_stats, spec=ModelSpec(), chunk=256):
        self.ops, self.xp, self.chunk = ops, xp, chunk
        self.net = GeneratorNet(spec)
        self.spec = spec
        self.g_params, self.bn_stats = g_params, bn_stats
        self._workspaces = {}

    @property
    def conditional(self):
        return self.spec.conditional

    def __call__(self, n, seed=None, z=None, digits=None):
        images = self.device_images(n, seed, z, digits)
        return images.get() if self.xp is not np else images

    def labels(self, n, digits=None):
        """The int64 labels [n] that generator(n, digits=digits) draws (NumPy)."""
        if not self.conditional:
            if digits is not None:
                raise ValueError("digits: this generator is unconditional (trained without "
                                 "conditional=True); it cannot draw a chosen digit")
            return None
        if digits is None:
            return np.arange(n, dtype=np.int64) % N_CLASSES
        d = np.asarray(digits)
        if d.dtype.kind not in "iu" and not (d.dtype.kind == "f" and np.all(d == np.round(d))):
            raise TypeError(f"digits: expected an int or integer labels, got {d.dtype}")
        d = d.astype(np.int64)
        if d.ndim == 0:
            d = np.full(n, int(d), dtype=np.int64)
        if d.shape != (n,):
            raise ValueError(f"digits: expected an int or {n} labels (shape ({n},)), got "
                             f"shape {d.shape}")
        if d.size and (d.min() < 0 or d.max() >= N_CLASSES):
            raise ValueError(f"digits: expected digits in 0..9, got {int(d[(d < 0) | (d >= 10)][0])}")
        return d

    def device_images(self, n, seed=None, z=None, digits=None):
        """As calling the generator, but the images stay on its device (a CuPy array on
        CUDA: gan_fast.evaluate scores them there without a round trip to the host)."""
        if z is None:
            z = np.random.default_rng(seed).standard_normal((n, Z_DIM), dtype=np.float32)
        z = np.ascontiguousarray(z, dtype=np.float32).reshape(-1, Z_DIM)
        labels = self.labels(z.shape[0], digits)
        out = self.xp.empty((z.shape[0], 1, 28, 28), dtype=np.float32)
        p = self.net.layout.views(self.g_params)
        z = self.xp.asarray(z)                      # one upload for all chunks
        labels = None if labels is None else self.xp.asarray(labels)
        for lo in range(0, z.shape[0], self.chunk):
            zc = z[lo:lo + self.chunk]
            rows = zc.shape[0]
            if rows not in self._workspaces:
                self._workspaces[rows] = self.net.workspace(self.xp, rows)
            lc = None if labels is None else labels[lo:lo + rows]
            out[lo:lo + rows] = self.net.forward(self.ops, p, self.bn_stats,
                                                 self._workspaces[rows], zc, lc, training=False)
        return out
