// linear (CPU): y = x·Wᵀ + b and its gradients (contract: linear.h), all on gemm_cpu.
// forward seeds y with b and lets gemm accumulate onto it (beta = 1), saving a pass;
// backward is two gemms and a column sum of dy in double, n ascending for every column.
// Tests: tests/test_linear.py.
#include "linear/linear.h"

#include <algorithm>

#include "common/parallel.h"
#include "gemm/gemm.h"

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

}  // namespace

void linear_forward_cpu(const float* x, const float* w, const float* b, float* y, int64_t N,
                        int64_t K, int64_t M) {
  if (b != nullptr) broadcast_rows(b, y, N, M);
  gemm_cpu(false, true, N, M, K, 1.f, x, K, w, K, b != nullptr ? 1.f : 0.f, y, M);
}

void linear_backward_cpu(const float* dy, const float* x, const float* w, float* dx, float* dw,
                         float* db, int64_t N, int64_t K, int64_t M) {
  if (dx != nullptr) gemm_cpu(false, false, N, K, M, 1.f, dy, M, w, K, 0.f, dx, K);
  if (dw != nullptr) gemm_cpu(true, false, M, K, N, 1.f, dy, M, x, K, 0.f, dw, K);
  if (db != nullptr) column_sums(dy, db, N, M);
}

}  // namespace gf
