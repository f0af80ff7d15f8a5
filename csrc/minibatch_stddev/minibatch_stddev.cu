// minibatch_stddev_*_cuda (contract in minibatch_stddev.h). Variant 1 (the only one).
//
// forward, two launches. (1) One block per (group, chunk of kChunk features): each thread
// takes features of the chunk at a stride of the block size, copies the group's rows of
// each from x to y while summing their deviations from the first row, computes mean_d and
// std_f (the shared formulas of minibatch_stddev.h), and the block's Σ std_f
// (block_reduce_sum, a fixed tree) goes to partials[group · chunks + chunk]. (2) One block
// per group adds its chunks' partials (a fixed tree again) and writes s_g into the statistic
// channel of the group's rows.
// backward, one launch over the same (group, chunk) blocks: each block first recomputes
// D_g with block_reduce_sum over the group's statistic-channel gradient (the same threads
// and tree in every block of the group, so the same bits), then mean_d, std_f and dx for
// its features. No atomics: every sum has a fixed order, so results repeat bitwise.
// Tested in tests/test_minibatch_stddev.py.
#include "minibatch_stddev/minibatch_stddev.h"

#include "common/cuda_launch.cuh"

namespace gf {

namespace {

constexpr int64_t kChunk = 4 * kThreads;  // features per block

// The rows of one group: x at row stride F, y / dy at row stride Y = F + L.
struct DeviceGroup {
  int64_t n0, m, F, Y;
  __device__ DeviceGroup(int64_t g, int64_t N, int64_t G, int64_t F_, int64_t L)
      : n0(g * G), m(min(G, N - g * G)), F(F_), Y(F_ + L) {}
};

// x0 (the first row's value), mean_d and std of feature f over the group whose first row is
// xg (contract: minibatch_stddev.h); with kCopy the values are also written to yg (row
// stride Y) as they are read.
template <bool kCopy>
__device__ __forceinline__ void feature_statistics(const float* xg, float* yg,
                                                   const DeviceGroup& grp, int64_t f, float eps,
                                                   float& x0, float& mean_d, float& std) {
  const float inv_m = 1.f / static_cast<float>(grp.m);
  x0 = xg[f];
  float sum = 0.f;
  for (int64_t r = 0; r < grp.m; ++r) {
    const float v = xg[r * grp.F + f];
    if constexpr (kCopy) yg[r * grp.Y + f] = v;
    sum += v - x0;
  }
  mean_d = group_mean_deviation(sum, inv_m);
  float sq = 0.f;
  for (int64_t r = 0; r < grp.m; ++r) {
    const float d = group_deviation(xg[r * grp.F + f], x0, mean_d);
    sq += d * d;
  }
  std = group_feature_std(sq, inv_m, eps);
}

__global__ void __launch_bounds__(kThreads)
    forward_partials_kernel(const float* x, float* y, float* partials, int64_t N, int64_t G,
                            int64_t F, int64_t L, int64_t chunks, float eps) {
  const int64_t g = blockIdx.x / chunks, f_end = min(F, (blockIdx.x % chunks + 1) * kChunk);
  const DeviceGroup grp(g, N, G, F, L);
  const float* xg = x + grp.n0 * F;
  float* yg = y + grp.n0 * grp.Y;
  float partial = 0.f;
  for (int64_t f = (blockIdx.x % chunks) * kChunk + threadIdx.x; f < f_end; f += blockDim.x) {
    float x0, mean_d, std;
    feature_statistics<true>(xg, yg, grp, f, eps, x0, mean_d, std);
    partial += std;
  }
  partial = block_reduce_sum(partial);
  if (threadIdx.x == 0) partials[blockIdx.x] = partial;
}

__global__ void __launch_bounds__(kThreads)
    fill_statistic_kernel(const float* partials, float* y, int64_t N, int64_t G, int64_t F,
                          int64_t L, int64_t chunks) {
  const DeviceGroup grp(blockIdx.x, N, G, F, L);
  float sum = 0.f;
  for (int64_t c = threadIdx.x; c < chunks; c += blockDim.x)
    sum += partials[blockIdx.x * chunks + c];
  const float sg = block_reduce_sum(sum) / static_cast<float>(F);
  float* yg = y + grp.n0 * grp.Y + F;
  for (int64_t i = threadIdx.x; i < grp.m * L; i += blockDim.x) yg[(i / L) * grp.Y + i % L] = sg;
}

__global__ void __launch_bounds__(kThreads)
    backward_kernel(const float* dy, const float* x, float* dx, int64_t N, int64_t G, int64_t F,
                    int64_t L, int64_t chunks, float eps) {
  const int64_t g = blockIdx.x / chunks, f_end = min(F, (blockIdx.x % chunks + 1) * kChunk);
  const DeviceGroup grp(g, N, G, F, L);
  const float* xg = x + grp.n0 * F;
  const float* dyg = dy + grp.n0 * grp.Y;
  float* dxg = dx + grp.n0 * F;
  float d = 0.f;
  for (int64_t i = threadIdx.x; i < grp.m * L; i += blockDim.x)
    d += dyg[(i / L) * grp.Y + F + i % L];
  const float coef = static_cast<float>(static_cast<double>(block_reduce_sum(d)) /
                                        (static_cast<double>(F) * grp.m));
  for (int64_t f = (blockIdx.x % chunks) * kChunk + threadIdx.x; f < f_end; f += blockDim.x) {
    float x0, mean_d, std;
    feature_statistics<false>(xg, nullptr, grp, f, eps, x0, mean_d, std);
    const float scale = coef / std;
    for (int64_t r = 0; r < grp.m; ++r)
      dxg[r * F + f] = minibatch_stddev_dx(dyg[r * grp.Y + f], xg[r * F + f], x0, mean_d, scale);
  }
}

int64_t feature_chunks(const MinibatchStddevShape& s) { return (s.F() + kChunk - 1) / kChunk; }

unsigned group_chunk_blocks(const MinibatchStddevShape& s) {
  const int64_t blocks = s.groups() * feature_chunks(s);
  GF_CHECK(blocks <= 0x7fffffff, "minibatch_stddev: too many (group, chunk) blocks for one grid");
  return static_cast<unsigned>(blocks);
}

}  // namespace

void minibatch_stddev_forward_cuda(const float* x, float* y, const MinibatchStddevShape& s,
                                   float eps, Stream stream) {
  if (s.N == 0 || s.F() == 0) return;
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const unsigned blocks = group_chunk_blocks(s);
  DeviceBuffer partials(blocks, st);
  forward_partials_kernel<<<blocks, kThreads, 0, st>>>(x, y, partials.get(), s.N, s.group_size,
                                                       s.F(), s.L, feature_chunks(s), eps);
  GF_CUDA_CHECK_LAUNCH();
  fill_statistic_kernel<<<static_cast<unsigned>(s.groups()), kThreads, 0, st>>>(
      partials.get(), y, s.N, s.group_size, s.F(), s.L, feature_chunks(s));
  GF_CUDA_CHECK_LAUNCH();
  partials.release();
}

void minibatch_stddev_backward_cuda(const float* dy, const float* x, float* dx,
                                    const MinibatchStddevShape& s, float eps, Stream stream) {
  if (s.N == 0 || s.F() == 0) return;
  backward_kernel<<<group_chunk_blocks(s), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      dy, x, dx, s.N, s.group_size, s.F(), s.L, feature_chunks(s), eps);
  GF_CUDA_CHECK_LAUNCH();
}

}  // namespace gf
