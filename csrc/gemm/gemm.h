// gemm: the single matrix-multiply building block under linear and conv2d.
//
//   C[M,N] = alpha * op(A)[M,K] · op(B)[K,N] + beta * C[M,N]      (row-major)
//
// op(A) = A (A is [M,K], lda >= K) or Aᵀ (A is [K,M], lda >= M); likewise op(B).
// beta == 0 overwrites C without reading it (C may hold NaN); beta == 1 accumulates.
// All pointers are float32; C must not overlap A or B (the ops built on gemm refuse such
// arguments in their bindings: bindings/arrays.h).
//
// CPU (gemm.cpp): packed, cache-blocked panels, a register-blocked micro-kernel compiled
//   for AVX-512, AVX2 and a portable baseline and chosen by active_cpu_isa()
//   (common/cpu_isa.h), OpenMP over the blocks of C. Deterministic: each element of C is summed in the same order whatever
//   the thread count.
// CUDA (gemm.cu): shared-memory tiles with register blocking; one thread per output tile,
//   never per dot product; no atomics, so results are bitwise repeatable.
//
// Epilogue (CUDA): the kernel that writes C can also add a bias, apply an activation
// (common/activation.h) and dropout (dropout/dropout.h) to each value before storing it, and
// store C's elements in another layout, which saves linear's bias broadcast, conv2d's
// transposing copy and a separate activation launch. Without one (the default) every value is
// stored at C[m·ldc + n] exactly as before. In order, for v = alpha·(A·B)[m, n] + beta·C:
//   v += bias[feature]                          (if bias; feature = n, or m with `plane`)
//   v = tanh(v) or leaky_relu(v, slope)         (if activation; as the separate ops compute it)
//   v = dropout_apply(v, seed', at, dropout_p, dropout_scale(dropout_p))   (if dropout_p > 0)
// where at is the element's offset from C and seed' the mask's seed: dropout_seed, or with
// dropout_step dropout_step_seed(dropout_seed, *dropout_step), read when the kernel runs.
//   plane == 0: C[m, n] is stored at at = m·ldc + n;
//   plane  > 0: C is conv2d's T[K, N·PQ] = W·cols and is stored as y [N, K, PQ] (PQ = plane,
//               M = K): at = ((n / PQ)·M + m)·PQ + n % PQ, y's C-order flat index; ldc unused.
#pragma once

#include <cstdint>

#include "common/activation.h"
#include "common/check.h"

namespace gf {

struct GemmEpilogue {
  const float* bias = nullptr;              // one per output feature (see above), or null
  Activation activation = Activation::none;
  float slope = 0.f;                         // leaky_relu's
  float dropout_p = 0.f;                     // in [0, 1); 0: no dropout
  uint64_t dropout_seed = 0;
  const int64_t* dropout_step = nullptr;     // device memory, or null
  int64_t plane = 0;                         // 0: row-major C; > 0: conv2d's y layout
  bool trivial() const {
    return bias == nullptr && activation == Activation::none && dropout_p == 0.f && plane == 0;
  }
};

void gemm_cpu(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
              int64_t ldc);

#ifdef GF_WITH_CUDA
void gemm_cuda(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
               int64_t ldc, Stream stream, const GemmEpilogue& epilogue = {});
#endif

}  // namespace gf
