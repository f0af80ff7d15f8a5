// leaky_relu_dropout: the discriminator's activation, dropout (dropout.h) of leaky_relu
// (leaky_relu.h), in one pass, so each activation is read and written once instead of
// twice:
//   y[i]  = dropout_apply(leaky_relu(x[i], slope), seed, i, p, scale)
//   dx[i] = leaky_relu_grad(dropout_apply(dy[i], seed, i, p, scale), x[i], slope)
// with scale = 1 / (1 − p): the same float operations, in the same order, as the two ops
// one after the other, so the results are bitwise theirs. x is the leaky ReLU's input;
// n contiguous float32 values; y / dx overwritten (may alias x / dy). The optional step
// keys the mask as in dropout.h (seed → dropout_step_seed(seed, step)).
#pragma once

#include <cstdint>
#include <optional>

#include "common/check.h"
#include "common/hd.h"
#include "dropout/dropout.h"
#include "leaky_relu/leaky_relu.h"

namespace gf {

// Per-element functors, run by the CPU's elementwise_cpu and CUDA's launch_elementwise.
struct LeakyReluDropoutForward {
  const float* x;
  float* y;
  float slope, p, scale;
  uint64_t seed;
  GF_HD void operator()(int64_t i) const {
    y[i] = dropout_apply(leaky_relu(x[i], slope), seed, static_cast<uint64_t>(i), p, scale);
  }
};

struct LeakyReluDropoutBackward {
  const float* dy;
  const float* x;
  float* dx;
  float slope, p, scale;
  uint64_t seed;
  GF_HD void operator()(int64_t i) const {
    dx[i] = leaky_relu_grad(dropout_apply(dy[i], seed, static_cast<uint64_t>(i), p, scale), x[i],
                            slope);
  }
};

void leaky_relu_dropout_forward_cpu(const float* x, float* y, int64_t n, float slope, float p,
                                    uint64_t seed, std::optional<int64_t> step);
void leaky_relu_dropout_backward_cpu(const float* dy, const float* x, float* dx, int64_t n,
                                     float slope, float p, uint64_t seed,
                                     std::optional<int64_t> step);

#ifdef GF_WITH_CUDA
void leaky_relu_dropout_forward_cuda(const float* x, float* y, int64_t n, float slope, float p,
                                     uint64_t seed, std::optional<StepArg> step, Stream stream);
void leaky_relu_dropout_backward_cuda(const float* dy, const float* x, float* dx, int64_t n,
                                      float slope, float p, uint64_t seed,
                                      std::optional<StepArg> step, Stream stream);
#endif

}  // namespace gf
