// StepArg: a per-step integer (a step count, a counter keying random numbers) that a kernel
// reads when it RUNS, not when it is launched.
//
// A CUDA graph freezes launch arguments at capture, so anything that changes from one
// replay to the next must live in device memory. Every op argument of this kind (adam_step's
// `step`, the dropout family's `step`, ema_update's `step`, the random number ops' `step`)
// accepts either a Python int (value) or a one-element int64 array on the call's device
// (ptr): the bindings (Checker::step_arg) read a NumPy array's value at call time, and pass a
// CuPy array's device pointer through, which the kernel dereferences on the GPU. One type,
// one accessor, for every op that needs it.
#pragma once

#include <cstdint>

#include "common/hd.h"

namespace gf {

struct StepArg {
  int64_t value = 0;             // used when ptr is null
  const int64_t* ptr = nullptr;  // device memory holding the value (CUDA arrays only)
  GF_HD int64_t get() const { return ptr ? *ptr : value; }
  bool on_device() const { return ptr != nullptr; }
};

}  // namespace gf
