// leaky_relu (CPU): the shared formulas (leaky_relu.h) on the active SIMD path
// (common/cpu_isa.h). Tests: tests/test_activations.py.
#include "leaky_relu/leaky_relu.h"

#include "common/cpu_isa.h"
#include "common/parallel.h"

namespace gf {
void leaky_relu_forward_cpu(const float* x, float* y, int64_t n, float slope) {
  elementwise_cpu(n, kParallelGrain, LeakyReluForward{x, y, slope});
}

void leaky_relu_backward_cpu(const float* dy, const float* x, float* dx, int64_t n, float slope) {
  elementwise_cpu(n, kParallelGrain, LeakyReluBackward{dy, x, dx, slope});
}

}  // namespace gf
