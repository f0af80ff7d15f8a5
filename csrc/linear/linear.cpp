#include "linear/linear.h"
namespace gf {
void linear_forward_cpu(const float*, const float*, const float*, float*, int64_t, int64_t, int64_t) { GF_CHECK(false, "not implemented yet"); }
void linear_backward_cpu(const float*, const float*, const float*, float*, float*, float*, int64_t, int64_t, int64_t) { GF_CHECK(false, "not implemented yet"); }
}  // namespace gf
