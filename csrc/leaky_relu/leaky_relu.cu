// leaky_relu_*_cuda: one grid-stride launch each, calling the same GF_HD formulas as the CPU
// loops (leaky_relu.h). Tested in tests/test_activations.py.
#include "leaky_relu/leaky_relu.h"

#include "common/cuda_launch.cuh"

namespace gf {

void leaky_relu_forward_cuda(const float* x, float* y, int64_t n, float slope, Stream stream) {
  launch_elementwise(n, LeakyReluForward{x, y, slope}, static_cast<cudaStream_t>(stream));
}

void leaky_relu_backward_cuda(const float* dy, const float* x, float* dx, int64_t n, float slope,
                              Stream stream) {
  launch_elementwise(n, LeakyReluBackward{dy, x, dx, slope}, static_cast<cudaStream_t>(stream));
}

}  // namespace gf
