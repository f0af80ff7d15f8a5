// linear_*_cuda: y = x·Wᵀ + b and its gradients (contract in linear.h), all on gemm_cuda.
//
// forward: y is first filled with the bias row, then gemm accumulates x·Wᵀ onto it
// (beta = 1), so the bias costs no extra pass over y; without a bias, beta = 0.
// backward: dx = dy·W and dw = dyᵀ·x are one gemm each; db = column sums of dy by
// strided_sum_cuda (one block per column, fixed order). Tested in tests/test_linear.py.
#include "linear/linear.h"

#include "common/cuda_launch.cuh"
#include "gemm/gemm.h"

namespace gf {

namespace {

// y[n, m] = b[m] for a [rows, M] y.
struct BroadcastRow {
  const float* b;
  float* y;
  int64_t M;
  __device__ void operator()(int64_t i) const { y[i] = b[i % M]; }
};

}  // namespace

void linear_forward_cuda(const float* x, const float* w, const float* b, float* y, int64_t N,
                         int64_t K, int64_t M, Stream stream) {
  if (N == 0 || M == 0) return;
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (b != nullptr) launch_elementwise(N * M, BroadcastRow{b, y, M}, s);
  // y[N, M] = x[N, K] · w[M, K]ᵀ (+ y)
  gemm_cuda(false, true, N, M, K, 1.f, x, K, w, K, b != nullptr ? 1.f : 0.f, y, M, stream);
}

void linear_backward_cuda(const float* dy, const float* x, const float* w, float* dx, float* dw,
                          float* db, int64_t N, int64_t K, int64_t M, Stream stream) {
  // dx[N, K] = dy[N, M] · w[M, K]
  if (dx != nullptr) gemm_cuda(false, false, N, K, M, 1.f, dy, M, w, K, 0.f, dx, K, stream);
  // dw[M, K] = dy[N, M]ᵀ · x[N, K]
  if (dw != nullptr) gemm_cuda(true, false, M, K, N, 1.f, dy, M, x, K, 0.f, dw, K, stream);
  // db[m] = Σ_n dy[n, m]
  if (db != nullptr) strided_sum_cuda(dy, db, M, N, M, 1, static_cast<cudaStream_t>(stream));
}

}  // namespace gf
