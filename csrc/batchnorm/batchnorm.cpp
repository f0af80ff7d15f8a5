// batchnorm (CPU): per-channel normalisation over x viewed as [N, C, L] (contract:
// batchnorm.h). Blocks of kChannels channels split over the threads (rows_cpu, on the
// active SIMD path); inside a block the loops run n, c, l so that [N, F] inputs (L = 1)
// still read memory contiguously, and vectorise over the channels.
// Per-channel sums are in double with kLanes interleaved partial sums (l mod kLanes,
// independent, so they vectorise), combined lane 0 first: an order set by the shape
// alone, so results are bitwise the same for any thread count. Statistics are then formed
// in double; y and dx elementwise in float from per-channel coefficients, centred on the
// mean first so that a large mean costs no precision.
// Tests: tests/test_batchnorm.py.
#include "batchnorm/batchnorm.h"

#include <algorithm>
#include <cmath>

#include "common/cpu_isa.h"
#include "common/parallel.h"

namespace gf {
namespace {

constexpr int64_t kChannels = 16;  // channels per OpenMP task
constexpr int kLanes = 8;          // partial sums per channel

// The channels [c0, c0 + count) of one task.
struct ChannelBlock {
  int64_t c0, count;
};

int64_t channel_blocks(const BatchNormShape& s) { return (s.C + kChannels - 1) / kChannels; }
ChannelBlock channel_block(const BatchNormShape& s, int64_t b) {
  return {b * kChannels, std::min(kChannels, s.C - b * kChannels)};
}

// Calls visit(j, i, l) for every element i = (n·C + c0 + j)·L + l of the block's channels,
// in n, j, l order ([N, F] inputs, L = 1: the j loop is innermost and vectorises).
template <class Visit>
GF_INLINE void for_each_element(const BatchNormShape& s, ChannelBlock blk, Visit visit) {
  if (s.L == 1) {
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t j = 0; j < blk.count; ++j) visit(j, n * s.C + blk.c0 + j, 0);
    return;
  }
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t j = 0; j < blk.count; ++j) {
      const int64_t base = (n * s.C + blk.c0 + j) * s.L;
      for (int64_t l = 0; l < s.L; ++l) visit(j, base + l, l);
    }
}

// sums[t][j] = Σ over the elements i of channel c0 + j of term(t, j, i), for t < NT.
template <int NT, class Term>
GF_INLINE void channel_sums(const BatchNormShape& s, ChannelBlock blk, Term term,
                            double sums[NT][kChannels]) {
  if (s.L == 1) {  // one partial per channel (lane 0 of the general case), vectorised over j
    for (int t = 0; t < NT; ++t) std::fill(sums[t], sums[t] + kChannels, 0.0);
    for (int64_t n = 0; n < s.N; ++n)
      for (int t = 0; t < NT; ++t)
        for (int64_t j = 0; j < blk.count; ++j) sums[t][j] += term(t, j, n * s.C + blk.c0 + j);
    return;
  }
  double lanes[NT][kChannels][kLanes] = {};
  for_each_element(s, blk, [&](int64_t j, int64_t i, int64_t l) {
    for (int t = 0; t < NT; ++t) lanes[t][j][l % kLanes] += term(t, j, i);
  });
  for (int t = 0; t < NT; ++t)
    for (int64_t j = 0; j < blk.count; ++j) {
      double total = 0.0;
      for (int lane = 0; lane < kLanes; ++lane) total += lanes[t][j][lane];
      sums[t][j] = total;
    }
}

// Batch statistics of the block: writes mean and rstd, updates the running estimates.
// Two passes (mean, then squared deviations) so a large mean costs no precision.
GF_INLINE void batch_statistics(const float* x, const BatchNormShape& s, ChannelBlock blk, float momentum,
                      float eps, float* running_mean, float* running_var, float* mean,
                      float* rstd) {
  const double n = static_cast<double>(s.N * s.L);
  double sum[1][kChannels], sq[1][kChannels], mu[kChannels];
  channel_sums<1>(s, blk, [&](int, int64_t, int64_t i) { return double(x[i]); }, sum);
  for (int64_t j = 0; j < blk.count; ++j) mu[j] = sum[0][j] / n;
  channel_sums<1>(s, blk, [&](int, int64_t j, int64_t i) {
    const double d = x[i] - mu[j];
    return d * d;
  }, sq);
  for (int64_t j = 0; j < blk.count; ++j) {
    const int64_t c = blk.c0 + j;
    const double var = sq[0][j] / n;
    mean[c] = static_cast<float>(mu[j]);
    rstd[c] = static_cast<float>(1.0 / std::sqrt(var + eps));
    running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mu[j]);
    running_var[c] =
        static_cast<float>((1.0 - momentum) * running_var[c] + momentum * var * n / (n - 1.0));
  }
}

