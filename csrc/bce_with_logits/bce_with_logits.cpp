#include "bce_with_logits/bce_with_logits.h"

namespace gf {

// n is a batch of logits (tens to thousands): one thread, one double accumulator, so the
// mean is summed in index order and is the same on every run.
void bce_with_logits_cpu(const float* z, const float* t, float* loss, float* dz, int64_t n) {
  const double inv_n = 1.0 / static_cast<double>(n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    sum += bce_with_logits_term(z[i], t[i]);
    dz[i] = bce_with_logits_grad(z[i], t[i], inv_n);
  }
  *loss = static_cast<float>(sum * inv_n);
}

}  // namespace gf
