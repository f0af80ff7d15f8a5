// lane_sum(n, term): Σ_{i < n} term(i) in double, in an order set by n alone, for CPU
// reductions too short to split across threads (a norm, a group's rows) or run once per
// fixed-size chunk (then the chunks are combined in index order: common/parallel.h).
// Term i goes to lane i mod kSumLanes of kSumLanes double accumulators, independent of each
// other so the loop vectorises on every SIMD path; the lanes are then added pairwise. The
// result does not depend on the thread count.
#pragma once

#include <cstdint>

#include "common/cpu_isa.h"

namespace gf {

constexpr int kSumLanes = 16;

template <class Term>
GF_INLINE double lane_sum(int64_t n, const Term& term) {
  double lane[kSumLanes] = {};
  int64_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes)
    for (int l = 0; l < kSumLanes; ++l) lane[l] += term(i + l);
  for (int l = 0; i + l < n; ++l) lane[l] += term(i + l);
  return pairwise_sum(lane);
}

}  // namespace gf
