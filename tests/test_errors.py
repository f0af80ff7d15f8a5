"""Bad input raises TypeError/ValueError naming the op and the argument; never a crash.

Each case is (call, exception type, words the message must contain).
"""
import inspect

import numpy as np
import pytest

import gan_fast
from gan_fast import ops, reference

f32 = lambda *shape: np.random.default_rng(0).standard_normal(shape).astype(np.float32) + 0.5
x2, w2 = f32(4, 5), f32(3, 5)
x4, w4 = f32(2, 3, 8, 8), f32(4, 3, 3, 3)


def read_only(a):
    a.flags.writeable = False
    return a


bn_stats = lambda c: [f32(c), f32(c), f32(c), np.abs(f32(c)) + 1]

CASES = {
    "linear wrong rank": (lambda: ops.linear_forward(f32(4, 5, 1), w2), ValueError, ["linear_forward", "x", "2 dimensions"]),
    "linear mismatched K": (lambda: ops.linear_forward(x2, f32(3, 6)), ValueError, ["w", "(?, 5)", "(3, 6)"]),
    "linear float64": (lambda: ops.linear_forward(x2.astype(np.float64), w2), TypeError, ["x", "float32", "float64"]),
    "linear int": (lambda: ops.linear_forward(x2, w2.astype(np.int32)), TypeError, ["w", "float32", "int32"]),
    "linear list": (lambda: ops.linear_forward(x2.tolist(), w2), TypeError, ["x", "numpy.ndarray", "list"]),
    "linear non-contiguous": (lambda: ops.linear_forward(f32(5, 4).T, w2), ValueError, ["x", "C-contiguous"]),
    "linear bias shape": (lambda: ops.linear_forward(x2, w2, f32(4)), ValueError, ["b", "(3,)", "(4,)"]),
    "linear out shape": (lambda: ops.linear_forward(x2, w2, out=f32(4, 4)), ValueError, ["out", "(4, 3)", "(4, 4)"]),
    "linear read-only out": (lambda: ops.linear_forward(x2, w2, out=read_only(f32(4, 3))), ValueError, ["out"]),
    "linear backward dy shape": (lambda: ops.linear_backward(f32(4, 2), x2, w2), ValueError, ["dy", "(4, 3)", "(4, 2)"]),
    "conv zero stride": (lambda: ops.conv2d_forward(x4, w4, stride=0), ValueError, ["stride", ">= 1"]),
    "conv negative stride": (lambda: ops.conv2d_forward(x4, w4, stride=(1, -2)), ValueError, ["stride"]),
    "conv padding too large": (lambda: ops.conv2d_forward(x4, w4, padding=3), ValueError, ["padding", "kernel size"]),
    "conv negative padding": (lambda: ops.conv2d_forward(x4, w4, padding=-1), ValueError, ["padding"]),
    "conv channel mismatch": (lambda: ops.conv2d_forward(x4, f32(4, 2, 3, 3)), ValueError, ["w", "(?, 3, ?, ?)"]),
    "conv kernel larger than input": (lambda: ops.conv2d_forward(f32(1, 3, 2, 2), w4), ValueError, ["x", "smaller than the kernel"]),
    "conv wrong rank": (lambda: ops.conv2d_forward(f32(3, 8, 8), w4), ValueError, ["x", "4 dimensions"]),
    "conv backward dy shape": (lambda: ops.conv2d_backward(f32(2, 4, 3, 3), x4, w4, 2, 1), ValueError, ["dy", "(2, 4, 4, 4)"]),
    "batchnorm gamma shape": (lambda: ops.batchnorm_forward(x4, *([f32(4)] + bn_stats(3)[1:])), ValueError, ["gamma", "(3,)", "(4,)"]),
    "batchnorm rank 3": (lambda: ops.batchnorm_forward(f32(2, 3, 4), *bn_stats(3)), ValueError, ["x", "3 dimensions"]),
    "batchnorm one value per channel": (lambda: ops.batchnorm_forward(f32(1, 3), *bn_stats(3)), ValueError, ["x", "more than one value"]),
    "batchnorm momentum": (lambda: ops.batchnorm_forward(x2, *bn_stats(5), momentum=1.5), ValueError, ["momentum", "[0, 1]"]),
    "batchnorm eps": (lambda: ops.batchnorm_forward(x2, *bn_stats(5), eps=0.0), ValueError, ["eps", "> 0"]),
    "batchnorm read-only running stats": (lambda: ops.batchnorm_forward(x2, f32(5), f32(5), read_only(f32(5)), f32(5)), ValueError, ["running_mean", "writable"]),
    "leaky_relu nan slope": (lambda: ops.leaky_relu_forward(x2, float("nan")), ValueError, ["slope", "finite"]),
    "leaky_relu shape mismatch": (lambda: ops.leaky_relu_backward(x2, f32(5, 4)), ValueError, ["x", "(4, 5)"]),
    "tanh float64": (lambda: ops.tanh_forward(x2.astype(np.float64)), TypeError, ["x", "float32"]),
    "tanh shape mismatch": (lambda: ops.tanh_backward(x2, f32(4)), ValueError, ["y"]),
    "dropout p = 1": (lambda: ops.dropout_forward(x2, 1.0, 0), ValueError, ["p", "[0, 1)"]),
    "dropout p < 0": (lambda: ops.dropout_forward(x2, -0.1, 0), ValueError, ["p"]),
    "dropout p nan": (lambda: ops.dropout_backward(x2, float("nan"), 0), ValueError, ["p", "finite"]),
    "dropout negative seed": (lambda: ops.dropout_forward(x2, 0.3, -1), TypeError, []),
    "leaky_relu_dropout p = 1": (lambda: ops.leaky_relu_dropout_forward(x2, 0.2, 1.0, 0), ValueError, ["leaky_relu_dropout_forward", "p", "[0, 1)"]),
    "leaky_relu_dropout nan slope": (lambda: ops.leaky_relu_dropout_backward(x2, x2, float("nan"), 0.3, 0), ValueError, ["slope", "finite"]),
    "leaky_relu_dropout shape mismatch": (lambda: ops.leaky_relu_dropout_backward(x2, f32(5, 4), 0.2, 0.3, 0), ValueError, ["x", "(4, 5)"]),
    "bce shape mismatch": (lambda: ops.bce_with_logits(f32(4), f32(5)), ValueError, ["targets", "(4,)", "(5,)"]),
    "bce empty": (lambda: ops.bce_with_logits(f32(0), f32(0)), ValueError, ["logits", "empty"]),
    "xent labels int32": (lambda: ops.softmax_cross_entropy(x2, np.zeros(4, np.int32)), TypeError, ["softmax_cross_entropy", "labels", "int64", "int32"]),
    "xent labels float": (lambda: ops.softmax_cross_entropy(x2, f32(4)), TypeError, ["labels", "int64", "float32"]),
    "xent label too large": (lambda: ops.softmax_cross_entropy(x2, np.array([0, 1, 5, 2])), ValueError, ["labels", "[0, 5)", "got 5 at index 2"]),
    "xent negative label": (lambda: ops.softmax_cross_entropy(x2, np.array([0, -1, 1, 2])), ValueError, ["labels", "got -1 at index 1"]),
    "xent labels shape": (lambda: ops.softmax_cross_entropy(x2, np.zeros(3, np.int64)), ValueError, ["labels", "(4,)", "(3,)"]),
    "xent labels 2-d": (lambda: ops.softmax_cross_entropy(x2, np.zeros((4, 1), np.int64)), ValueError, ["labels", "1 dimensions"]),
    "xent labels non-contiguous": (lambda: ops.softmax_cross_entropy(x2, np.zeros(8, np.int64)[::2]), ValueError, ["labels", "C-contiguous"]),
    "xent labels list": (lambda: ops.softmax_cross_entropy(x2, [0, 1, 2, 3]), TypeError, ["labels", "int64", "list"]),
    "xent logits 1-d": (lambda: ops.softmax_cross_entropy(f32(4), np.zeros(4, np.int64)), ValueError, ["logits", "2 dimensions"]),
    "xent logits float64": (lambda: ops.softmax_cross_entropy(x2.astype(np.float64), np.zeros(4, np.int64)), TypeError, ["logits", "float32"]),
    "xent empty batch": (lambda: ops.softmax_cross_entropy(f32(0, 5), np.zeros(0, np.int64)), ValueError, ["logits", "empty"]),
    "xent no classes": (lambda: ops.softmax_cross_entropy(f32(4, 0), np.zeros(4, np.int64)), ValueError, ["logits", "at least one class"]),
    "xent dlogits shape": (lambda: ops.softmax_cross_entropy(x2, np.zeros(4, np.int64), dlogits=f32(4, 4)), ValueError, ["dlogits", "(4, 5)"]),
    "adam size mismatch": (lambda: ops.adam_step(f32(5), f32(4), f32(5), f32(5), 1), ValueError, ["grads", "(5,)", "(4,)"]),
    "adam 2-d params": (lambda: ops.adam_step(f32(2, 5), f32(2, 5), f32(2, 5), f32(2, 5), 1), ValueError, ["params", "1 dimensions"]),
    "adam step 0": (lambda: ops.adam_step(f32(5), f32(5), f32(5), f32(5), 0), ValueError, ["step", ">= 1"]),
    "adam negative lr": (lambda: ops.adam_step(f32(5), f32(5), f32(5), f32(5), 1, lr=-1.0), ValueError, ["lr", "> 0"]),
    "adam beta1 = 1": (lambda: ops.adam_step(f32(5), f32(5), f32(5), f32(5), 1, beta1=1.0), ValueError, ["beta1"]),
    "adam read-only m": (lambda: ops.adam_step(f32(5), f32(5), read_only(f32(5)), f32(5), 1), ValueError, ["m", "writable"]),
    "mbstd wrong rank": (lambda: ops.minibatch_stddev_forward(f32(2, 3, 8)), ValueError, ["minibatch_stddev_forward", "x", "4 dimensions"]),
    "mbstd float64": (lambda: ops.minibatch_stddev_forward(x4.astype(np.float64)), TypeError, ["x", "float32", "float64"]),
    "mbstd group_size 0": (lambda: ops.minibatch_stddev_forward(x4, 0), ValueError, ["group_size", ">= 1", "got 0"]),
    "mbstd group_size float": (lambda: ops.minibatch_stddev_forward(x4, 2.5), TypeError, []),
    "mbstd eps 0": (lambda: ops.minibatch_stddev_forward(x4, 4, 0.0), ValueError, ["eps", "> 0"]),
    "mbstd eps nan": (lambda: ops.minibatch_stddev_backward(f32(2, 4, 8, 8), x4, 4, float("nan")), ValueError, ["minibatch_stddev_backward", "eps", "finite"]),
    "mbstd no channels": (lambda: ops.minibatch_stddev_forward(f32(2, 0, 3, 3)), ValueError, ["x", "C, H, W >= 1", "(2, 0, 3, 3)"]),
    "mbstd empty plane": (lambda: ops.minibatch_stddev_forward(f32(2, 3, 0, 3)), ValueError, ["x", "C, H, W >= 1"]),
    "mbstd out shape": (lambda: ops.minibatch_stddev_forward(x4, out=f32(2, 3, 8, 8)), ValueError, ["out", "(2, 4, 8, 8)", "(2, 3, 8, 8)"]),
    "mbstd backward dy shape": (lambda: ops.minibatch_stddev_backward(f32(2, 3, 8, 8), x4), ValueError, ["dy", "(2, 4, 8, 8)", "(2, 3, 8, 8)"]),
    "mbstd backward dx read-only": (lambda: ops.minibatch_stddev_backward(f32(2, 4, 8, 8), x4, dx=read_only(f32(2, 3, 8, 8))), ValueError, ["dx", "writable"]),
    "spectral_norm rank 1": (lambda: ops.spectral_norm_forward(f32(5), f32(5)), ValueError, ["spectral_norm_forward", "w", "2 to 8 dimensions"]),
    "spectral_norm u shape": (lambda: ops.spectral_norm_forward(w4, f32(3)), ValueError, ["u", "(4,)", "(3,)"]),
    "spectral_norm u 2-d": (lambda: ops.spectral_norm_forward(w4, f32(4, 1)), ValueError, ["u", "(4,)", "(4, 1)"]),
    "spectral_norm read-only u": (lambda: ops.spectral_norm_forward(w4, read_only(f32(4))), ValueError, ["u", "writable"]),
    "spectral_norm u int": (lambda: ops.spectral_norm_forward(w4, np.ones(4, np.int64)), TypeError, ["u", "float32", "int64"]),
    "spectral_norm eps": (lambda: ops.spectral_norm_forward(w4, f32(4), eps=-1.0), ValueError, ["eps", "> 0"]),
    "spectral_norm v shape": (lambda: ops.spectral_norm_forward(w4, f32(4), v=f32(26)), ValueError, ["v", "(27,)", "(26,)"]),
    "spectral_norm sigma shape": (lambda: ops.spectral_norm_forward(w4, f32(4), sigma=f32(1)), ValueError, ["sigma", "()", "(1,)"]),
    "spectral_norm backward w_sn shape": (lambda: ops.spectral_norm_backward(w4, f32(4, 27), f32(4), f32(27), f32()), ValueError, ["spectral_norm_backward", "w_sn", "(4, 3, 3, 3)", "(4, 27)"]),
    "spectral_norm backward v shape": (lambda: ops.spectral_norm_backward(w4, w4, f32(4), f32(9), f32()), ValueError, ["v", "(27,)", "(9,)"]),
    "spectral_norm backward sigma float": (lambda: ops.spectral_norm_backward(w4, w4, f32(4), f32(27), 2.0), TypeError, ["sigma", "numpy.ndarray", "float"]),
    "spectral_norm backward sigma 1-d": (lambda: ops.spectral_norm_backward(w4, w4, f32(4), f32(27), f32(1)), ValueError, ["sigma", "0 dimensions"]),
    "ema step 0": (lambda: ops.ema_update(f32(5), f32(5), 0.999, 0), ValueError, ["ema_update", "step", ">= 1", "got 0"]),
    "ema step array 0": (lambda: ops.ema_update(f32(5), f32(5), 0.999, np.array([0])), ValueError, ["step", ">= 1"]),
    "ema step float": (lambda: ops.ema_update(f32(5), f32(5), 0.999, 1.5), TypeError, ["step", "an int or a one-element int64 array", "float"]),
    "ema step int32 array": (lambda: ops.ema_update(f32(5), f32(5), 0.999, np.array([1], np.int32)), TypeError, ["step", "int64", "int32"]),
    "ema step two elements": (lambda: ops.ema_update(f32(5), f32(5), 0.999, np.array([1, 2])), ValueError, ["step", "one-element", "(2,)"]),
    "ema step too large": (lambda: ops.ema_update(f32(5), f32(5), 0.999, 2 ** 63), ValueError, ["step", "int64"]),
    "ema decay 1": (lambda: ops.ema_update(f32(5), f32(5), 1.0, 1), ValueError, ["decay", "[0, 1)"]),
    "ema decay nan": (lambda: ops.ema_update(f32(5), f32(5), float("nan"), 1), ValueError, ["decay", "finite"]),
    "ema size mismatch": (lambda: ops.ema_update(f32(5), f32(4), 0.999, 1), ValueError, ["value", "(5,)", "(4,)"]),
    "ema 2-d": (lambda: ops.ema_update(f32(2, 5), f32(2, 5), 0.999, 1), ValueError, ["average", "(?,)", "(2, 5)"]),
    "ema read-only average": (lambda: ops.ema_update(read_only(f32(5)), f32(5), 0.999, 1), ValueError, ["average", "writable"]),
    # conditional GAN ops (issue #15)
    "embedding label too large": (lambda: ops.embedding_forward(w2, np.array([0, 3])), ValueError, ["embedding_forward", "labels", "[0, 3)", "got 3 at index 1"]),
    "embedding negative label": (lambda: ops.embedding_forward(w2, np.array([-1])), ValueError, ["labels", "got -1 at index 0"]),
    "embedding labels int32": (lambda: ops.embedding_forward(w2, np.zeros(4, np.int32)), TypeError, ["embedding_forward", "labels", "int64", "int32"]),
    "embedding labels float": (lambda: ops.embedding_forward(w2, f32(4)), TypeError, ["labels", "int64", "float32"]),
    "embedding labels 2-d": (lambda: ops.embedding_forward(w2, np.zeros((4, 1), np.int64)), ValueError, ["labels", "1 dimensions"]),
    "embedding weight 1-d": (lambda: ops.embedding_forward(f32(5), np.zeros(4, np.int64)), ValueError, ["weight", "2 dimensions"]),
    "embedding weight float64": (lambda: ops.embedding_forward(w2.astype(np.float64), np.zeros(4, np.int64)), TypeError, ["weight", "float32"]),
    "embedding out shape": (lambda: ops.embedding_forward(w2, np.zeros(4, np.int64), out=f32(4, 4)), ValueError, ["out", "(4, 5)", "(4, 4)"]),
    "embedding backward label too large": (lambda: ops.embedding_backward(x2, np.array([0, 1, 9, 2]), 9), ValueError, ["embedding_backward", "labels", "[0, 9)", "got 9 at index 2"]),
    "embedding backward labels shape": (lambda: ops.embedding_backward(x2, np.zeros(3, np.int64), 10), ValueError, ["labels", "(4,)", "(3,)"]),
    "embedding backward negative classes": (lambda: ops.embedding_backward(x2, np.zeros(4, np.int64), -1), ValueError, ["num_classes", ">= 0"]),
    "embedding backward float classes": (lambda: ops.embedding_backward(x2, np.zeros(4, np.int64), 2.5), TypeError, ["embedding_backward", "num_classes", "expected an int", "2.5"]),
    "embedding backward huge classes": (lambda: ops.embedding_backward(x2, np.zeros(4, np.int64), 2 ** 64), ValueError, ["num_classes", "does not fit in int64"]),
    "concat backward split None": (lambda: ops.concat_backward(x2, None), TypeError, ["concat_backward", "split", "expected an int", "None"]),
    "embedding backward dweight shape": (lambda: ops.embedding_backward(x2, np.zeros(4, np.int64), 3, dweight=f32(4, 5)), ValueError, ["dweight", "(3, 5)", "(4, 5)"]),
    "concat rank 1": (lambda: ops.concat_forward(f32(4), f32(4)), ValueError, ["concat_forward", "a", "2 to 4 dimensions"]),
    "concat rank 5": (lambda: ops.concat_forward(f32(1, 1, 1, 1, 1), f32(1, 1, 1, 1, 1)), ValueError, ["a", "2 to 4 dimensions"]),
    "concat rank mismatch": (lambda: ops.concat_forward(x4, f32(2, 3)), ValueError, ["b", "(2, ?, 8, 8)", "(2, 3)"]),
    "concat batch mismatch": (lambda: ops.concat_forward(x2, f32(3, 2)), ValueError, ["b", "(4, ?)", "(3, 2)"]),
    "concat trailing mismatch": (lambda: ops.concat_forward(x4, f32(2, 1, 8, 7)), ValueError, ["b", "(2, ?, 8, 8)"]),
    "concat float64": (lambda: ops.concat_forward(x2, x2.astype(np.float64)), TypeError, ["b", "float32"]),
    "concat out shape": (lambda: ops.concat_forward(x2, x2, out=f32(4, 5)), ValueError, ["out", "(4, 10)", "(4, 5)"]),
    "concat backward split too large": (lambda: ops.concat_backward(x2, 6), ValueError, ["concat_backward", "split", "0 <= split <= 5", "got 6"]),
    "concat backward negative split": (lambda: ops.concat_backward(x2, -1), ValueError, ["split", "got -1"]),
    "concat backward da shape": (lambda: ops.concat_backward(x2, 2, da=f32(4, 3)), ValueError, ["da", "(4, 2)", "(4, 3)"]),
    "concat backward db shape": (lambda: ops.concat_backward(x4, 1, db=f32(2, 1, 8, 8)), ValueError, ["db", "(2, 2, 8, 8)"]),
    "projection label too large": (lambda: ops.projection_head_forward(x2, f32(1, 5), None, w2, np.array([0, 1, 2, 3])), ValueError, ["projection_head_forward", "labels", "[0, 3)", "got 3 at index 3"]),
    "projection negative label": (lambda: ops.projection_head_backward(f32(4, 1), x2, f32(1, 5), w2, np.array([0, -5, 2, 1])), ValueError, ["projection_head_backward", "labels", "got -5 at index 1"]),
    "projection labels int32": (lambda: ops.projection_head_forward(x2, f32(1, 5), None, w2, np.zeros(4, np.int32)), TypeError, ["labels", "int64", "int32"]),
    "projection labels shape": (lambda: ops.projection_head_forward(x2, f32(1, 5), None, w2, np.zeros(5, np.int64)), ValueError, ["labels", "(4,)", "(5,)"]),
    "projection w shape": (lambda: ops.projection_head_forward(x2, f32(2, 5), None, w2, np.zeros(4, np.int64)), ValueError, ["w", "(1, 5)", "(2, 5)"]),
    "projection embed width": (lambda: ops.projection_head_forward(x2, f32(1, 5), None, f32(3, 4), np.zeros(4, np.int64)), ValueError, ["embed", "(?, 5)", "(3, 4)"]),
    "projection bias shape": (lambda: ops.projection_head_forward(x2, f32(1, 5), f32(2), w2, np.zeros(4, np.int64)), ValueError, ["b", "(1,)", "(2,)"]),
    "projection h float64": (lambda: ops.projection_head_forward(x2.astype(np.float64), f32(1, 5), None, w2, np.zeros(4, np.int64)), TypeError, ["h", "float32"]),
    "projection dlogits shape": (lambda: ops.projection_head_backward(f32(4), x2, f32(1, 5), w2, np.zeros(4, np.int64)), ValueError, ["dlogits", "2 dimensions"]),
    "projection dembed shape": (lambda: ops.projection_head_backward(f32(4, 1), x2, f32(1, 5), w2, np.zeros(4, np.int64), dembed=f32(4, 5)), ValueError, ["dembed", "(3, 5)", "(4, 5)"]),
    "projection read-only dh": (lambda: ops.projection_head_backward(f32(4, 1), x2, f32(1, 5), w2, np.zeros(4, np.int64), dh=read_only(f32(4, 5))), ValueError, ["dh", "writable"]),
    "threads 0": (lambda: gan_fast.set_num_threads(0), ValueError, ["n", ">= 1"]),
    "unknown isa": (lambda: gan_fast.set_cpu_isa("sse9"), ValueError, ["isa", "sse9"]),
}


