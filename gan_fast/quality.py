"""gan_fast.quality: gan_fast.evaluate(), how good are the generated digits? Scores from
the judge, an MNIST classifier trained with gan_fast's own kernels (gan_fast.judge; weights
shipped in gan_fast/judge_weights.npz, ≥ 99% test accuracy).

    import gan_fast
    m = gan_fast.evaluate("runs/x/checkpoints/last.npz")     # or a TrainResult, a generator
    print(m.inception_score, m.frechet_distance, m.classes_covered)

For n generated images (generator(n) with noise seed `seed`) the judge gives p(y|x) and the
penultimate features f(x) (128 values); then
  classes_covered   digits predicted (argmax) for at least 1% of the images (0..10)
  kl_uniform        KL(predicted-class histogram ‖ uniform over 10) in nats: 0 when all
                    digits are equally frequent, ln 10 = 2.303 when one digit is all there is
  inception_score   exp(E_x KL(p(y|x) ‖ p(y))), p(y) = E_x p(y|x): 1 (worst) .. 10 (each
                    image one confident digit, all digits equally often)
  frechet_distance  ‖μ_g − μ_r‖² + tr(Σ_g + Σ_r − 2 (Σ_g^½ Σ_r Σ_g^½)^½) between Gaussian
                    fits of the features of the generated images and of the 10,000 MNIST test
                    images (a "Fréchet LeNet distance"; 0 for identical statistics)
  mean_confidence   mean over images of max_y p(y|x)
  judge_sha256      SHA-256 of the judge weights file: numbers made with different judges
                    are not comparable
  conditional_accuracy
                    for a conditional generator (trained with conditional=True): the share
                    of samples the judge assigns to the digit they were drawn for, each
                    digit drawn n/10 times; conditional_accuracy_per_digit, the same per digit
The MNIST test statistics are computed once per process (per device and judge) and cached.
The matrix square root uses NumPy eigendecompositions (no SciPy): for symmetric positive
semi-definite A and B, tr((A^½ B A^½)^½) = Σ sqrt(eigenvalues of A^½ B A^½).

On CUDA (a generator whose parameters are CuPy arrays, CuPy images, or device="cuda") the
images, the judge and the feature statistics stay on the GPU; what comes back is the
[n, 10] logits and the 128 x 128 covariance, once per call.
"""
from __future__ import annotations

import dataclasses
import inspect
import os
import pathlib
import time
from dataclasses import dataclass, field

import numpy as np

from .backend import array_module, cuda_available, is_device_array, to_host
from .checkpoint import load_generator
from .data import load_mnist, scale_images
from .judge import N_CLASSES, WEIGHTS_PATH, Judge

__all__ = ["evaluate", "QualityMetrics", "FeatureStats", "frechet_distance", "sqrtm_psd",
           "reference_statistics", "get_judge", "class_metrics", "conditional_accuracy"]

COVERED_FRACTION = 0.01   # a digit counts as covered with at least 1% of the samples


@dataclass
class QualityMetrics:
    """What evaluate() returns (as_dict() gives the JSON-able form)."""
    classes_covered: int
    kl_uniform: float
    inception_score: float
    frechet_distance: float
    mean_confidence: float
    class_fractions: list = field(default_factory=list)   # predicted share of each digit 0..9
    n: int = 0
    seed: int | None = None
    judge_sha256: str = ""
    device: str = "cpu"
    time_s: float = 0.0
    # A conditional generator: the share of samples the judge assigns to the digit asked
    # for, over all samples and per digit 0..9 (None for an unconditional one).
    conditional_accuracy: float | None = None
    conditional_accuracy_per_digit: list | None = None

    def as_dict(self):
        return dataclasses.asdict(self)

    def summary(self):
        """One line: classes, KL, IS, Fréchet distance, confidence (and the conditional
        accuracy, worst digit included, for a conditional generator)."""
        text = (f"classes {self.classes_covered}, KL {self.kl_uniform:.3f}, "
                f"IS {self.inception_score:.2f}, FD {self.frechet_distance:.2f}, "
                f"confidence {self.mean_confidence:.3f}")
        if self.conditional_accuracy is not None:
            per = self.conditional_accuracy_per_digit
            worst = int(np.argmin(per))
            text += (f", conditional accuracy {self.conditional_accuracy:.2%} (worst: digit "
                     f"{worst}, {per[worst]:.2%})")
        return text


