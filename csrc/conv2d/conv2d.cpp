#include "conv2d/conv2d.h"
namespace gf {
void conv2d_forward_cpu(const float*, const float*, const float*, float*, const Conv2dShape&) { GF_CHECK(false, "not implemented yet"); }
void conv2d_backward_cpu(const float*, const float*, const float*, float*, float*, float*, const Conv2dShape&) { GF_CHECK(false, "not implemented yet"); }
}  // namespace gf
