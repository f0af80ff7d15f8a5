// adam (CPU): the shared update (adam.h) on the active SIMD path (common/cpu_isa.h).
// Tests: tests/test_adam.py.
#include "adam/adam.h"

#include "common/cpu_isa.h"
#include "common/parallel.h"

namespace gf {
void adam_step_cpu(float* p, const float* g, float* m, float* v, int64_t n, const AdamParams& a) {
  elementwise_cpu(n, kParallelGrain, AdamUpdate{p, m, v, g, a});
}

}  // namespace gf
