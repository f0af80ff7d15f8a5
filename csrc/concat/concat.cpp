// concat (CPU): per sample, one memcpy per part (contract: concat.h); threads over samples
// when the copy is large enough to pay for the fork.
// Tests: tests/test_concat.py.
// Benchmark: python benchmarks/conditional_ops.py (beside NumPy; `pytest benchmarks/` too).
#include "concat/concat.h"

#include <algorithm>
#include <cstring>

#include "common/cpu_isa.h"
#include "common/parallel.h"

namespace gf {
namespace {

GF_INLINE void copy_floats(float* dst, const float* src, int64_t count) {
  if (count > 0) std::memcpy(dst, src, static_cast<size_t>(count) * sizeof(float));
}

struct JoinRow {  // y[n] = [a[n], b[n]]
  const float *a, *b;
  float* y;
  int64_t a_row, b_row;
  GF_INLINE void operator()(int64_t n) const {
    float* row = y + n * (a_row + b_row);
    copy_floats(row, a + n * a_row, a_row);
    copy_floats(row + a_row, b + n * b_row, b_row);
  }
};

struct SplitRow {  // [da[n], db[n]] = dy[n], a null part skipped
  const float* dy;
  float *da, *db;
  int64_t a_row, b_row;
  GF_INLINE void operator()(int64_t n) const {
    const float* row = dy + n * (a_row + b_row);
    if (da != nullptr) copy_floats(da + n * a_row, row, a_row);
    if (db != nullptr) copy_floats(db + n * b_row, row + a_row, b_row);
  }
};

int64_t row_grain(int64_t a_row, int64_t b_row) {
  return kParallelGrain / std::max<int64_t>(a_row + b_row, 1);
}

}  // namespace

void concat_forward_cpu(const float* a, const float* b, float* y, int64_t N, int64_t a_row,
                        int64_t b_row) {
  rows_cpu(N, row_grain(a_row, b_row), JoinRow{a, b, y, a_row, b_row});
}

void concat_backward_cpu(const float* dy, float* da, float* db, int64_t N, int64_t a_row,
                         int64_t b_row) {
  if (da == nullptr && db == nullptr) return;
  rows_cpu(N, row_grain(a_row, b_row), SplitRow{dy, da, db, a_row, b_row});
}

}  // namespace gf
