// Queries about the CUDA device that the bindings need without including CUDA headers.
#pragma once

#ifdef GF_WITH_CUDA
namespace gf {

// Number of usable devices; 0 (never an exception) when there is no driver or no GPU.
int cuda_device_count();
int cuda_current_device();
// Device that owns a pointer, or -1 for host memory.
int cuda_pointer_device(const void* ptr);

}  // namespace gf
#endif
