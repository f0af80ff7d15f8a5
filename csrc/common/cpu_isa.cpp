// The process-wide CPU path switch (contract: cpu_isa.h).
#include "common/cpu_isa.h"

#include <atomic>
#include <cstring>

namespace gf {
namespace {

bool supported(CpuIsa isa) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  switch (isa) {
    case CpuIsa::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
    case CpuIsa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    default: return true;
  }
#else
  return isa == CpuIsa::scalar;
#endif
}

constexpr CpuIsa kBestFirst[] = {CpuIsa::avx512, CpuIsa::avx2, CpuIsa::scalar};

CpuIsa best_supported() {
  for (CpuIsa isa : kBestFirst)
    if (supported(isa)) return isa;
  return CpuIsa::scalar;
}

// -1 until first use; then the CpuIsa in use. The CPU kernels' only other shared state is the
// forced kernel variants (common/variants.h).
std::atomic<int> g_isa{-1};

}  // namespace

CpuIsa active_cpu_isa() {
  int isa = g_isa.load(std::memory_order_relaxed);
  if (isa < 0) {
    int expected = -1;
    const int best = static_cast<int>(best_supported());
    // A concurrent force_cpu_isa wins over this lazy detection.
    isa = g_isa.compare_exchange_strong(expected, best) ? best : expected;
  }
  return static_cast<CpuIsa>(isa);
}

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::avx512: return "avx512";
    case CpuIsa::avx2: return "avx2";
    default: return "scalar";
  }
}

bool force_cpu_isa(const char* name) {
  if (std::strcmp(name, "auto") == 0) {
    g_isa.store(static_cast<int>(best_supported()));
    return true;
  }
  for (CpuIsa isa : kBestFirst)
    if (std::strcmp(name, cpu_isa_name(isa)) == 0) {
      if (!supported(isa)) return false;
      g_isa.store(static_cast<int>(isa));
      return true;
    }
  return false;
}

}  // namespace gf
