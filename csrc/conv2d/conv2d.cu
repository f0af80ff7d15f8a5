// conv2d_*_cuda: NCHW cross-correlation and its gradients (contract in conv2d.h), lowered to
// one gemm_cuda per product over the whole batch.
//
// Every image's columns sit side by side in one matrix cols [C·R·S, N·P·Q] (column
// n·P·Q + p·Q + q), and the output is handled as T [K, N·P·Q], the same numbers as
// y [N, K, P, Q] with the first two axes swapped:
//   forward  T = W[K, CRS] · cols;                     y = swap(T) + b
//   backward T = swap(dy);  db = row sums of T;  dW = T · colsᵀ  (the batch sum is the gemm's
//            K dimension, summed in a fixed order);  dcols = Wᵀ · T, then col2im as a gather:
//            each dx element adds its R·S taps in a fixed order. No atomics anywhere.
// cols and T live in stream-ordered scratch (DeviceBuffer). Tested in tests/test_conv2d.py.
#include "conv2d/conv2d.h"

#include "common/cuda_launch.cuh"
#include "gemm/gemm.h"

namespace gf {

namespace {

// Sizes of the lowered problem, as int64 so no index product overflows.
struct ConvDims {
  int64_t N, C, H, W, K, R, S, P, Q;
  int64_t sh, sw, ph, pw;
  int64_t PQ, NPQ, CRS;
  explicit ConvDims(const Conv2dShape& s)
      : N(s.N), C(s.C), H(s.H), W(s.W), K(s.K), R(s.R), S(s.S), P(s.P()), Q(s.Q()),
        sh(s.stride_h), sw(s.stride_w), ph(s.pad_h), pw(s.pad_w), PQ(P * Q), NPQ(N * P * Q),
        CRS(s.C * s.R * s.S) {}
};

// cols[(c·R + r)·S + s, n·PQ + p·Q + q] = x[n, c, p·sh − ph + r, q·sw − pw + s], 0 in the
// padding. One thread per element of cols; consecutive threads take consecutive q.
struct Im2col {
  const float* x;
  float* cols;
  ConvDims d;
  __device__ void operator()(int64_t i) const {
    const int64_t col = i % d.NPQ, row = i / d.NPQ;
    const int64_t q = col % d.Q, p = (col / d.Q) % d.P, n = col / d.PQ;
    const int64_t s = row % d.S, r = (row / d.S) % d.R, c = row / (d.R * d.S);
    const int64_t h = p * d.sh - d.ph + r, w = q * d.sw - d.pw + s;
    const bool inside = h >= 0 && h < d.H && w >= 0 && w < d.W;
    cols[i] = inside ? x[((n * d.C + c) * d.H + h) * d.W + w] : 0.f;
  }
};

// dx[n, c, h, w] = Σ_{r, s} dcols[(c·R + r)·S + s, n·PQ + p·Q + q] over the taps with
// h + ph − r = p·sh and w + pw − s = q·sw inside the output: col2im as a gather, r then s.
struct Col2im {
  const float* dcols;
  float* dx;
  ConvDims d;
  __device__ void operator()(int64_t i) const {
    const int64_t w = i % d.W, h = (i / d.W) % d.H, c = (i / (d.H * d.W)) % d.C;
    const int64_t n = i / (d.C * d.H * d.W);
    float sum = 0.f;
    for (int64_t r = 0; r < d.R; ++r) {
      const int64_t hp = h + d.ph - r;  // = p·sh for the output row p this tap feeds
      if (hp < 0 || hp % d.sh != 0 || hp / d.sh >= d.P) continue;
      const int64_t p = hp / d.sh;
      for (int64_t s = 0; s < d.S; ++s) {
        const int64_t wp = w + d.pw - s;
        if (wp < 0 || wp % d.sw != 0 || wp / d.sw >= d.Q) continue;
        const int64_t q = wp / d.sw;
        sum += dcols[((c * d.R + r) * d.S + s) * d.NPQ + n * d.PQ + p * d.Q + q];
      }
    }
    dx[i] = sum;
  }
};

// out[b, a, l] = in[a, b, l] (+ bias[a]): swaps the first two axes of an [A, B, L] array.
// T [K, N, PQ] -> y [N, K, PQ] with the bias, and dy [N, K, PQ] -> T [K, N, PQ] without.
struct SwapOuterAxes {
  const float* in;
  const float* bias;  // [A] or null
  float* out;
  int64_t A, B, L;
  __device__ void operator()(int64_t i) const {
    const int64_t l = i % L, a = (i / L) % A, b = i / (A * L);
    float v = in[(a * B + b) * L + l];
    if (bias != nullptr) v += bias[a];
    out[i] = v;
  }
};

}  // namespace

void conv2d_forward_cuda(const float* x, const float* w, const float* b, float* y,
                         const Conv2dShape& shape, Stream stream) {
  const ConvDims d(shape);
  if (d.K * d.NPQ == 0) return;
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  DeviceBuffer cols(d.CRS * d.NPQ, st), t(d.K * d.NPQ, st);
  launch_elementwise(d.CRS * d.NPQ, Im2col{x, cols.get(), d}, st);
  // T[K, NPQ] = W[K, CRS] · cols[CRS, NPQ]
  gemm_cuda(false, false, d.K, d.NPQ, d.CRS, 1.f, w, d.CRS, cols.get(), d.NPQ, 0.f, t.get(),
            d.NPQ, stream);
  launch_elementwise(d.N * d.K * d.PQ, SwapOuterAxes{t.get(), b, y, d.K, d.N, d.PQ}, st);
  cols.release();
  t.release();
}

void conv2d_backward_cuda(const float* dy, const float* x, const float* w, float* dx, float* dw,
                          float* db, const Conv2dShape& shape, Stream stream) {
  if (dx == nullptr && dw == nullptr && db == nullptr) return;
  const ConvDims d(shape);
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  DeviceBuffer t(d.K * d.NPQ, st);
  // T[K, N, PQ] = dy[N, K, PQ] with the first two axes swapped
  launch_elementwise(d.K * d.NPQ, SwapOuterAxes{dy, nullptr, t.get(), d.N, d.K, d.PQ}, st);
  // db[k] = Σ_j T[k, j]
  if (db != nullptr) strided_sum_cuda(t.get(), db, d.K, d.NPQ, 1, d.NPQ, st);
  if (dw != nullptr || dx != nullptr) {
    DeviceBuffer cols(d.CRS * d.NPQ, st);
    if (dw != nullptr) {
      launch_elementwise(d.CRS * d.NPQ, Im2col{x, cols.get(), d}, st);
      // dW[K, CRS] = T[K, NPQ] · cols[CRS, NPQ]ᵀ
      gemm_cuda(false, true, d.K, d.CRS, d.NPQ, 1.f, t.get(), d.NPQ, cols.get(), d.NPQ, 0.f, dw,
                d.CRS, stream);
    }
    if (dx != nullptr) {
      // dcols[CRS, NPQ] = W[K, CRS]ᵀ · T[K, NPQ], into the same buffer (stream order makes the
      // dW gemm finish reading cols first)
      gemm_cuda(true, false, d.CRS, d.NPQ, d.K, 1.f, w, d.CRS, t.get(), d.NPQ, 0.f, cols.get(),
                d.NPQ, stream);
      launch_elementwise(d.N * d.C * d.H * d.W, Col2im{cols.get(), dx, d}, st);
    }
    cols.release();
  }
  t.release();
}

}  // namespace gf
