// conv2d (CPU): the shallow kernels (declared in conv2d_cpu.h).
//
// A shallow unfold (C·R·S <= kShallow; conv1's is 9) bypasses gemm, which would spend
// more on packing and on C's loads and stores than on its few multiplies per element, and
// would need y or dy regrouped. Its kernels take W pixels per vector, W the SIMD path's
// width (vector_rows_cpu). Their small loops over register blocks are unrolled by
// pragma: fully unrolled, the arrays of vectors become registers, where GCC's own choice
// left them on the stack on the AVX2 path (4-8x slower). They are correct for an unfold
// of any depth (conv2d.cpp's variant 2, forced through common/variants.h).
// Tests: tests/test_conv2d.py, tests/test_kernel_variants.py.
#include <algorithm>
#include <cstring>

#include "common/cpu_isa.h"
#include "conv2d/conv2d_cpu.h"

namespace gf::conv2d_cpu {
namespace {

// Forward of one image of a group, shallow unfold:
//   y[n0 + i, k, pq] = Σ_j w[k, j]·cols[j, (i, pq)] (+ b[k]), j ascending,
// kRows output channels at a time (one accumulator each, enough to hide the FMA latency),
// so each vector of cols is loaded once for all of them. A last block of channels past K
// repeats channel K − 1, and a last vector of pixels overlaps the one before it: both
// recompute identical values instead of branching. A plane narrower than one vector
// (kFull false) moves its PQ floats through memcpy instead.
struct ShallowForward {
  static constexpr int64_t kRows = 8;
  const float *cols, *w, *b;  // cols: the group's im2col, rows ld apart
  float* y;                   // the group's first image
  int64_t K, PQ, CRS, ld;
  template <int W>
  GF_INLINE void operator()(int64_t i) const { PQ >= W ? image<W, true>(i) : image<W, false>(i); }

  template <int W, bool kFull>
  GF_INLINE void image(int64_t i) const {
    using V = typename FloatVec<W>::type;
    // Locals: through `this`, every store to y would force the fields to be reloaded.
    const int64_t K = this->K, PQ = this->PQ, CRS = this->CRS, ld = this->ld;
    const float *w = this->w, *b = this->b, *cols_i = cols + i * PQ;
    float* y = this->y + i * K * PQ;
    const size_t bytes = kFull ? sizeof(V) : PQ * sizeof(float);
    for (int64_t k0 = 0; k0 < K; k0 += kRows) {
      int64_t k[kRows];
#pragma GCC unroll 8
      for (int64_t r = 0; r < kRows; ++r) k[r] = std::min(k0 + r, K - 1);
      for (int64_t pq0 = 0; pq0 < PQ; pq0 += W) {
        const int64_t at = kFull ? std::min<int64_t>(pq0, PQ - W) : 0;
        V acc[kRows] = {};
        for (int64_t j = 0; j < CRS; ++j) {
          V c = {};
          std::memcpy(&c, cols_i + j * ld + at, bytes);
#pragma GCC unroll 8
          for (int64_t r = 0; r < kRows; ++r) acc[r] += w[k[r] * CRS + j] * c;
        }
#pragma GCC unroll 8
        for (int64_t r = 0; r < kRows; ++r) {
          if (b != nullptr) acc[r] += b[k[r]];
          std::memcpy(y + k[r] * PQ + at, &acc[r], bytes);
        }
      }
    }
  }
};

// dw of one group, shallow unfold, before dy is regrouped: one call per block of kRows
// output channels k, taken kPass at a time with kCols unfold rows j (kPass·kCols
// accumulators, kPass + kCols vector loads per kPass·kCols FMAs; kPass is 4 with
// AVX-512's 32 registers, 2 with 16):
//   partial[k, j] = Σ over the group's images, then its pixels, of dy[n0 + i, k, pq]·cols[j, (i, pq)],
// read straight from dy and from im2col's rows, summed in W lanes that are then added
// pairwise. Vector v of a plane holds pixels v·W + l; a last partial vector is the plane's
// last W pixels with the products of the ones already counted replaced by +0 (a plane
// narrower than one vector, kFull false, is one zero-padded vector). Blocks past K or
// C·R·S repeat the last channel or row, rewriting identical values. An order set by the
// shape and the path's W alone.
struct ShallowDw {
  static constexpr int64_t kRows = 4, kCols = 3;
  const float* dy;    // the group's first image
  const float* cols;  // im2col of the group, rows ld apart
  float* partial;     // [K, C·R·S]
  int64_t count, K, PQ, CRS, ld;
  template <int W>
  GF_INLINE void operator()(int64_t block) const { PQ >= W ? run<W, true>(block) : run<W, false>(block); }

