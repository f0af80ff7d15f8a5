// ema_update_cuda: one grid-stride launch; each thread reads the step from wherever the
// StepArg points (device memory for a CuPy step) when it runs, forms ema_weights once, and
// applies the shared per-element update (ema.h) to its elements. Tested in tests/test_ema.py.
#include "ema/ema.h"

#include "common/cuda_launch.cuh"

namespace gf {

namespace {

__global__ void ema_update_kernel(float* average, const float* value, int64_t n, double decay,
                                  StepArg step) {
  const EmaWeights w = ema_weights(decay, step.get());
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    ema_update_element(average[i], value[i], w);
}

}  // namespace

void ema_update_cuda(float* average, const float* value, int64_t n, double decay, StepArg step,
                     Stream stream) {
  if (n <= 0) return;
  ema_update_kernel<<<elementwise_blocks(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      average, value, n, decay, step);
  GF_CUDA_CHECK_LAUNCH();
}

}  // namespace gf
