// conv2d: 2-D cross-correlation, NCHW, zero padding (PyTorch's Conv2d semantics).
//
// Shapes (contiguous float32):
//   x [N, C, H, W]   w [K, C, R, S]   b [K] or null   y [N, K, P, Q]
//   P = (H + 2·pad_h − R) / stride_h + 1,  Q = (W + 2·pad_w − S) / stride_w + 1  (floor)
// forward overwrites y.
// backward, given dy [N, K, P, Q]:
//   dx [N, C, H, W]  overwritten (skipped when null)
//   dw [K, C, R, S]  overwritten (skipped when null)
//   db [K]           overwritten (skipped when null)
// No output may overlap an input or another output (the binding refuses it).
// Nothing is cached: backward takes x and w again. Both backends lower to gemm
// (im2col / col2im per image); reductions over the batch run in a fixed order.
#pragma once

#include <cstdint>

#include "common/check.h"

namespace gf {

struct Conv2dShape {
  int64_t N, C, H, W;  // input
  int64_t K, R, S;     // filters
  int64_t stride_h, stride_w, pad_h, pad_w;
  int64_t P() const { return (H + 2 * pad_h - R) / stride_h + 1; }
  int64_t Q() const { return (W + 2 * pad_w - S) / stride_w + 1; }
};

void conv2d_forward_cpu(const float* x, const float* w, const float* b, float* y,
                        const Conv2dShape& s);
void conv2d_backward_cpu(const float* dy, const float* x, const float* w, float* dx, float* dw,
                         float* db, const Conv2dShape& s);

#ifdef GF_WITH_CUDA
void conv2d_forward_cuda(const float* x, const float* w, const float* b, float* y,
                         const Conv2dShape& s, Stream stream);
void conv2d_backward_cuda(const float* dy, const float* x, const float* w, float* dx, float* dw,
                          float* db, const Conv2dShape& s, Stream stream);
#endif

}  // namespace gf
