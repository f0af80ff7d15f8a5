// batch_indices_cuda: one thread per row of the shared formula (batch_indices.h), which
// reads a device step when the kernel runs. Tested in tests/test_random.py (CPU == CUDA) and
// tests/test_cuda_graph.py (graph replay).
#include "batch_indices/batch_indices.h"

#include "common/cuda_launch.cuh"

namespace gf {

void batch_indices_cuda(int64_t* out, int64_t n, uint64_t seed, StepArg step,
                        const BatchGeometry& g, Stream stream) {
  launch_elementwise(n, BatchIndexFill{out, seed, step, g}, static_cast<cudaStream_t>(stream));
}

}  // namespace gf
