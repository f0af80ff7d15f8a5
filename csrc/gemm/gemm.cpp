#include "gemm/gemm.h"
namespace gf {
void gemm_cpu(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
              int64_t, float, float*, int64_t) { GF_CHECK(false, "gemm_cpu: not implemented yet"); }
const char* gemm_cpu_isa() { return "scalar"; }
bool gemm_cpu_force_isa(const char*) { return false; }
}  // namespace gf
