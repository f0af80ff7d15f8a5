// tanh (CPU): forward is a branch-free float32 tanh that vectorises on every SIMD path
// (common/cpu_isa.h); std::tanh is a scalar libm call, ~45x slower than this on AVX-512.
// Cephes' tanhf, within 2 ulp of the exact value (tests/test_activations.py holds it to the
// same 1e-6 as before):
//   |x| < 0.625:  x + x³·P(x²)                           (odd minimax polynomial)
//   otherwise:    sign(x)·(1 − 2/(exp(2|x|) + 1))
// exp is Cephes' expf: 2|x| = n·ln2 + r (ln2 split in two for an exact reduction),
// e^r by a degree-6 polynomial, 2^n put straight into the exponent bits. |x| is clamped to 9
// first: tanh(9) rounds to 1.0f already, and 2^n then stays far from overflow. NaN passes
// through. Backward is the shared tanh_grad (tanh.h).
#include "tanh/tanh.h"

#include <cstring>

#include "common/cpu_isa.h"
#include "common/parallel.h"

namespace gf {
namespace {

GF_INLINE float exp_reduced(float x) {  // e^x for 0 <= x <= 18
  const int n = static_cast<int>(x * 1.44269504088896341f + 0.5f);  // round(x/ln2); x >= 0
  const float fn = static_cast<float>(n);
  float r = x - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * (r * r) + r + 1.f;
  const uint32_t bits = static_cast<uint32_t>(n + 127) << 23;  // 0 <= n <= 26
  float two_n;
  std::memcpy(&two_n, &bits, sizeof two_n);
  return er * two_n;
}

GF_INLINE float tanh_fast(float x) {
  // Written so that NaN clamps to 9 too (std::min would pass NaN on into exp_reduced,
  // whose float-to-int conversion is then undefined); the NaN itself is returned below.
  const float abs_x = x < 0.f ? -x : x;
  const float ax = abs_x < 9.f ? abs_x : 9.f;
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = p * z * x + x;
  const float large_abs = 1.f - 2.f / (exp_reduced(2.f * ax) + 1.f);
  const float large = x < 0.f ? -large_abs : large_abs;
  const float y = ax < 0.625f ? small : large;
  return x != x ? x : y;
}

struct TanhForward {
  const float* x;
  float* y;
  GF_INLINE void operator()(int64_t i) const { y[i] = tanh_fast(x[i]); }
};

}  // namespace

void tanh_forward_cpu(const float* x, float* y, int64_t n) {
  elementwise_cpu(n, kParallelGrain / 8, TanhForward{x, y});
}

void tanh_backward_cpu(const float* dy, const float* y, float* dx, int64_t n) {
  elementwise_cpu(n, kParallelGrain, TanhBackward{dy, y, dx});
}

}  // namespace gf
