// dropout_apply_cuda: one grid-stride launch of the shared dropout_apply (dropout.h), whose
// mask is a pure function of (seed, index): the CPU, this kernel and gan_fast.reference drop
// the same elements. A step-keyed call reads its step as dropout_launch.cuh says. Tested in
// tests/test_dropout.py (mask equality and parity) and tests/test_cuda_graph.py (device step).
#include "dropout/dropout.h"

#include "dropout/dropout_launch.cuh"

namespace gf {

void dropout_apply_cuda(const float* in, float* out, int64_t n, float p, uint64_t seed,
                        std::optional<StepArg> step, Stream stream) {
  launch_dropout_op(n, DropoutApply{in, out, p, dropout_scale(p), seed}, step,
                    static_cast<cudaStream_t>(stream));
}

}  // namespace gf
