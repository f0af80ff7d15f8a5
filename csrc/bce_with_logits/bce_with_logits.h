// bce_with_logits: fused mean binary cross-entropy on logits and its gradient, one pass.
//
//   loss  = (1/n) Σ_i [ max(z_i, 0) − z_i·t_i + log1p(exp(−|z_i|)) ]      (one float)
//   dz_i  = (sigmoid(z_i) − t_i) / n                                       (overwritten)
//
// z (logits) and t (targets in [0, 1]) hold n contiguous float32 values. The forms above
// never overflow: exact and finite for |z| up to float max. Each term is evaluated in
// double: n is a batch of logits, so this costs nothing, and σ(z) − t cancels badly in
// float32 when the discriminator is nearly right. The mean is summed in a
// fixed order (CPU: double accumulator; CUDA: one block, fixed tree), so it is
// deterministic; on CUDA the loss is written to device memory, not read back.
// loss and dz must not overlap z, t or each other (the binding refuses it).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/check.h"
#include "common/hd.h"

namespace gf {

GF_HD double bce_with_logits_term(double z, double t) {
  return fmax(z, 0.0) - z * t + log1p(exp(-fabs(z)));
}

GF_HD double stable_sigmoid(double z) {
  const double e = exp(-fabs(z));  // never overflows
  return z >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

GF_HD float bce_with_logits_grad(float z, float t, double inv_n) {
  return static_cast<float>((stable_sigmoid(z) - t) * inv_n);
}

void bce_with_logits_cpu(const float* z, const float* t, float* loss, float* dz, int64_t n);

#ifdef GF_WITH_CUDA
void bce_with_logits_cuda(const float* z, const float* t, float* loss, float* dz, int64_t n,
                          Stream stream);
#endif

}  // namespace gf
