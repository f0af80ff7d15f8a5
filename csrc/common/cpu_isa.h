// Which SIMD instruction set the CPU kernels run, and the helpers that compile one
// elementwise loop for each of them.
//
// Every CPU kernel (the gemm micro-kernel and the elementwise loops alike) is compiled
// three times, for AVX-512, for AVX2+FMA and for the x86-64 baseline (SSE2; plain code
// elsewhere), and picks its copy at run time from active_cpu_isa(). force_cpu_isa()
// switches all of them at once, so the tests run every path an AVX-512 machine can run
// (gan_fast.set_cpu_isa; tests/conftest.py's cpu_isa fixture).
//
// elementwise_cpu(n, grain, f) runs f(i) for i < n: f's operator() is inlined into an
// `omp simd` loop inside each of the three target-attributed copies, so one scalar
// formula becomes 16-, 8- or 4-lane code. The range is split statically across the
// OpenMP team into 64-byte-aligned chunks (results never depend on the split: f is
// elementwise).
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

#define GF_INLINE inline __attribute__((always_inline))
#if defined(__x86_64__) || defined(__i386__)
#define GF_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")))
#define GF_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define GF_TARGET_AVX512
#define GF_TARGET_AVX2
#endif

namespace gf {

enum class CpuIsa { avx512, avx2, scalar };

// The path in use: the best this CPU supports unless force_cpu_isa chose another.
CpuIsa active_cpu_isa();
const char* cpu_isa_name(CpuIsa isa);
// "avx512", "avx2", "scalar" or "auto" (run-time detection); false when the CPU cannot
// run that path or the name is unknown.
bool force_cpu_isa(const char* name);

template <class F>
GF_TARGET_AVX512 void simd_range_avx512(const F& f, int64_t lo, int64_t hi) {
#pragma omp simd
  for (int64_t i = lo; i < hi; ++i) f(i);
}
template <class F>
GF_TARGET_AVX2 void simd_range_avx2(const F& f, int64_t lo, int64_t hi) {
#pragma omp simd
  for (int64_t i = lo; i < hi; ++i) f(i);
}
template <class F>
void simd_range_scalar(const F& f, int64_t lo, int64_t hi) {
#pragma omp simd
  for (int64_t i = lo; i < hi; ++i) f(i);
}

// f(i) for lo <= i < hi on the active path (one thread).
template <class F>
void simd_range(const F& f, int64_t lo, int64_t hi) {
  switch (active_cpu_isa()) {
    case CpuIsa::avx512: return simd_range_avx512(f, lo, hi);
    case CpuIsa::avx2: return simd_range_avx2(f, lo, hi);
    default: return simd_range_scalar(f, lo, hi);
  }
}

// f(i) for every i < n; threads only when n > grain (below it the fork costs more).
template <class F>
void elementwise_cpu(int64_t n, int64_t grain, const F& f) {
  if (n <= grain || omp_in_parallel() || omp_get_max_threads() == 1) return simd_range(f, 0, n);
#pragma omp parallel
  {
    const int64_t team = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t per = (n + team - 1) / team, chunk = (per + 15) / 16 * 16;
    const int64_t lo = std::min(n, t * chunk), hi = std::min(n, lo + chunk);
    simd_range(f, lo, hi);
  }
}

}  // namespace gf
