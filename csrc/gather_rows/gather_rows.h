// gather_rows: out[r] = src[idx[r]] along axis 0, the training batch taken from the images
// (and labels) resident on the device, by the indices batch_indices draws.
//
//   src [K, ...] float32 or int64 (C-contiguous, row = the product of the other dims)
//   idx [n] int64                      out [n, ...] (src's dtype, overwritten)
// An index outside [0, K): the bindings raise ValueError on the CPU (after checking every
// index, before writing); on CUDA checking would need a device-to-host copy, so the kernel
// writes that row as NaN (float32) or −1 (int64) instead. The copy is one element per
// thread / SIMD lane, the formula shared by both backends.
#pragma once

#include <cstdint>
#include <limits>

#include "common/check.h"
#include "common/hd.h"

namespace gf {

GF_HD bool row_in_range(int64_t index, int64_t rows) { return index >= 0 && index < rows; }

// What a row with an out-of-range index holds (CUDA only; the CPU never sees one).
template <class T>
GF_HD T missing_value();
template <>
GF_HD float missing_value<float>() {
#ifdef __CUDA_ARCH__
  return __int_as_float(0x7fc00000);
#else
  return std::numeric_limits<float>::quiet_NaN();
#endif
}
template <>
GF_HD int64_t missing_value<int64_t>() { return -1; }

template <class T>
struct GatherRows {
  const T* src;
  const int64_t* idx;
  T* out;
  int64_t rows, row_size;  // rows of src, elements per row
  GF_HD void operator()(int64_t i) const {
    const int64_t r = i / row_size, c = i - r * row_size;
    const int64_t k = idx[r];
    out[i] = row_in_range(k, rows) ? src[k * row_size + c] : missing_value<T>();
  }
};

// T = float or int64_t. n rows of row_size elements are written.
template <class T>
void gather_rows_cpu(const T* src, const int64_t* idx, T* out, int64_t rows, int64_t row_size,
                     int64_t n);

#ifdef GF_WITH_CUDA
template <class T>
void gather_rows_cuda(const T* src, const int64_t* idx, T* out, int64_t rows, int64_t row_size,
                      int64_t n, Stream stream);
#endif

}  // namespace gf
