// adam_step_cuda: one grid-stride launch over the flat parameter buffer. Thread 0 of each
// block computes the per-step constants from the step (adam_params, adam.h; the step read
// from device memory when it is a device StepArg) into shared memory; then every element is
// updated by the shared adam_update, the CPU loop's formula. Tested in tests/test_adam.py
// (params and both moments) and tests/test_cuda_graph.py (device step, graph replay).
#include "adam/adam.h"

#include "common/cuda_launch.cuh"

namespace gf {

namespace {

__global__ void adam_kernel(float* p, const float* g, float* m, float* v, int64_t n,
                            AdamHyper h, StepArg step) {
  __shared__ AdamParams a;
  if (threadIdx.x == 0) a = adam_params(h, step.get());
  __syncthreads();
  const AdamUpdate update{p, m, v, g, a};
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride)
    update(i);
}

}  // namespace

void adam_step_cuda(float* p, const float* g, float* m, float* v, int64_t n, const AdamHyper& h,
                    StepArg step, Stream stream) {
  if (n <= 0) return;
  adam_kernel<<<elementwise_blocks(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      p, g, m, v, n, h, step);
  GF_CUDA_CHECK_LAUNCH();
}

}  // namespace gf
