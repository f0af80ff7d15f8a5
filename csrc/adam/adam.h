// adam: one bias-corrected Adam step, in place, over one flat float32 buffer
// (so a whole model's parameters update in one call / one launch).
//
//   m = β1·m + (1 − β1)·g
//   v = β2·v + (1 − β2)·g²
//   p = p − lr/(1 − β1^t) · m / (sqrt(v)/sqrt(1 − β2^t) + eps)      (PyTorch's form)
//
// p, g, m, v hold n values; p, m, v updated in place, g read only. t ≥ 1 is the step
// number after this update. bias1 = 1 − β1^t, bias2 = 1 − β2^t and the (1 − β) factors
// are computed once on the host in double and passed in: 1 − 0.999f in float32 is off by
// 1.3e-5 relative, which the second moment would inherit.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/check.h"
#include "common/hd.h"

namespace gf {

struct AdamParams {
  float beta1, beta2, eps;
  float one_minus_beta1, one_minus_beta2;
  float step_size;        // lr / bias1
  float inv_sqrt_bias2;   // 1 / sqrt(bias2)
};

GF_HD void adam_update(float& p, float g, float& m, float& v, const AdamParams& a) {
  m = a.beta1 * m + a.one_minus_beta1 * g;
  v = a.beta2 * v + a.one_minus_beta2 * g * g;
  p -= a.step_size * m / (sqrtf(v) * a.inv_sqrt_bias2 + a.eps);
}

// Per-element functor, run by both backends' elementwise launchers.
struct AdamUpdate {
  float *p, *m, *v;
  const float* g;
  AdamParams a;
  GF_HD void operator()(int64_t i) const { adam_update(p[i], g[i], m[i], v[i], a); }
};

void adam_step_cpu(float* p, const float* g, float* m, float* v, int64_t n, const AdamParams& a);

#ifdef GF_WITH_CUDA
void adam_step_cuda(float* p, const float* g, float* m, float* v, int64_t n, const AdamParams& a,
                    Stream stream);
#endif

}  // namespace gf
