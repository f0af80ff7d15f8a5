// The non-template parts of common/cuda_launch.cuh: the strided sum and DeviceBuffer.
#include "common/cuda_launch.cuh"

namespace gf {

namespace {

__global__ void strided_sum_kernel(const float* in, float* out, int64_t count,
                                   int64_t elem_stride, int64_t out_stride) {
  const float* row = in + static_cast<int64_t>(blockIdx.x) * out_stride;
  float sum = 0.f;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) sum += row[i * elem_stride];
  sum = block_reduce_sum(sum);
  if (threadIdx.x == 0) out[blockIdx.x] = sum;
}

}  // namespace

void strided_sum_cuda(const float* in, float* out, int64_t outputs, int64_t count,
                      int64_t elem_stride, int64_t out_stride, cudaStream_t stream) {
  if (outputs <= 0) return;
  GF_CHECK(outputs <= 0x7fffffff, "strided_sum: too many outputs for one grid");
  strided_sum_kernel<<<static_cast<unsigned>(outputs), kThreads, 0, stream>>>(
      in, out, count, elem_stride, out_stride);
  GF_CUDA_CHECK_LAUNCH();
}

// The device pool hands freed memory back to the system at every synchronisation, so
// each training step would map its scratch afresh; keep it cached instead.
static void keep_pool_memory_cached() {
  static thread_local int configured_device = -1;
  int device = 0;
  GF_CUDA_CHECK(cudaGetDevice(&device));
  if (device == configured_device) return;
  cudaMemPool_t pool;
  GF_CUDA_CHECK(cudaDeviceGetMemPool(&pool, device));  // the pool cudaMallocAsync uses
  uint64_t threshold = UINT64_MAX;
  GF_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  configured_device = device;
}

DeviceBuffer::DeviceBuffer(int64_t count, cudaStream_t stream) : stream_(stream) {
  if (count > 0) keep_pool_memory_cached();
  if (count > 0)
    GF_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&ptr_),
                                  static_cast<size_t>(count) * sizeof(float), stream_));
}

void DeviceBuffer::release() {
  if (ptr_ == nullptr) return;
  float* p = ptr_;
  ptr_ = nullptr;
  GF_CUDA_CHECK(cudaFreeAsync(p, stream_));
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_ == nullptr) return;
  // Only reached while an exception is already propagating: free best-effort and clear the
  // error this may leave, so it is not blamed on a later, unrelated launch.
  (void)cudaFreeAsync(ptr_, stream_);
  (void)cudaGetLastError();
}

}  // namespace gf
