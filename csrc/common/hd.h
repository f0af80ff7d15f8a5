// GF_HD marks a scalar formula that both the CPU loops and the CUDA kernels call,
// so the two backends compute the same expression (extending-jax's kepler.h habit).
#pragma once
#ifdef __CUDACC__
#define GF_HD __host__ __device__ __forceinline__
#else
#define GF_HD inline
#endif
