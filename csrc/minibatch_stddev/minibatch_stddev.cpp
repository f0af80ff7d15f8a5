// minibatch_stddev (CPU): one pass per group (contract: minibatch_stddev.h). Variant 1 (the
// only one). Groups are split over the threads (rows_cpu, on the active SIMD path) and each
// is computed whole by one thread. Inside a group the features go in chunks of kChunk, whose
// per-feature arrays stay in L1: the chunk's rows are copied x -> y while their deviations
// from the first row are summed, the squared deviations from the mean come from the same rows
// (still in L1), and std_f is added to lane f mod kChunk of double accumulators, which are
// added pairwise at the end. Every loop runs across the features (simple vector code on every
// path) and the order of every sum is set by the shape alone, so the result is the same for
// any thread count. backward recomputes each chunk's statistics the same way and writes dx
// for the group's rows; D_g adds a lane_sum per row, rows in order.
// Tests: tests/test_minibatch_stddev.py.
#include "minibatch_stddev/minibatch_stddev.h"

#include <algorithm>

#include "common/cpu_isa.h"
#include "common/lane_sum.h"
#include "common/parallel.h"

namespace gf {
namespace {

constexpr int64_t kChunk = 256;  // features per chunk

// One group's rows: x at row stride F, y / dy at row stride Y = F + L.
struct Group {
  int64_t n0, m, F, Y;
  Group(const MinibatchStddevShape& s, int64_t g)
      : n0(g * s.group_size), m(s.rows(g)), F(s.F()), Y(s.F() + s.L) {}
};

// The statistics of the features [f0, f0 + width) of a group whose first row is xg: x0 (that
// row, in place), mean_d and std_f (contract: minibatch_stddev.h).
struct ChunkStatistics {
  const float* x0;
  float mean_d[kChunk], std[kChunk];

  // With kCopy the rows are also copied to yg (row stride Y) while they are read. The sums
  // start from their first terms instead of from zeroed arrays (the same values: the first
  // row's deviation is 0, and adding to 0 is exact), as GCC turns zeroing and copying loops
  // into string instructions that cost more than the statistics at this length.
  template <bool kCopy>
  GF_INLINE void compute(const float* xg, float* yg, const Group& grp, int64_t f0,
                         int64_t width, float eps) {
    float sum[kChunk], sq[kChunk];
    x0 = xg + f0;
    const float* row1 = x0 + grp.F;  // read only when m > 1
    float* out0 = yg + f0;
#pragma omp simd
    for (int64_t j = 0; j < width; ++j) {
      sum[j] = grp.m > 1 ? row1[j] - x0[j] : 0.f;
      if constexpr (kCopy) out0[j] = x0[j];
    }
    for (int64_t r = 1; r < grp.m; ++r) {
      const float* row = xg + r * grp.F + f0;
      float* out = yg + r * grp.Y + f0;
      if (r > 1) {
#pragma omp simd
        for (int64_t j = 0; j < width; ++j) sum[j] += row[j] - x0[j];
      }
      if constexpr (kCopy) {
#pragma omp simd
        for (int64_t j = 0; j < width; ++j) out[j] = row[j];
      }
    }
    const float inv_m = 1.f / static_cast<float>(grp.m);
#pragma omp simd
    for (int64_t j = 0; j < width; ++j) {
      mean_d[j] = group_mean_deviation(sum[j], inv_m);
      const float d = group_deviation(x0[j], x0[j], mean_d[j]);
      sq[j] = d * d;
    }
    for (int64_t r = 1; r < grp.m; ++r) {
      const float* row = xg + r * grp.F + f0;
#pragma omp simd
      for (int64_t j = 0; j < width; ++j) {
        const float d = group_deviation(row[j], x0[j], mean_d[j]);
        sq[j] += d * d;
      }
    }
#pragma omp simd
    for (int64_t j = 0; j < width; ++j) std[j] = group_feature_std(sq[j], inv_m, eps);
  }
};

struct ForwardGroup {
  const float* x;
  float* y;
  MinibatchStddevShape s;
  float eps;
  GF_INLINE void operator()(int64_t g) const {
    const Group grp(s, g);
    const float* xg = x + grp.n0 * grp.F;
    float* yg = y + grp.n0 * grp.Y;
    double lane[kChunk] = {};  // lane j: Σ std_f over the features f ≡ j (mod kChunk)
    ChunkStatistics c;
    for (int64_t f0 = 0; f0 < grp.F; f0 += kChunk) {
      const int64_t width = std::min(kChunk, grp.F - f0);
      c.compute<true>(xg, yg, grp, f0, width, eps);
#pragma omp simd
      for (int64_t j = 0; j < width; ++j) lane[j] += c.std[j];
    }
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
    double D = 0.0;
    for (int64_t r = 0; r < grp.m; ++r) {
      const float* stat = dyg + r * grp.Y + grp.F;
      D += lane_sum(L, [&](int64_t l) { return static_cast<double>(stat[l]); });
    }
    const float coef = static_cast<float>(D / (static_cast<double>(grp.F) * grp.m));
    ChunkStatistics c;
    float scale[kChunk];
    for (int64_t f0 = 0; f0 < grp.F; f0 += kChunk) {
      const int64_t width = std::min(kChunk, grp.F - f0);
      c.compute<false>(xg, nullptr, grp, f0, width, eps);
#pragma omp simd
      for (int64_t j = 0; j < width; ++j) scale[j] = coef / c.std[j];
      for (int64_t r = 0; r < grp.m; ++r) {
        const float* dyr = dyg + r * grp.Y + f0;
        const float* xr = xg + r * grp.F + f0;
        float* dxr = dxg + r * grp.F + f0;
#pragma omp simd
        for (int64_t j = 0; j < width; ++j)
          dxr[j] = minibatch_stddev_dx(dyr[j], xr[j], c.x0[j], c.mean_d[j], scale[j]);
      }
    }
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