@dataclass
class FeatureStats:
    """Mean [d] and covariance [d, d] (float64, NumPy) of features of n images."""
    mu: np.ndarray
    sigma: np.ndarray
    n: int


# ------------------------------------------------------------------------------ the numbers
def sqrtm_psd(a):
    """The symmetric square root of a symmetric positive semi-definite matrix (eigenvalues
    below 0, which only rounding produces, are taken as 0)."""
    a = np.asarray(a, dtype=np.float64)
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a: FeatureStats, b: FeatureStats) -> float:
    """Fréchet distance between the Gaussians N(a.mu, a.sigma) and N(b.mu, b.sigma)."""
    root_a = sqrtm_psd(a.sigma)
    m = root_a @ b.sigma @ root_a
    eig = np.linalg.eigvalsh((m + m.T) / 2)
    cross = float(np.sqrt(np.clip(eig, 0, None)).sum())
    diff = a.mu - b.mu
    d = float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * cross)
    return max(d, 0.0)


def feature_statistics(features) -> FeatureStats:
    """Mean and (unbiased) covariance of features [n, d] (NumPy or CuPy), in float64,
    computed where the features are; NumPy results."""
    xp = array_module(features)
    f = features.astype(xp.float64)
    n = f.shape[0]
    mu = f.mean(axis=0)
    centred = f - mu
    sigma = centred.T @ centred / max(n - 1, 1)
    return FeatureStats(to_host(mu), to_host(sigma), n)


