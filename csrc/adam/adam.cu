// adam_step_cuda: one grid-stride launch over the flat parameter buffer, each element
// updated by the shared adam_update (adam.h), the CPU loop's formula. Tested in
// tests/test_adam.py (params and both moments).
#include "adam/adam.h"

#include "common/cuda_launch.cuh"

namespace gf {

void adam_step_cuda(float* p, const float* g, float* m, float* v, int64_t n, const AdamParams& a,
                    Stream stream) {
  launch_elementwise(n, AdamUpdate{p, m, v, g, a}, static_cast<cudaStream_t>(stream));
}

}  // namespace gf
