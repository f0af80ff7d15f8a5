// Class labels (int64 indices into a table of C rows) as the kernels that take them treat
// them: softmax_cross_entropy, embedding, projection_head.
//
// The bindings check every label on the CPU (ValueError naming the index). On CUDA a check
// would cost a device-to-host copy, so the kernels mark what an out-of-range label touches
// with NaN instead (each op's header says which outputs); the CPU kernels do the same for a
// direct C++ caller rather than read out of bounds.
#pragma once

#include <cstdint>
#include <limits>

#include "common/hd.h"

namespace gf {

GF_HD bool label_in_range(int64_t label, int64_t C) { return label >= 0 && label < C; }

// The NaN written for an out-of-range label.
GF_HD float label_nan() {
#ifdef __CUDA_ARCH__
  return __int_as_float(0x7fc00000);
#else
  return std::numeric_limits<float>::quiet_NaN();
#endif
}

}  // namespace gf
