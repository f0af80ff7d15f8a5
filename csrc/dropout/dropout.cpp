#include "dropout/dropout.h"

#include "common/parallel.h"

namespace gf {

void dropout_apply_cpu(const float* in, float* out, int64_t n, float p, uint64_t seed) {
  const float scale = 1.f / (1.f - p);
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain / 4)
  for (int64_t i = 0; i < n; ++i)
    out[i] = dropout_apply(in[i], seed, static_cast<uint64_t>(i), p, scale);
}

}  // namespace gf
