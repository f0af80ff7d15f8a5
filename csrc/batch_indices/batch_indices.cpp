// batch_indices (CPU): the shared per-row formula (batch_indices.h), one row at a time (a
// batch is a few hundred rows; the cycle walk does not vectorise). Tests:
// tests/test_random.py.
#include "batch_indices/batch_indices.h"

#include "common/cpu_isa.h"

namespace gf {

void batch_indices_cpu(int64_t* out, int64_t n, uint64_t seed, int64_t step,
                       const BatchGeometry& g) {
  constexpr int64_t kGrain = 1 << 12;  // rows per thread worth a fork (each is ~20 hashes)
  rows_cpu(n, kGrain, BatchIndexFill{out, seed, StepArg{step, nullptr}, g});
}

}  // namespace gf
