// random_normal: fills n contiguous float32 values with N(0, 1) samples, element i a pure
// function of (seed, step, i) (counter-based, common/counter_rng.h), BITWISE the same on the
// CPU and on CUDA, and equal to gan_fast.reference's float32 emulation of this formula.
//
//   key  = counter_key(seed, step)                   (step: a StepArg, common/step_arg.h)
//   h    = counter_bits(key, i >> 1)                 one 64-bit hash per pair of elements
//   u1   = (2^24 − (h >> 40)) / 2^24                 in (0, 1], so log(u1) is finite
//   u2   = ((h >> 16) & (2^24 − 1)) / 2^24           in [0, 1)
//   out[i] = sqrt(−2·log u1) · (cos 2π·u2 if i is even, sin 2π·u2 if i is odd)   (Box–Muller)
// |out| ≤ sqrt(48·ln 2) = 5.77: the 24-bit u1 truncates the tails beyond 5.77σ (probability
// 8e-9). out is overwritten; nothing is read.
//
// Bitwise equality: libm's and CUDA's logf/sinf/cosf differ in the last bit, so the formula
// uses only correctly rounded IEEE operations (+ − × ÷ sqrt and fused multiply-add), each
// written out (fma_rn, mul_rn, ...; on the device the __f*_rn intrinsics, which nvcc never
// contracts) and never a multiply feeding an add outside an explicit fma, so the host
// compiler has nothing to contract either; random_normal.cpp is compiled with
// -ffp-contract=off as well (CMakeLists.txt).
//   log u1: u1 = m·2^e with m in [sqrt(1/2), sqrt(2)); log m = 2·atanh(s), s = (m − 1)/(m + 1)
//           ∈ [−0.172, 0.172], by its series to s⁹ (truncation < 2e-9 relative); e·ln 2 with
//           ln 2 split in two (musl's logf trick; e·ln2_hi is exact).
//   2π·u2:  exact quadrant reduction on the integer: u2 = q/4 + t, q = round(4·u2), |t| ≤ 1/8;
//           sin 2πt and cos 2πt by their Taylor series to t⁹ and t¹⁰ (truncation < 3e-9).
// Accuracy against exact Box–Muller of the same u1, u2: a few float32 ulp (tests/parity.py).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/check.h"
#include "common/counter_rng.h"
#include "common/hd.h"
#include "common/step_arg.h"

