"""Parity helpers: one assert_close for every kernel-vs-reference comparison, and the one
table of tolerances it uses.

Bounds are on the relative norm ‖actual − ref‖ / ‖ref‖ against a float64 reference.
How they were chosen: float32 carries 2^-24 ≈ 6e-8 relative rounding per operation.
Elementwise ops do a handful of operations per element, so 1e-6 leaves ~10x headroom
over what they show; GEMM-based ops and reductions add K-long float32 sums (K up to a
few thousand here), whose rounding grows like sqrt(K)·6e-8, so 1e-5 leaves headroom
there. Anything wrong (a missed element, a transposed index) lands orders of magnitude
above these.
"""
from __future__ import annotations

import numpy as np

TOLERANCES = {
    "linear_forward": 1e-5,
    "linear_backward": 1e-5,
    "conv2d_forward": 1e-5,
    "conv2d_backward": 1e-5,
    "batchnorm_forward": 1e-5,
    "batchnorm_backward": 1e-5,
    "leaky_relu_forward": 1e-6,
    "leaky_relu_backward": 1e-6,
    "tanh_forward": 1e-6,
    "tanh_backward": 1e-6,
    "dropout_forward": 1e-6,
    "dropout_backward": 1e-6,
    "leaky_relu_dropout_forward": 1e-6,
    "leaky_relu_dropout_backward": 1e-6,
    "bce_with_logits": 1e-5,
    # Each row is computed in double and rounded once to float32 (dlogits) or summed in
    # double before one rounding (loss): ~6e-8 per element, so 1e-6 leaves ~10x headroom.
    "softmax_cross_entropy": 1e-6,
    # Adam chains ~12 float32 roundings per element per step and the test runs 3 steps;
    # with one element the norm is that element's error (seen up to 1.04e-6).
    "adam_step": 3e-6,
    # random_normal against exact float64 Box–Muller of the same uniforms: the kernels'
    # float32 formula (series log, sin and cos; see csrc/random_normal/random_normal.h) is
    # within a few ulp per element; 10^6 samples showed 4.7e-8. 1e-6 leaves 20x headroom;
    # the bitwise check against reference.random_normal_float32 is the exact one.
    "random_normal": 1e-6,
    # Integer results (batch_indices) are compared exactly; gather_rows copies values.
    "batch_indices": 0.0,
    "gather_rows": 0.0,
    # The conditional GAN's ops (issue #15). embedding_forward and concat only copy floats:
    # any difference from the reference is a bug, so the bound is 0.
    "embedding_forward": 0.0,
    "concat_forward": 0.0,
    "concat_backward": 0.0,
    # Per class, float32 sums of the rows naming it in increasing n (up to 512 terms):
    # rounding ~sqrt(n)·6e-8 ≈ 1.4e-6 at most; 1e-5 as for the other column sums (seen: below
    # 2e-7 at the model's shapes, 5 draws each).
    "embedding_backward": 1e-5,
    # A D-long float32 dot product per row (D up to 6321, as linear's 6272 -> 1 head) with
    # w + embed[c] rounded once per element; dw/dembed are float32 sums over up to 512 rows.
    # 1e-5 as for linear (seen: below 5e-7 for every output at the model's shapes, 5 draws).
    "projection_head_forward": 1e-5,
    "projection_head_backward": 1e-5,
    # A whole training step compounds every op above through ten steps of Adam.
    # A whole training step compounds every op above. The FIRST step's gradients of every
    # parameter tensor (and so Adam's moments after it) are compared tensor by tensor: 12
    # seeds at batch 16 agreed to 7e-7..1e-5 (tests/test_train.py::
    # test_first_step_gradients_match_the_reference); 1e-4 leaves 10x headroom, while a
    # wiring error (a wrong need_* flag, view, seed, buffer or a tensor left out) moves a
    # tensor's gradient by O(1). The losses of a 10-step run agree to 3e-5 at most.
    "train_step": 1e-4,
    # Parameters and Adam moments after 10 steps, per tensor, as a share of what those 10
    # steps changed (‖kernels − reference‖ / ‖reference − initial value‖; the moments start
    # at 0). An activation within float32 rounding of 0 takes the other LeakyReLU branch on
    # one backend (a "kink flip", several per 10 steps at this size on some seeds), its
    # gradient entry changes by up to 80%, and Adam carries that on: 8 seeds at batch 16
    # gave 1e-6 (no flip) to 0.10 (adam_m, seed 4). 0.3 is 3x that; a tensor that is never
    # updated scores exactly 1, and the first-step test above catches smaller errors.
    "train_step_trajectory": 0.3,
    # Parameters after 10 whole steps, per tensor buffer.
    # How it was chosen: run on float32 BLAS stand-ins for the linear/conv kernels, 12 seeds at
    # batch 8 and 16 agreed with the reference to 3e-7..5e-6 when no activation changed sides,
    # and to 1e-4..4e-4 when one did: an activation within float32 rounding of 0 takes the
    # other LeakyReLU branch on one backend (a "kink flip", expected about once in 10 steps at
    # this size), its gradient entry changes by up to 80%, and Adam's normalised updates carry
    # that into the parameters. TOLERANCES["train_step"] (1e-4) holds for the losses (a mean
    # over the batch: at most 3e-5 seen) but not reliably for the parameters, so they get 2e-3,
    # 5x the worst seen. A wiring error (a wrong need_* flag, view, seed or buffer) moves them
    # by 1e-2 and more; per-op accuracy is the business of the op parity tests.
    "train_step_params": 2e-3,
    # The quality recipe's ops (issue #12). How they were chosen: the worst relative error
    # seen over 30 random trials of every shape in their test files, on all three SIMD paths.
    # minibatch_stddev: the copied channels are exact (tested bitwise); the statistic channel
    # and its gradient are a few float32 roundings per feature and a double sum over them:
    # 5e-8 (forward) and 1.1e-7 (backward, the statistic's part alone) seen, so 1e-6.
    "minibatch_stddev_forward": 1e-6,
    "minibatch_stddev_backward": 1e-6,
    # spectral_norm: sigma, u and v come out of two float32 mat-vecs with up to 6,321-long
    # sums (sqrt(K)-style growth, as for the GEMMs): 8.4e-7 seen (scalar path, [1, 6321]), so
    # 1e-5. The backward is one rounding of a double inner product and three float32
    # operations per element: 5.4e-8 seen, so 1e-6, against a floor of
    # (|dw_sn| + |⟨dw_sn, w_sn⟩·u vᵀ|) / sigma where the two terms cancel (a [1, 1] weight's
    # gradient is exactly 0).
    "spectral_norm_forward": 1e-5,
    "spectral_norm_backward": 1e-6,
    # ema_update: three float32 roundings per element per step plus beta's: 5e-8 seen on 67+
    # elements over 4 steps, so 1e-6, against a floor of |beta·average| + |(1 − beta)·value|
    # (one element whose two terms cancel is all rounding: 3.9e-6 seen).
    "ema_update": 1e-6,
}