def class_metrics(logits):
    """(classes_covered, kl_uniform, inception_score, mean_confidence, class_fractions) from
    the judge's logits [n, C] (NumPy), in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)                          # p(y|x)  [n, C]
    n, C = p.shape
    counts = np.bincount(p.argmax(axis=1), minlength=C)
    frac = counts / n
    covered = int((frac >= COVERED_FRACTION).sum())
    kl_uniform = float(np.sum(np.where(frac > 0, frac * np.log(np.where(frac > 0, frac, 1) * C), 0)))
    p_y = p.mean(axis=0)                                       # p(y)  [C]
    with np.errstate(divide="ignore"):
        log_p = np.where(p > 0, np.log(p), 0.0)
        log_py = np.where(p_y > 0, np.log(p_y), 0.0)
    kl_rows = np.sum(p * (log_p - log_py[None, :]), axis=1)   # KL(p(y|x) ‖ p(y))  [n]
    inception = float(np.exp(kl_rows.mean()))
    confidence = float(p.max(axis=1).mean())
    return covered, kl_uniform, inception, confidence, frac.tolist()


# ------------------------------------------------------------------------------ caches
_JUDGES = {}
_REFERENCE = {}


def get_judge(device="cpu", path=None):
    """The judge on a device, loaded once per process."""
    key = (device, str(pathlib.Path(path or WEIGHTS_PATH).resolve()))
    if key not in _JUDGES:
        _JUDGES[key] = Judge(path, device)
    return _JUDGES[key]


def reference_statistics(judge, data_dir=None, split="test") -> FeatureStats:
    """Feature statistics of the MNIST images of `split` under this judge (cached)."""
    key = (judge.device, judge.sha256, split,
           str(data_dir or os.environ.get("GAN_FAST_DATA") or ""))
    if key not in _REFERENCE:
        images, _ = load_mnist(split, data_dir, progress=False)
        _, features = judge.run(judge.xp.asarray(scale_images(images)))
        _REFERENCE[key] = feature_statistics(features)
    return _REFERENCE[key]


# ------------------------------------------------------------------------------ evaluate
def evaluate(generator_or_checkpoint, n=10000, seed=0, *, device=None, data_dir=None,
             judge_path=None) -> QualityMetrics:
    """Score n generated MNIST digits with the judge (the module docstring defines each
    number).

    generator_or_checkpoint: a generator (callable n -> images [n, 1, 28, 28] in [-1, 1],
    called as generator(n, seed=seed) when it takes a seed), a TrainResult (its .generator),
    a checkpoint path (its generator, loaded with gan_fast.checkpoint.load_generator), or
    the images themselves (a NumPy or CuPy array [m, 1, 28, 28] or [m, 28, 28] in [-1, 1],
    of which the first n are used).
    device: where the judge runs: "cpu", "cuda" or None/"auto" (where the generator's
    parameters or the images already are; for a checkpoint, cuda when available).
    data_dir: where MNIST is (for the test-set statistics; see gan_fast.data.load_mnist).
    """
    t0 = time.perf_counter()
    images, device, used_seed, labels = _images_of(generator_or_checkpoint, n, seed, device)
    judge = get_judge(device, judge_path)
    if judge.xp is np:
        images = to_host(images)
    images = judge.xp.asarray(images, dtype=judge.xp.float32).reshape(-1, 1, 28, 28)
    if images.shape[0] < 2:
        raise ValueError(f"evaluate needs at least 2 images, got {images.shape[0]}")
    logits, features = judge.run(images)
    stats = feature_statistics(features)
    ref = reference_statistics(judge, data_dir)
    logits = to_host(logits)
    covered, kl, inception, confidence, frac = class_metrics(logits)
    accuracy = per_digit = None
    if labels is not None:
        accuracy, per_digit = conditional_accuracy(logits, labels)
    return QualityMetrics(
        classes_covered=covered, kl_uniform=kl, inception_score=inception,
        frechet_distance=frechet_distance(stats, ref), mean_confidence=confidence,
        class_fractions=frac, n=int(images.shape[0]), seed=used_seed,
        judge_sha256=judge.sha256, device=device, time_s=time.perf_counter() - t0,
        conditional_accuracy=accuracy, conditional_accuracy_per_digit=per_digit)


def conditional_accuracy(logits, labels):
    """(share of rows whose judge prediction is their label, the same per label 0..9;
    NaN for a label that has no rows) from logits [n, 10] and int labels [n] (NumPy)."""
    labels = np.asarray(labels)
    hit = np.asarray(logits).argmax(axis=1) == labels
    per = [float(hit[labels == d].mean()) if (labels == d).any() else float("nan")
           for d in range(N_CLASSES)]
    return float(hit.mean()), per


def _is_array(obj):
    return isinstance(obj, np.ndarray) or is_device_array(obj)


def _images_of(source, n, seed, device):
    """(images [m, 1, 28, 28] NumPy or CuPy, device, seed used or None, the digits asked
    for or None) of any source. A conditional generator draws every digit equally often
    (its default digits: 0, 1, ..., 9, 0, ...)."""
    if device == "auto":
        device = None
    if _is_array(source):
        on_gpu = is_device_array(source)
        return source[:n], device or ("cuda" if on_gpu else "cpu"), None, None
    if isinstance(source, (str, os.PathLike)):
        want = device or ("cuda" if cuda_available() else "cpu")
        source = load_generator(source, "kernels", want)
    elif not callable(source) and hasattr(source, "generator"):
        source = source.generator                               # a TrainResult
    if not callable(source):
        raise TypeError("evaluate: expected a generator, a TrainResult, a checkpoint path or "
                        f"an image array, got {type(source).__name__}")
    if hasattr(source, "device_images"):                        # gan_fast.model.Generator
        gen_device = "cuda" if source.xp is not np else "cpu"
        device = device or gen_device
        labels = source.labels(n)
        images = (source.device_images(n, seed=seed, digits=labels) if device == gen_device
                  else source(n, seed=seed, digits=labels))
        return images, device, seed, labels
    try:
        takes_seed = "seed" in inspect.signature(source).parameters
    except (TypeError, ValueError):
        takes_seed = False
    images = source(n, seed=seed) if takes_seed else source(n)
    on_gpu = is_device_array(images)
    return images, device or ("cuda" if on_gpu else "cpu"), seed if takes_seed else None, None
