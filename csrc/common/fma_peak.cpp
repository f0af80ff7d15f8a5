// FMA throughput microbenchmark (contract: fma_peak.h).
#include "common/fma_peak.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "common/cpu_isa.h"

namespace gf {
namespace {

template <int W>
GF_INLINE float fma_chains(int64_t iters) {
  using V = typename FloatVec<W>::type;
  V acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = V{} + 0.001f * i;
  V a = V{} + 0.9999f, b = V{} + 1e-6f;
  // Opaque factors keep the compiler from folding the loop. No barrier inside the loop: one
  // on an accumulator would pin the array to memory and time store-to-load latency instead.
  __asm__ volatile("" : "+x"(a), "+x"(b));
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = acc[i] * a + b;
  }
  V s = acc[0];
  for (int i = 1; i < 16; ++i) s += acc[i];
  float out = 0.f;
  for (int i = 0; i < W; ++i) out += s[i];
  return out;
}

GF_TARGET_AVX512 float chains_avx512(int64_t iters) { return fma_chains<16>(iters); }
GF_TARGET_AVX2 float chains_avx2(int64_t iters) { return fma_chains<8>(iters); }
float chains_scalar(int64_t iters) { return fma_chains<4>(iters); }

}  // namespace

double fma_peak_gflops(double seconds, int repeats) {
  const CpuIsa isa = active_cpu_isa();
  const int lanes = isa == CpuIsa::avx512 ? 16 : isa == CpuIsa::avx2 ? 8 : 4;
  auto run = [&](int64_t iters) {
    float sink = 0.f;
    const double t0 = omp_get_wtime();
    int team = 1;
#pragma omp parallel reduction(+ : sink)
    {
      team = omp_get_num_threads();
      sink += isa == CpuIsa::avx512 ? chains_avx512(iters)
              : isa == CpuIsa::avx2 ? chains_avx2(iters) : chains_scalar(iters);
    }
    const double dt = omp_get_wtime() - t0;
    volatile float keep = sink;
    (void)keep;
    return 2.0 * 16 * lanes * static_cast<double>(iters) * team / dt / 1e9;
  };
  int64_t iters = 1 << 16;
  while (iters < (int64_t(1) << 40)) {  // calibrate to about `seconds` per run
    const double t0 = omp_get_wtime();
    run(iters);
    if (omp_get_wtime() - t0 > seconds / 4) break;
    iters *= 2;
  }
  iters *= 4;
  double best = 0.0;
  for (int r = 0; r < std::max(1, repeats); ++r) best = std::max(best, run(iters));
  return best;
}

}  // namespace gf
