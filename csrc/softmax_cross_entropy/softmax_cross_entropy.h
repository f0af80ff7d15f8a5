// softmax_cross_entropy: fused mean softmax cross-entropy over a batch and its gradient.
//
//   logits z [N, C] float32 (row-major), labels y [N] int64 class indices in [0, C)
//   lse_i   = m_i + log Σ_j exp(z_ij − m_i),     m_i = max_j z_ij    (row max subtracted)
//   loss    = (1/N) Σ_i (lse_i − z_{i,y_i})                          (one float, overwritten)
//   dz_ij   = (softmax(z_i)_j − [j == y_i]) / N                      (overwritten)
//
// Every row is evaluated in double (exp of z − m ≤ 0 never overflows, so any finite logit,
// ±1e4 included, gives a finite loss and gradient). dz may be z itself (in place): a row is
// read in full (max, sum, z_{i,y_i}) before its gradient is written, element by element after
// reading it. Any other overlap between z, labels, loss and dz is refused by the binding.
// The mean is summed in a fixed order (CPU: rows in index order into one double; CUDA: one
// block, warp per row, each warp summing its rows in order, then block_reduce_sum's fixed
// tree), so the loss is deterministic; on CUDA it is written to device memory.
//
// Labels: the bindings check them on the CPU (ValueError naming the row). On CUDA checking
// would cost a device-to-host copy, so the kernel instead marks a row with a label outside
// [0, C) by NaN in its gradient row and in the loss (the trainer's NaN check stops on it).
// Tested in tests/test_softmax_cross_entropy.py.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/check.h"
#include "common/hd.h"
#include "common/labels.h"

namespace gf {

// One element of the gradient: (e_j / Σ − [j == label]) / N, with e_j = exp(z_j − m).
GF_HD float softmax_xent_grad(double e, double inv_sum, bool is_label, double inv_n) {
  return static_cast<float>((e * inv_sum - (is_label ? 1.0 : 0.0)) * inv_n);
}

// The row's loss term lse − z_label = m + log(Σ) − z_label.
GF_HD double softmax_xent_term(double m, double sum, double z_label) {
  return (m - z_label) + log(sum);
}

void softmax_cross_entropy_cpu(const float* z, const int64_t* labels, float* loss, float* dz,
                               int64_t N, int64_t C);

#ifdef GF_WITH_CUDA
void softmax_cross_entropy_cuda(const float* z, const int64_t* labels, float* loss, float* dz,
                                int64_t N, int64_t C, Stream stream);
#endif

}  // namespace gf
