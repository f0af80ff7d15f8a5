// random_normal (CPU): the shared formula (random_normal.h) on the active SIMD path
// (common/cpu_isa.h). This file is compiled with -ffp-contract=off (CMakeLists.txt) so that
// GCC fuses nothing the CUDA kernel does not: the results are bitwise the CUDA kernel's.
// The AVX2 and AVX-512 paths vectorise the explicit fmas; the SSE2 path calls libm's fmaf
// (correctly rounded, slower). Tests: tests/test_random.py.
#include "random_normal/random_normal.h"

#include "common/cpu_isa.h"
#include "common/parallel.h"

namespace gf {

void random_normal_cpu(float* out, int64_t n, uint64_t seed, int64_t step) {
  elementwise_cpu(n, kParallelGrain / 16, RandomNormalFill{out, counter_key(seed, step)});
}

}  // namespace gf
