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
// formula becomes 16-, 8- or 4-lane code. rows_cpu does the same for per-row work whose
// inner loops vectorise. vector_rows_cpu is for per-row work written with explicit
// vectors: it calls f.template operator()<W>(i) with W the path's vector width in floats,
// so that the kernel's FloatVec<W> values live in registers on every path (a 16-float
// vector on the AVX2 path would go through the stack). Ranges are split statically
// across the OpenMP team; no result depends on the split (each i is computed whole by
// one thread).
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

// W floats as one GCC vector (one register on the path whose width is W).
template <int W>
struct FloatVec {
  typedef float type __attribute__((vector_size(4 * W)));
};

// lane[0] + ... + lane[W − 1], added pairwise (lane l + W/2 onto lane l, then halving): an
// order set by W alone, so results do not depend on the thread count. Overwrites lane.
template <class T, int W>
inline T pairwise_sum(T (&lane)[W]) {
  for (int half = W / 2; half > 0; half /= 2)
    for (int l = 0; l < half; ++l) lane[l] += lane[l + half];
  return lane[0];
}

// The path in use: the best this CPU supports unless force_cpu_isa chose another.
CpuIsa active_cpu_isa();
const char* cpu_isa_name(CpuIsa isa);
// "avx512", "avx2", "scalar" or "auto" (run-time detection); false when the CPU cannot
// run that path or the name is unknown.
bool force_cpu_isa(const char* name);

// How a range calls f: across vectorises f(i) across i (elementwise f); rows calls f(i)
// and lets f's own inner loops (omp simd, reductions included) vectorise at the path's
// width; vector_rows calls f.template operator()<W>(i), W the path's width in floats.
enum class Loop { across, rows, vector_rows };

// f for lo <= i < hi, compiled for one path of vector width W.
#define GF_RANGE_LOOP(kLoop, W)                                              \
  if constexpr (kLoop == Loop::across) {                                    \
    _Pragma("omp simd") for (int64_t i = lo; i < hi; ++i) f(i);             \
  } else if constexpr (kLoop == Loop::rows) {                               \
    for (int64_t i = lo; i < hi; ++i) f(i);                                 \
  } else {                                                                  \
    for (int64_t i = lo; i < hi; ++i) f.template operator()<W>(i);          \
  }
template <Loop kLoop, class F>
GF_TARGET_AVX512 void range_avx512(const F& f, int64_t lo, int64_t hi) { GF_RANGE_LOOP(kLoop, 16) }
template <Loop kLoop, class F>
GF_TARGET_AVX2 void range_avx2(const F& f, int64_t lo, int64_t hi) { GF_RANGE_LOOP(kLoop, 8) }
template <Loop kLoop, class F>
void range_scalar(const F& f, int64_t lo, int64_t hi) { GF_RANGE_LOOP(kLoop, 4) }
#undef GF_RANGE_LOOP

template <Loop kLoop, class F>
void range_on_active_isa(const F& f, int64_t lo, int64_t hi) {
  switch (active_cpu_isa()) {
    case CpuIsa::avx512: return range_avx512<kLoop>(f, lo, hi);
    case CpuIsa::avx2: return range_avx2<kLoop>(f, lo, hi);
    default: return range_scalar<kLoop>(f, lo, hi);
  }
}

// f for every i < n, split statically over the team (64-byte-aligned pieces when f is
// elementwise on floats); threads only when n > grain (below it the fork costs more).
template <Loop kLoop, class F>
void parallel_range(int64_t n, int64_t grain, const F& f) {
  if (n <= grain || omp_in_parallel() || omp_get_max_threads() == 1)
    return range_on_active_isa<kLoop>(f, 0, n);
#pragma omp parallel
  {
    const int64_t team = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t per = (n + team - 1) / team;
    const int64_t chunk = kLoop == Loop::across ? (per + 15) / 16 * 16 : per;
    const int64_t lo = std::min(n, t * chunk), hi = std::min(n, lo + chunk);
    range_on_active_isa<kLoop>(f, lo, hi);
  }
}

// Elementwise: f(i) for i < n, vectorised across i.
template <class F>
void elementwise_cpu(int64_t n, int64_t grain, const F& f) { parallel_range<Loop::across>(n, grain, f); }

// Per row: f(i) for i < n, one call per row; f's inner loops vectorise.
template <class F>
void rows_cpu(int64_t n, int64_t grain, const F& f) { parallel_range<Loop::rows>(n, grain, f); }

// Per row, explicit vectors: f.template operator()<W>(i) for i < n.
template <class F>
void vector_rows_cpu(int64_t n, int64_t grain, const F& f) { parallel_range<Loop::vector_rows>(n, grain, f); }

}  // namespace gf
