// GF_HD marks a scalar formula (or a per-element functor) that both the CPU loops and the
// CUDA kernels call, so the two backends compute the same expression (extending-jax's
// kepler.h habit). On the host it is always inlined: the CPU loops are compiled once per
// SIMD path (common/cpu_isa.h) and the formula must be compiled into each.
#pragma once
#ifdef __CUDACC__
#define GF_HD __host__ __device__ __forceinline__
#else
#define GF_HD inline __attribute__((always_inline))
#endif
