// Launch helpers shared by the CUDA kernels (included by .cu files only).
//
//   launch_elementwise(n, op, stream)  one grid-stride loop calling op(i) for i in [0, n)
//   block_reduce_sum(v)                sum over a block in a fixed tree order (deterministic)
//   strided_sum_cuda(...)              out[j] = Σ_i in[j·out_stride + i·elem_stride]
//   DeviceBuffer                       stream-ordered scratch memory (cudaMallocAsync)
//
// Every op's parity test exercises these through the kernels that use them.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "common/check.h"

namespace gf {

constexpr int kThreads = 256;  // block size of the elementwise and reduction kernels
// Cap on the elementwise grid: enough blocks to fill any current GPU many times over; the
// grid-stride loop covers the rest.
constexpr int64_t kMaxBlocks = 1 << 16;

inline unsigned elementwise_blocks(int64_t n) {
  return static_cast<unsigned>(std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks));
}

template <class Op>
__global__ void elementwise_kernel(int64_t n, Op op) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step)
    op(i);
}

// Op is a small struct of pointers and scalars with `__device__ void operator()(int64_t i)`.
template <class Op>
void launch_elementwise(int64_t n, const Op& op, cudaStream_t stream) {
  if (n <= 0) return;
  elementwise_kernel<<<elementwise_blocks(n), kThreads, 0, stream>>>(n, op);
  GF_CUDA_CHECK_LAUNCH();
}

// Sum of v over the block, returned to every thread. blockDim.x must be a multiple of 32
// (at most 1024), and every thread of the block must call it. Warp shuffles, then the
// warp sums by one warp: the same tree for the same block size, so bitwise repeatable.
template <class T>
__device__ T block_reduce_sum(T v) {
  __shared__ T warp_sums[32];
  __shared__ T total;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  __syncthreads();  // a previous call may still be reading warp_sums / total
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < static_cast<int>(blockDim.x / 32) ? warp_sums[lane] : T(0);
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    if (lane == 0) total = v;
  }
  __syncthreads();
  return total;
}

// out[j] = Σ_{i < count} in[j·out_stride + i·elem_stride] for j < outputs: one block per
// output, each thread summing its share in index order, then block_reduce_sum. Fixed order,
// no atomics. count == 0 writes zeros. (linear's db: column sums; conv2d's db: row sums.)
void strided_sum_cuda(const float* in, float* out, int64_t outputs, int64_t count,
                      int64_t elem_stride, int64_t out_stride, cudaStream_t stream);

// Scratch floats allocated and freed in stream order from the device's default memory pool,
// so nothing synchronises and the pool reuses the memory call after call.
class DeviceBuffer {
 public:
  DeviceBuffer(int64_t count, cudaStream_t stream);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  float* get() const { return ptr_; }
  // Frees the buffer (checked). Call it on the normal path; the destructor only frees what an
  // exception left behind.
  void release();

 private:
  float* ptr_ = nullptr;
  cudaStream_t stream_;
};

}  // namespace gf