def _label_calls(labels):
    """Every op that takes class labels, called with these 4 labels (C = 3 classes)."""
    w1, dy1 = f32(1, 5), f32(4, 1)
    return {
        "softmax_cross_entropy": lambda: ops.softmax_cross_entropy(f32(4, 3), labels),
        "embedding_forward": lambda: ops.embedding_forward(w2, labels),
        "embedding_backward": lambda: ops.embedding_backward(x2, labels, 3),
        "projection_head_forward": lambda: ops.projection_head_forward(x2, w1, None, w2, labels),
        "projection_head_backward": lambda: ops.projection_head_backward(dy1, x2, w1, w2, labels),
    }


@pytest.mark.parametrize("op", list(_label_calls(None)))
@pytest.mark.parametrize("bad", [-(2 ** 63), -1, 3, 4, 2 ** 63 - 1])
@pytest.mark.parametrize("at", [0, 3])
def test_every_out_of_range_label_is_refused_on_the_cpu(op, bad, at):
    labels = np.array([0, 2, 1, 2])
    labels[at] = bad
    with pytest.raises(ValueError) as info:
        _label_calls(labels)[op]()
    assert f"{op}: labels: expected class indices in [0, 3), got {bad} at index {at}" in str(info.value)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_raises_a_clear_error(case):
    call, exc, words = CASES[case]
    with pytest.raises(exc) as info:
        call()
    for word in words:
        assert word in str(info.value), f"{case}: {word!r} not in message {str(info.value)!r}"


def test_mixing_host_and_device_arrays_is_refused(cuda_backend):
    import cupy
    with pytest.raises(ValueError, match="same device"):
        ops.linear_forward(cupy.asarray(x2), w2)


@pytest.mark.parametrize("name", ops.__all__)
def test_ops_and_reference_share_name_signature_and_docstring(name):
    kernel, spec = getattr(ops, name), getattr(reference, name)
    assert inspect.signature(kernel) == inspect.signature(spec)
    assert kernel.__doc__ == spec.__doc__ and spec.__doc__.strip()
