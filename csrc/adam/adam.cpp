#include "adam/adam.h"

#include "common/parallel.h"

namespace gf {

void adam_step_cpu(float* p, const float* g, float* m, float* v, int64_t n, const AdamParams& a) {
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) adam_update(p[i], g[i], m[i], v[i], a);
}

}  // namespace gf
