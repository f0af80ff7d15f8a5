// projection_head: the output layer of a projection discriminator (Miyato & Koyama 2018):
// an unconditional linear logit plus the inner product of the features with the embedding
// of the image's class.
//
// Shapes (row-major, contiguous; float32 unless said):
//   h [N, D]   w [1, D] (read as [D])   b [1] or null   embed [C, D]   labels [N] int64
//   logits [N, 1] (read as [N]); dlogits likewise
// forward   logits[n] = h[n]·(w + embed[labels[n]]) + b                   (overwritten)
// backward, given dlogits:
//   dh[n, :]     = dlogits[n]·(w + embed[labels[n]])      (overwritten; skipped when null)
//   dw           = Σ_n dlogits[n]·h[n, :]                 (overwritten; skipped when null)
//   db           = Σ_n dlogits[n]                         (overwritten; skipped when null)
//   dembed[c, :] = Σ_{n: labels[n] = c} dlogits[n]·h[n, :]  (overwritten; skipped when null;
//                  a class that no label names gets zeros)
// dw and dembed come from one pass over h (class_row_sums, embedding.h: float32, n
// ascending for every element); db is summed in double, n ascending (CPU), or by
// strided_sum_cuda's fixed tree (CUDA). The factor w + embed[c] is rounded to float32 per
// element, in the logit and in dh alike. Every order is fixed: bitwise the same for any CPU
// thread count and from run to run on the GPU. Nothing is cached: backward takes h, w, embed and labels again.
//
// Labels (common/labels.h): the bindings refuse one outside [0, C) on the CPU. On CUDA, and
// for a direct C++ caller, such a row gets a NaN logit and a NaN row of dh, and ALL of
// dembed is NaN (the row belongs to no class); dw and db do not depend on the labels.
// Tests: tests/test_projection_head.py, tests/op_cases_conditional.py (the table's sweeps).
#pragma once

#include <cstdint>

#include "common/check.h"
#include "common/hd.h"

namespace gf {

// One element of dh: dlogit·(w + e), e the row's class embedding.
GF_HD float projection_head_dh(float dlogit, float w, float e) { return dlogit * (w + e); }

// The logit from the row's dot product h·(w + embed[label]).
GF_HD float projection_head_logit(float dot, const float* b) {
  return b != nullptr ? dot + *b : dot;
}

void projection_head_forward_cpu(const float* h, const float* w, const float* b,
                                 const float* embed, const int64_t* labels, float* logits,
                                 int64_t N, int64_t D, int64_t C);
void projection_head_backward_cpu(const float* dlogits, const float* h, const float* w,
                                  const float* embed, const int64_t* labels, float* dh,
                                  float* dw, float* db, float* dembed, int64_t N, int64_t D,
                                  int64_t C);

#ifdef GF_WITH_CUDA
void projection_head_forward_cuda(const float* h, const float* w, const float* b,
                                  const float* embed, const int64_t* labels, float* logits,
                                  int64_t N, int64_t D, int64_t C, Stream stream);
void projection_head_backward_cuda(const float* dlogits, const float* h, const float* w,
                                   const float* embed, const int64_t* labels, float* dh,
                                   float* dw, float* db, float* dembed, int64_t N, int64_t D,
                                   int64_t C, Stream stream);
#endif

}  // namespace gf
