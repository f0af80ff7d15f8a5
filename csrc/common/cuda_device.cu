#include "common/check.h"
#include "common/cuda_device.h"

namespace gf {

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error so later calls are clean
    return 0;
  }
  return n;
}

int cuda_current_device() {
  int d = 0;
  GF_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

int cuda_pointer_device(const void* ptr) {
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, ptr) != cudaSuccess) {
    cudaGetLastError();
    return -1;
  }
  return attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged ? attr.device
                                                                                    : -1;
}

}  // namespace gf
