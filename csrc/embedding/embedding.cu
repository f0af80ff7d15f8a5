// embedding_*_cuda: row gathers forward, class sums backward (contract in embedding.h).
// Variant 1 (the only one):
//   forward  one thread per element of y, reading weight[labels[n], k] (a warp reads
//            consecutive columns of one row: coalesced).
//   class_row_sums  one thread per (class, column), plus one per column for the totals,
//            each looping over n ascending: it reads every label (the same address across
//            the warp: one broadcast) and adds s[n]·x[n, k] when the row is its class's.
//            No atomics, one fixed order per element: bitwise repeatable. C·D threads of N
//            steps is a few microseconds at the model's sizes (C = 10, D ≤ 7840, N ≤ 512).
// Tested in tests/test_embedding.py and tests/test_projection_head.py.
#include "embedding/embedding.h"

#include "common/cuda_launch.cuh"
#include "common/labels.h"

namespace gf {

namespace {

struct GatherElement {  // y[n, k] = weight[labels[n], k]
  const float* weight;
  const int64_t* labels;
  float* y;
  int64_t D, C;
  __device__ void operator()(int64_t i) const {
    const int64_t n = i / D, k = i - n * D, label = labels[n];
    y[i] = label_in_range(label, C) ? weight[label * D + k] : label_nan();
  }
};

// Thread i handles class c = first_class + i / D (c == C: the column totals), column i % D.
struct ClassRowSumsElement {
  const float *x, *scale;
  const int64_t* labels;
  float *sums, *total;
  int64_t N, D, C, first_class;
  __device__ void operator()(int64_t i) const {
    const int64_t c = first_class + i / D, k = i % D;
    const bool is_total = c == C;
    float acc = 0.f;
    bool bad_label = false;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t label = is_total ? c : labels[n];
      bad_label |= !is_total && !label_in_range(label, C);
      if (label == c) acc += (scale != nullptr ? scale[n] : 1.f) * x[n * D + k];
    }
    if (is_total)
      total[k] = acc;
    else
      sums[c * D + k] = bad_label ? label_nan() : acc;
  }
};

}  // namespace

void embedding_forward_cuda(const float* weight, const int64_t* labels, float* y, int64_t N,
                            int64_t D, int64_t C, Stream stream) {
  launch_elementwise(N * D, GatherElement{weight, labels, y, D, C},
                     static_cast<cudaStream_t>(stream));
}

void class_row_sums_cuda(const float* x, const float* scale, const int64_t* labels, float* sums,
                         float* total, int64_t N, int64_t D, int64_t C, Stream stream) {
  const int64_t first_class = sums != nullptr ? 0 : C, end_class = total != nullptr ? C + 1 : C;
  launch_elementwise((end_class - first_class) * D,
                     ClassRowSumsElement{x, scale, labels, sums, total, N, D, C, first_class},
                     static_cast<cudaStream_t>(stream));
}

void embedding_backward_cuda(const float* dy, const int64_t* labels, float* dweight, int64_t N,
                             int64_t D, int64_t C, Stream stream) {
  class_row_sums_cuda(dy, nullptr, labels, dweight, nullptr, N, D, C, stream);
}

}  // namespace gf
