// gan_fast._C: the Python face of the kernels. Each function checks its arguments
// (bindings/arrays.h), allocates missing outputs on the inputs' device, releases the GIL
// and calls the CPU or CUDA entry point of csrc/<op>/<op>.h. No math happens here.
// Overlap: a given output or in-place array must not share memory with any other argument
// (the Checker refuses it); the Checker's second argument lists the exceptions, the exact
// aliases an op's contract allows (an elementwise output over its input: in place).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <omp.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "adam/adam.h"
#include "batch_indices/batch_indices.h"
#include "batchnorm/batchnorm.h"
#include "bce_with_logits/bce_with_logits.h"
#include "bindings/arrays.h"
#include "common/cpu_isa.h"
#include "common/cuda_device.h"
#include "common/fma_peak.h"
#include "common/labels.h"
#include "common/variants.h"
#include "concat/concat.h"
#include "conv2d/conv2d.h"
#include "dropout/dropout.h"
#include "ema/ema.h"
#include "embedding/embedding.h"
#include "gather_rows/gather_rows.h"
#include "gemm/gemm.h"
#include "leaky_relu/leaky_relu.h"
#include "leaky_relu_dropout/leaky_relu_dropout.h"
#include "linear/linear.h"
#include "minibatch_stddev/minibatch_stddev.h"
#include "projection_head/projection_head.h"
#include "random_normal/random_normal.h"
#include "softmax_cross_entropy/softmax_cross_entropy.h"
#include "spectral_norm/spectral_norm.h"
#include "tanh/tanh.h"

namespace py = pybind11;
using namespace pybind11::literals;
using gf::py_args::Array;
using gf::py_args::Checker;
using gf::py_args::kAny;

// Runs the CPU or the CUDA statement with the GIL released.
#ifdef GF_WITH_CUDA
#define GF_DISPATCH(checker, cpu_call, cuda_call)      \
  do {                                                 \
    gf::Stream stream = (checker).stream();            \
    py::gil_scoped_release nogil;                      \
    if ((checker).on_cuda()) {                         \
      cuda_call;                                       \
    } else {                                           \
      cpu_call;                                        \
    }                                                  \
  } while (0)
#else
#define GF_DISPATCH(checker, cpu_call, cuda_call) \
  do {                                            \
    py::gil_scoped_release nogil;                 \
    cpu_call;                                     \
  } while (0)
#endif

