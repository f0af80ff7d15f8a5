// CPU threading helpers. OpenMP with static schedules: the split of work across threads
// depends only on the sizes, and no result depends on the split (every reduction runs
// over fixed-size chunks combined in a fixed order), so CPU results are bitwise
// identical for any thread count.
#pragma once

#include <cstdint>

namespace gf {

// Below this many elements an elementwise loop is cheaper on one thread than the fork.
constexpr int64_t kParallelGrain = 1 << 15;

}  // namespace gf
