// dropout: inverted dropout with a mask that is a pure function of (seed, element index).
//
//   keep[i] = dropout_uniform(seed, i) >= p;   y[i] = keep[i] ? x[i] / (1 − p) : 0
//   backward: dx[i] = keep[i] ? dy[i] / (1 − p) : 0      (the mask is recomputed, not stored)
//
// dropout_uniform hashes the 64-bit index with a seed-derived key (two rounds of the
// SplitMix64 finaliser, common/counter_rng.h) and keeps the top 24 bits, a float in [0, 1)
// that is exact in float32. gan_fast.reference computes the same integers in NumPy, so the
// CPU, the CUDA kernel and the reference draw the identical mask. p in [0, 1); y / dx
// overwritten (may alias x / dy).
//
// Step-keyed masks: with an optional step (a StepArg, common/step_arg.h) the mask's seed is
// dropout_step_seed(seed, step) = mix(seed + 8·step), computed when the kernel runs, so a
// CUDA graph replays with each step's own mask. gan_fast.model.dropout_seed(run_seed, step,
// layer, pass) = mix(mix(run_seed + golden) + 8·step + 2·layer + pass) is this with
// seed = mix(run_seed + golden) + 2·layer + pass (tests/test_dropout.py checks the equality).
#pragma once

#include <cstdint>
#include <optional>

#include "common/check.h"
#include "common/counter_rng.h"
#include "common/hd.h"
#include "common/step_arg.h"

namespace gf {

// The mask's seed of a step-keyed call (8 = room for 4 layers x 2 passes per step).
GF_HD uint64_t dropout_step_seed(uint64_t seed, int64_t step) {
  return splitmix64_mix(seed + 8 * static_cast<uint64_t>(step));
}

// The mask's seed of a call whose step (if any) is known on the host.
inline uint64_t dropout_mask_seed(uint64_t seed, std::optional<int64_t> step) {
  return step ? dropout_step_seed(seed, *step) : seed;
}

GF_HD float dropout_uniform(uint64_t seed, uint64_t index) {
  uint64_t h = splitmix64_mix(splitmix64_mix(seed) + index);
  // Through int32 (exact: 24 bits) because int32 -> float is one SIMD instruction on
  // every x86 path, while uint64 -> float is not even one on AVX2.
  return static_cast<float>(static_cast<int32_t>(h >> 40)) * (1.0f / 16777216.0f);
}

// The kept values' factor, computed once per call by every backend the same way.
GF_HD float dropout_scale(float p) { return 1.f / (1.f - p); }

GF_HD float dropout_apply(float v, uint64_t seed, uint64_t index, float p, float scale) {
  return dropout_uniform(seed, index) >= p ? v * scale : 0.f;
}

// Per-element functor, run by both backends' elementwise launchers; scale is
// dropout_scale(p).
struct DropoutApply {
  const float* in;
  float* out;
  float p, scale;
  uint64_t seed;
  GF_HD void operator()(int64_t i) const {
    out[i] = dropout_apply(in[i], seed, static_cast<uint64_t>(i), p, scale);
  }
};

// Forward (in = x, out = y) and backward (in = dy, out = dx) are the same masked scale.
// step: none (the mask's seed is seed), or the step of a step-keyed mask (CPU: its value;
// CUDA: a StepArg, whose device value is read by the kernel).
void dropout_apply_cpu(const float* in, float* out, int64_t n, float p, uint64_t seed,
                       std::optional<int64_t> step);

#ifdef GF_WITH_CUDA
void dropout_apply_cuda(const float* in, float* out, int64_t n, float p, uint64_t seed,
                        std::optional<StepArg> step, Stream stream);
#endif

}  // namespace gf
