// An activation fused into the epilogue of a GEMM-shaped op (linear_forward's `activation`):
// applied to each output value after the bias, by the same formula as the separate op
// (leaky_relu.h's leaky_relu; tanh as tanh_forward computes it on that backend), so the
// fused op is bitwise the two ops one after the other on each backend.
#pragma once

namespace gf {

enum class Activation { none, tanh, leaky_relu };

}  // namespace gf
