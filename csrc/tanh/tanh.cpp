#include "tanh/tanh.h"

#include <cmath>

#include "common/parallel.h"

namespace gf {

void tanh_forward_cpu(const float* x, float* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain / 8)
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

void tanh_backward_cpu(const float* dy, const float* y, float* dx, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dx[i] = tanh_grad(dy[i], y[i]);
}

}  // namespace gf
