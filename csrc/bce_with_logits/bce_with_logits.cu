// bce_with_logits_cuda: mean BCE on logits and its gradient in one launch of one block
// (contract in bce_with_logits.h). n is a batch of logits, so one block suffices: each
// thread writes its dz and sums its terms in index order, both in double through the shared
// formulas (as the CPU does), then block_reduce_sum combines the partial sums in a fixed
// tree; thread 0 writes the loss to device memory. Nothing is read back. Tested in
// tests/test_bce_with_logits.py.
#include "bce_with_logits/bce_with_logits.h"

#include "common/cuda_launch.cuh"

namespace gf {

namespace {

constexpr int kBceThreads = 1024;

__global__ void __launch_bounds__(kBceThreads)
    bce_with_logits_kernel(const float* z, const float* t, float* loss, float* dz, int64_t n) {
  const double inv_n = 1.0 / static_cast<double>(n);
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float zi = z[i], ti = t[i];  // read before dz[i] is written: dz may alias z
    sum += bce_with_logits_term(zi, ti);
    dz[i] = bce_with_logits_grad(zi, ti, inv_n);
  }
  sum = block_reduce_sum(sum);
  if (threadIdx.x == 0) *loss = static_cast<float>(sum * inv_n);
}

}  // namespace

void bce_with_logits_cuda(const float* z, const float* t, float* loss, float* dz, int64_t n,
                          Stream stream) {
  if (n <= 0) return;  // the bindings refuse an empty batch: its mean is undefined
  bce_with_logits_kernel<<<1, kBceThreads, 0, static_cast<cudaStream_t>(stream)>>>(z, t, loss,
                                                                                    dz, n);
  GF_CUDA_CHECK_LAUNCH();
}

}  // namespace gf