namespace {

py::object or_none(bool wanted, const Array& a) { return wanted ? a.obj : py::none(); }

void check_finite(const Checker& c, double v, const char* name) {
  if (!std::isfinite(v)) c.fail_value(std::string(name) + ": must be finite, got " + std::to_string(v));
}

void check_unit_interval(const Checker& c, double v, const char* name, bool closed_high) {
  check_finite(c, v, name);
  if (v < 0.0 || (closed_high ? v > 1.0 : v >= 1.0))
    c.fail_value(std::string(name) + ": expected a value in [0, 1" + (closed_high ? "]" : ")") +
                 ", got " + std::to_string(v));
}

// A per-step counter (common/step_arg.h) counted from 0: checked >= 0 when its value is known
// on the host; a device value is the kernel's business (documented per op).
gf::StepArg counter_step(Checker& c, py::handle obj) {
  gf::StepArg s = c.step_arg(obj, "step");
  if (!s.on_device() && s.value < 0)
    c.fail_value("step: expected >= 0, got " + std::to_string(s.value));
  return s;
}

// The dropout family's optional step: None, or a counter_step.
std::optional<gf::StepArg> optional_step(Checker& c, py::handle obj) {
  if (obj.is_none()) return std::nullopt;
  return counter_step(c, obj);
}

// What the CPU entry points take: the value of a (host) step, if any.
std::optional<int64_t> host_value(const std::optional<gf::StepArg>& s) {
  return s ? std::optional<int64_t>(s->value) : std::nullopt;
}

// Class labels: int64 [N] (N = kAny: any length) indexing a table of C rows. On the CPU
// every label is checked here; on CUDA that would need a device-to-host copy, so the
// kernels write NaN where a bad label reaches instead (common/labels.h). Call it after an
// array input has fixed the call's device.
Array class_labels(Checker& c, py::handle obj, int64_t N, int64_t C) {
  Array labels = c.int_input(obj, "labels", 1);
  c.expect_shape(labels, "labels", {N});
  if (!c.on_cuda())
    for (int64_t i = 0; i < labels.dim(0); ++i)
      if (!gf::label_in_range(labels.int_data[i], C))
        c.fail_value("labels: expected class indices in [0, " + std::to_string(C) + "), got " +
                     std::to_string(labels.int_data[i]) + " at index " + std::to_string(i));
  return labels;
}

// ---------------------------------------------------------------------------- linear
// A fused activation's name: None, "tanh" (where the op offers it) or "leaky_relu".
gf::Activation activation_arg(const Checker& c, py::handle obj, bool with_tanh = true) {
  const std::string expected = with_tanh ? "None, 'tanh' or 'leaky_relu'" : "None or 'leaky_relu'";
  if (obj.is_none()) return gf::Activation::none;
  if (!py::isinstance<py::str>(obj))
    throw py::type_error(std::string(c.op()) + ": activation: expected " + expected + ", got " +
                         py::repr(obj).cast<std::string>());
  const std::string name = obj.cast<std::string>();
  if (name == "tanh" && with_tanh) return gf::Activation::tanh;
  if (name == "leaky_relu") return gf::Activation::leaky_relu;
  c.fail_value("activation: expected " + expected + ", got '" + name + "'");
}

py::object linear_forward(py::handle x_, py::handle w_, py::handle b_, py::handle out_,
                          py::handle activation_, double slope) {
  Checker c("linear_forward");
  Array x = c.input(x_, "x", 2);
  const int64_t N = x.dim(0), K = x.dim(1);
  Array w = c.input(w_, "w", 2);
  c.expect_shape(w, "w", {kAny, K});
  const int64_t M = w.dim(0);
  Array b = c.optional_input(b_, "b", {M});
  const gf::Activation act = activation_arg(c, activation_);
  check_finite(c, slope, "slope");
  Array y = c.output(out_, "out", {N, M});
  const float sl = static_cast<float>(slope);
  GF_DISPATCH(c, gf::linear_forward_cpu(x.data, w.data, b.data, y.data, N, K, M, act, sl),
              gf::linear_forward_cuda(x.data, w.data, b.data, y.data, N, K, M, act, sl, stream));
  return y.obj;
}

py::tuple linear_backward(py::handle dy_, py::handle x_, py::handle w_, bool need_dx,
                          bool need_dw, bool need_db, py::handle dx_, py::handle dw_,
                          py::handle db_) {
  Checker c("linear_backward");
  Array x = c.input(x_, "x", 2);
  const int64_t N = x.dim(0), K = x.dim(1);
  Array w = c.input(w_, "w", 2);
  c.expect_shape(w, "w", {kAny, K});
  const int64_t M = w.dim(0);
  Array dy = c.input(dy_, "dy", 2);
  c.expect_shape(dy, "dy", {N, M});
  Array dx = need_dx ? c.output(dx_, "dx", {N, K}) : Array{};
  Array dw = need_dw ? c.output(dw_, "dw", {M, K}) : Array{};
  Array db = need_db ? c.output(db_, "db", {M}) : Array{};
  GF_DISPATCH(c, gf::linear_backward_cpu(dy.data, x.data, w.data, dx.data, dw.data, db.data, N, K, M),
              gf::linear_backward_cuda(dy.data, x.data, w.data, dx.data, dw.data, db.data, N, K, M,
                                       stream));
  return py::make_tuple(or_none(need_dx, dx), or_none(need_dw, dw), or_none(need_db, db));
}

// ---------------------------------------------------------------------------- conv2d
// An int or a pair of ints. Anything else (a float, a string, None, an int beyond int64)
// is a TypeError naming the op and the argument, never pybind11's RuntimeError cast_error.
std::pair<int64_t, int64_t> pair_arg(const Checker& c, py::handle v, const char* name) {
  int64_t h, w;
  std::vector<int64_t> t;
  try {
    if (PyIndex_Check(v.ptr())) {  // int, numpy integer
      auto index = py::reinterpret_steal<py::object>(PyNumber_Index(v.ptr()));
      if (!index) throw py::error_already_set();
      h = w = index.cast<int64_t>();
      return {h, w};
    }
    t = v.cast<std::vector<int64_t>>();
  } catch (const py::cast_error&) {
    throw py::type_error(std::string(c.op()) + ": " + name +
                         ": expected an int or a pair of ints (int64), got " +
                         py::repr(v).cast<std::string>());
  }
  if (t.size() != 2) c.fail_value(std::string(name) + ": expected an int or a pair of ints");
  return {t[0], t[1]};
}

gf::Conv2dGeometry conv2d_geometry(Checker& c, const Array& x, const Array& w,
                                   py::handle stride, py::handle padding) {
  gf::Conv2dShape s{};
  s.N = x.dim(0); s.C = x.dim(1); s.H = x.dim(2); s.W = x.dim(3);
  c.expect_shape(w, "w", {kAny, s.C, kAny, kAny});
  s.K = w.dim(0); s.R = w.dim(2); s.S = w.dim(3);
  std::tie(s.stride_h, s.stride_w) = pair_arg(c, stride, "stride");
  std::tie(s.pad_h, s.pad_w) = pair_arg(c, padding, "padding");
  if (s.stride_h < 1 || s.stride_w < 1)
    c.fail_value("stride: expected >= 1, got (" + std::to_string(s.stride_h) + ", " +
                 std::to_string(s.stride_w) + ")");
  if (s.pad_h < 0 || s.pad_w < 0 || s.pad_h >= s.R || s.pad_w >= s.S)
    c.fail_value("padding: expected 0 <= padding < kernel size (" + std::to_string(s.R) + ", " +
                 std::to_string(s.S) + "), got (" + std::to_string(s.pad_h) + ", " +
                 std::to_string(s.pad_w) + ")");
  if (s.R < 1 || s.S < 1) c.fail_value("w: kernel size must be >= 1");
  if (s.H + 2 * s.pad_h < s.R || s.W + 2 * s.pad_w < s.S)
    c.fail_value("x: padded input " + std::to_string(s.H + 2 * s.pad_h) + "x" +
                 std::to_string(s.W + 2 * s.pad_w) + " is smaller than the kernel " +
                 std::to_string(s.R) + "x" + std::to_string(s.S));
  return gf::conv2d_geometry(s);
}

py::object conv2d_forward(py::handle x_, py::handle w_, py::handle b_, py::handle stride,
                          py::handle padding, py::handle out_, py::handle activation_,
                          double slope, double dropout_p, uint64_t seed, py::handle step_) {
  Checker c("conv2d_forward");
  Array x = c.input(x_, "x", 4);
  Array w = c.input(w_, "w", 4);
  const gf::Conv2dGeometry g = conv2d_geometry(c, x, w, stride, padding);
  const gf::Conv2dShape& s = g.s;
  Array b = c.optional_input(b_, "b", {s.K});
  // The fused activation: None or "leaky_relu" (with dropout when dropout_p > 0).
  const gf::Activation act = activation_arg(c, activation_, false);
  check_finite(c, slope, "slope");
  check_unit_interval(c, dropout_p, "dropout_p", false);
  if (dropout_p > 0.0 && act != gf::Activation::leaky_relu)
    c.fail_value("dropout_p: dropout is fused only after activation='leaky_relu', got "
                 "activation=None and dropout_p=" + std::to_string(dropout_p));
  const std::optional<gf::StepArg> step = optional_step(c, step_);
  Array y = c.output(out_, "out", {s.N, s.K, g.P, g.Q});
  const float sl = static_cast<float>(slope), pf = static_cast<float>(dropout_p);
  GF_DISPATCH(c,
              gf::conv2d_forward_cpu(x.data, w.data, b.data, y.data, g, act, sl, pf, seed,
                                     host_value(step)),
              gf::conv2d_forward_cuda(x.data, w.data, b.data, y.data, g, act, sl, pf, seed, step,
                                      stream));
  return y.obj;
}

py::tuple conv2d_backward(py::handle dy_, py::handle x_, py::handle w_, py::handle stride,
                          py::handle padding, bool need_dx, bool need_dw, bool need_db,
                          py::handle dx_, py::handle dw_, py::handle db_) {
  Checker c("conv2d_backward");
  Array x = c.input(x_, "x", 4);
  Array w = c.input(w_, "w", 4);
  const gf::Conv2dGeometry g = conv2d_geometry(c, x, w, stride, padding);
  const gf::Conv2dShape& s = g.s;
  Array dy = c.input(dy_, "dy", 4);
  c.expect_shape(dy, "dy", {s.N, s.K, g.P, g.Q});
  Array dx = need_dx ? c.output(dx_, "dx", {s.N, s.C, s.H, s.W}) : Array{};
  Array dw = need_dw ? c.output(dw_, "dw", {s.K, s.C, s.R, s.S}) : Array{};
  Array db = need_db ? c.output(db_, "db", {s.K}) : Array{};
  GF_DISPATCH(c, gf::conv2d_backward_cpu(dy.data, x.data, w.data, dx.data, dw.data, db.data, g),
              gf::conv2d_backward_cuda(dy.data, x.data, w.data, dx.data, dw.data, db.data, g,
                                       stream));
  return py::make_tuple(or_none(need_dx, dx), or_none(need_dw, dw), or_none(need_db, db));
}

// ---------------------------------------------------------------------------- batchnorm
gf::BatchNormShape batchnorm_shape(const Array& x) {
  gf::BatchNormShape s{x.dim(0), x.dim(1), 1};
  if (x.shape.size() == 4) s.L = x.dim(2) * x.dim(3);
  return s;
}

py::tuple batchnorm_forward(py::handle x_, py::handle gamma_, py::handle beta_,
                            py::handle running_mean_, py::handle running_var_, bool training,
                            double momentum, double eps, py::handle out_, py::handle mean_,
                            py::handle rstd_) {
  Checker c("batchnorm_forward");
  Array x = c.input_ranked(x_, "x", 2, 4);
  if (x.shape.size() == 3) c.fail_value("x: expected [N, F] or [N, C, H, W], got 3 dimensions");
  gf::BatchNormShape s = batchnorm_shape(x);
  Array gamma = c.input(gamma_, "gamma", 1);
  c.expect_shape(gamma, "gamma", {s.C});
  Array beta = c.input(beta_, "beta", 1);
  c.expect_shape(beta, "beta", {s.C});
  Array rm = c.in_place(running_mean_, "running_mean", {s.C});
  Array rv = c.in_place(running_var_, "running_var", {s.C});
  check_unit_interval(c, momentum, "momentum", true);
  check_finite(c, eps, "eps");
  if (eps <= 0) c.fail_value("eps: expected > 0, got " + std::to_string(eps));
  if (training && s.N * s.L < 2)
    c.fail_value("x: training mode needs more than one value per channel, got shape " +
                 gf::py_args::shape_str(x.shape));
  Array y = c.output(out_, "out", x.shape);
  Array mean = c.output(mean_, "mean", {s.C});
  Array rstd = c.output(rstd_, "rstd", {s.C});
  const float m = static_cast<float>(momentum), e = static_cast<float>(eps);
  GF_DISPATCH(c,
              gf::batchnorm_forward_cpu(x.data, gamma.data, beta.data, rm.data, rv.data, y.data,
                                        mean.data, rstd.data, s, training, m, e),
              gf::batchnorm_forward_cuda(x.data, gamma.data, beta.data, rm.data, rv.data, y.data,
                                         mean.data, rstd.data, s, training, m, e, stream));
  return py::make_tuple(y.obj, mean.obj, rstd.obj);
}

py::tuple batchnorm_backward(py::handle dy_, py::handle x_, py::handle gamma_, py::handle mean_,
                             py::handle rstd_, bool training, py::handle dx_,
                             py::handle dgamma_, py::handle dbeta_) {
  Checker c("batchnorm_backward");
  Array x = c.input_ranked(x_, "x", 2, 4);
  if (x.shape.size() == 3) c.fail_value("x: expected [N, F] or [N, C, H, W], got 3 dimensions");
  gf::BatchNormShape s = batchnorm_shape(x);
  Array dy = c.input_ranked(dy_, "dy", 2, 4);
  c.expect_shape(dy, "dy", x.shape);
  Array gamma = c.input(gamma_, "gamma", 1);
  c.expect_shape(gamma, "gamma", {s.C});
  Array mean = c.input(mean_, "mean", 1);
  c.expect_shape(mean, "mean", {s.C});
  Array rstd = c.input(rstd_, "rstd", 1);
  c.expect_shape(rstd, "rstd", {s.C});
  Array dx = c.output(dx_, "dx", x.shape);
  Array dgamma = c.output(dgamma_, "dgamma", {s.C});
  Array dbeta = c.output(dbeta_, "dbeta", {s.C});
  GF_DISPATCH(c,
              gf::batchnorm_backward_cpu(dy.data, x.data, gamma.data, mean.data, rstd.data,
                                         dx.data, dgamma.data, dbeta.data, s, training),
              gf::batchnorm_backward_cuda(dy.data, x.data, gamma.data, mean.data, rstd.data,
                                          dx.data, dgamma.data, dbeta.data, s, training, stream));
  return py::make_tuple(dx.obj, dgamma.obj, dbeta.obj);
}

// ---------------------------------------------------------------------------- elementwise
constexpr size_t kMaxRank = 8;

py::object leaky_relu_forward(py::handle x_, double slope, py::handle out_) {
  Checker c("leaky_relu_forward", {{"out", "x"}});
  Array x = c.input_ranked(x_, "x", 0, kMaxRank);
  check_finite(c, slope, "slope");
  Array y = c.output(out_, "out", x.shape);
  const float sl = static_cast<float>(slope);
  GF_DISPATCH(c, gf::leaky_relu_forward_cpu(x.data, y.data, x.numel(), sl),
              gf::leaky_relu_forward_cuda(x.data, y.data, x.numel(), sl, stream));
  return y.obj;
}

py::object leaky_relu_backward(py::handle dy_, py::handle x_, double slope, py::handle dx_) {
  Checker c("leaky_relu_backward", {{"dx", "dy"}, {"dx", "x"}});
  Array dy = c.input_ranked(dy_, "dy", 0, kMaxRank);
  Array x = c.input_ranked(x_, "x", 0, kMaxRank);
  c.expect_shape(x, "x", dy.shape);
  check_finite(c, slope, "slope");
  Array dx = c.output(dx_, "dx", dy.shape);
  const float sl = static_cast<float>(slope);
  GF_DISPATCH(c, gf::leaky_relu_backward_cpu(dy.data, x.data, dx.data, dy.numel(), sl),
              gf::leaky_relu_backward_cuda(dy.data, x.data, dx.data, dy.numel(), sl, stream));
  return dx.obj;
}

py::object tanh_forward(py::handle x_, py::handle out_) {
  Checker c("tanh_forward", {{"out", "x"}});
  Array x = c.input_ranked(x_, "x", 0, kMaxRank);
  Array y = c.output(out_, "out", x.shape);
  GF_DISPATCH(c, gf::tanh_forward_cpu(x.data, y.data, x.numel()),
              gf::tanh_forward_cuda(x.data, y.data, x.numel(), stream));
  return y.obj;
}

py::object tanh_backward(py::handle dy_, py::handle y_, py::handle dx_) {
  Checker c("tanh_backward", {{"dx", "dy"}, {"dx", "y"}});
  Array dy = c.input_ranked(dy_, "dy", 0, kMaxRank);
  Array y = c.input_ranked(y_, "y", 0, kMaxRank);
  c.expect_shape(y, "y", dy.shape);
  Array dx = c.output(dx_, "dx", dy.shape);
  GF_DISPATCH(c, gf::tanh_backward_cpu(dy.data, y.data, dx.data, dy.numel()),
              gf::tanh_backward_cuda(dy.data, y.data, dx.data, dy.numel(), stream));
  return dx.obj;
}

py::object dropout_apply(const char* op, const char* in_name, const char* out_name,
                         py::handle in_, double p, uint64_t seed, py::handle step_,
                         py::handle out_) {
  Checker c(op, {{out_name, in_name}});
  Array in = c.input_ranked(in_, in_name, 0, kMaxRank);
  check_unit_interval(c, p, "p", false);
  const std::optional<gf::StepArg> step = optional_step(c, step_);
  Array out = c.output(out_, out_name, in.shape);
  const float pf = static_cast<float>(p);
  GF_DISPATCH(c, gf::dropout_apply_cpu(in.data, out.data, in.numel(), pf, seed, host_value(step)),
              gf::dropout_apply_cuda(in.data, out.data, in.numel(), pf, seed, step, stream));
  return out.obj;
}

py::object leaky_relu_dropout_forward(py::handle x_, double slope, double p, uint64_t seed,
                                      py::handle step_, py::handle out_) {
  Checker c("leaky_relu_dropout_forward", {{"out", "x"}});
  Array x = c.input_ranked(x_, "x", 0, kMaxRank);
  check_finite(c, slope, "slope");
  check_unit_interval(c, p, "p", false);
  const std::optional<gf::StepArg> step = optional_step(c, step_);
  Array y = c.output(out_, "out", x.shape);
  const float sl = static_cast<float>(slope), pf = static_cast<float>(p);
  GF_DISPATCH(c,
              gf::leaky_relu_dropout_forward_cpu(x.data, y.data, x.numel(), sl, pf, seed,
                                                 host_value(step)),
              gf::leaky_relu_dropout_forward_cuda(x.data, y.data, x.numel(), sl, pf, seed, step,
                                                  stream));
  return y.obj;
}

py::object leaky_relu_dropout_backward(py::handle dy_, py::handle x_, double slope, double p,
                                       uint64_t seed, py::handle step_, py::handle dx_) {
  Checker c("leaky_relu_dropout_backward", {{"dx", "dy"}, {"dx", "x"}});
  Array dy = c.input_ranked(dy_, "dy", 0, kMaxRank);
  Array x = c.input_ranked(x_, "x", 0, kMaxRank);
  c.expect_shape(x, "x", dy.shape);
  check_finite(c, slope, "slope");
  check_unit_interval(c, p, "p", false);
  const std::optional<gf::StepArg> step = optional_step(c, step_);
  Array dx = c.output(dx_, "dx", dy.shape);
  const float sl = static_cast<float>(slope), pf = static_cast<float>(p);
  GF_DISPATCH(c,
              gf::leaky_relu_dropout_backward_cpu(dy.data, x.data, dx.data, dy.numel(), sl, pf,
                                                  seed, host_value(step)),
              gf::leaky_relu_dropout_backward_cuda(dy.data, x.data, dx.data, dy.numel(), sl, pf,
                                                   seed, step, stream));
  return dx.obj;
}

py::tuple bce_with_logits(py::handle z_, py::handle t_, py::handle loss_, py::handle dz_) {
  Checker c("bce_with_logits");
  Array z = c.input_ranked(z_, "logits", 1, kMaxRank);
  Array t = c.input_ranked(t_, "targets", 1, kMaxRank);
  c.expect_shape(t, "targets", z.shape);
  if (z.numel() == 0) c.fail_value("logits: the mean of an empty batch is undefined");
  Array loss = c.output(loss_, "loss", {});
  Array dz = c.output(dz_, "dlogits", z.shape);
  GF_DISPATCH(c, gf::bce_with_logits_cpu(z.data, t.data, loss.data, dz.data, z.numel()),
              gf::bce_with_logits_cuda(z.data, t.data, loss.data, dz.data, z.numel(), stream));
  return py::make_tuple(loss.obj, dz.obj);
}

py::tuple softmax_cross_entropy(py::handle z_, py::handle labels_, py::handle loss_,
                                py::handle dz_) {
  Checker c("softmax_cross_entropy", {{"dlogits", "logits"}});
  Array z = c.input(z_, "logits", 2);
  const int64_t N = z.dim(0), C = z.dim(1);
  if (N == 0) c.fail_value("logits: the mean of an empty batch is undefined");
  if (C == 0) c.fail_value("logits: expected at least one class, got shape " +
                           gf::py_args::shape_str(z.shape));
  Array labels = class_labels(c, labels_, N, C);
  Array loss = c.output(loss_, "loss", {});
  Array dz = c.output(dz_, "dlogits", z.shape);
  GF_DISPATCH(c, gf::softmax_cross_entropy_cpu(z.data, labels.int_data, loss.data, dz.data, N, C),
              gf::softmax_cross_entropy_cuda(z.data, labels.int_data, loss.data, dz.data, N, C,
                                             stream));
  return py::make_tuple(loss.obj, dz.obj);
}

void adam_step(py::handle p_, py::handle g_, py::handle m_, py::handle v_, py::handle step_,
               double lr, double beta1, double beta2, double eps) {
  Checker c("adam_step");
  Array p = c.in_place_ranked(p_, "params", 1, 1);
  Array g = c.input(g_, "grads", 1);
  c.expect_shape(g, "grads", p.shape);
  Array m = c.in_place(m_, "m", p.shape);
  Array v = c.in_place(v_, "v", p.shape);
  const gf::StepArg step = c.step_arg(step_, "step");
  if (!step.on_device() && step.value < 1)
    c.fail_value("step: expected >= 1 (the step number after this update), got " +
                 std::to_string(step.value));
  check_finite(c, lr, "lr");
  if (lr <= 0) c.fail_value("lr: expected > 0, got " + std::to_string(lr));
  check_unit_interval(c, beta1, "beta1", false);
  check_unit_interval(c, beta2, "beta2", false);
  check_finite(c, eps, "eps");
  if (eps <= 0) c.fail_value("eps: expected > 0, got " + std::to_string(eps));
  const gf::AdamHyper h{lr, beta1, beta2, eps};
  GF_DISPATCH(c, gf::adam_step_cpu(p.data, g.data, m.data, v.data, p.numel(), h, step.value),
              gf::adam_step_cuda(p.data, g.data, m.data, v.data, p.numel(), h, step, stream));
}

// ---------------------------------------------------------------------------- device-side data
// (issue #13) counter-based noise, the batch's indices and the batch itself, drawn on the
// device from (seed, step) so that a captured training step needs nothing from the host.
py::object random_normal(py::handle out_, uint64_t seed, py::handle step_) {
  Checker c("random_normal");
  Array out = c.in_place_ranked(out_, "out", 0, kMaxRank);  // filled, never read
  const gf::StepArg step = counter_step(c, step_);
  GF_DISPATCH(c, gf::random_normal_cpu(out.data, out.numel(), seed, step.value),
              gf::random_normal_cuda(out.data, out.numel(), seed, step, stream));
  return out.obj;
}

py::object batch_indices(py::handle out_, uint64_t seed, py::handle step_, int64_t n_items,
                         int64_t batch_size, int64_t steps_per_epoch) {
  Checker c("batch_indices");
  if (out_.is_none())
    throw py::type_error("batch_indices: out: expected an int64 array [n] to fill, got None");
  Array out = c.int_output(out_, "out", {kAny});
  const int64_t n = out.dim(0);
  const gf::StepArg step = counter_step(c, step_);
  if (n_items < 1 || n_items > (int64_t{1} << 62))
    c.fail_value("n_items: expected 1 <= n_items <= 2**62, got " + std::to_string(n_items));
  if (batch_size < 1)
    c.fail_value("batch_size: expected >= 1, got " + std::to_string(batch_size));
  const int64_t max_steps = (n_items - 1) / batch_size + 1;  // ceil(n_items / batch_size)
  if (steps_per_epoch < 1 || steps_per_epoch > max_steps)
    c.fail_value("steps_per_epoch: expected 1 <= steps_per_epoch <= ceil(n_items / batch_size) "
                 "= " + std::to_string(max_steps) + ", got " + std::to_string(steps_per_epoch));
  if (n > batch_size)
    c.fail_value("out: expected at most batch_size = " + std::to_string(batch_size) +
                 " rows, got " + std::to_string(n));
  // A step known here must have an item for every row (a device step gets -1 rows instead).
  if (!step.on_device()) {
    const int64_t first = step.value % steps_per_epoch * batch_size;
    if (first + n > n_items)
      c.fail_value("out: step " + std::to_string(step.value) + " is position " +
                   std::to_string(step.value % steps_per_epoch) + " of its epoch, whose rows " +
                   "start at item " + std::to_string(first) + ": " + std::to_string(n) +
                   " rows would pass n_items = " + std::to_string(n_items));
  }
  const gf::BatchGeometry g{n_items, batch_size, steps_per_epoch};
  GF_DISPATCH(c, gf::batch_indices_cpu(out.int_data, n, seed, step.value, g),
              gf::batch_indices_cuda(out.int_data, n, seed, step, g, stream));
  return out.obj;
}

py::object gather_rows(py::handle src_, py::handle idx_, py::handle out_) {
  Checker c("gather_rows");
  Array src = c.input_f32_or_i64(src_, "src", 1, kMaxRank);
  Array idx = c.int_input(idx_, "idx", 1);
  const int64_t K = src.dim(0), n = idx.dim(0);
  std::vector<int64_t> shape = src.shape;
  shape[0] = n;
  Array out = src.is_int64 ? c.int_output(out_, "out", shape) : c.output(out_, "out", shape);
  // On the CPU every index is checked here; on CUDA that would need a device-to-host copy,
  // so the kernel writes NaN / -1 rows instead (gather_rows.h).
  if (!c.on_cuda())
    for (int64_t r = 0; r < n; ++r)
      if (!gf::row_in_range(idx.int_data[r], K))
        c.fail_value("idx: expected row indices in [0, " + std::to_string(K) + "), got " +
                     std::to_string(idx.int_data[r]) + " at index " + std::to_string(r));
  int64_t row = 1;  // elements per row
  for (size_t d = 1; d < src.shape.size(); ++d) row *= src.shape[d];
  if (src.is_int64)
    GF_DISPATCH(c, gf::gather_rows_cpu(src.int_data, idx.int_data, out.int_data, K, row, n),
                gf::gather_rows_cuda(src.int_data, idx.int_data, out.int_data, K, row, n, stream));
  else
    GF_DISPATCH(c, gf::gather_rows_cpu(src.data, idx.int_data, out.data, K, row, n),
                gf::gather_rows_cuda(src.data, idx.int_data, out.data, K, row, n, stream));
  return out.obj;
}

// ---------------------------------------------------------------------------- quality recipe
// (issue #12: the discriminator's minibatch standard deviation and spectral normalisation,
// the generator's weight average)
void check_positive(const Checker& c, double v, const char* name) {
  check_finite(c, v, name);
  if (v <= 0) c.fail_value(std::string(name) + ": expected > 0, got " + std::to_string(v));
}

gf::MinibatchStddevShape minibatch_stddev_shape(const Checker& c, const Array& x,
                                                int64_t group_size, double eps) {
  if (x.dim(1) < 1 || x.dim(2) < 1 || x.dim(3) < 1)
    c.fail_value("x: expected C, H, W >= 1 (the statistic is a mean over the C·H·W features), "
                 "got shape " + gf::py_args::shape_str(x.shape));
  if (group_size < 1)
    c.fail_value("group_size: expected >= 1, got " + std::to_string(group_size));
  check_positive(c, eps, "eps");
  return {x.dim(0), x.dim(1), x.dim(2) * x.dim(3), group_size};
}

py::object minibatch_stddev_forward(py::handle x_, int64_t group_size, double eps,
                                    py::handle out_) {
  Checker c("minibatch_stddev_forward");
  Array x = c.input(x_, "x", 4);
  const gf::MinibatchStddevShape s = minibatch_stddev_shape(c, x, group_size, eps);
  Array y = c.output(out_, "out", {s.N, s.C + 1, x.dim(2), x.dim(3)});
  const float e = static_cast<float>(eps);
  GF_DISPATCH(c, gf::minibatch_stddev_forward_cpu(x.data, y.data, s, e),
              gf::minibatch_stddev_forward_cuda(x.data, y.data, s, e, stream));
  return y.obj;
}

py::object minibatch_stddev_backward(py::handle dy_, py::handle x_, int64_t group_size,
                                     double eps, py::handle dx_) {
  Checker c("minibatch_stddev_backward");
  Array dy = c.input(dy_, "dy", 4);
  Array x = c.input(x_, "x", 4);
  const gf::MinibatchStddevShape s = minibatch_stddev_shape(c, x, group_size, eps);
  c.expect_shape(dy, "dy", {s.N, s.C + 1, x.dim(2), x.dim(3)});
  Array dx = c.output(dx_, "dx", x.shape);
  const float e = static_cast<float>(eps);
  GF_DISPATCH(c, gf::minibatch_stddev_backward_cpu(dy.data, x.data, dx.data, s, e),
              gf::minibatch_stddev_backward_cuda(dy.data, x.data, dx.data, s, e, stream));
  return dx.obj;
}

// w of rank >= 2 viewed as [K, F]: F is the product of the trailing dimensions.
// The product of w's dimensions after the first (spectral_norm's F).
int64_t trailing_size(const Array& w) {
  int64_t F = 1;
  for (size_t i = 1; i < w.shape.size(); ++i) F *= w.dim(i);
  return F;
}

py::tuple spectral_norm_forward(py::handle w_, py::handle u_, double eps, py::handle out_,
                                py::handle v_, py::handle sigma_) {
  Checker c("spectral_norm_forward", {{"out", "w"}});
  Array w = c.input_ranked(w_, "w", 2, kMaxRank);
  const int64_t K = w.dim(0), F = trailing_size(w);
  Array u = c.in_place(u_, "u", {K});
  check_positive(c, eps, "eps");
  Array w_sn = c.output(out_, "out", w.shape);
  Array v = c.output(v_, "v", {F});
  Array sigma = c.output(sigma_, "sigma", {});
  const float e = static_cast<float>(eps);
  GF_DISPATCH(c,
              gf::spectral_norm_forward_cpu(w.data, u.data, w_sn.data, v.data, sigma.data, K, F,
                                            e),
              gf::spectral_norm_forward_cuda(w.data, u.data, w_sn.data, v.data, sigma.data, K, F,
                                             e, stream));
  return py::make_tuple(w_sn.obj, v.obj, sigma.obj);
}

py::object spectral_norm_backward(py::handle dw_sn_, py::handle w_sn_, py::handle u_,
                                  py::handle v_, py::handle sigma_, py::handle dw_) {
  Checker c("spectral_norm_backward", {{"dw", "dw_sn"}});
  Array dw_sn = c.input_ranked(dw_sn_, "dw_sn", 2, kMaxRank);
  Array w_sn = c.input_ranked(w_sn_, "w_sn", 2, kMaxRank);
  c.expect_shape(w_sn, "w_sn", dw_sn.shape);
  const int64_t K = w_sn.dim(0), F = trailing_size(w_sn);
  Array u = c.input(u_, "u", 1);
  c.expect_shape(u, "u", {K});
  Array v = c.input(v_, "v", 1);
  c.expect_shape(v, "v", {F});
  Array sigma = c.input(sigma_, "sigma", 0);
  Array dw = c.output(dw_, "dw", w_sn.shape);
  GF_DISPATCH(c,
              gf::spectral_norm_backward_cpu(dw_sn.data, w_sn.data, u.data, v.data, sigma.data,
                                             dw.data, K, F),
              gf::spectral_norm_backward_cuda(dw_sn.data, w_sn.data, u.data, v.data, sigma.data,
                                              dw.data, K, F, stream));
  return dw.obj;
}

void ema_update(py::handle average_, py::handle value_, double decay, py::handle step_) {
  Checker c("ema_update");
  Array average = c.in_place(average_, "average", {kAny});
  Array value = c.input(value_, "value", 1);
  c.expect_shape(value, "value", average.shape);
  check_unit_interval(c, decay, "decay", false);
  const gf::StepArg step = c.step_arg(step_, "step");
  // A step in device memory is read by the kernel and cannot be checked here.
  if (!step.on_device() && step.value < 1)
    c.fail_value("step: expected >= 1 (the number of updates including this one), got " +
                 std::to_string(step.value));
  const int64_t n = average.numel();
  GF_DISPATCH(c, gf::ema_update_cpu(average.data, value.data, n, decay, step.value),
              gf::ema_update_cuda(average.data, value.data, n, decay, step, stream));
}

// ---------------------------------------------------------------------------- conditional GAN
py::object embedding_forward(py::handle weight_, py::handle labels_, py::handle out_) {
  Checker c("embedding_forward");
  Array weight = c.input(weight_, "weight", 2);
  const int64_t C = weight.dim(0), D = weight.dim(1);
  Array labels = class_labels(c, labels_, kAny, C);
  const int64_t N = labels.dim(0);
  Array y = c.output(out_, "out", {N, D});
  GF_DISPATCH(c, gf::embedding_forward_cpu(weight.data, labels.int_data, y.data, N, D, C),
              gf::embedding_forward_cuda(weight.data, labels.int_data, y.data, N, D, C, stream));
  return y.obj;
}

// A Python int (or NumPy integer) that fits in int64; anything else is a TypeError and an
// int beyond int64 a ValueError, both naming the op and the argument.
int64_t int_arg(const Checker& c, py::handle v, const char* name) {
  if (!PyIndex_Check(v.ptr()))
    throw py::type_error(std::string(c.op()) + ": " + name + ": expected an int, got " +
                         py::repr(v).cast<std::string>());
  auto index = py::reinterpret_steal<py::object>(PyNumber_Index(v.ptr()));
  if (!index) throw py::error_already_set();
  try {
    return index.cast<int64_t>();
  } catch (const py::cast_error&) {
    c.fail_value(std::string(name) + ": " + py::repr(v).cast<std::string>() +
                 " does not fit in int64");
  }
}

py::object embedding_backward(py::handle dy_, py::handle labels_, py::handle num_classes,
                              py::handle dweight_) {
  Checker c("embedding_backward");
  Array dy = c.input(dy_, "dy", 2);
  const int64_t N = dy.dim(0), D = dy.dim(1), C = int_arg(c, num_classes, "num_classes");
  if (C < 0) c.fail_value("num_classes: expected >= 0, got " + std::to_string(C));
  Array labels = class_labels(c, labels_, N, C);
  Array dweight = c.output(dweight_, "dweight", {C, D});
  GF_DISPATCH(c, gf::embedding_backward_cpu(dy.data, labels.int_data, dweight.data, N, D, C),
              gf::embedding_backward_cuda(dy.data, labels.int_data, dweight.data, N, D, C,
                                          stream));
  return dweight.obj;
}

// The floats of one sample after axis 1 is fixed: ∏ shape[2:] (T, the trailing size).
int64_t size_after_axis1(const Array& a) {
  int64_t t = 1;
  for (size_t i = 2; i < a.shape.size(); ++i) t *= a.shape[i];
  return t;
}

// shape with axis 1 replaced.
std::vector<int64_t> with_axis1(std::vector<int64_t> shape, int64_t size) {
  shape[1] = size;
  return shape;
}

py::object concat_forward(py::handle a_, py::handle b_, py::handle out_) {
  Checker c("concat_forward");
  Array a = c.input_ranked(a_, "a", 2, 4);
  Array b = c.input_ranked(b_, "b", 2, 4);
  c.expect_shape(b, "b", with_axis1(a.shape, kAny));  // equal rank, N and trailing dims
  const int64_t N = a.dim(0), T = size_after_axis1(a);
  Array y = c.output(out_, "out", with_axis1(a.shape, a.dim(1) + b.dim(1)));
  const int64_t a_row = a.dim(1) * T, b_row = b.dim(1) * T;
  GF_DISPATCH(c, gf::concat_forward_cpu(a.data, b.data, y.data, N, a_row, b_row),
              gf::concat_forward_cuda(a.data, b.data, y.data, N, a_row, b_row, stream));
  return y.obj;
}

py::tuple concat_backward(py::handle dy_, py::handle split_, bool need_da, bool need_db,
                          py::handle da_, py::handle db_) {
  Checker c("concat_backward");
  Array dy = c.input_ranked(dy_, "dy", 2, 4);
  const int64_t N = dy.dim(0), S = dy.dim(1), T = size_after_axis1(dy);
  const int64_t split = int_arg(c, split_, "split");
  if (split < 0 || split > S)
    c.fail_value("split: expected 0 <= split <= " + std::to_string(S) + " (dy.shape[1]), got " +
                 std::to_string(split));
  Array da = need_da ? c.output(da_, "da", with_axis1(dy.shape, split)) : Array{};
  Array db = need_db ? c.output(db_, "db", with_axis1(dy.shape, S - split)) : Array{};
  const int64_t a_row = split * T, b_row = (S - split) * T;
  GF_DISPATCH(c, gf::concat_backward_cpu(dy.data, da.data, db.data, N, a_row, b_row),
              gf::concat_backward_cuda(dy.data, da.data, db.data, N, a_row, b_row, stream));
  return py::make_tuple(or_none(need_da, da), or_none(need_db, db));
}

// h [N, D], w [1, D], embed [C, D] and labels [N], checked in this order.
struct ProjectionHeadArgs {
  Array h, w, embed, labels;
  int64_t N, D, C;
  ProjectionHeadArgs(Checker& c, py::handle h_, py::handle w_, py::handle embed_,
                     py::handle labels_) {
    h = c.input(h_, "h", 2);
    N = h.dim(0);
    D = h.dim(1);
    w = c.input(w_, "w", 2);
    c.expect_shape(w, "w", {1, D});
    embed = c.input(embed_, "embed", 2);
    c.expect_shape(embed, "embed", {kAny, D});
    C = embed.dim(0);
    labels = class_labels(c, labels_, N, C);
  }
};

py::object projection_head_forward(py::handle h_, py::handle w_, py::handle b_,
                                   py::handle embed_, py::handle labels_, py::handle out_) {
  Checker c("projection_head_forward");
  ProjectionHeadArgs p(c, h_, w_, embed_, labels_);
  Array b = c.optional_input(b_, "b", {1});
  Array logits = c.output(out_, "out", {p.N, 1});
  GF_DISPATCH(c,
              gf::projection_head_forward_cpu(p.h.data, p.w.data, b.data, p.embed.data,
                                              p.labels.int_data, logits.data, p.N, p.D, p.C),
              gf::projection_head_forward_cuda(p.h.data, p.w.data, b.data, p.embed.data,
                                               p.labels.int_data, logits.data, p.N, p.D, p.C,
                                               stream));
  return logits.obj;
}

py::tuple projection_head_backward(py::handle dlogits_, py::handle h_, py::handle w_,
                                   py::handle embed_, py::handle labels_, bool need_dh,
                                   bool need_dw, bool need_db, bool need_dembed, py::handle dh_,
                                   py::handle dw_, py::handle db_, py::handle dembed_) {
  Checker c("projection_head_backward");
  ProjectionHeadArgs p(c, h_, w_, embed_, labels_);
  Array dlogits = c.input(dlogits_, "dlogits", 2);
  c.expect_shape(dlogits, "dlogits", {p.N, 1});
  Array dh = need_dh ? c.output(dh_, "dh", {p.N, p.D}) : Array{};
  Array dw = need_dw ? c.output(dw_, "dw", {1, p.D}) : Array{};
  Array db = need_db ? c.output(db_, "db", {1}) : Array{};
  Array dembed = need_dembed ? c.output(dembed_, "dembed", {p.C, p.D}) : Array{};
  GF_DISPATCH(c,
              gf::projection_head_backward_cpu(dlogits.data, p.h.data, p.w.data, p.embed.data,
                                               p.labels.int_data, dh.data, dw.data, db.data,
                                               dembed.data, p.N, p.D, p.C),
              gf::projection_head_backward_cuda(dlogits.data, p.h.data, p.w.data, p.embed.data,
                                                p.labels.int_data, dh.data, dw.data, db.data,
                                                dembed.data, p.N, p.D, p.C, stream));
  return py::make_tuple(or_none(need_dh, dh), or_none(need_dw, dw), or_none(need_db, db),
                        or_none(need_dembed, dembed));
}

// ---------------------------------------------------------------------------- runtime
bool cuda_compiled() {
#ifdef GF_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int cuda_device_count() {
#ifdef GF_WITH_CUDA
  return gf::cuda_device_count();
#else
  return 0;
#endif
}

void set_cpu_isa(const std::string& isa) {
  if (isa != "auto" && isa != "avx512" && isa != "avx2" && isa != "scalar")
    throw py::value_error("set_cpu_isa: isa: expected 'auto', 'avx512', 'avx2' or 'scalar', got '" + isa + "'");
  if (!gf::force_cpu_isa(isa.c_str()))
    throw py::value_error("set_cpu_isa: isa: this CPU cannot run '" + isa + "'");
}

void set_num_threads(int n) {
  if (n < 1) throw py::value_error("set_num_threads: n: expected >= 1, got " + std::to_string(n));
  omp_set_num_threads(n);
}

// Kernel variants (common/variants.h): private switches for the tests.
py::dict kernel_variants() {
  py::dict d;
  for (const gf::KernelFamilyNames& f : gf::kKernelFamilies) {
    py::list names;
    for (const char* v : f.variants)
      if (v != nullptr) names.append(v);
    d[f.family] = py::tuple(names);
  }
  return d;
}

int kernel_family_arg(const char* fn, const std::string& family) {
  const int f = gf::kernel_family(family.c_str());
  if (f < 0)
    throw py::value_error(std::string(fn) + ": family: expected one of " +
                          py::repr(py::tuple(kernel_variants())).cast<std::string>() +
                          ", got '" + family + "'");
  return f;
}

void set_kernel_variant(const std::string& family, const std::string& variant) {
  const int f = kernel_family_arg("_set_kernel_variant", family);
  const int v = gf::kernel_variant(f, variant.c_str());
  if (v < 0)
    throw py::value_error("_set_kernel_variant: variant: expected 'auto' or one of " +
                          py::repr(kernel_variants()[family.c_str()]).cast<std::string>() +
                          ", got '" + variant + "'");
  gf::force_variant(f, v);
}

std::string kernel_variant(const std::string& family) {
  const int f = kernel_family_arg("_kernel_variant", family);
  const int v = gf::forced_variant(static_cast<gf::KernelFamily>(f));
  return v == 0 ? "auto" : gf::kKernelFamilies[f].variants[v - 1];
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "gan_fast kernels (CPU and, when built with nvcc, CUDA). Use gan_fast.ops.";
  py::register_exception<gf::Error>(m, "KernelError", PyExc_RuntimeError);

  const auto none = py::none();
  m.def("linear_forward", &linear_forward, "x"_a, "w"_a, "b"_a = none, "out"_a = none,
        "activation"_a = none, "slope"_a = 0.2);
  m.def("linear_backward", &linear_backward, "dy"_a, "x"_a, "w"_a, "need_dx"_a = true,
        "need_dw"_a = true, "need_db"_a = true, "dx"_a = none, "dw"_a = none, "db"_a = none);
  m.def("conv2d_forward", &conv2d_forward, "x"_a, "w"_a, "b"_a = none, "stride"_a = 1,
        "padding"_a = 0, "out"_a = none, "activation"_a = none, "slope"_a = 0.2,
        "dropout_p"_a = 0.0, "seed"_a = 0, "step"_a = none);
  m.def("conv2d_backward", &conv2d_backward, "dy"_a, "x"_a, "w"_a, "stride"_a = 1,
        "padding"_a = 0, "need_dx"_a = true, "need_dw"_a = true, "need_db"_a = true,
        "dx"_a = none, "dw"_a = none, "db"_a = none);
  m.def("batchnorm_forward", &batchnorm_forward, "x"_a, "gamma"_a, "beta"_a, "running_mean"_a,
        "running_var"_a, "training"_a = true, "momentum"_a = 0.1, "eps"_a = 1e-5,
        "out"_a = none, "mean"_a = none, "rstd"_a = none);
  m.def("batchnorm_backward", &batchnorm_backward, "dy"_a, "x"_a, "gamma"_a, "mean"_a, "rstd"_a,
        "training"_a = true, "dx"_a = none, "dgamma"_a = none, "dbeta"_a = none);
  m.def("leaky_relu_forward", &leaky_relu_forward, "x"_a, "slope"_a = 0.2, "out"_a = none);
  m.def("leaky_relu_backward", &leaky_relu_backward, "dy"_a, "x"_a, "slope"_a = 0.2,
        "dx"_a = none);
  m.def("tanh_forward", &tanh_forward, "x"_a, "out"_a = none);
  m.def("tanh_backward", &tanh_backward, "dy"_a, "y"_a, "dx"_a = none);
  m.def("dropout_forward",
        [](py::handle x, double p, uint64_t seed, py::handle step, py::handle out) {
          return dropout_apply("dropout_forward", "x", "out", x, p, seed, step, out);
        },
        "x"_a, "p"_a, "seed"_a, "step"_a = none, "out"_a = none);
  m.def("dropout_backward",
        [](py::handle dy, double p, uint64_t seed, py::handle step, py::handle dx) {
          return dropout_apply("dropout_backward", "dy", "dx", dy, p, seed, step, dx);
        },
        "dy"_a, "p"_a, "seed"_a, "step"_a = none, "dx"_a = none);
  m.def("leaky_relu_dropout_forward", &leaky_relu_dropout_forward, "x"_a, "slope"_a, "p"_a,
        "seed"_a, "step"_a = none, "out"_a = none);
  m.def("leaky_relu_dropout_backward", &leaky_relu_dropout_backward, "dy"_a, "x"_a, "slope"_a,
        "p"_a, "seed"_a, "step"_a = none, "dx"_a = none);
  m.def("bce_with_logits", &bce_with_logits, "logits"_a, "targets"_a, "loss"_a = none,
        "dlogits"_a = none);
  m.def("softmax_cross_entropy", &softmax_cross_entropy, "logits"_a, "labels"_a,
        "loss"_a = none, "dlogits"_a = none);
  m.def("adam_step", &adam_step, "params"_a, "grads"_a, "m"_a, "v"_a, "step"_a, "lr"_a = 1e-3,
        "beta1"_a = 0.9, "beta2"_a = 0.999, "eps"_a = 1e-8);
  m.def("random_normal", &random_normal, "out"_a, "seed"_a, "step"_a);
  m.def("batch_indices", &batch_indices, "out"_a, "seed"_a, "step"_a, "n_items"_a,
        "batch_size"_a, "steps_per_epoch"_a);
  m.def("gather_rows", &gather_rows, "src"_a, "idx"_a, "out"_a = none);

  m.def("minibatch_stddev_forward", &minibatch_stddev_forward, "x"_a, "group_size"_a = 4,
        "eps"_a = 1e-8, "out"_a = none);
  m.def("minibatch_stddev_backward", &minibatch_stddev_backward, "dy"_a, "x"_a,
        "group_size"_a = 4, "eps"_a = 1e-8, "dx"_a = none);
  m.def("spectral_norm_forward", &spectral_norm_forward, "w"_a, "u"_a, "eps"_a = 1e-12,
        "out"_a = none, "v"_a = none, "sigma"_a = none);
  m.def("spectral_norm_backward", &spectral_norm_backward, "dw_sn"_a, "w_sn"_a, "u"_a, "v"_a,
        "sigma"_a, "dw"_a = none);
  m.def("ema_update", &ema_update, "average"_a, "value"_a, "decay"_a, "step"_a);

  m.def("embedding_forward", &embedding_forward, "weight"_a, "labels"_a, "out"_a = none);
  m.def("embedding_backward", &embedding_backward, "dy"_a, "labels"_a, "num_classes"_a,
        "dweight"_a = none);
  m.def("concat_forward", &concat_forward, "a"_a, "b"_a, "out"_a = none);
  m.def("concat_backward", &concat_backward, "dy"_a, "split"_a, "need_da"_a = true,
        "need_db"_a = true, "da"_a = none, "db"_a = none);
  m.def("projection_head_forward", &projection_head_forward, "h"_a, "w"_a, "b"_a, "embed"_a,
        "labels"_a, "out"_a = none);
  m.def("projection_head_backward", &projection_head_backward, "dlogits"_a, "h"_a, "w"_a,
        "embed"_a, "labels"_a, "need_dh"_a = true, "need_dw"_a = true, "need_db"_a = true,
        "need_dembed"_a = true, "dh"_a = none, "dw"_a = none, "db"_a = none,
        "dembed"_a = none);

  m.def("cuda_compiled", &cuda_compiled);
  m.def("cuda_device_count", &cuda_device_count);
  m.def("cpu_isa", [] { return std::string(gf::cpu_isa_name(gf::active_cpu_isa())); });
  m.def("set_cpu_isa", &set_cpu_isa, "isa"_a);
  m.def("fma_peak_gflops", &gf::fma_peak_gflops, "seconds"_a = 0.2, "repeats"_a = 5,
        "Measured float32 FMA throughput of the active CPU path on all threads (GFLOP/s).");
  m.def("get_num_threads", [] { return omp_get_max_threads(); });
  m.def("set_num_threads", &set_num_threads, "n"_a);
  m.def("_kernel_variants", &kernel_variants,
        "The kernel families whose variant can be forced, and their variants (variant 1 first).");
  m.def("_set_kernel_variant", &set_kernel_variant, "family"_a, "variant"_a,
        "Forces one variant of a kernel family process-wide ('auto': each call picks by shape).");
  m.def("_kernel_variant", &kernel_variant, "family"_a,
        "The variant forced for a kernel family, or 'auto'.");
}
