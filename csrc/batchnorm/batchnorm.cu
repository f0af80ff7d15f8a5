// batchnorm_*_cuda: per-channel normalisation of x viewed as [N, C, L] (contract in
// batchnorm.h).
//
// One block per channel (256 threads; 1024 when a channel holds 8192 values or more) does
// everything for that channel, so no second launch and no cross-block reduction: forward
// takes the mean, then the biased variance around it (two passes: no cancellation), updates
// the running statistics, writes mean/rstd and y; backward sums dy and dy·xhat, writes
// dgamma/dbeta, then dx. Each sum is per-thread
// partials in index order combined by block_reduce_sum: a fixed order, bitwise repeatable.
// Tested in tests/test_batchnorm.py (both modes, [N, F] and [N, C, H, W]).
#include "batchnorm/batchnorm.h"

#include <cmath>

#include "common/cuda_launch.cuh"

namespace gf {

namespace {

// Offset of the i-th of the N·L values of channel c (n = i / L, l = i % L).
__device__ __forceinline__ int64_t channel_offset(int64_t i, int64_t c, int64_t C, int64_t L) {
  return ((i / L) * C + c) * L + i % L;
}

constexpr int kMaxChannelThreads = 1024;

__global__ void __launch_bounds__(kMaxChannelThreads)
    batchnorm_forward_kernel(const float* x, const float* gamma, const float* beta,
                             float* running_mean, float* running_var, float* y, float* mean_out,
                             float* rstd_out, int64_t N, int64_t C, int64_t L, bool training,
                             float momentum, float eps) {
  const int64_t c = blockIdx.x, n = N * L;
  float mean, var;
  if (training) {
    float sum = 0.f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += x[channel_offset(i, c, C, L)];
    mean = block_reduce_sum(sum) / static_cast<float>(n);
    float sq = 0.f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float dev = x[channel_offset(i, c, C, L)] - mean;
      sq += dev * dev;
    }
    var = block_reduce_sum(sq) / static_cast<float>(n);
  } else {
    mean = running_mean[c];
    var = running_var[c];
  }
  const float rstd = 1.f / sqrtf(var + eps);
  if (threadIdx.x == 0) {
    mean_out[c] = mean;
    rstd_out[c] = rstd;
    if (training) {
      const float unbiased = var * (static_cast<float>(n) / static_cast<float>(n - 1));
      running_mean[c] = (1.f - momentum) * running_mean[c] + momentum * mean;
      running_var[c] = (1.f - momentum) * running_var[c] + momentum * unbiased;
    }
  }
  const float g = gamma[c], b = beta[c];
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const int64_t o = channel_offset(i, c, C, L);
    y[o] = (x[o] - mean) * rstd * g + b;
  }
}

__global__ void __launch_bounds__(kMaxChannelThreads)
    batchnorm_backward_kernel(const float* dy, const float* x, const float* gamma,
                              const float* mean, const float* rstd, float* dx, float* dgamma,
                              float* dbeta, int64_t N, int64_t C, int64_t L, bool training) {
  const int64_t c = blockIdx.x, n = N * L;
  const float mu = mean[c], rs = rstd[c];
  float sum_dy = 0.f, sum_dy_xhat = 0.f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const int64_t o = channel_offset(i, c, C, L);
    const float g = dy[o];
    sum_dy += g;
    sum_dy_xhat += g * ((x[o] - mu) * rs);
  }
  const float db = block_reduce_sum(sum_dy);
  const float dg = block_reduce_sum(sum_dy_xhat);
  if (threadIdx.x == 0) {
    dbeta[c] = db;
    dgamma[c] = dg;
  }
  const float g = gamma[c];
  if (training) {
    const float nf = static_cast<float>(n), k = g * rs / nf;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const int64_t o = channel_offset(i, c, C, L);
      const float xhat = (x[o] - mu) * rs;
      dx[o] = k * (nf * dy[o] - db - xhat * dg);
    }
  } else {
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const int64_t o = channel_offset(i, c, C, L);
      dx[o] = dy[o] * g * rs;
    }
  }
}

// Threads per channel block. With few channels (conv layers: tens) and many values each, a
// block's loop is latency-bound, so large channels get the largest block; the choice depends
// only on the shape, so the reduction tree, and the result, stays the same run to run.
int channel_block_threads(const BatchNormShape& s) {
  GF_CHECK(s.C <= 0x7fffffff, "batchnorm: too many channels for one grid");
  return s.N * s.L >= 8 * kMaxChannelThreads ? kMaxChannelThreads : kThreads;
}

}  // namespace

void batchnorm_forward_cuda(const float* x, const float* gamma, const float* beta,
                            float* running_mean, float* running_var, float* y, float* mean,
                            float* rstd, const BatchNormShape& s, bool training, float momentum,
                            float eps, Stream stream) {
  if (s.C == 0) return;
  batchnorm_forward_kernel<<<static_cast<unsigned>(s.C), channel_block_threads(s), 0,
                             static_cast<cudaStream_t>(stream)>>>(
      x, gamma, beta, running_mean, running_var, y, mean, rstd, s.N, s.C, s.L, training,
      momentum, eps);
  GF_CUDA_CHECK_LAUNCH();
}

void batchnorm_backward_cuda(const float* dy, const float* x, const float* gamma,
                             const float* mean, const float* rstd, float* dx, float* dgamma,
                             float* dbeta, const BatchNormShape& s, bool training, Stream stream) {
  if (s.C == 0) return;
  batchnorm_backward_kernel<<<static_cast<unsigned>(s.C), channel_block_threads(s), 0,
                              static_cast<cudaStream_t>(stream)>>>(
      dy, x, gamma, mean, rstd, dx, dgamma, dbeta, s.N, s.C, s.L, training);
  GF_CUDA_CHECK_LAUNCH();
}

}  // namespace gf
