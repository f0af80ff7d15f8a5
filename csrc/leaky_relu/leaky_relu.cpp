#include "leaky_relu/leaky_relu.h"

#include "common/parallel.h"

namespace gf {

void leaky_relu_forward_cpu(const float* x, float* y, int64_t n, float slope) {
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = leaky_relu(x[i], slope);
}

void leaky_relu_backward_cpu(const float* dy, const float* x, float* dx, int64_t n, float slope) {
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dx[i] = leaky_relu_grad(dy[i], x[i], slope);
}

}  // namespace gf