// One channel block of the forward (a rows_cpu row, so it runs on the active SIMD path).
struct ForwardBlock {
  const float *x, *gamma, *beta;
  float *running_mean, *running_var, *y, *mean, *rstd;
  BatchNormShape s;
  bool training;
  float momentum, eps;
  GF_INLINE void operator()(int64_t b) const {
    const ChannelBlock blk = channel_block(s, b);
    if (training) {
      batch_statistics(x, s, blk, momentum, eps, running_mean, running_var, mean, rstd);
    } else {
      for (int64_t c = blk.c0; c < blk.c0 + blk.count; ++c) {
        mean[c] = running_mean[c];
        rstd[c] = static_cast<float>(1.0 / std::sqrt(double(running_var[c]) + eps));
      }
    }
    // y = (x − mean)·(rstd·gamma) + beta; centring first keeps a large mean harmless
    float centre[kChannels], scale[kChannels], shift[kChannels];
    for (int64_t j = 0; j < blk.count; ++j) {
      centre[j] = mean[blk.c0 + j];
      scale[j] = static_cast<float>(double(rstd[blk.c0 + j]) * gamma[blk.c0 + j]);
      shift[j] = beta[blk.c0 + j];
    }
    for_each_element(s, blk, [&](int64_t j, int64_t i, int64_t) {
      y[i] = (x[i] - centre[j]) * scale[j] + shift[j];
    });
  }
};

// Blocks below this many elements stay on one thread.
int64_t block_grain(const BatchNormShape& s) {
  return kParallelGrain / std::max<int64_t>(1, s.N * s.L * kChannels);
}

// One channel block of the backward.
struct BackwardBlock {
  const float *dy, *x, *gamma, *mean, *rstd;
  float *dx, *dgamma, *dbeta;
  BatchNormShape s;
  bool training;
  GF_INLINE void operator()(int64_t b) const {
    const double n = static_cast<double>(s.N * s.L);
    const ChannelBlock blk = channel_block(s, b);
    // sums[0] = Σ dy = dbeta, sums[1] = Σ dy·xhat = dgamma
    double sums[2][kChannels], centre64[kChannels], rstd64[kChannels];
    for (int64_t j = 0; j < blk.count; ++j) {
      centre64[j] = mean[blk.c0 + j];
      rstd64[j] = rstd[blk.c0 + j];
    }
    channel_sums<2>(s, blk, [&](int t, int64_t j, int64_t i) {
      return t == 0 ? double(dy[i]) : double(dy[i]) * ((double(x[i]) - centre64[j]) * rstd64[j]);
    }, sums);
    // training: dx = gamma·rstd/n·(n·dy − dbeta − xhat·dgamma)
    //              = dy·g + (x − mean)·a + d,  g = gamma·rstd, a = −g·rstd·dgamma/n,
    //                                          d = −g·dbeta/n;
    // eval: dx = dy·g, which does not read x (a NaN or inf in x must not reach dx through
    // a zero a: tests/test_fuzz.py's non-finite test).
    float centre[kChannels], g[kChannels], a[kChannels], d[kChannels];
    for (int64_t j = 0; j < blk.count; ++j) {
      const int64_t c = blk.c0 + j;
      const double gr = double(gamma[c]) * rstd[c];
      centre[j] = mean[c];
      g[j] = static_cast<float>(gr);
      a[j] = static_cast<float>(-gr * rstd[c] * sums[1][j] / n);
      d[j] = static_cast<float>(-gr * sums[0][j] / n);
      dbeta[c] = static_cast<float>(sums[0][j]);
      dgamma[c] = static_cast<float>(sums[1][j]);
    }
    if (training)
      for_each_element(s, blk, [&](int64_t j, int64_t i, int64_t) {
        dx[i] = dy[i] * g[j] + ((x[i] - centre[j]) * a[j] + d[j]);
      });
    else
      for_each_element(s, blk, [&](int64_t j, int64_t i, int64_t) { dx[i] = dy[i] * g[j]; });
  }
};

}  // namespace

void batchnorm_forward_cpu(const float* x, const float* gamma, const float* beta,
                           float* running_mean, float* running_var, float* y, float* mean,
                           float* rstd, const BatchNormShape& s, bool training, float momentum,
                           float eps) {
  rows_cpu(channel_blocks(s), block_grain(s),
           ForwardBlock{x, gamma, beta, running_mean, running_var, y, mean, rstd, s, training,
                        momentum, eps});
}

void batchnorm_backward_cpu(const float* dy, const float* x, const float* gamma,
                            const float* mean, const float* rstd, float* dx, float* dgamma,
                            float* dbeta, const BatchNormShape& s, bool training) {
  rows_cpu(channel_blocks(s), block_grain(s),
           BackwardBlock{dy, x, gamma, mean, rstd, dx, dgamma, dbeta, s, training});
}

}  // namespace gf
