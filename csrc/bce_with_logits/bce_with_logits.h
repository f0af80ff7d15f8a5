// bce_with_logits: fused mean binary cross-entropy on logits and its gradient, one pass.
//
//   loss  = (1/n) Σ_i [ max(z_i, 0) − z_i·t_i + log1p(exp(−|z_i|)) ]      (one float)
//   dz_i  = (sigmoid(z_i) − t_i) / n                                       (overwritten)
//
// z (logits) and t (targets in [0, 1]) hold n contiguous float32 values. The forms above
// never overflow: exact and finite for |z| up to float max. The mean is summed in a
// fixed order (CPU: double accumulator; CUDA: one block, fixed tree), so it is
// deterministic; on CUDA the loss is written to device memory, not read back.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/check.h"
#include "common/hd.h"

namespace gf {

GF_HD float bce_with_logits_term(float z, float t) {
  return fmaxf(z, 0.f) - z * t + log1pf(expf(-fabsf(z)));
}

GF_HD float stable_sigmoid(float z) {
  if (z >= 0.f) return 1.f / (1.f + expf(-z));
  float e = expf(z);
  return e / (1.f + e);
}

void bce_with_logits_cpu(const float* z, const float* t, float* loss, float* dz, int64_t n);

#ifdef GF_WITH_CUDA
void bce_with_logits_cuda(const float* z, const float* t, float* loss, float* dz, int64_t n,
                          Stream stream);
#endif

}  // namespace gf
