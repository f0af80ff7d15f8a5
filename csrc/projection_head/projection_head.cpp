// projection_head (CPU): the projection discriminator's logit and its gradients (contract:
// projection_head.h).
// forward is linear's 6272 -> 1 mat-vec head (linear.cpp, MatVecRows) with a second stream:
// 4 rows at a time, so that each load of w serves all four while 4 rows of h and their 4
// class rows of embed are in flight; per row two sets of W partial sums (h·w and
// h·embed[label], W the SIMD path's vector width, lane l taking every k with k % W == l),
// added pairwise at the end. h is read once at memory speed; the C class rows (250 KB for the
// model) stay in L2. The order is fixed by W alone: the same for any thread count.
// backward: dh row by row; dw and dembed in one pass over h by class_row_sums (embedding.h);
// db in double, n ascending.
// Tests: tests/test_projection_head.py.
#include "projection_head/projection_head.h"

#include <algorithm>
#include <cstring>

#include "common/cpu_isa.h"
#include "common/labels.h"
#include "common/parallel.h"
#include "embedding/embedding.h"

namespace gf {
namespace {

// Below this many floats of h a row loop stays on one thread (linear's mat-vec grain).
constexpr int64_t kHeadGrain = 1 << 14;

struct ProjectionRows {
  static constexpr int64_t kRows = 4;
  const float *h, *w, *b, *embed;
  const int64_t* labels;
  float* logits;
  int64_t N, D, C;
  template <int W>  // lanes: the SIMD path's vector width
  GF_INLINE void operator()(int64_t block) const {
    using V = typename FloatVec<W>::type;
    const int64_t n0 = block * kRows, rows = std::min(kRows, N - n0);
    // Each row's class row; a row with a bad label reads w instead (any D readable floats)
    // and is written as NaN.
    const float* e[kRows];
    bool ok[kRows];
    for (int64_t r = 0; r < kRows; ++r) {
      ok[r] = r < rows && label_in_range(labels[n0 + r], C);
      e[r] = ok[r] ? embed + labels[n0 + r] * D : w;
    }
    V acc_w[kRows] = {}, acc_e[kRows] = {};
    int64_t k = 0;
    if (rows == kRows) {
      for (; k + W <= D; k += W) {
        V wv;
        std::memcpy(&wv, w + k, sizeof(wv));
        for (int64_t r = 0; r < kRows; ++r) {
          V hv, ev;
          std::memcpy(&hv, h + (n0 + r) * D + k, sizeof(hv));
          std::memcpy(&ev, e[r] + k, sizeof(ev));
          acc_w[r] += hv * wv;
          acc_e[r] += hv * ev;
        }
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      float lane_w[W], lane_e[W];
      std::memcpy(lane_w, &acc_w[r], sizeof(lane_w));
      std::memcpy(lane_e, &acc_e[r], sizeof(lane_e));
      const float* row = h + (n0 + r) * D;
      const float* er = e[r];
      int64_t j = k;
      for (; j + W <= D; j += W)  // a short last block: its rows one by one
        for (int64_t l = 0; l < W; ++l) {
          lane_w[l] += row[j + l] * w[j + l];
          lane_e[l] += row[j + l] * er[j + l];
        }
      for (int64_t l = 0; j + l < D; ++l) {
        lane_w[l] += row[j + l] * w[j + l];
        lane_e[l] += row[j + l] * er[j + l];
      }
      const float logit = projection_head_logit(pairwise_sum(lane_w), pairwise_sum(lane_e), b);
      logits[n0 + r] = ok[r] ? logit : label_nan();
    }
  }
};

struct DhRow {  // dh[n, :] = dlogits[n]·(w + embed[labels[n]])
  const float *dlogits, *w, *embed;
  const int64_t* labels;
  float* dh;
  int64_t D, C;
  GF_INLINE void operator()(int64_t n) const {
    float* row = dh + n * D;
    const int64_t label = labels[n];
    if (!label_in_range(label, C)) {
      std::fill(row, row + D, label_nan());
      return;
    }
    const float g = dlogits[n];
    const float* e = embed + label * D;
#pragma omp simd
    for (int64_t k = 0; k < D; ++k) row[k] = projection_head_dh(g, w[k], e[k]);
  }
};

}  // namespace

void projection_head_forward_cpu(const float* h, const float* w, const float* b,
                                 const float* embed, const int64_t* labels, float* logits,
                                 int64_t N, int64_t D, int64_t C) {
  constexpr int64_t kRows = ProjectionRows::kRows;
  vector_rows_cpu((N + kRows - 1) / kRows, kHeadGrain / std::max<int64_t>(kRows * D, 1),
                  ProjectionRows{h, w, b, embed, labels, logits, N, D, C});
}

void projection_head_backward_cpu(const float* dlogits, const float* h, const float* w,
                                  const float* embed, const int64_t* labels, float* dh,
                                  float* dw, float* db, float* dembed, int64_t N, int64_t D,
                                  int64_t C) {
  if (dh != nullptr)
    rows_cpu(N, kHeadGrain / std::max<int64_t>(D, 1), DhRow{dlogits, w, embed, labels, dh, D, C});
  class_row_sums_cpu(h, dlogits, labels, dembed, dw, N, D, C);
  if (db != nullptr) {
    double sum = 0.0;
    for (int64_t n = 0; n < N; ++n) sum += dlogits[n];
    *db = static_cast<float>(sum);
  }
}

}  // namespace gf
