// embedding (CPU): row gathers forward; class sums backward (contract: embedding.h).
// forward copies one table row per output row (threads over rows when y is large).
// class_row_sums (backward, and projection_head's dembed + dw) works on blocks of 256
// columns: each task zeroes its block of every class row, then walks n ascending and adds
// s[n]·x[n, block] onto the block of row labels[n] (and onto the column totals), so every
// element is summed in the same order whatever the number of threads; the block of all C
// classes stays in L1 for the model's C = 10.
// Tests: tests/test_embedding.py, tests/test_projection_head.py.
#include "embedding/embedding.h"

#include <algorithm>
#include <cstring>

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

constexpr int64_t kSumColumns = 256;  // columns per task: the C class rows' block stays in L1

struct ClassRowSums {
  const float *x, *scale;
  const int64_t* labels;
  float *sums, *total;
  int64_t N, D, C;
  GF_INLINE void operator()(int64_t block) const {
    const int64_t k0 = block * kSumColumns, width = std::min(kSumColumns, D - k0);
    if (sums != nullptr)
      for (int64_t c = 0; c < C; ++c) std::fill(sums + c * D + k0, sums + c * D + k0 + width, 0.f);
    float acc[kSumColumns] = {};  // total's block
    bool bad_label = false;
    for (int64_t n = 0; n < N; ++n) {
      const float s = scale != nullptr ? scale[n] : 1.f;  // 1·x is exact, fused or not
      const float* row = x + n * D + k0;
      if (total != nullptr) {
#pragma omp simd
        for (int64_t j = 0; j < width; ++j) acc[j] += s * row[j];
      }
      if (sums == nullptr) continue;
      const int64_t label = labels[n];
      if (!label_in_range(label, C)) {
        bad_label = true;
        continue;
      }
      float* out = sums + label * D + k0;
#pragma omp simd
      for (int64_t j = 0; j < width; ++j) out[j] += s * row[j];
    }
    if (total != nullptr) std::copy(acc, acc + width, total + k0);
    if (bad_label)
      for (int64_t c = 0; c < C; ++c)
        std::fill(sums + c * D + k0, sums + c * D + k0 + width, label_nan());
  }
};

}  // namespace

void embedding_forward_cpu(const float* weight, const int64_t* labels, float* y, int64_t N,
                           int64_t D, int64_t C) {
  rows_cpu(N, kParallelGrain / std::max<int64_t>(D, 1), GatherRow{weight, labels, y, D, C});
}

void class_row_sums_cpu(const float* x, const float* scale, const int64_t* labels, float* sums,
                        float* total, int64_t N, int64_t D, int64_t C) {
  if (sums == nullptr && total == nullptr) return;
  const int64_t blocks = (D + kSumColumns - 1) / kSumColumns;
  rows_cpu(blocks, kParallelGrain / std::max<int64_t>(N * kSumColumns, 1),
           ClassRowSums{x, scale, labels, sums, total, N, D, C});
}

void embedding_backward_cpu(const float* dy, const int64_t* labels, float* dweight, int64_t N,
                            int64_t D, int64_t C) {
  class_row_sums_cpu(dy, nullptr, labels, dweight, nullptr, N, D, C);
}

}  // namespace gf
