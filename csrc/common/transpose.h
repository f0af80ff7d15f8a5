// An 8 × 8 float transpose in registers (GCC vector extensions: three rounds of
// two-vector shuffles), inlined into each SIMD path's copy of its caller. Used where a
// kernel has to turn rows into columns: gemm's panel packing, conv2d's channels-last copy.
#pragma once

#include <cstdint>
#include <cstring>

#include "common/cpu_isa.h"

namespace gf {

// dst[j·dst_stride + i] = src[i·src_stride + j] for i, j < 8.
GF_INLINE void transpose_8x8(const float* src, int64_t src_stride, float* dst, int64_t dst_stride) {
  typedef float F8 __attribute__((vector_size(32)));
  typedef int32_t I8 __attribute__((vector_size(32)));
  F8 v[8], t[8];
  for (int i = 0; i < 8; ++i) std::memcpy(&v[i], src + i * src_stride, sizeof(F8));
  for (int i = 0; i < 8; i += 2) {  // pairs of rows interleaved
    t[i] = __builtin_shuffle(v[i], v[i + 1], I8{0, 8, 1, 9, 4, 12, 5, 13});
    t[i + 1] = __builtin_shuffle(v[i], v[i + 1], I8{2, 10, 3, 11, 6, 14, 7, 15});
  }
  for (int i = 0; i < 8; i += 4)  // then pairs of pairs
    for (int j = 0; j < 2; ++j) {
      v[i + 2 * j] = __builtin_shuffle(t[i + j], t[i + j + 2], I8{0, 1, 8, 9, 4, 5, 12, 13});
      v[i + 2 * j + 1] = __builtin_shuffle(t[i + j], t[i + j + 2], I8{2, 3, 10, 11, 6, 7, 14, 15});
    }
  for (int j = 0; j < 4; ++j) {  // then the two halves: v[j] holds columns j and j + 4
    const F8 lo = __builtin_shuffle(v[j], v[j + 4], I8{0, 1, 2, 3, 8, 9, 10, 11});
    const F8 hi = __builtin_shuffle(v[j], v[j + 4], I8{4, 5, 6, 7, 12, 13, 14, 15});
    std::memcpy(dst + j * dst_stride, &lo, sizeof(F8));
    std::memcpy(dst + (j + 4) * dst_stride, &hi, sizeof(F8));
  }
}

}  // namespace gf
