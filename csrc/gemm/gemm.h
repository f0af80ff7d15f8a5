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
// Epilogue (CUDA): the kernel that writes C can also add a bias over C's columns and apply an
// activation (common/activation.h) to each value before storing it, which saves linear's
// bias broadcast and a separate activation launch. Without one (the default) every value is
// stored exactly as before.
#pragma once

#include <cstdint>

#include "common/activation.h"
#include "common/check.h"

namespace gf {

struct GemmEpilogue {
  const float* bias = nullptr;              // [N]: added to every row of C, or null
  Activation activation = Activation::none;
  float slope = 0.f;                         // leaky_relu's
  bool trivial() const { return bias == nullptr && activation == Activation::none; }
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
