// launch_dropout_op: the CUDA launch of a dropout-family functor (dropout.h,
// leaky_relu_dropout.h), whose `seed` member is the mask's seed, for each kind of step:
//   none            op as it is;
//   a host value    op with seed = dropout_step_seed(seed, step), computed here;
//   device memory   DeviceStepSeed: every thread reads the step when the kernel RUNS and
//                   computes the mask's seed itself, so a captured CUDA graph uses each
//                   replay's step (one 64-bit hash per element: noise beside the memory
//                   traffic of these kernels).
// Included by dropout.cu and leaky_relu_dropout.cu only.
#pragma once

#include <optional>

#include "common/cuda_launch.cuh"
#include "common/step_arg.h"
#include "dropout/dropout.h"

namespace gf {

template <class Op>
struct DeviceStepSeed {
  Op op;                 // op.seed holds the base seed
  const int64_t* step;   // device memory
  __device__ void operator()(int64_t i) const {
    Op keyed = op;
    keyed.seed = dropout_step_seed(op.seed, *step);
    keyed(i);
  }
};

template <class Op>
void launch_dropout_op(int64_t n, Op op, const std::optional<StepArg>& step,
                       cudaStream_t stream) {
  if (step && step->on_device()) {
    launch_elementwise(n, DeviceStepSeed<Op>{op, step->ptr}, stream);
    return;
  }
  if (step) op.seed = dropout_step_seed(op.seed, step->value);
  launch_elementwise(n, op, stream);
}

}  // namespace gf
