// dropout_apply_cuda: one grid-stride launch of the shared dropout_apply (dropout.h), whose
// mask is a pure function of (seed, index): the CPU, this kernel and gan_fast.reference drop
// the same elements. Tested in tests/test_dropout.py (mask equality and parity).
#include "dropout/dropout.h"

#include "common/cuda_launch.cuh"

namespace gf {

void dropout_apply_cuda(const float* in, float* out, int64_t n, float p, uint64_t seed,
                        Stream stream) {
  launch_elementwise(n, DropoutApply{in, out, p, dropout_scale(p), seed},
                     static_cast<cudaStream_t>(stream));
}

}  // namespace gf
