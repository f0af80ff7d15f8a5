#include "softmax_cross_entropy/softmax_cross_entropy.h"

#include <limits>

namespace gf {

// N is a batch of rows (tens to thousands) and C a handful of classes: one thread, rows in
// index order into one double accumulator, so the mean is the same on every run. The
// bindings have checked every label; an unchecked out-of-range one (a direct C++ caller)
// gives NaN as on CUDA rather than reading out of bounds.
void softmax_cross_entropy_cpu(const float* z, const int64_t* labels, float* loss, float* dz,
                               int64_t N, int64_t C) {
  const double inv_n = 1.0 / static_cast<double>(N);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  double total = 0.0;
  for (int64_t i = 0; i < N; ++i) {
    const float* zi = z + i * C;
    float* dzi = dz + i * C;
    const int64_t label = labels[i];
    if (!label_in_range(label, C)) {
      total += nan;
      for (int64_t j = 0; j < C; ++j) dzi[j] = static_cast<float>(nan);
      continue;
    }
    double m = zi[0];
    for (int64_t j = 1; j < C; ++j) m = zi[j] > m ? zi[j] : m;
    double sum = 0.0;
    for (int64_t j = 0; j < C; ++j) sum += std::exp(static_cast<double>(zi[j]) - m);
    total += softmax_xent_term(m, sum, zi[label]);
    const double inv_sum = 1.0 / sum;
    for (int64_t j = 0; j < C; ++j)  // zi[j] is read before dzi[j] (possibly the same) is written
      dzi[j] = softmax_xent_grad(std::exp(static_cast<double>(zi[j]) - m), inv_sum, j == label,
                                 inv_n);
  }
  *loss = static_cast<float>(total * inv_n);
}

}  // namespace gf
