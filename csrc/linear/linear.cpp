// linear (CPU): y = act(x·Wᵀ + b) and its gradients (contract: linear.h).
//
// Variants (common/variants.h, family "linear"; the last is the default):
//   1 gemm    forward seeds y with b and lets gemm_cpu accumulate onto it (beta = 1),
//             saving a pass; backward is two gemms. Any shape.
//   2 matvec  a single output feature (M = 1, D's 6272 -> 1 head) is a matrix·vector
//             product that streams x once at memory speed; as a gemm it would pad every
//             panel to a full register tile. Per-row dot products forward; backward
//             dx = dy·w as scaled copies of w and dw = Σ_n dy[n]·x[n, :] over column
//             blocks with n ascending (independent of the threads), all on the active
//             SIMD path (common/cpu_isa.h). M = 1 only.
// Both: db is a column sum of dy in double, n ascending for every column; a fused activation
// (tanh, LeakyReLU) runs the separate op's kernel in place over y afterwards.
// Tests: tests/test_linear.py; tests/test_kernel_variants.py runs both variants.
#include "linear/linear.h"

#include <algorithm>
#include <cstring>

#include "common/cpu_isa.h"
#include "common/parallel.h"
#include "common/variants.h"
#include "gemm/gemm.h"
#include "leaky_relu/leaky_relu.h"
#include "tanh/tanh.h"

namespace gf {
namespace {

// y[n, :] = b for every row.
void broadcast_rows(const float* b, float* y, int64_t N, int64_t M) {
#pragma omp parallel for schedule(static) if (N * M > kParallelGrain)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m) y[n * M + m] = b[m];
}

// db[m] = Σ_n dy[n, m], summed in double with n ascending (independent of the threads).
void column_sums(const float* dy, float* db, int64_t N, int64_t M) {
  constexpr int64_t kCols = 64;  // columns per task: a stack accumulator, contiguous loads
#pragma omp parallel for schedule(static) if (N * M > kParallelGrain)
  for (int64_t m0 = 0; m0 < M; m0 += kCols) {
    const int64_t cols = std::min(kCols, M - m0);
    double acc[kCols] = {};
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < cols; ++j) acc[j] += dy[n * M + m0 + j];
    for (int64_t j = 0; j < cols; ++j) db[m0 + j] = static_cast<float>(acc[j]);
  }
}

// Below this many floats of x a mat-vec stays on one thread.
constexpr int64_t kMatVecGrain = 1 << 14;

// y[n] = Σ_k x[n, k]·w[k] (+ b) for kRows rows at a time, so that each load of w serves
// them all and kRows streams of x are in flight: per row, W independent partial sums, W
// the SIMD path's vector width (lane l takes every k with k % W == l), then added
// pairwise; the same order for any thread count.
struct MatVecRows {
  static constexpr int64_t kRows = 4;
  const float *x, *w, *b;
  float* y;
  int64_t N, K;
  template <int W>  // lanes: the SIMD path's vector width
  GF_INLINE void operator()(int64_t block) const {
    using V = typename FloatVec<W>::type;
    const int64_t n0 = block * kRows, rows = std::min(kRows, N - n0);
    V acc[kRows] = {};
    int64_t k = 0;
    if (rows == kRows) {
      for (; k + W <= K; k += W) {
        V wv;
        std::memcpy(&wv, w + k, sizeof(wv));
        for (int64_t r = 0; r < kRows; ++r) {
          V xv;
          std::memcpy(&xv, x + (n0 + r) * K + k, sizeof(xv));
          acc[r] += xv * wv;
        }
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      float lane[W];
      std::memcpy(lane, &acc[r], sizeof(lane));
      const float* row = x + (n0 + r) * K;
      int64_t j = k;
      for (; j + W <= K; j += W)  // a short last block: its rows one by one
        for (int64_t l = 0; l < W; ++l) lane[l] += row[j + l] * w[j + l];
      for (int64_t l = 0; j + l < K; ++l) lane[l] += row[j + l] * w[j + l];
      const float sum = pairwise_sum(lane);
      y[n0 + r] = b != nullptr ? sum + b[0] : sum;
    }
  }
};

struct OuterRow {  // dx[n, :] = dy[n]·w
  const float *dy, *w;
  float* dx;
  int64_t K;
  GF_INLINE void operator()(int64_t n) const {
    const float d = dy[n];
    float* row = dx + n * K;
#pragma omp simd
    for (int64_t k = 0; k < K; ++k) row[k] = d * w[k];
  }
};

constexpr int64_t kDwColumns = 256;  // dw columns per task: the accumulator stays in L1

struct WeightedColumnSums {  // dw[k] = Σ_n dy[n]·x[n, k] for one block of columns
  const float *dy, *x;
  float* dw;
  int64_t N, K;
  GF_INLINE void operator()(int64_t block) const {
    const int64_t k0 = block * kDwColumns, width = std::min(kDwColumns, K - k0);
    float acc[kDwColumns] = {};
    for (int64_t n = 0; n < N; ++n) {
      const float d = dy[n];
      const float* row = x + n * K + k0;
#pragma omp simd
      for (int64_t j = 0; j < width; ++j) acc[j] += d * row[j];
    }
    std::copy(acc, acc + width, dw + k0);
  }
};

// Variant 2 for a single output feature, unless variant 1 is forced.
bool use_matvec(int64_t M) { return M == 1 && forced_variant(KernelFamily::linear) != 1; }

}  // namespace

void linear_forward_cpu(const float* x, const float* w, const float* b, float* y, int64_t N,
                        int64_t K, int64_t M, Activation act, float slope) {
  if (use_matvec(M)) {
    constexpr int64_t kRows = MatVecRows::kRows;
    vector_rows_cpu((N + kRows - 1) / kRows, kMatVecGrain / std::max<int64_t>(kRows * K, 1),
                    MatVecRows{x, w, b, y, N, K});
  } else {
    if (b != nullptr) broadcast_rows(b, y, N, M);
    gemm_cpu(false, true, N, M, K, 1.f, x, K, w, K, b != nullptr ? 1.f : 0.f, y, M);
  }
  // The fused activation: the separate op's kernel, in place over y.
  if (act == Activation::tanh) tanh_forward_cpu(y, y, N * M);
  if (act == Activation::leaky_relu) leaky_relu_forward_cpu(y, y, N * M, slope);
}

void linear_backward_cpu(const float* dy, const float* x, const float* w, float* dx, float* dw,
                         float* db, int64_t N, int64_t K, int64_t M) {
  if (use_matvec(M)) {
    const int64_t grain = kMatVecGrain / std::max<int64_t>(K, 1);
    if (dx != nullptr) rows_cpu(N, grain, OuterRow{dy, w, dx, K});
    if (dw != nullptr)
      rows_cpu((K + kDwColumns - 1) / kDwColumns, kMatVecGrain / std::max<int64_t>(N * kDwColumns, 1),
               WeightedColumnSums{dy, x, dw, N, K});
  } else {
    if (dx != nullptr) gemm_cpu(false, false, N, K, M, 1.f, dy, M, w, K, 0.f, dx, K);
    if (dw != nullptr) gemm_cpu(true, false, M, K, N, 1.f, dy, M, x, K, 0.f, dw, K);
  }
  if (db != nullptr) column_sums(dy, db, N, M);
}

}  // namespace gf
