// leaky_relu_dropout_*_cuda: one grid-stride launch each of the shared formulas
// (leaky_relu_dropout.h), with the scale both backends take from dropout_scale(p), so they
// and gan_fast.reference drop the same elements. Tested in tests/test_dropout.py.
#include "leaky_relu_dropout/leaky_relu_dropout.h"

#include "common/cuda_launch.cuh"

namespace gf {

void leaky_relu_dropout_forward_cuda(const float* x, float* y, int64_t n, float slope, float p,
                                     uint64_t seed, Stream stream) {
  launch_elementwise(n, LeakyReluDropoutForward{x, y, slope, p, dropout_scale(p), seed},
                     static_cast<cudaStream_t>(stream));
}

void leaky_relu_dropout_backward_cuda(const float* dy, const float* x, float* dx, int64_t n,
                                      float slope, float p, uint64_t seed, Stream stream) {
  launch_elementwise(n, LeakyReluDropoutBackward{dy, x, dx, slope, p, dropout_scale(p), seed},
                     static_cast<cudaStream_t>(stream));
}

}  // namespace gf
