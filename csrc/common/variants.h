// Kernel variants that a test can force. Where an op picks one of several kernels by the
// shape of the call, each one can be forced process-wide, so that the tests run every
// variant on the same inputs against the reference (tests/test_kernel_variants.py).
// Python: gan_fast._C._kernel_variants(), _C._set_kernel_variant(family, variant) and
// _C._kernel_variant(family); private, since the default is what a user wants.
//
// The families and their variants, numbered as in the opening comment of the file that
// implements them (variant 1 the simplest; the default, "auto", takes for each call the
// best variant that applies to its shape):
//   gemm       gemm/gemm.cpp      1 full_tiles   2 narrow_tail  3 column_as_row
//   linear     linear/linear.cpp  1 gemm         2 matvec
//   conv2d     conv2d/conv2d.cpp  1 unfold_gemm  2 shallow
//   gemm_cuda  gemm/gemm.cu       1 one_pass     2 split_k      3 small_tiles
// A forced variant runs every call it can compute (linear's matvec computes only M = 1);
// the other calls keep their usual kernel. The CPU's SIMD paths (avx512, avx2, scalar) are
// a separate switch: common/cpu_isa.h.
#pragma once

#include <atomic>
#include <cstring>
#include <iterator>

namespace gf {

enum class KernelFamily { gemm, linear, conv2d, gemm_cuda };

struct KernelFamilyNames {
  const char* family;
  const char* variants[3];  // variant v is variants[v - 1]; null past the last
};

// Indexed by KernelFamily.
inline constexpr KernelFamilyNames kKernelFamilies[] = {
    {"gemm", {"full_tiles", "narrow_tail", "column_as_row"}},
    {"linear", {"gemm", "matvec"}},
    {"conv2d", {"unfold_gemm", "shallow"}},
    {"gemm_cuda", {"one_pass", "split_k", "small_tiles"}},
};
inline constexpr int kNumKernelFamilies = static_cast<int>(std::size(kKernelFamilies));

// The forced variant of each family, 0 for auto. An inline variable: the CPU library and
// the CUDA library (gemm_cuda) share this one copy.
inline std::atomic<int> g_forced_variant[kNumKernelFamilies];

inline int forced_variant(KernelFamily f) {
  return g_forced_variant[static_cast<int>(f)].load(std::memory_order_relaxed);
}

// The index of a family's name, or -1.
inline int kernel_family(const char* name) {
  for (int f = 0; f < kNumKernelFamilies; ++f)
    if (std::strcmp(kKernelFamilies[f].family, name) == 0) return f;
  return -1;
}

// The number of a family's variant ("auto" is 0), or -1 for an unknown name.
inline int kernel_variant(int family, const char* name) {
  if (std::strcmp(name, "auto") == 0) return 0;
  const auto& names = kKernelFamilies[family].variants;
  for (int v = 0; v < static_cast<int>(std::size(names)) && names[v] != nullptr; ++v)
    if (std::strcmp(names[v], name) == 0) return v + 1;
  return -1;
}

inline void force_variant(int family, int variant) {
  g_forced_variant[family].store(variant, std::memory_order_relaxed);
}

}  // namespace gf
