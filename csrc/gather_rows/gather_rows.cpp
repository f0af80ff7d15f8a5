// gather_rows (CPU): the shared per-element copy (gather_rows.h), vectorised across the
// elements of the batch (a gather of whole rows). Tests: tests/test_random.py.
#include "gather_rows/gather_rows.h"

#include "common/cpu_isa.h"
#include "common/parallel.h"

namespace gf {

template <class T>
void gather_rows_cpu(const T* src, const int64_t* idx, T* out, int64_t rows, int64_t row_size,
                     int64_t n) {
  elementwise_cpu(n * row_size, kParallelGrain, GatherRows<T>{src, idx, out, rows, row_size});
}

template void gather_rows_cpu<float>(const float*, const int64_t*, float*, int64_t, int64_t,
                                     int64_t);
template void gather_rows_cpu<int64_t>(const int64_t*, const int64_t*, int64_t*, int64_t,
                                       int64_t, int64_t);

}  // namespace gf
