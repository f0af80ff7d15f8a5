// leaky_relu_dropout_*_cuda: one grid-stride launch each of the shared formulas
// (leaky_relu_dropout.h), with the scale both backends take from dropout_scale(p), so they
// and gan_fast.reference drop the same elements; a step-keyed call reads its step as
// dropout/dropout_launch.cuh says. Tested in tests/test_dropout.py and
// tests/test_cuda_graph.py (device step).
#include "leaky_relu_dropout/leaky_relu_dropout.h"

#include "dropout/dropout_launch.cuh"

namespace gf {

void leaky_relu_dropout_forward_cuda(const float* x, float* y, int64_t n, float slope, float p,
                                     uint64_t seed, std::optional<StepArg> step, Stream stream) {
  launch_dropout_op(n, LeakyReluDropoutForward{x, y, slope, p, dropout_scale(p), seed}, step,
                    static_cast<cudaStream_t>(stream));
}

void leaky_relu_dropout_backward_cuda(const float* dy, const float* x, float* dx, int64_t n,
                                      float slope, float p, uint64_t seed,
                                      std::optional<StepArg> step, Stream stream) {
  launch_dropout_op(n, LeakyReluDropoutBackward{dy, x, dx, slope, p, dropout_scale(p), seed},
                    step, static_cast<cudaStream_t>(stream));
}

}  // namespace gf
