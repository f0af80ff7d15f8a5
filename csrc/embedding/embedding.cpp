// embedding (CPU): row gathers forward; class sums backward (contract: embedding.h).
// forward copies one table row per output row (threads over rows when y is large).
// class_row_sums (backward, and projection_head's dw + dembed), variant 2: blocks of 64
// columns; for each block, the column totals over all rows and then each class's
// sum over its rows (RowsByClass) accumulate in vector registers and are stored once, so
// the only memory traffic is x (read once from memory, and again from L2 for the class
// sums). Variant 1 (one pass of n, adding each row into a 256-column block of its class row
// and of the totals in L1) spent its time storing partial sums: 2x linear's dw at the head's
// shape for dw + dembed. Every element is summed in increasing n on every path (the partial
// last block too), whatever the number of threads.
// Tests: tests/test_embedding.py, tests/test_projection_head.py.
// Benchmark: python benchmarks/conditional_ops.py (beside NumPy; `pytest benchmarks/` too).
#include "embedding/embedding.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "common/cpu_isa.h"
#include "common/labels.h"
#include "common/parallel.h"

namespace gf {
namespace {

struct GatherRow {  // y[n, :] = weight[labels[n], :]
  const float* weight;
  const int64_t* labels;
  float* y;
  int64_t D, C;
  GF_INLINE void operator()(int64_t n) const {
    const int64_t label = labels[n];
    if (label_in_range(label, C))
      std::memcpy(y + n * D, weight + label * D, static_cast<size_t>(D) * sizeof(float));
    else
      std::fill(y + n * D, y + (n + 1) * D, label_nan());
  }
};

// total[k0 .. k0 + width) and every class's sums[c, k0 .. k0 + width) for one block.
struct ClassRowSums {
  // Columns per block: 4 AVX-512 / 8 AVX2 / 16 SSE vectors of accumulators; 4 cache lines of
  // each row per block.
  static constexpr int64_t kBlock = 64;
  const float *x, *scale;
  const RowsByClass* rows;  // null when sums is
  float *sums, *total;
  int64_t N, D, C;

  template <int W>  // lanes: the SIMD path's vector width
  GF_INLINE void operator()(int64_t block) const {
    const int64_t k0 = block * kBlock, width = std::min(kBlock, D - k0);
    if (total != nullptr) sum_rows<W>(nullptr, 0, N, k0, width, total + k0);
    if (sums == nullptr) return;
    for (int64_t c = 0; c < C; ++c) {
      float* out = sums + c * D + k0;
      if (rows->any_bad_label())
        std::fill(out, out + width, label_nan());
      else
        sum_rows<W>(rows->order.data(), rows->first[c], rows->first[c + 1], k0, width, out);
    }
  }

  // out[j] = Σ_{i in [begin, end)} s[n]·x[n, k0 + j] for j < width, n = order[i] (or i when
  // order is null), i ascending: in registers for a whole block, per column for the last.
  template <int W>
  GF_INLINE void sum_rows(const int64_t* order, int64_t begin, int64_t end, int64_t k0,
                          int64_t width, float* out) const {
    using V = typename FloatVec<W>::type;
    constexpr int64_t kVecs = kBlock / W;
    if (width == kBlock) {
      V acc[kVecs] = {};
      for (int64_t i = begin; i < end; ++i) {
        const int64_t n = order != nullptr ? order[i] : i;
        const V s = V{} + (scale != nullptr ? scale[n] : 1.f);  // 1·x is exact, fused or not
        const float* row = x + n * D + k0;
        for (int64_t r = 0; r < kVecs; ++r) {
          V xv;
          std::memcpy(&xv, row + r * W, sizeof(xv));
          acc[r] += s * xv;
        }
      }
      std::memcpy(out, acc, sizeof(acc));
      return;
    }
    float acc[kBlock] = {};
    for (int64_t i = begin; i < end; ++i) {
      const int64_t n = order != nullptr ? order[i] : i;
      const float s = scale != nullptr ? scale[n] : 1.f;
      const float* row = x + n * D + k0;
      for (int64_t j = 0; j < width; ++j) acc[j] += s * row[j];
    }
    std::copy(acc, acc + width, out);
  }
};

}  // namespace

void embedding_forward_cpu(const float* weight, const int64_t* labels, float* y, int64_t N,
                           int64_t D, int64_t C) {
  rows_cpu(N, kParallelGrain / std::max<int64_t>(D, 1), GatherRow{weight, labels, y, D, C});
}

RowsByClass::RowsByClass(const int64_t* labels, int64_t N, int64_t C)
    : order(static_cast<size_t>(N)), first(static_cast<size_t>(C) + 2, 0) {
  const auto bucket = [&](int64_t n) { return label_in_range(labels[n], C) ? labels[n] : C; };
  for (int64_t n = 0; n < N; ++n) ++first[bucket(n) + 1];
  for (int64_t b = 0; b <= C; ++b) first[b + 1] += first[b];
  std::vector<int64_t> next(first.begin(), first.end() - 1);
  for (int64_t n = 0; n < N; ++n) order[next[bucket(n)]++] = n;
}

void class_row_sums_cpu(const float* x, const float* scale, const int64_t* labels, float* sums,
                        float* total, int64_t N, int64_t D, int64_t C) {
  if (sums == nullptr && total == nullptr) return;
  std::optional<RowsByClass> rows;
  if (sums != nullptr) rows.emplace(labels, N, C);
  constexpr int64_t kBlock = ClassRowSums::kBlock;
  vector_rows_cpu((D + kBlock - 1) / kBlock, kParallelGrain / std::max<int64_t>(N * kBlock, 1),
                  ClassRowSums{x, scale, rows ? &*rows : nullptr, sums, total, N, D, C});
}

void embedding_backward_cpu(const float* dy, const int64_t* labels, float* dweight, int64_t N,
                            int64_t D, int64_t C) {
  class_row_sums_cpu(dy, nullptr, labels, dweight, nullptr, N, D, C);
}

}  // namespace gf
