// linear_*_cuda: y = act(x·Wᵀ + b) and its gradients (contract in linear.h), all on gemm_cuda.
//
// forward: one gemm (two kernels when it splits K) whose epilogue adds the bias and applies
// the activation as it stores y (gemm.h's GemmEpilogue): bitwise the bias broadcast + gemm
// accumulating onto it (beta = 1) that it replaces, since both round x·Wᵀ + b once with
// alpha = 1, and the activation is the separate op's formula.
// backward: dx = dy·W and dw = dyᵀ·x are one gemm each; db = column sums of dy by
// strided_sum_cuda (one block per column, fixed order). Tested in tests/test_linear.py.
#include "linear/linear.h"

#include "common/cuda_launch.cuh"
#include "gemm/gemm.h"

namespace gf {

void linear_forward_cuda(const float* x, const float* w, const float* b, float* y, int64_t N,
                         int64_t K, int64_t M, Activation act, float slope, Stream stream) {
  // y[N, M] = act(x[N, K] · w[M, K]ᵀ + b)
  gemm_cuda(false, true, N, M, K, 1.f, x, K, w, K, 0.f, y, M, stream,
            GemmEpilogue{b, act, slope});
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
