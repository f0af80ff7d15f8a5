// leaky_relu_dropout (CPU): the shared per-element formulas (leaky_relu_dropout.h) on the
// active SIMD path (common/cpu_isa.h). Tests: tests/test_dropout.py.
#include "leaky_relu_dropout/leaky_relu_dropout.h"

#include "common/cpu_isa.h"
#include "common/parallel.h"

namespace gf {

void leaky_relu_dropout_forward_cpu(const float* x, float* y, int64_t n, float slope, float p,
                                    uint64_t seed, std::optional<int64_t> step) {
  elementwise_cpu(n, kParallelGrain / 4,
                  LeakyReluDropoutForward{x, y, slope, p, dropout_scale(p),
                                          dropout_mask_seed(seed, step)});
}

void leaky_relu_dropout_backward_cpu(const float* dy, const float* x, float* dx, int64_t n,
                                     float slope, float p, uint64_t seed,
                                     std::optional<int64_t> step) {
  elementwise_cpu(n, kParallelGrain / 4,
                  LeakyReluDropoutBackward{dy, x, dx, slope, p, dropout_scale(p),
                                           dropout_mask_seed(seed, step)});
}

}  // namespace gf
