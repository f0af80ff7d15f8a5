// concat: two arrays joined along axis 1, and the gradient that splits them again (the
// conditional GAN's [z, label] input of G and [image, label planes] input of D).
//
// The bindings accept a [N, A, ...], b [N, B, ...] of rank 2 to 4 with equal N and trailing
// dims T = ∏ shape[2:]; the kernels see each sample as one contiguous row of floats:
//   a [N, a_row]   b [N, b_row]   y [N, a_row + b_row]     (a_row = A·T, b_row = B·T)
// forward   y[n, :a_row] = a[n];  y[n, a_row:] = b[n]                      (overwritten)
// backward  da[n] = dy[n, :a_row];  db[n] = dy[n, a_row:]     (overwritten; each skipped
//           when null)
// Pure copies: bitwise exact on both backends. Nothing is cached.
// Tests: tests/test_concat.py, tests/op_cases_conditional.py (the table's sweeps).
#pragma once

#include <cstdint>

#include "common/check.h"

namespace gf {

void concat_forward_cpu(const float* a, const float* b, float* y, int64_t N, int64_t a_row,
                        int64_t b_row);
void concat_backward_cpu(const float* dy, float* da, float* db, int64_t N, int64_t a_row,
                         int64_t b_row);

#ifdef GF_WITH_CUDA
void concat_forward_cuda(const float* a, const float* b, float* y, int64_t N, int64_t a_row,
                         int64_t b_row, Stream stream);
void concat_backward_cuda(const float* dy, float* da, float* db, int64_t N, int64_t a_row,
                          int64_t b_row, Stream stream);
#endif

}  // namespace gf
