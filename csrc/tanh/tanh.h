// tanh: y = tanh(x);  dx = dy · (1 − y²).
// Elementwise over n contiguous float32 values; y / dx overwritten. In place: y may be x
// itself, dx may be dy or y itself; a partial overlap is refused by the binding.
// Backward takes the forward output y, the cheaper cache. 1 − y² is evaluated as
// (1 − y)(1 + y): near |y| = 1 the subtraction is then exact instead of cancelling.
#pragma once

#include <cstdint>

#include "common/check.h"
#include "common/hd.h"

namespace gf {

GF_HD float tanh_grad(float dy, float y) { return dy * ((1.f - y) * (1.f + y)); }

// Per-element backward functor, run by both backends' elementwise launchers.
struct TanhBackward {
  const float* dy;
  const float* y;
  float* dx;
  GF_HD void operator()(int64_t i) const { dx[i] = tanh_grad(dy[i], y[i]); }
};

void tanh_forward_cpu(const float* x, float* y, int64_t n);
void tanh_backward_cpu(const float* dy, const float* y, float* dx, int64_t n);

#ifdef GF_WITH_CUDA
void tanh_forward_cuda(const float* x, float* y, int64_t n, Stream stream);
void tanh_backward_cuda(const float* dy, const float* y, float* dx, int64_t n, Stream stream);
#endif

}  // namespace gf
