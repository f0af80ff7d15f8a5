// spectral_norm_*_cuda (contract in spectral_norm.h). Variant 1 (the only one).
//
// forward, four launches, no scratch memory (t lives in v, s_raw in u):
//   1. columns_kernel: t = Wᵀu. A block covers 32 columns, one per lane, and its 8 warps take
//      every 8th row (coalesced row reads); the 8 per-warp partial sums of a column are added
//      in warp order.
//   2. rows_kernel: s_raw = W t, one block per row, block_reduce_sum (a fixed tree).
//   3. finish_kernel, one block: ‖t‖, v = t / ‖t‖, s = s_raw / ‖t‖, ‖s‖, u = s / ‖s‖ and
//      sigma = Σ u·s, every sum in double through block_reduce_sum, with the CPU's formulas.
//   4. w_sn = w / sigma, elementwise, reading sigma from device memory (no host round trip).
// backward, two launches: dot_partials_kernel sums ⟨dw_sn, w_sn⟩ in double over a grid whose
// size depends on the element count only, one partial per block; dw_kernel's blocks each add
// the partials in the same fixed tree and write dw elementwise. No atomics anywhere, so the
// results repeat bitwise. Tested in tests/test_spectral_norm.py.
#include "spectral_norm/spectral_norm.h"

#include "common/cuda_launch.cuh"

namespace gf {

namespace {

constexpr int kColumnWarps = 8;
constexpr int kFinishThreads = 1024;
constexpr int kMaxDotBlocks = 256;

__global__ void __launch_bounds__(32 * kColumnWarps)
    columns_kernel(const float* w, const float* u, float* t, int64_t K, int64_t F) {
  __shared__ float partial[kColumnWarps][32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t f = static_cast<int64_t>(blockIdx.x) * 32 + lane;
  float acc = 0.f;
  if (f < F)
    for (int64_t k = warp; k < K; k += kColumnWarps) acc += u[k] * w[k * F + f];
  partial[warp][lane] = acc;
  __syncthreads();
  if (warp == 0 && f < F) {
    float sum = 0.f;
    for (int j = 0; j < kColumnWarps; ++j) sum += partial[j][lane];
    t[f] = sum;
  }
}

__global__ void __launch_bounds__(kThreads)
    rows_kernel(const float* w, const float* t, float* s_raw, int64_t F) {
  const float* row = w + static_cast<int64_t>(blockIdx.x) * F;
  float acc = 0.f;
  for (int64_t f = threadIdx.x; f < F; f += blockDim.x) acc += row[f] * t[f];
  acc = block_reduce_sum(acc);
  if (threadIdx.x == 0) s_raw[blockIdx.x] = acc;
}

// v holds t and u holds s_raw on entry; each thread reads an element for a sum before the
// block_reduce_sum (which synchronises) and rewrites only elements it read itself.
__global__ void __launch_bounds__(kFinishThreads)
    finish_kernel(float* v, float* u, float* sigma, int64_t K, int64_t F, float eps) {
  double sq = 0.0;
  for (int64_t f = threadIdx.x; f < F; f += blockDim.x) {
    const double t = v[f];
    sq += t * t;
  }
  const double inv_t = 1.0 / clamped_norm(block_reduce_sum(sq), eps);
  for (int64_t f = threadIdx.x; f < F; f += blockDim.x) v[f] = static_cast<float>(v[f] * inv_t);
  sq = 0.0;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
    const double s = u[k] * inv_t;
    sq += s * s;
  }
  const double inv_s = 1.0 / clamped_norm(block_reduce_sum(sq), eps);
  double dot = 0.0;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
    const double s = u[k] * inv_t;
    dot += s * inv_s * s;
    u[k] = static_cast<float>(s * inv_s);
  }
  dot = block_reduce_sum(dot);
  if (threadIdx.x == 0) *sigma = static_cast<float>(dot);
}

struct DivideBySigma {  // w_sn = w / sigma, sigma read on the device
  const float* w;
  float* w_sn;
  const float* sigma;
  __device__ void operator()(int64_t i) const { w_sn[i] = w[i] / *sigma; }
};

unsigned dot_blocks(int64_t n) {
  const int64_t blocks = (n + 4 * kThreads - 1) / (4 * kThreads);  // ≥ 4 elements a thread
  return static_cast<unsigned>(std::min<int64_t>(blocks, kMaxDotBlocks));
}

__global__ void __launch_bounds__(kThreads)
    dot_partials_kernel(const float* a, const float* b, double* partial, int64_t n) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  double acc = 0.0;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step)
    acc += static_cast<double>(a[i]) * b[i];
  acc = block_reduce_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void __launch_bounds__(kThreads)
    dw_kernel(const float* dw_sn, const double* partial, unsigned partials, const float* u,
              const float* v, const float* sigma, float* dw, int64_t n, int64_t F) {
  double acc = 0.0;
  for (unsigned p = threadIdx.x; p < partials; p += blockDim.x) acc += partial[p];
  const float inner = static_cast<float>(block_reduce_sum(acc));
  const float sig = *sigma;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step)
    dw[i] = spectral_norm_dw(dw_sn[i], inner * u[i / F], v[i % F], sig);
}

}  // namespace

void spectral_norm_forward_cuda(const float* w, float* u, float* w_sn, float* v, float* sigma,
                                int64_t K, int64_t F, float eps, Stream stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  GF_CHECK(K <= 0x7fffffff && (F + 31) / 32 <= 0x7fffffff,
           "spectral_norm_forward: w is too large for one grid");
  if (F > 0) {
    const unsigned column_blocks = static_cast<unsigned>((F + 31) / 32);
    columns_kernel<<<column_blocks, 32 * kColumnWarps, 0, st>>>(w, u, v, K, F);
    GF_CUDA_CHECK_LAUNCH();
  }
  if (K > 0) {
    rows_kernel<<<static_cast<unsigned>(K), kThreads, 0, st>>>(w, v, u, F);
    GF_CUDA_CHECK_LAUNCH();
  }
  finish_kernel<<<1, kFinishThreads, 0, st>>>(v, u, sigma, K, F, eps);
  GF_CUDA_CHECK_LAUNCH();
  launch_elementwise(K * F, DivideBySigma{w, w_sn, sigma}, st);
}

void spectral_norm_backward_cuda(const float* dw_sn, const float* w_sn, const float* u,
                                 const float* v, const float* sigma, float* dw, int64_t K,
                                 int64_t F, Stream stream) {
  const int64_t n = K * F;
  if (n == 0) return;
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const unsigned blocks = dot_blocks(n);
  // DeviceBuffer holds floats: 2 per double partial (cudaMallocAsync aligns to 256 bytes).
  DeviceBuffer partial(2 * static_cast<int64_t>(blocks), st);
  double* partials = reinterpret_cast<double*>(partial.get());
  dot_partials_kernel<<<blocks, kThreads, 0, st>>>(dw_sn, w_sn, partials, n);
  GF_CUDA_CHECK_LAUNCH();
  dw_kernel<<<elementwise_blocks(n), kThreads, 0, st>>>(dw_sn, partials, blocks, u, v, sigma, dw,
                                                        n, F);
  GF_CUDA_CHECK_LAUNCH();
  partial.release();
}

}  // namespace gf
