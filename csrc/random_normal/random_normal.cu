// random_normal_cuda: one grid-stride kernel; each thread computes the key from the step
// (read from device memory when the kernel runs if it is a device StepArg), then the shared
// formula (random_normal.h), whose operations are all __f*_rn intrinsics or __fmaf_rn, so
// nvcc contracts nothing and the result is bitwise the CPU kernel's. Tested in
// tests/test_random.py (CPU == CUDA bitwise) and tests/test_cuda_graph.py (graph replay).
#include "random_normal/random_normal.h"

#include "common/cuda_launch.cuh"

namespace gf {

namespace {

__global__ void random_normal_kernel(float* out, int64_t n, uint64_t seed, StepArg step) {
  const RandomNormalFill fill{out, counter_key(seed, step.get())};
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride)
    fill(i);
}

}  // namespace

void random_normal_cuda(float* out, int64_t n, uint64_t seed, StepArg step, Stream stream) {
  if (n <= 0) return;
  random_normal_kernel<<<elementwise_blocks(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      out, n, seed, step);
  GF_CUDA_CHECK_LAUNCH();
}

}  // namespace gf