  template <int W, bool kFull>
  GF_INLINE void run(int64_t block) const {
    using V = typename FloatVec<W>::type;
    const int64_t K = this->K, PQ = this->PQ, CRS = this->CRS, ld = this->ld;
    const int64_t full = PQ / W * W, last = PQ - W;
    const size_t bytes = kFull ? sizeof(V) : PQ * sizeof(float);
    V lane, zero = {};
    for (int l = 0; l < W; ++l) lane[l] = static_cast<float>(l);
    const auto fresh = lane >= static_cast<float>(full - last);  // the last vector's new pixels
    constexpr int64_t kPass = W >= 16 ? kRows : kRows / 2;
    for (int64_t k0 = block * kRows; k0 < (block + 1) * kRows; k0 += kPass)
      for (int64_t j0 = 0; j0 < CRS; j0 += kCols) {
        int64_t k[kPass], j[kCols];
#pragma GCC unroll 8
        for (int64_t r = 0; r < kPass; ++r) k[r] = std::min(k0 + r, K - 1);
#pragma GCC unroll 8
        for (int64_t m = 0; m < kCols; ++m) j[m] = std::min(j0 + m, CRS - 1);
        V acc[kPass][kCols] = {};
        for (int64_t i = 0; i < count; ++i) {
          const float *d = dy + i * K * PQ, *c = cols + i * PQ;
          for (int64_t pq = 0; pq < PQ; pq += W) {
            const int64_t at = kFull ? std::min(pq, last) : 0;
            V dv[kPass] = {}, cv[kCols] = {};
#pragma GCC unroll 8
            for (int64_t r = 0; r < kPass; ++r) std::memcpy(&dv[r], d + k[r] * PQ + at, bytes);
#pragma GCC unroll 8
            for (int64_t m = 0; m < kCols; ++m) std::memcpy(&cv[m], c + j[m] * ld + at, bytes);
#pragma GCC unroll 8
            for (int64_t r = 0; r < kPass; ++r)
#pragma GCC unroll 8
              for (int64_t m = 0; m < kCols; ++m) {
                if (at == pq)
                  acc[r][m] += dv[r] * cv[m];
                else  // the product is selected, not a factor zeroed: 0·inf would be NaN
                  acc[r][m] += fresh ? dv[r] * cv[m] : zero;
              }
          }
        }
        for (int64_t r = 0; r < kPass; ++r)
          for (int64_t m = 0; m < kCols; ++m) {
            float sums[W];
            std::memcpy(sums, &acc[r][m], sizeof(sums));
            partial[k[r] * CRS + j[m]] = pairwise_sum(sums);
          }
      }
  }
};
}  // namespace

void shallow_forward(const float* cols, int64_t ld, const float* w, const float* b, float* y,
                     const ConvPlan& g, int64_t count) {
  range_on_active_isa<Loop::vector_rows>(ShallowForward{cols, w, b, y, g.s.K, g.PQ, g.CRS, ld}, 0,
                                         count);
}

void shallow_dw(const float* dy, const float* cols, int64_t ld, float* partial,
                const ConvPlan& g, int64_t count) {
  range_on_active_isa<Loop::vector_rows>(
      ShallowDw{dy, cols, partial, count, g.s.K, g.PQ, g.CRS, ld}, 0,
      (g.s.K + ShallowDw::kRows - 1) / ShallowDw::kRows);
}

}  // namespace gf::conv2d_cpu
