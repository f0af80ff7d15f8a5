// tanh_*_cuda: one grid-stride launch each; forward is CUDA's tanhf (the CPU uses Cephes' tanhf:
// both within an ulp or two), backward the shared tanh_grad (tanh.h). Tested in
// tests/test_activations.py.
#include "tanh/tanh.h"

#include "common/cuda_launch.cuh"

namespace gf {

namespace {

struct TanhForward {
  const float* x;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = tanhf(x[i]); }
};

}  // namespace

void tanh_forward_cuda(const float* x, float* y, int64_t n, Stream stream) {
  launch_elementwise(n, TanhForward{x, y}, static_cast<cudaStream_t>(stream));
}

void tanh_backward_cuda(const float* dy, const float* y, float* dx, int64_t n, Stream stream) {
  launch_elementwise(n, TanhBackward{dy, y, dx}, static_cast<cudaStream_t>(stream));
}

}  // namespace gf
