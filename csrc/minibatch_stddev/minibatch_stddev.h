// minibatch_stddev: ProGAN's minibatch standard deviation feature (Karras et al. 2018): one
// extra channel that tells the discriminator how varied a group of its inputs is, so that a
// generator producing the same image over and over is easy to spot.
//
// Layout (contiguous float32): x [N, C, H, W], y [N, C + 1, H, W]; F = C·H·W features,
// L = H·W. Rows form consecutive groups g = n / G (G = group_size ≥ 1); group g holds the
// m = min(G, N − g·G) rows g·G ... g·G + m − 1 (only the last group may be smaller).
// forward (y overwritten):
//   y[n, :C] = x[n]
//   per group and feature f:  mean_f = Σ_r x[r, f] / m;  var_f = Σ_r (x[r, f] − mean_f)² / m
//                             (biased, over the group's rows);  std_f = sqrt(var_f + eps)
//   s_g = Σ_f std_f / F;   y[n, C, :, :] = s_g for every row n of group g
// backward, given dy [N, C + 1, H, W] and x (dx [N, C, H, W] overwritten):
//   D_g = Σ over the group's rows of Σ_hw dy[n, C, h, w]    (the gradient reaching s_g)
//   dx[r, f] = dy[r, f] + D_g · (x[r, f] − mean_f) / (F · m · std_f)
// (the mean's own dependence on x drops out: Σ_r (x[r, f] − mean_f) = 0). Nothing is cached:
// backward recomputes mean_f and std_f from x with the same formulas as forward.
// Both backends take the deviations from the group's first row, x0: d_r = x[r, f] − x0[f],
// mean_d = Σ_r d_r / m, x[r, f] − mean_f = d_r − mean_d, var_f = Σ_r (d_r − mean_d)² / m.
// Rows that nearly agree (a collapsing generator, when this feature matters most) then lose
// nothing to cancellation: d_r is exact for rows within a factor of 2 of each other, while
// x − mean_f from a rounded mean_f would be all rounding error, which the backward's
// 1/std_f magnifies.
// Requires C, H, W ≥ 1 (F > 0); N may be 0. Sums over a group's features and rows run in an
// order set by the shape alone on both backends (deterministic; CPU results do not depend on
// the thread count).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "common/check.h"
#include "common/hd.h"

namespace gf {

struct MinibatchStddevShape {
  int64_t N, C, L, group_size;
  int64_t F() const { return C * L; }
  int64_t groups() const { return (N + group_size - 1) / group_size; }
  int64_t rows(int64_t g) const { return std::min(group_size, N - g * group_size); }  // m
};

// mean_d of one feature from the sum of the group's deviations from its first row. Both
// backends divide by m as a product with inv_m = 1.f / m, formed once per group (exact for
// m = 4, the model's group size; within an ulp otherwise): a vector division per feature
// costs as much as the rest of the statistics.
GF_HD float group_mean_deviation(float sum_dev, float inv_m) { return sum_dev * inv_m; }

// std_f of one feature from the group's sum of squared deviations from the mean.
GF_HD float group_feature_std(float sum_sq_dev, float inv_m, float eps) {
  return sqrtf(sum_sq_dev * inv_m + eps);
}

// x − mean_f of one element, from the group's first row x0 and mean_d (see above).
GF_HD float group_deviation(float x, float x0, float mean_d) { return (x - x0) - mean_d; }

// dx of one element: scale = D_g / (F·m·std_f), the factor shared by the feature's rows.
GF_HD float minibatch_stddev_dx(float dy, float x, float x0, float mean_d, float scale) {
  return dy + group_deviation(x, x0, mean_d) * scale;
}

void minibatch_stddev_forward_cpu(const float* x, float* y, const MinibatchStddevShape& s,
                                  float eps);
void minibatch_stddev_backward_cpu(const float* dy, const float* x, float* dx,
                                   const MinibatchStddevShape& s, float eps);

#ifdef GF_WITH_CUDA
void minibatch_stddev_forward_cuda(const float* x, float* y, const MinibatchStddevShape& s,
                                   float eps, Stream stream);
void minibatch_stddev_backward_cuda(const float* dy, const float* x, float* dx,
                                    const MinibatchStddevShape& s, float eps, Stream stream);
#endif

}  // namespace gf