def to_numpy(a):
    """A NumPy copy of a NumPy or CuPy array."""
    if hasattr(a, "__cuda_array_interface__"):
        return a.get()
    return np.asarray(a)


def relative_error(actual, ref):
    actual, ref = np.asarray(actual, np.float64), np.asarray(ref, np.float64)
    return float(np.linalg.norm(actual - ref) / max(np.linalg.norm(ref), 1e-300))


def assert_close(name, actual, ref, op=None, tol=None):
    """Assert a kernel output matches the float64 reference.

    name: what is compared ("linear_backward.dw"), shown on failure.
    op:   key into TOLERANCES (defaults to name up to the first '.').
    Checks shape, dtype float32, finiteness (a NaN means an unwritten poisoned element),
    then the relative-norm bound; the failure message gives max abs/rel error, the worst
    index and the share of the tolerance used.
    """
    tol = TOLERANCES[op or name.split(".")[0]] if tol is None else tol
    actual = to_numpy(actual)
    ref = np.asarray(ref, dtype=np.float64)
    assert actual.shape == ref.shape, f"{name}: shape {actual.shape}, expected {ref.shape}"
    assert actual.dtype == np.float32, f"{name}: dtype {actual.dtype}, expected float32"
    bad = ~np.isfinite(actual)
    if bad.any():
        first = np.unravel_index(np.argmax(bad), actual.shape) if actual.ndim else ()
        raise AssertionError(f"{name}: {int(bad.sum())} of {actual.size} elements are not "
                             f"finite (first at {first}: {actual[first]!r}); an unwritten "
                             f"output keeps its NaN poison")
    err = relative_error(actual, ref)
    if actual.size == 0:
        return err
    diff = np.abs(actual.astype(np.float64) - ref)
    worst = np.unravel_index(np.argmax(diff), diff.shape) if diff.ndim else ()
    max_rel = float(np.max(diff / np.maximum(np.abs(ref), 1e-30)))
    used = f"{err / tol:.0%} of it" if tol else "the op must be exact"
    assert err <= tol, (
        f"{name}: relative error {err:.3e} > tolerance {tol:.1e} ({used}); "
        f"max abs error {float(diff[worst]):.3e} at index {worst} "
        f"(got {float(actual[worst]):.8g}, expected {float(ref[worst]):.8g}); "
        f"max elementwise relative error {max_rel:.3e}")
    return err


def floored_tolerance(op, ref, floor):
    """TOLERANCES[op] scaled for a result whose terms cancel: the bound becomes
    tol·max(‖ref‖, ‖floor‖), floor being the size of the terms before they cancel (the
    natural size of the float32 rounding)."""
    norm = float(np.linalg.norm(np.asarray(ref, np.float64)))
    return TOLERANCES[op] * max(1.0, float(np.linalg.norm(floor)) / max(norm, 1e-300))
