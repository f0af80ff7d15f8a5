// Counter-based random bits: every random number gan_fast draws on the device is a pure
// function of (seed, counter), computed where it is used, so the CPU kernels, the CUDA
// kernels and gan_fast.reference (NumPy, the same integer arithmetic) draw the same bits
// without any generator state to carry, and a captured CUDA graph can read the counter from
// device memory (common/step_arg.h).
//
//   splitmix64_mix(z)    SplitMix64's finaliser (Steele, Lea & Flood 2014): a bijection of
//                        uint64 whose output bits all depend on all input bits.
//   counter_key(seed, c) the key of counter c (a step, an epoch) of one seed:
//                        mix(seed + golden·c); distinct counters give distinct keys.
//   counter_bits(key, j) the 64 bits number j of a key: SplitMix64's output j from state key,
//                        mix(key + golden·(j + 1)).
// All arithmetic wraps modulo 2^64. dropout (dropout.h) keys its masks its own, older way.
#pragma once

#include <cstdint>

#include "common/hd.h"

namespace gf {

constexpr uint64_t kGoldenGamma = 0x9E3779B97F4A7C15ULL;  // 2^64 / golden ratio, odd

GF_HD uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

GF_HD uint64_t counter_key(uint64_t seed, int64_t counter) {
  return splitmix64_mix(seed + kGoldenGamma * static_cast<uint64_t>(counter));
}

GF_HD uint64_t counter_bits(uint64_t key, uint64_t j) {
  return splitmix64_mix(key + kGoldenGamma * (j + 1));
}

}  // namespace gf
