// dropout (CPU): the shared per-element formula (dropout.h) on the active SIMD path
// (common/cpu_isa.h): the two SplitMix64 rounds become 8-lane 64-bit multiplies on
// AVX-512 (vpmullq) and emulated ones on AVX2 and SSE2. Tests: tests/test_dropout.py.
#include "dropout/dropout.h"

#include "common/cpu_isa.h"
#include "common/parallel.h"

namespace gf {
void dropout_apply_cpu(const float* in, float* out, int64_t n, float p, uint64_t seed,
                       std::optional<int64_t> step) {
  elementwise_cpu(n, kParallelGrain / 4,
                  DropoutApply{in, out, p, dropout_scale(p), dropout_mask_seed(seed, step)});
}

}  // namespace gf
