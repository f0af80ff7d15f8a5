// conv2d: 2-D cross-correlation, NCHW, zero padding (PyTorch's Conv2d semantics).
//
// Shapes (contiguous float32):
//   x [N, C, H, W]   w [K, C, R, S]   b [K] or null   y [N, K, P, Q]
//   P = (H + 2·pad_h − R) / stride_h + 1,  Q = (W + 2·pad_w − S) / stride_w + 1  (floor;
//   conv2d_geometry below, the one place these sizes are derived)
// forward overwrites y with the convolution (act none, p = 0), or with a fused activation
//   (act leaky_relu) y = leaky_relu_dropout(conv + b) elementwise: leaky_relu (leaky_relu.h),
//   then, when p > 0, dropout (dropout.h) whose mask is indexed by y's C-order flat index over
//   [N, K, P, Q] and keyed by seed and the optional step exactly as leaky_relu_dropout's
//   (p = 0: leaky_relu alone). It is applied as the separate ops would be (CPU: their
//   kernels in place over y; CUDA: in the GEMM's epilogue, gemm.h), so the fused op is bitwise
//   conv2d_forward then leaky_relu_dropout_forward (leaky_relu_forward when p = 0) on each
//   backend.
// backward, given dy [N, K, P, Q]:
//   dx [N, C, H, W]  overwritten (skipped when null)
//   dw [K, C, R, S]  overwritten (skipped when null)
//   db [K]           overwritten (skipped when null)
// No output may overlap an input or another output (the binding refuses it).
// Nothing is cached: backward takes x and w again. Both backends lower to gemm over
// unfolded images (im2col / col2im; the CPU has direct kernels for a shallow unfold:
// conv2d.cpp); reductions over the batch run in a fixed order.
#pragma once

#include <cstdint>
#include <optional>

#include "common/activation.h"
#include "common/check.h"
#include "common/step_arg.h"

namespace gf {

// The call's arguments, as the binding reads them.
struct Conv2dShape {
  int64_t N, C, H, W;  // input
  int64_t K, R, S;     // filters
  int64_t stride_h, stride_w, pad_h, pad_w;
};

// The sizes every kernel of both backends works with, derived in one place
// (conv2d_geometry) from the arguments. Plain data: the CUDA kernels take it by value.
struct Conv2dGeometry {
  Conv2dShape s;
  int64_t P, Q;  // output plane
  int64_t PQ;    // output positions per image
  int64_t HW;    // input positions per image
  int64_t CRS;   // values under one filter: the unfold's depth, gemm's K
  int64_t NPQ;   // output positions of the batch
};

inline Conv2dGeometry conv2d_geometry(const Conv2dShape& s) {
  const int64_t P = (s.H + 2 * s.pad_h - s.R) / s.stride_h + 1;
  const int64_t Q = (s.W + 2 * s.pad_w - s.S) / s.stride_w + 1;
  return {s, P, Q, P * Q, s.H * s.W, s.C * s.R * s.S, s.N * P * Q};
}

// act: none or leaky_relu; slope, p, seed and step as leaky_relu_dropout's (step: CPU its
// value; CUDA a StepArg the kernel reads when it runs).
void conv2d_forward_cpu(const float* x, const float* w, const float* b, float* y,
                        const Conv2dGeometry& g, Activation act, float slope, float p,
                        uint64_t seed, std::optional<int64_t> step);
void conv2d_backward_cpu(const float* dy, const float* x, const float* w, float* dx, float* dw,
                         float* db, const Conv2dGeometry& g);

#ifdef GF_WITH_CUDA
void conv2d_forward_cuda(const float* x, const float* w, const float* b, float* y,
                         const Conv2dGeometry& g, Activation act, float slope, float p,
                         uint64_t seed, std::optional<StepArg> step, Stream stream);
void conv2d_backward_cuda(const float* dy, const float* x, const float* w, float* dx, float* dw,
                          float* db, const Conv2dGeometry& g, Stream stream);
#endif

}  // namespace gf
