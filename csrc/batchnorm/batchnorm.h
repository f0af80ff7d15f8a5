// batchnorm: per-channel normalisation, PyTorch's BatchNorm1d/2d semantics.
//
// Layout: x viewed as [N, C, L] (contiguous float32): L = 1 for [N, F] inputs (C = F),
// L = H·W for [N, C, H, W]. gamma, beta, running_mean, running_var, mean, rstd are [C].
//
// forward, training = true:
//   mean[c] = Σ x / (N·L);  var[c] = Σ (x − mean)² / (N·L)  (biased, used to normalise)
//   rstd[c] = 1 / sqrt(var + eps)
//   y = (x − mean) · rstd · gamma + beta                                    (overwritten)
//   mean, rstd                                     (overwritten: the cache for backward)
//   running_mean = (1 − momentum)·running_mean + momentum·mean               (in place)
//   running_var  = (1 − momentum)·running_var  + momentum·var·n/(n − 1)      (in place,
//                  unbiased, n = N·L; requires n > 1)
// forward, training = false: mean = running_mean, rstd = 1/sqrt(running_var + eps)
//   (written to mean, rstd), y as above; running statistics untouched.
// backward, given dy, x, gamma and the cached mean, rstd:
//   xhat = (x − mean)·rstd;  dbeta = Σ dy;  dgamma = Σ dy·xhat                (overwritten)
//   training: dx = gamma·rstd/n · (n·dy − dbeta − xhat·dgamma)               (overwritten)
//   eval:     dx = dy·gamma·rstd
// No array written (y, mean, rstd, running_mean, running_var; dx, dgamma, dbeta) may overlap
// any other argument (the binding refuses it).
// Sums over N·L run in a fixed order on both backends (deterministic).
#pragma once

#include <cstdint>

#include "common/check.h"

namespace gf {

struct BatchNormShape {
  int64_t N, C, L;
};

void batchnorm_forward_cpu(const float* x, const float* gamma, const float* beta,
                           float* running_mean, float* running_var, float* y, float* mean,
                           float* rstd, const BatchNormShape& s, bool training, float momentum,
                           float eps);
void batchnorm_backward_cpu(const float* dy, const float* x, const float* gamma,
                            const float* mean, const float* rstd, float* dx, float* dgamma,
                            float* dbeta, const BatchNormShape& s, bool training);

#ifdef GF_WITH_CUDA
void batchnorm_forward_cuda(const float* x, const float* gamma, const float* beta,
                            float* running_mean, float* running_var, float* y, float* mean,
                            float* rstd, const BatchNormShape& s, bool training, float momentum,
                            float eps, Stream stream);
void batchnorm_backward_cuda(const float* dy, const float* x, const float* gamma,
                             const float* mean, const float* rstd, float* dx, float* dgamma,
                             float* dbeta, const BatchNormShape& s, bool training, Stream stream);
#endif

}  // namespace gf
