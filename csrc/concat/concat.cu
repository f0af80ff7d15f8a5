// concat_*_cuda: joins two arrays along axis 1 and splits the gradient (contract in concat.h).
// Variant 1 (the only one): one thread per element of the joined rows, which reads
// (forward) or writes (backward) the matching element of a part; consecutive threads touch
// consecutive floats on both sides, so every access is coalesced. Pure copies: exact.
// Tested in tests/test_concat.py.
#include "concat/concat.h"

#include "common/cuda_launch.cuh"

namespace gf {

namespace {

// Where element i of the joined rows [N, a_row + b_row] lives: in part a (at offset) or b.
struct PartIndex {
  bool in_a;
  int64_t offset;
  __device__ PartIndex(int64_t i, int64_t a_row, int64_t b_row) {
    const int64_t n = i / (a_row + b_row), j = i - n * (a_row + b_row);
    in_a = j < a_row;
    offset = in_a ? n * a_row + j : n * b_row + (j - a_row);
  }
};

struct JoinElement {
  const float *a, *b;
  float* y;
  int64_t a_row, b_row;
  __device__ void operator()(int64_t i) const {
    const PartIndex p(i, a_row, b_row);
    y[i] = p.in_a ? a[p.offset] : b[p.offset];
  }
};

struct SplitElement {  // a null part is skipped
  const float* dy;
  float *da, *db;
  int64_t a_row, b_row;
  __device__ void operator()(int64_t i) const {
    const PartIndex p(i, a_row, b_row);
    float* part = p.in_a ? da : db;
    if (part != nullptr) part[p.offset] = dy[i];
  }
};

}  // namespace

void concat_forward_cuda(const float* a, const float* b, float* y, int64_t N, int64_t a_row,
                         int64_t b_row, Stream stream) {
  launch_elementwise(N * (a_row + b_row), JoinElement{a, b, y, a_row, b_row},
                     static_cast<cudaStream_t>(stream));
}

void concat_backward_cuda(const float* dy, float* da, float* db, int64_t N, int64_t a_row,
                          int64_t b_row, Stream stream) {
  if (da == nullptr && db == nullptr) return;
  launch_elementwise(N * (a_row + b_row), SplitElement{dy, da, db, a_row, b_row},
                     static_cast<cudaStream_t>(stream));
}

}  // namespace gf
