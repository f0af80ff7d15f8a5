// spectral_norm: a weight divided by an estimate of its largest singular value, refined by
// one power iteration per call (Miyato et al. 2018; PyTorch's torch.nn.utils.spectral_norm in
// training mode with n_power_iterations = 1). It keeps the discriminator 1-Lipschitz per layer.
//
// Layout (contiguous float32): w of any rank ≥ 2 viewed as W [K, F] (K = w.shape[0], F = the
// product of the other dimensions); u [K], v [F], sigma one float (0-d); w_sn and dw like w.
// forward:
//   t = Wᵀu;            v = t / max(‖t‖, eps)                                (v overwritten)
//   s = W v;            u = s / max(‖s‖, eps)           (u IN PLACE: the iteration's state)
//   sigma = uᵀ s  (= uᵀ W v with the new u);  w_sn = w / sigma   (sigma, w_sn overwritten)
// backward, given dw_sn and the forward's w_sn, u (the new one), v and sigma, which are
// treated as constants (as PyTorch does; that is what makes this the gradient of
// w / (uᵀ W v) at fixed u, v):
//   dw = (dw_sn − ⟨dw_sn, w_sn⟩ · u vᵀ) / sigma                             (overwritten)
// Both backends compute t with s_raw = W t in place of s (s = s_raw / max(‖t‖, eps)), keep t
// in v and s_raw in u until the norms are known (u's old value is dead once t is formed),
// scale by the reciprocals of the norms in double (then round to float: no different from
// dividing, at a fraction of the cost), and sum norms and ⟨dw_sn, w_sn⟩ in double in an order
// set by the shape alone
// (deterministic; CPU results do not depend on the thread count). A zero W gives sigma = 0
// and a NaN w_sn, as in PyTorch. K or F may be 0 (all sums empty: sigma = 0).
// w_sn may be w itself and dw may be dw_sn (each is written elementwise after the last read
// of the other); no other arrays may overlap.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/check.h"
#include "common/hd.h"

namespace gf {

// max(sqrt(sum_squares), eps): the normaliser of t and s. A NaN norm stays NaN (the
// comparison is false), as max(NaN, eps) is in NumPy.
GF_HD double clamped_norm(double sum_squares, double eps) {
  const double norm = sqrt(sum_squares);
  return norm < eps ? eps : norm;
}

// dw of one element; inner_u = ⟨dw_sn, w_sn⟩ · u[k], in float, formed once per row.
GF_HD float spectral_norm_dw(float dw_sn, float inner_u, float v, float sigma) {
  return (dw_sn - inner_u * v) / sigma;
}

void spectral_norm_forward_cpu(const float* w, float* u, float* w_sn, float* v, float* sigma,
                               int64_t K, int64_t F, float eps);
void spectral_norm_backward_cpu(const float* dw_sn, const float* w_sn, const float* u,
                                const float* v, const float* sigma, float* dw, int64_t K,
                                int64_t F);

#ifdef GF_WITH_CUDA
void spectral_norm_forward_cuda(const float* w, float* u, float* w_sn, float* v, float* sigma,
                                int64_t K, int64_t F, float eps, Stream stream);
void spectral_norm_backward_cuda(const float* dw_sn, const float* w_sn, const float* u,
                                 const float* v, const float* sigma, float* dw, int64_t K,
                                 int64_t F, Stream stream);
#endif

}  // namespace gf
