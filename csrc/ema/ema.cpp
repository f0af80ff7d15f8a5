// ema (CPU): ema_weights once per call, then the shared per-element update (ema.h) on the
// active SIMD path (common/cpu_isa.h). Tests: tests/test_ema.py.
#include "ema/ema.h"

#include "common/cpu_isa.h"
#include "common/parallel.h"

namespace gf {
namespace {

struct EmaUpdate {
  float* average;
  const float* value;
  EmaWeights w;
  GF_INLINE void operator()(int64_t i) const { ema_update_element(average[i], value[i], w); }
};

}  // namespace

void ema_update_cpu(float* average, const float* value, int64_t n, double decay, int64_t step) {
  elementwise_cpu(n, kParallelGrain, EmaUpdate{average, value, ema_weights(decay, step)});
}

}  // namespace gf
