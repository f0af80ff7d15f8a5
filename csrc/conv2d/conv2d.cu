// conv2d_*_cuda: NCHW cross-correlation and its gradients (contract in conv2d.h), lowered to
// one gemm_cuda per product over the whole batch.
//
// Every image's columns sit side by side in one matrix cols [C·R·S, N·P·Q] (column
// n·P·Q + p·Q + q), and the output is handled as T [K, N·P·Q], the same numbers as
// y [N, K, P, Q] with the first two axes swapped:
//   forward  T = W[K, CRS] · cols, y = swap(T) + b in the gemm's epilogue (gemm.h, `plane`):
//            it stores T[k, n·PQ + pq] at y[n, k, pq] with the bias, and applies the fused
//            activation (leaky_relu, dropout keyed by y's flat index and the step) there, so
//            the forward is two launches whatever it computes (three when the gemm splits K)
//   backward T = swap(dy);  db = row sums of T;  dW = T · colsᵀ  (the batch sum is the gemm's
//            K dimension, summed in a fixed order);  dcols = Wᵀ · T, then col2im as a gather:
//            each dx element adds its R·S taps in a fixed order. No atomics anywhere.
// Sizes come from conv2d_geometry (conv2d.h), shared with the CPU code. cols and T live in
// stream-ordered scratch (DeviceBuffer). Tested in tests/test_conv2d.py.
#include "conv2d/conv2d.h"

#include "common/cuda_launch.cuh"
#include "dropout/dropout.h"
#include "gemm/gemm.h"

namespace gf {

namespace {

// cols[(c·R + r)·S + s, n·PQ + p·Q + q] = x[n, c, p·sh − ph + r, q·sw − pw + s], 0 in the
// padding. One thread per element of cols; consecutive threads take consecutive q.
struct Im2col {
  const float* x;
  float* cols;
  Conv2dGeometry g;
  __device__ void operator()(int64_t i) const {
    const Conv2dShape& d = g.s;
    const int64_t col = i % g.NPQ, row = i / g.NPQ;
    const int64_t q = col % g.Q, p = (col / g.Q) % g.P, n = col / g.PQ;
    const int64_t s = row % d.S, r = (row / d.S) % d.R, c = row / (d.R * d.S);
    const int64_t h = p * d.stride_h - d.pad_h + r, w = q * d.stride_w - d.pad_w + s;
    const bool inside = h >= 0 && h < d.H && w >= 0 && w < d.W;
    cols[i] = inside ? x[((n * d.C + c) * d.H + h) * d.W + w] : 0.f;
  }
};

// dx[n, c, h, w] = Σ_{r, s} dcols[(c·R + r)·S + s, n·PQ + p·Q + q] over the taps with
// h + ph − r = p·sh and w + pw − s = q·sw inside the output: col2im as a gather, r then s.
struct Col2im {
  const float* dcols;
  float* dx;
  Conv2dGeometry g;
  __device__ void operator()(int64_t i) const {
    const Conv2dShape& d = g.s;
    const int64_t w = i % d.W, h = (i / d.W) % d.H, c = (i / g.HW) % d.C;
    const int64_t n = i / (d.C * g.HW);
    float sum = 0.f;
    for (int64_t r = 0; r < d.R; ++r) {
      const int64_t hp = h + d.pad_h - r;  // = p·stride_h for the output row p this tap feeds
      if (hp < 0 || hp % d.stride_h != 0 || hp / d.stride_h >= g.P) continue;
      const int64_t p = hp / d.stride_h;
      for (int64_t s = 0; s < d.S; ++s) {
        const int64_t wp = w + d.pad_w - s;
        if (wp < 0 || wp % d.stride_w != 0 || wp / d.stride_w >= g.Q) continue;
        const int64_t q = wp / d.stride_w;
        sum += dcols[((c * d.R + r) * d.S + s) * g.NPQ + n * g.PQ + p * g.Q + q];
      }
    }
    dx[i] = sum;
  }
};

// out[b, a, l] = in[a, b, l]: swaps the first two axes of an [A, B, L] array
// (dy [N, K, PQ] -> T [K, N, PQ]).
struct SwapOuterAxes {
  const float* in;
  float* out;
  int64_t A, B, L;
  __device__ void operator()(int64_t i) const {
    const int64_t l = i % L, a = (i / L) % A, b = i / (A * L);
    out[i] = in[(a * B + b) * L + l];
  }
};

}  // namespace

void conv2d_forward_cuda(const float* x, const float* w, const float* b, float* y,
                         const Conv2dGeometry& g, Activation act, float slope, float p,
                         uint64_t seed, std::optional<StepArg> step, Stream stream) {
  const int64_t K = g.s.K;
  if (K * g.NPQ == 0) return;
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  GemmEpilogue epilogue{b, act, slope};
  epilogue.plane = g.PQ;
  if (p > 0.f) {  // the mask's seed, as dropout/dropout_launch.cuh keys it
    epilogue.dropout_p = p;
    epilogue.dropout_seed = seed;
    if (step && step->on_device())
      epilogue.dropout_step = step->ptr;
    else if (step)
      epilogue.dropout_seed = dropout_step_seed(seed, step->value);
  }
  DeviceBuffer cols(g.CRS * g.NPQ, st);
  launch_elementwise(g.CRS * g.NPQ, Im2col{x, cols.get(), g}, st);
  // y = swap(W[K, CRS] · cols[CRS, NPQ]) + b, activated, by the epilogue (ldc unused)
  gemm_cuda(false, false, K, g.NPQ, g.CRS, 1.f, w, g.CRS, cols.get(), g.NPQ, 0.f, y, g.NPQ,
            stream, epilogue);
  cols.release();
}

void conv2d_backward_cuda(const float* dy, const float* x, const float* w, float* dx, float* dw,
                          float* db, const Conv2dGeometry& g, Stream stream) {
  if (dx == nullptr && dw == nullptr && db == nullptr) return;
  const int64_t K = g.s.K;
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  DeviceBuffer t(K * g.NPQ, st);
  // T[K, N, PQ] = dy[N, K, PQ] with the first two axes swapped
  launch_elementwise(K * g.NPQ, SwapOuterAxes{dy, t.get(), g.s.N, K, g.PQ}, st);
  // db[k] = Σ_j T[k, j]
  if (db != nullptr) strided_sum_cuda(t.get(), db, K, g.NPQ, 1, g.NPQ, st);
  if (dw != nullptr || dx != nullptr) {
    DeviceBuffer cols(g.CRS * g.NPQ, st);
    if (dw != nullptr) {
      launch_elementwise(g.CRS * g.NPQ, Im2col{x, cols.get(), g}, st);
      // dW[K, CRS] = T[K, NPQ] · cols[CRS, NPQ]ᵀ
      gemm_cuda(false, true, K, g.CRS, g.NPQ, 1.f, t.get(), g.NPQ, cols.get(), g.NPQ, 0.f, dw,
                g.CRS, stream);
    }
    if (dx != nullptr) {
      // dcols[CRS, NPQ] = W[K, CRS]ᵀ · T[K, NPQ], into the same buffer (stream order makes the
      // dW gemm finish reading cols first)
      gemm_cuda(true, false, g.CRS, g.NPQ, K, 1.f, w, g.CRS, t.get(), g.NPQ, 0.f, cols.get(),
                g.NPQ, stream);
      launch_elementwise(g.s.N * g.s.C * g.HW, Col2im{cols.get(), dx, g}, st);
    }
    cols.release();
  }
  t.release();
}

}  // namespace gf