namespace gf {

// Correctly rounded float32 operations, one definition for both compilers.
#ifdef __CUDA_ARCH__
GF_HD float add_rn(float a, float b) { return __fadd_rn(a, b); }
GF_HD float sub_rn(float a, float b) { return __fsub_rn(a, b); }
GF_HD float mul_rn(float a, float b) { return __fmul_rn(a, b); }
GF_HD float div_rn(float a, float b) { return __fdiv_rn(a, b); }
GF_HD float sqrt_rn(float a) { return __fsqrt_rn(a); }
GF_HD float fma_rn(float a, float b, float c) { return __fmaf_rn(a, b, c); }
GF_HD uint32_t float_bits(float a) { return __float_as_uint(a); }
GF_HD float bits_float(uint32_t b) { return __uint_as_float(b); }
#else
GF_HD float add_rn(float a, float b) { return a + b; }
GF_HD float sub_rn(float a, float b) { return a - b; }
GF_HD float mul_rn(float a, float b) { return a * b; }
GF_HD float div_rn(float a, float b) { return a / b; }
GF_HD float sqrt_rn(float a) { return std::sqrt(a); }
GF_HD float fma_rn(float a, float b, float c) { return std::fma(a, b, c); }
GF_HD uint32_t float_bits(float a) {
  uint32_t b;
  std::memcpy(&b, &a, sizeof b);
  return b;
}
GF_HD float bits_float(uint32_t b) {
  float a;
  std::memcpy(&a, &b, sizeof a);
  return a;
}
#endif

// log(k / 2^24) for an integer k in [1, 2^24].
GF_HD float log_of_24bit(int32_t k) {
  const uint32_t bits = float_bits(static_cast<float>(k));  // exact: k < 2^25
  int32_t e = static_cast<int32_t>(bits >> 23) - 127 - 24;
  float m = bits_float((bits & 0x007FFFFFu) | 0x3F800000u);  // in [1, 2)
  const bool high = m > 0x1.6a09e6p+0f;                        // > sqrt(2)
  m = high ? mul_rn(m, 0.5f) : m;                              // exact
  e = high ? e + 1 : e;
  const float f = sub_rn(m, 1.f);                              // exact (Sterbenz)
  const float s = div_rn(f, add_rn(f, 2.f));
  const float w = mul_rn(s, s);
  float p = fma_rn(w, 0x1.c71c72p-3f, 0x1.24924ap-2f);  // 2/9, 2/7
  p = fma_rn(w, p, 0x1.99999ap-2f);                      // 2/5
  p = fma_rn(w, p, 0x1.555556p-1f);                      // 2/3
  const float log_m = fma_rn(s, mul_rn(w, p), add_rn(s, s));  // 2s + 2s³/3 + ...
  const float ef = static_cast<float>(e);
  return fma_rn(ef, 0x1.62ep-1f, fma_rn(ef, 0x1.0bfbe8p-15f, log_m));  // ln2 = hi + lo
}

// sin(2π·k/2^24) if odd, else cos(2π·k/2^24), for an integer k in [0, 2^24).
GF_HD float sincos_of_24bit(int32_t k, bool odd) {
  const int32_t q = (k + (1 << 21)) >> 22;                          // quadrant, 0..4
  const float t = mul_rn(static_cast<float>(k - (q << 22)), 0x1p-24f);  // exact, |t| ≤ 1/8
  const float t2 = mul_rn(t, t);
  float ps = fma_rn(t2, 0x1.507834p+5f, -0x1.32d2ccp+6f);  // (2π)^9/9!, −(2π)^7/7!
  ps = fma_rn(t2, ps, 0x1.466bc6p+6f);                      // (2π)^5/5!
  ps = fma_rn(t2, ps, -0x1.4abbcep+5f);                     // −(2π)^3/3!
  ps = fma_rn(t2, ps, 0x1.921fb6p+2f);                      // 2π
  const float sin_t = mul_rn(t, ps);
  float pc = fma_rn(t2, -0x1.a6d1f2p+4f, 0x1.e1f506p+5f);  // −(2π)^10/10!, (2π)^8/8!
  pc = fma_rn(t2, pc, -0x1.55d3c8p+6f);                     // −(2π)^6/6!
  pc = fma_rn(t2, pc, 0x1.03c1f0p+6f);                      // (2π)^4/4!
  pc = fma_rn(t2, pc, -0x1.3bd3ccp+4f);                     // −(2π)^2/2!
  const float cos_t = fma_rn(t2, pc, 1.f);
  // cos(qπ/2 + x) is cos x, −sin x, −cos x, sin x for q = 0..3; sin(θ) = cos(θ − π/2).
  const int32_t qq = (q - (odd ? 1 : 0)) & 3;
  const float v = (qq & 1) ? sin_t : cos_t;
  return (qq == 1 || qq == 2) ? -v : v;
}

// Element i of the N(0, 1) stream with this key.
GF_HD float random_normal_at(uint64_t key, uint64_t i) {
  const uint64_t h = counter_bits(key, i >> 1);
  const int32_t k1 = (1 << 24) - static_cast<int32_t>(h >> 40);
  const int32_t k2 = static_cast<int32_t>((h >> 16) & 0xFFFFFFu);
  const float radius = sqrt_rn(mul_rn(-2.f, log_of_24bit(k1)));
  return mul_rn(radius, sincos_of_24bit(k2, (i & 1) != 0));
}

// Per-element functor, run by the CPU loop and the CUDA kernel, each with the key computed
// once (the CUDA kernel: per thread, from the step read when it runs).
struct RandomNormalFill {
  float* out;
  uint64_t key;
  GF_HD void operator()(int64_t i) const {
    out[i] = random_normal_at(key, static_cast<uint64_t>(i));
  }
};

void random_normal_cpu(float* out, int64_t n, uint64_t seed, int64_t step);

#ifdef GF_WITH_CUDA
void random_normal_cuda(float* out, int64_t n, uint64_t seed, StepArg step, Stream stream);
#endif

}  // namespace gf
