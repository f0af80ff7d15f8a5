// ema: an exponential moving average of a flat float32 buffer, updated in place (the
// generator's weights and BatchNorm statistics averaged for sampling).
//
//   beta    = min(decay, (1 + step) / (10 + step))       (TensorFlow's ExponentialMovingAverage
//                                                          with num_updates: a short memory
//                                                          while the average is young)
//   average = beta · average + (1 − beta) · value         (average in place, value read only)
//
// average and value hold n values. step ≥ 1 is the number of updates including this one; on
// the CPU a plain int64 (the bindings have checked it), on CUDA a StepArg
// (common/step_arg.h) that the kernel reads when it runs, so a captured CUDA graph sees each
// replay's step (a device-side step is not range-checked: the kernel uses what it finds).
// ema_weights is the one place beta is formed: in double, exactly as written above, then
// beta and 1 − beta are rounded to float once (1 − 0.999f in float32 would be off by 1.3e-5
// relative). Both backends call it (the CPU on the host once per call, each CUDA thread once),
// so they use the same two floats.
#pragma once

#include <cstdint>

#include "common/check.h"
#include "common/hd.h"
#include "common/step_arg.h"

namespace gf {

struct EmaWeights {
  float beta, one_minus_beta;
};

GF_HD EmaWeights ema_weights(double decay, int64_t step) {
  const double s = static_cast<double>(step);
  const double warm_up = (1.0 + s) / (10.0 + s);
  const double beta = decay < warm_up ? decay : warm_up;
  return {static_cast<float>(beta), static_cast<float>(1.0 - beta)};
}

GF_HD void ema_update_element(float& average, float value, const EmaWeights& w) {
  average = w.beta * average + w.one_minus_beta * value;
}

void ema_update_cpu(float* average, const float* value, int64_t n, double decay, int64_t step);

#ifdef GF_WITH_CUDA
void ema_update_cuda(float* average, const float* value, int64_t n, double decay, StepArg step,
                     Stream stream);
#endif

}  // namespace gf
