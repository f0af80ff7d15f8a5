// minibatch_stddev (CPU): one pass per group (contract: minibatch_stddev.h). Variant 1 (the
// only one). Groups are split over the threads (rows_cpu, on the active SIMD path) and each
// is computed whole by one thread. Inside a group the features go in blocks of kSumLanes:
// the block's rows are copied x -> y while their deviations from the first row are summed,
// the squared deviations from the mean are taken from the same rows (still in L1), and std_f
// goes to lane f mod kSumLanes of double
// accumulators that are added pairwise at the end: an order set by the shape alone, so the
// result is the same for any thread count. backward recomputes each block's mean and std the
// same way and writes dx for the group's rows; D_g is a lane_sum in row order.
// Tests: tests/test_minibatch_stddev.py.
#include "minibatch_stddev/minibatch_stddev.h"

#include <algorithm>

#include "common/cpu_isa.h"
#include "common/lane_sum.h"
#include "common/parallel.h"

namespace gf {
namespace {

constexpr int64_t kBlock = kSumLanes;  // features per block, one accumulator lane each

// One group's rows: x at row stride F, y / dy at row stride Y = F + L.
struct Group {
  int64_t n0, m, F, Y;
  Group(const MinibatchStddevShape& s, int64_t g)
      : n0(g * s.group_size), m(s.rows(g)), F(s.F()), Y(s.F() + s.L) {}
};

// The statistics of the features [f0, f0 + width) of a group whose first row is xg: x0 (that
// row), mean_d and std_f (contract: minibatch_stddev.h); with kCopy the rows are also copied
// to yg (row stride Y) while they are read.
struct FeatureBlock {
  float x0[kBlock], mean_d[kBlock], std[kBlock];
};

template <bool kCopy>
GF_INLINE void feature_statistics(const float* xg, float* yg, const Group& grp, int64_t f0,
                                  int64_t width, float eps, FeatureBlock& b) {
  float sum[kBlock] = {}, sq[kBlock] = {};
  for (int64_t j = 0; j < width; ++j) b.x0[j] = xg[f0 + j];
  for (int64_t r = 0; r < grp.m; ++r) {
    const float* row = xg + r * grp.F + f0;
    for (int64_t j = 0; j < width; ++j) sum[j] += row[j] - b.x0[j];
    if constexpr (kCopy)
      for (int64_t j = 0; j < width; ++j) yg[r * grp.Y + f0 + j] = row[j];
  }
  const float m = static_cast<float>(grp.m);
  for (int64_t j = 0; j < width; ++j) b.mean_d[j] = sum[j] / m;
  for (int64_t r = 0; r < grp.m; ++r) {
    const float* row = xg + r * grp.F + f0;
    for (int64_t j = 0; j < width; ++j) {
      const float d = group_deviation(row[j], b.x0[j], b.mean_d[j]);
      sq[j] += d * d;
    }
  }
  for (int64_t j = 0; j < width; ++j) b.std[j] = group_feature_std(sq[j], m, eps);
}

// A lambda inlined into its caller, like GF_INLINE functions (one copy per SIMD path, and a
// constant width folded into its loops).
#define GF_INLINE_LAMBDA __attribute__((always_inline))

// Calls block(f0, width) for the feature blocks of F features, full blocks with a constant
// width (so their loops are fixed-length vector code) and then the short last one.
template <class Block>
GF_INLINE void for_each_feature_block(int64_t F, const Block& block) {
  int64_t f0 = 0;
  for (; f0 + kBlock <= F; f0 += kBlock) block(f0, kBlock);
  if (f0 < F) block(f0, F - f0);
}

struct ForwardGroup {
  const float* x;
  float* y;
  MinibatchStddevShape s;
  float eps;
  GF_INLINE void operator()(int64_t g) const {
    const Group grp(s, g);
    const float* xg = x + grp.n0 * grp.F;
    float* yg = y + grp.n0 * grp.Y;
    double lane[kBlock] = {};
    for_each_feature_block(grp.F, [&](int64_t f0, int64_t width) GF_INLINE_LAMBDA {
      FeatureBlock b;
      feature_statistics<true>(xg, yg, grp, f0, width, eps, b);
      for (int64_t j = 0; j < width; ++j) lane[j] += b.std[j];
    });
    const float sg = static_cast<float>(pairwise_sum(lane) / static_cast<double>(grp.F));
    for (int64_t r = 0; r < grp.m; ++r)
      std::fill(yg + r * grp.Y + grp.F, yg + (r + 1) * grp.Y, sg);
  }
};

struct BackwardGroup {
  const float *dy, *x;
  float* dx;
  MinibatchStddevShape s;
  float eps;
  GF_INLINE void operator()(int64_t g) const {
    const Group grp(s, g);
    const int64_t L = s.L;
    const float* xg = x + grp.n0 * grp.F;
    const float* dyg = dy + grp.n0 * grp.Y;
    float* dxg = dx + grp.n0 * grp.F;
    // D_g: the statistic channel's gradient over the group's rows, row by row.
    const double D = lane_sum(grp.m * L, [&](int64_t i) {
      return static_cast<double>(dyg[(i / L) * grp.Y + grp.F + i % L]);
    });
    const float coef = static_cast<float>(D / (static_cast<double>(grp.F) * grp.m));
    for_each_feature_block(grp.F, [&](int64_t f0, int64_t width) GF_INLINE_LAMBDA {
      FeatureBlock b;
      float scale[kBlock];
      feature_statistics<false>(xg, nullptr, grp, f0, width, eps, b);
      for (int64_t j = 0; j < width; ++j) scale[j] = coef / b.std[j];
      for (int64_t r = 0; r < grp.m; ++r)
        for (int64_t j = 0; j < width; ++j) {
          const int64_t f = f0 + j;
          dxg[r * grp.F + f] = minibatch_stddev_dx(dyg[r * grp.Y + f], xg[r * grp.F + f],
                                                   b.x0[j], b.mean_d[j], scale[j]);
        }
    });
  }
};

// Groups below this many values stay on one thread.
int64_t group_grain(const MinibatchStddevShape& s) {
  return kParallelGrain / std::max<int64_t>(1, s.group_size * s.F());
}

}  // namespace

void minibatch_stddev_forward_cpu(const float* x, float* y, const MinibatchStddevShape& s,
                                  float eps) {
  rows_cpu(s.groups(), group_grain(s), ForwardGroup{x, y, s, eps});
}

void minibatch_stddev_backward_cpu(const float* dy, const float* x, float* dx,
                                   const MinibatchStddevShape& s, float eps) {
  rows_cpu(s.groups(), group_grain(s), BackwardGroup{dy, x, dx, s, eps});
}

}  // namespace gf
