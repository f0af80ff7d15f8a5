// gather_rows_cuda: one grid-stride launch of the shared per-element copy (gather_rows.h);
// rows with an index outside [0, K) become NaN / −1. Tested in tests/test_random.py and
// tests/test_cuda_graph.py.
#include "gather_rows/gather_rows.h"

#include "common/cuda_launch.cuh"

namespace gf {

template <class T>
void gather_rows_cuda(const T* src, const int64_t* idx, T* out, int64_t rows, int64_t row_size,
                      int64_t n, Stream stream) {
  launch_elementwise(n * row_size, GatherRows<T>{src, idx, out, rows, row_size},
                     static_cast<cudaStream_t>(stream));
}

template void gather_rows_cuda<float>(const float*, const int64_t*, float*, int64_t, int64_t,
                                      int64_t, Stream);
template void gather_rows_cuda<int64_t>(const int64_t*, const int64_t*, int64_t*, int64_t,
                                        int64_t, int64_t, Stream);

}  // namespace gf
