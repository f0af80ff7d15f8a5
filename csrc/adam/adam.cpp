// adam (CPU): the shared update (adam.h) on the active SIMD path (common/cpu_isa.h), with the
// per-step constants computed once per call. Tests: tests/test_adam.py.
#include "adam/adam.h"

#include "common/cpu_isa.h"
#include "common/parallel.h"

namespace gf {
void adam_step_cpu(float* p, const float* g, float* m, float* v, int64_t n, const AdamHyper& h,
                   int64_t step) {
  elementwise_cpu(n, kParallelGrain, AdamUpdate{p, m, v, g, adam_params(h, step)});
}

}  // namespace gf
