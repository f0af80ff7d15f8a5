// linear: y = act(x · Wᵀ + b)   (a dense layer, PyTorch's weight layout)
//
// Shapes (row-major, contiguous float32):
//   x [N, K]   w [M, K]   b [M] or null   y [N, M]
// forward  overwrites y. act (common/activation.h) is none, tanh or leaky_relu(slope): the
//   generator's last layer is linear + bias + tanh in one op. It is applied exactly as the
//   separate op would (CPU: the tanh / leaky_relu kernel over y; CUDA: in the GEMM's
//   epilogue, with the bias, where the separate ops would take a launch each), so the fused
//   op is bitwise the two ops one after the other on each backend.
// backward, given dy [N, M]:
//   dx [N, K] = dy · W        (overwritten; skipped when dx is null)
//   dw [M, K] = dyᵀ · x       (overwritten; skipped when dw is null)
//   db [M]    = Σ_n dy[n, :]  (overwritten; skipped when db is null)
// No output may overlap an input or another output (the binding refuses it: dx is written
// before dw reads dy). Nothing is cached: backward takes x and w again. The db sum runs in
// a fixed order (deterministic on both backends).
#pragma once

#include <cstdint>

#include "common/activation.h"
#include "common/check.h"

namespace gf {

void linear_forward_cpu(const float* x, const float* w, const float* b, float* y, int64_t N,
                        int64_t K, int64_t M, Activation act, float slope);
void linear_backward_cpu(const float* dy, const float* x, const float* w, float* dx, float* dw,
                         float* db, int64_t N, int64_t K, int64_t M);

#ifdef GF_WITH_CUDA
void linear_forward_cuda(const float* x, const float* w, const float* b, float* y, int64_t N,
                         int64_t K, int64_t M, Activation act, float slope, Stream stream);
void linear_backward_cuda(const float* dy, const float* x, const float* w, float* dx, float* dw,
                          float* db, int64_t N, int64_t K, int64_t M, Stream stream);
#endif

}  // namespace gf
