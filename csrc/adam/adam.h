// adam: one bias-corrected Adam step, in place, over one flat float32 buffer
// (so a whole model's parameters update in one call / one launch).
//
//   m = β1·m + (1 − β1)·g
//   v = β2·v + (1 − β2)·g²
//   p = p − lr/(1 − β1^t) · m / (sqrt(v)/sqrt(1 − β2^t) + eps)      (PyTorch's form)
//
// p, g, m, v hold n values; p, m, v updated in place, g read only. t ≥ 1 is the step
// number after this update, a StepArg (common/step_arg.h): the CPU takes its value, the
// CUDA kernel reads it when it runs (so a captured CUDA graph updates with each replay's
// step). adam_params turns the hyperparameters and t into the per-step constants, in double,
// each rounded to float once: 1 − 0.999f in float32 is off by 1.3e-5 relative, which the
// second moment would inherit. The CPU evaluates it once per call; the CUDA kernel once per
// block (thread 0, into shared memory; CUDA's pow may differ from glibc's in the last bit of
// the double, which float rounding almost always hides). A device step < 1 is not checked
// (that would need a host copy): bias1 = 0 then makes the parameters non-finite.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/check.h"
#include "common/hd.h"
#include "common/step_arg.h"

namespace gf {

struct AdamHyper {
  double lr, beta1, beta2, eps;
};

struct AdamParams {
  float beta1, beta2, eps;
  float one_minus_beta1, one_minus_beta2;
  float step_size;        // lr / bias1
  float inv_sqrt_bias2;   // 1 / sqrt(bias2)
};

GF_HD AdamParams adam_params(const AdamHyper& h, int64_t step) {
  const double bias1 = 1.0 - pow(h.beta1, static_cast<double>(step));
  const double bias2 = 1.0 - pow(h.beta2, static_cast<double>(step));
  return {static_cast<float>(h.beta1),       static_cast<float>(h.beta2),
          static_cast<float>(h.eps),         static_cast<float>(1.0 - h.beta1),
          static_cast<float>(1.0 - h.beta2), static_cast<float>(h.lr / bias1),
          static_cast<float>(1.0 / sqrt(bias2))};
}

GF_HD void adam_update(float& p, float g, float& m, float& v, const AdamParams& a) {
  m = a.beta1 * m + a.one_minus_beta1 * g;
  v = a.beta2 * v + a.one_minus_beta2 * g * g;
  p -= a.step_size * m / (sqrtf(v) * a.inv_sqrt_bias2 + a.eps);
}

// Per-element functor, run by both backends.
struct AdamUpdate {
  float *p, *m, *v;
  const float* g;
  AdamParams a;
  GF_HD void operator()(int64_t i) const { adam_update(p[i], g[i], m[i], v[i], a); }
};

void adam_step_cpu(float* p, const float* g, float* m, float* v, int64_t n, const AdamHyper& h,
                   int64_t step);

#ifdef GF_WITH_CUDA
void adam_step_cuda(float* p, const float* g, float* m, float* v, int64_t n, const AdamHyper& h,
                    StepArg step, Stream stream);
#endif

}  // namespace gf
