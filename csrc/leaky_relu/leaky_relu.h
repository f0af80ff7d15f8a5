// leaky_relu: y = x if x > 0 else slope·x;  dx = dy if x > 0 else slope·dy.
// Elementwise over n contiguous float32 values; y / dx overwritten. In place: y may be x
// itself, dx may be dy or x itself; a partial overlap is refused by the binding.
// Backward takes the forward input x (not y), so it is right for any slope, even 0.
#pragma once

#include <cstdint>

#include "common/check.h"
#include "common/hd.h"

namespace gf {

GF_HD float leaky_relu(float x, float slope) { return x > 0.f ? x : slope * x; }
GF_HD float leaky_relu_grad(float dy, float x, float slope) { return x > 0.f ? dy : slope * dy; }

// Per-element functors, run by the CPU's elementwise_cpu and CUDA's launch_elementwise.
struct LeakyReluForward {
  const float* x;
  float* y;
  float slope;
  GF_HD void operator()(int64_t i) const { y[i] = leaky_relu(x[i], slope); }
};

struct LeakyReluBackward {
  const float* dy;
  const float* x;
  float* dx;
  float slope;
  GF_HD void operator()(int64_t i) const { dx[i] = leaky_relu_grad(dy[i], x[i], slope); }
};

void leaky_relu_forward_cpu(const float* x, float* y, int64_t n, float slope);
void leaky_relu_backward_cpu(const float* dy, const float* x, float* dx, int64_t n, float slope);

#ifdef GF_WITH_CUDA
void leaky_relu_forward_cuda(const float* x, float* y, int64_t n, float slope, Stream stream);
void leaky_relu_backward_cuda(const float* dy, const float* x, float* dx, int64_t n, float slope,
                              Stream stream);
#endif

}  // namespace gf
