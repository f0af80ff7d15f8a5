// embedding: the rows of a table picked by class labels, and the gradient that sums them
// back per class (the conditional generator's label input: fixed one-hot label planes or a
// learned embedding).
//
// Shapes (row-major, contiguous; float32 unless said):
//   weight [C, D]   labels [N] int64 in [0, C)   y [N, D]
// forward   y[n, :] = weight[labels[n], :]                               (overwritten)
// backward  dweight[c, :] = Σ_{n: labels[n] = c} dy[n, :]                (overwritten)
//           in float32, n ascending for every element on both backends (CUDA: one thread
//           per (class, column) looping over n; no atomics), so the result is bitwise the
//           same on the CPU for any thread count, and on the GPU from run to run; a class
//           that no label names gets zeros.
// Nothing is cached.
//
// class_row_sums is backward's general form, shared with projection_head (its dembed and
// dw, block by block of columns of h):
//   sums[c, :] = Σ_{n: labels[n] = c} s[n]·x[n, :]   (overwritten; skipped when sums is null)
//   total[:]   = Σ_n s[n]·x[n, :]                      (overwritten; skipped when total is null)
// with s[n] = scale[n], or 1 when scale is null; n ascending for every element, each term
// s[n]·x added onto the float32 partial sum (fused on the GPU and the CPU paths with FMA;
// with s = 1 an exact add either way).
//
// Labels (common/labels.h): the bindings refuse one outside [0, C) on the CPU. On CUDA, and
// for a direct C++ caller, forward writes NaN in that row of y; backward (class_row_sums)
// writes NaN in ALL of dweight / sums (a row that belongs to no class makes every class's
// sum suspect); total does not depend on labels and stays finite.
// Tests: tests/test_embedding.py, tests/op_cases_conditional.py (the table's sweeps).
#pragma once

#include <cstdint>
#include <vector>

#include "common/check.h"

namespace gf {

// The rows of a batch grouped by class, for the CPU kernels: the rows of class c are
// order[first[c] .. first[c + 1]) in increasing n; rows with a label outside [0, C) are
// order[first[C] .. first[C + 1] = N). A stable counting sort, O(N + C).
struct RowsByClass {
  std::vector<int64_t> order, first;
  RowsByClass(const int64_t* labels, int64_t N, int64_t C);
  bool any_bad_label() const { return first[first.size() - 2] != first.back(); }
};

void embedding_forward_cpu(const float* weight, const int64_t* labels, float* y, int64_t N,
                           int64_t D, int64_t C);
void embedding_backward_cpu(const float* dy, const int64_t* labels, float* dweight, int64_t N,
                            int64_t D, int64_t C);
void class_row_sums_cpu(const float* x, const float* scale, const int64_t* labels, float* sums,
                        float* total, int64_t N, int64_t D, int64_t C);

#ifdef GF_WITH_CUDA
void embedding_forward_cuda(const float* weight, const int64_t* labels, float* y, int64_t N,
                            int64_t D, int64_t C, Stream stream);
void embedding_backward_cuda(const float* dy, const int64_t* labels, float* dweight, int64_t N,
                             int64_t D, int64_t C, Stream stream);
void class_row_sums_cuda(const float* x, const float* scale, const int64_t* labels, float* sums,
                         float* total, int64_t N, int64_t D, int64_t C, Stream stream);
#endif

}  // namespace gf
