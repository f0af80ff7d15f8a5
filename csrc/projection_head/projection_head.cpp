// projection_head (CPU): the projection discriminator's logit and its gradients (contract:
// projection_head.h).
// forward (variant 2) is linear's 6272 -> 1 mat-vec head (linear.cpp, MatVecRows) on rows
// taken in class order (RowsByClass, embedding.h): 4 rows of one class share each load of w
// and of their class row (6 vector loads per 4 FMAs, linear's is 5). The head is bound by
// loads, so this takes 1.1-1.2x linear's time at the model's shapes; variant 1 (4 rows in
// index order, each with its own class row: 9 loads per 4 rows, two sums per row) took
// 1.75x. Blocks that straddle two classes (at most C) load a class row per row. The C class
// rows (250 KB for the model) stay in L2. Each row's sum runs in an order set by the SIMD
// width alone: the same for any thread count.
// backward: dh over blocks of 512 columns (w's block and the C class rows' blocks stay in L1
// while every row's block is written: 1.5x faster than row by row, where w and the class row
// came from L2); dw and dembed by class_row_sums (embedding.h); db in double, n ascending.
// Tests: tests/test_projection_head.py.
// Benchmark: python benchmarks/conditional_ops.py (beside NumPy; `pytest benchmarks/` too).
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

// logits[n] = h[n]·v + b, v = w + embed[labels[n]] (each element rounded to float, as dh's
// factor is), for the 4 rows order[4·block ...]. Per row, W partial sums (lane l takes every
// k with k % W == l, W the SIMD path's vector width), added pairwise: the same arithmetic
// for a row whatever block or path it is in, so the result depends on nothing but the row.
// When the 4 rows share a class, one load of w and one of its class row serve all four;
// otherwise each row loads its own class row.
struct ProjectionRows {
  static constexpr int64_t kRows = 4;
  const float *h, *w, *b, *embed;
  const int64_t *labels, *order;
  float* logits;
  int64_t N, D, C;
  template <int W>  // lanes: the SIMD path's vector width
  GF_INLINE void operator()(int64_t block) const {
    using V = typename FloatVec<W>::type;
    const int64_t i0 = block * kRows, rows = std::min(kRows, N - i0);
    // Each row's class row; a row with a bad label reads w instead (any D readable floats)
    // and is written as NaN.
    const float* e[kRows];
    const float* x[kRows];
    bool ok[kRows];
    for (int64_t r = 0; r < kRows; ++r) {
      const int64_t n = order[i0 + std::min(r, rows - 1)];
      ok[r] = label_in_range(labels[n], C);
      e[r] = ok[r] ? embed + labels[n] * D : w;
      x[r] = h + n * D;
    }
    V acc[kRows] = {};
    int64_t k = 0;
    if (rows == kRows && e[0] == e[1] && e[0] == e[2] && e[0] == e[3]) {
      for (; k + W <= D; k += W) {
        V wv, ev;
        std::memcpy(&wv, w + k, sizeof(wv));
        std::memcpy(&ev, e[0] + k, sizeof(ev));
        const V v = wv + ev;
        for (int64_t r = 0; r < kRows; ++r) {
          V hv;
          std::memcpy(&hv, x[r] + k, sizeof(hv));
          acc[r] += hv * v;
        }
      }
    } else if (rows == kRows) {
      for (; k + W <= D; k += W) {
        V wv;
        std::memcpy(&wv, w + k, sizeof(wv));
        for (int64_t r = 0; r < kRows; ++r) {
          V hv, ev;
          std::memcpy(&hv, x[r] + k, sizeof(hv));
          std::memcpy(&ev, e[r] + k, sizeof(ev));
          acc[r] += hv * (wv + ev);
        }
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      float lane[W];
      std::memcpy(lane, &acc[r], sizeof(lane));
      const float *row = x[r], *er = e[r];
      int64_t j = k;
      for (; j + W <= D; j += W)  // a short last block: its rows one by one
        for (int64_t l = 0; l < W; ++l) lane[l] += row[j + l] * (w[j + l] + er[j + l]);
      for (int64_t l = 0; j + l < D; ++l) lane[l] += row[j + l] * (w[j + l] + er[j + l]);
      logits[order[i0 + r]] = ok[r] ? projection_head_logit(pairwise_sum(lane), b) : label_nan();
    }
  }
};

constexpr int64_t kDhColumns = 512;  // w's block and the C class rows' blocks stay in L1

struct DhColumns {  // dh[n, k0:k0+512] = dlogits[n]·(w + embed[labels[n]]) for every n
  const float *dlogits, *w, *embed;
  const int64_t* labels;
  float* dh;
  int64_t N, D, C;
  GF_INLINE void operator()(int64_t block) const {
    const int64_t k0 = block * kDhColumns, width = std::min(kDhColumns, D - k0);
    for (int64_t n = 0; n < N; ++n) {
      float* row = dh + n * D + k0;
      const int64_t label = labels[n];
      if (!label_in_range(label, C)) {
        std::fill(row, row + width, label_nan());
        continue;
      }
      const float g = dlogits[n];
      const float *wb = w + k0, *e = embed + label * D + k0;
#pragma omp simd
      for (int64_t k = 0; k < width; ++k) row[k] = projection_head_dh(g, wb[k], e[k]);
    }
  }
};

}  // namespace

void projection_head_forward_cpu(const float* h, const float* w, const float* b,
                                 const float* embed, const int64_t* labels, float* logits,
                                 int64_t N, int64_t D, int64_t C) {
  constexpr int64_t kRows = ProjectionRows::kRows;
  // Rows in class order (rows with a bad label last), so that most blocks of 4 share a class.
  const RowsByClass rows(labels, N, C);
  vector_rows_cpu((N + kRows - 1) / kRows, kHeadGrain / std::max<int64_t>(kRows * D, 1),
                  ProjectionRows{h, w, b, embed, labels, rows.order.data(), logits, N, D, C});
}

void projection_head_backward_cpu(const float* dlogits, const float* h, const float* w,
                                  const float* embed, const int64_t* labels, float* dh,
                                  float* dw, float* db, float* dembed, int64_t N, int64_t D,
                                  int64_t C) {
  if (dh != nullptr)
    rows_cpu((D + kDhColumns - 1) / kDhColumns, kHeadGrain / std::max<int64_t>(N * kDhColumns, 1),
             DhColumns{dlogits, w, embed, labels, dh, N, D, C});
  class_row_sums_cpu(h, dlogits, labels, dembed, dw, N, D, C);
  if (db != nullptr) {
    double sum = 0.0;
    for (int64_t n = 0; n < N; ++n) sum += dlogits[n];
    *db = static_cast<float>(sum);
  }
}

}  // namespace gf
