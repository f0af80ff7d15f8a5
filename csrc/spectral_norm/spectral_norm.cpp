// spectral_norm (CPU): one power iteration and w / sigma (contract: spectral_norm.h). Variant
// 1 (the only one). The two mat-vecs are linear's single-output paths (linear.cpp): t = Wᵀu
// is linear_backward's dw = Σ_k u[k]·W[k, :] (column blocks, k ascending), s_raw = W t is
// linear_forward's per-row dot products; both already SIMD, threaded and independent of the
// thread split. The norms and sigma are lane_sums in double over F and K values (one
// thread: at most a few thousand terms), and w_sn is one elementwise pass.
// backward: ⟨dw_sn, w_sn⟩ as lane_sums over fixed chunks of kDotChunk elements combined in
// index order (the chunks may run on any thread), then dw row by row.
// Tests: tests/test_spectral_norm.py.
#include "spectral_norm/spectral_norm.h"

#include <algorithm>
#include <vector>

#include "common/cpu_isa.h"
#include "common/lane_sum.h"
#include "common/parallel.h"
#include "linear/linear.h"

namespace gf {
namespace {

struct DivideBySigma {  // w_sn = w / sigma
  const float* w;
  float* w_sn;
  float sigma;
  GF_INLINE void operator()(int64_t i) const { w_sn[i] = w[i] / sigma; }
};

constexpr int64_t kDotChunk = 4096;  // elements per partial sum of ⟨dw_sn, w_sn⟩

struct DotChunk {  // partial[c] = Σ over chunk c of a·b
  const float *a, *b;
  double* partial;
  int64_t n;
  GF_INLINE void operator()(int64_t c) const {
    const int64_t i0 = c * kDotChunk;
    partial[c] = lane_sum(std::min(kDotChunk, n - i0), [&](int64_t i) {
      return static_cast<double>(a[i0 + i]) * b[i0 + i];
    });
  }
};

struct DwRow {  // dw[k, :] = (dw_sn[k, :] − inner·u[k]·v) / sigma
  const float *dw_sn, *u, *v;
  float* dw;
  float inner, sigma;
  int64_t F;
  GF_INLINE void operator()(int64_t k) const {
    const float inner_u = inner * u[k];
    const float* g = dw_sn + k * F;
    float* out = dw + k * F;
#pragma omp simd
    for (int64_t f = 0; f < F; ++f) out[f] = spectral_norm_dw(g[f], inner_u, v[f], sigma);
  }
};

}  // namespace

void spectral_norm_forward_cpu(const float* w, float* u, float* w_sn, float* v, float* sigma,
                               int64_t K, int64_t F, float eps) {
  // t[f] = Σ_k u[k]·W[k, f] into v (linear_backward's dw with dy = u, x = W, one output)
  linear_backward_cpu(u, w, nullptr, nullptr, v, nullptr, K, F, 1);
  // s_raw[k] = Σ_f W[k, f]·t[f] into u (linear_forward with x = W, weight row t)
  linear_forward_cpu(w, v, nullptr, u, K, F, 1, Activation::none, 0.f);
  const double inv_t = 1.0 / clamped_norm(lane_sum(F, [&](int64_t f) {
    const double t = v[f];
    return t * t;
  }), eps);
  for (int64_t f = 0; f < F; ++f) v[f] = static_cast<float>(v[f] * inv_t);
  // s = s_raw / ‖t‖ = W v;  u = s / ‖s‖;  sigma = Σ u·s
  const double inv_s = 1.0 / clamped_norm(lane_sum(K, [&](int64_t k) {
    const double s = u[k] * inv_t;
    return s * s;
  }), eps);
  const double sig = lane_sum(K, [&](int64_t k) {
    const double s = u[k] * inv_t;
    return s * inv_s * s;
  });
  for (int64_t k = 0; k < K; ++k) u[k] = static_cast<float>(u[k] * inv_t * inv_s);
  *sigma = static_cast<float>(sig);
  elementwise_cpu(K * F, kParallelGrain, DivideBySigma{w, w_sn, *sigma});
}

void spectral_norm_backward_cpu(const float* dw_sn, const float* w_sn, const float* u,
                                const float* v, const float* sigma, float* dw, int64_t K,
                                int64_t F) {
  const int64_t n = K * F, chunks = (n + kDotChunk - 1) / kDotChunk;
  std::vector<double> partial(chunks);
  rows_cpu(chunks, kParallelGrain / kDotChunk, DotChunk{dw_sn, w_sn, partial.data(), n});
  double inner = 0.0;
  for (double p : partial) inner += p;
  rows_cpu(K, kParallelGrain / std::max<int64_t>(F, 1),
           DwRow{dw_sn, u, v, dw, static_cast<float>(inner), *sigma, F});
}

}  // namespace gf
