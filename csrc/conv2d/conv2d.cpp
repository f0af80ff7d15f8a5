// conv2d (CPU): NCHW cross-correlation and its gradients (contract: conv2d.h) lowered to
// gemm_cpu over groups of images.
//
// The batch is cut into groups of consecutive images (set by the shape alone: about 512
// output positions each in the forward, 1024 in the backward, so small feature maps
// still give gemm wide matrices). With w viewed as [K, C·R·S]:
//   forward   out[K, G·P·Q] = w · cols (+ b),  scattered to y[n, K, P, Q], where im2col
//            unfolds the group's G images into cols [C·R·S, G·P·Q], column (image, p, q)
//   dw       dw_g = dy_g · rows, one partial per group (rows [G·P·Q, R·S·C] is the
//            unfold with pixels as rows, im2row), then dw = Σ_g dw_g with the groups
//            added in order and the columns put back in (c, r, t) order
//   dx       dcols = wᵀ · dy_g, then col2im adds every tap back into dx in a fixed order
//   db       Σ over n, p, q of dy, in double, n and then p·Q + q ascending
// where dy_g [K, G·P·Q] gathers the group's dy. With G = 1, out and dy_g are y and dy
// themselves. A shallow unfold (C·R·S <= kShallow, as conv1's) skips gemm for its forward
// and dw: ShallowForward and ShallowDw multiply straight from cols into y or a partial.
// Every sum runs in an order fixed by the shape, never by the threads.
// forward and backward run whole groups per thread (one fork per call; with a single
// group the parallelism is inside gemm instead). Workspace: per-thread scratch
// reused across calls (common/scratch.h). Tests: tests/test_conv2d.py.
#include "conv2d/conv2d.h"

#include <algorithm>
#include <cstring>

#include "common/cpu_isa.h"
#include "common/parallel.h"
#include "common/scratch.h"
#include "common/transpose.h"
#include "gemm/gemm.h"

namespace gf {
namespace {

// Output positions per group: the forward's unfolded group then stays in L2; the
// backward's dw sums one partial per group, so it takes fewer, larger groups. A forward
// feature map of kWidePlane positions or more is already a wide gemm on its own: one
// image per group then writes y directly, without the regrouping copy.
constexpr int64_t kForwardGroupColumns = 512, kBackwardGroupColumns = 1024, kWidePlane = 128;
// The number of groups is a multiple of this (sizes differing by at most one image), so
// 1, 2 or 4 threads get equal shares. It depends only on the shape, never on the thread
// count: dw adds its per-group partials in group order.
constexpr int64_t kGroupAlign = 4;

// The unfold kernels read it from a local copy: read through `this`, it could have been
// changed by any of their memcpy stores as far as the compiler knows, and every offset
// was recomputed per row and run (a third of im2col's instructions).
struct ConvGeometry {
  Conv2dShape s;
  int64_t P, Q, PQ, HW, CRS;  // output plane and its size, input plane size, gemm depth
  int64_t Hp, J;              // padded input height; columns of one phase of a padded row
  int64_t groups, G;          // image groups, and the most images in one
  int64_t group_start(int64_t group) const { return group * s.N / groups; }
  // Floats of a phased plane, and where tap (r, t)'s first run starts in it (see below).
  int64_t phased_size() const { return s.stride_w * Hp * J; }
  int64_t tap_run(int64_t r, int64_t t) const { return ((t % s.stride_w) * Hp + r) * J + t / s.stride_w; }
  int64_t run_step() const { return s.stride_h * J; }  // from a tap's run for p to p + 1
};

ConvGeometry geometry(const Conv2dShape& s, int64_t group_columns, int64_t wide_plane) {
  const int64_t P = s.P(), Q = s.Q(), PQ = P * Q;
  const int64_t most = PQ >= wide_plane ? 1 : std::max<int64_t>(1, group_columns / PQ);
  const int64_t aligned = (s.N + most - 1) / most + kGroupAlign - 1;
  const int64_t groups = std::min(s.N, aligned / kGroupAlign * kGroupAlign);
  const int64_t G = groups > 0 ? (s.N + groups - 1) / groups : 1;
  const int64_t J = (s.W + 2 * s.pad_w + s.stride_w - 1) / s.stride_w;
  return {s, P, Q, PQ, s.H * s.W, s.C * s.R * s.S, s.H + 2 * s.pad_h, J, groups, G};
}

// im2col and col2im work on phased planes: a plane zero-padded on every side, with the
// columns of each padded row dealt into stride_w interleaved runs, column wp going to run
// wp % stride_w at position wp / stride_w:
//   phased[(b·Hp + hp)·J + j] = x[hp − pad_h, j·stride_w + b − pad_w]  (zero outside x).
// Then the values a tap (r, t) reads along an output row p, columns q = 0..Q-1, sit
// contiguously: run t % stride_w, row p·stride_h + r, from t / stride_w on, and the
// unfolds are runs of contiguous copies (or adds) with no bounds checks.

// Runs are short (Q = 7 values, S = 3 taps in the model), so they move 8 floats at a time
// (one vector move) instead of through exact-length memcpy calls or scalar loops.
// kRunSlack floats after every buffer a run reads keep those loads inside it.
constexpr int64_t kRunSlack = 8;

// dst[0, n) = src[0, n) for a run that starts `room` floats before the end of the block
// its thread fills in ascending order: while the block has room the last vector may
// write past n (a later run overwrites it), otherwise the tail is copied exactly.
GF_INLINE void copy_run(const float* src, int64_t n, float* dst, int64_t room) {
  int64_t j = 0;
  for (; j + 8 <= n || (j < n && j + 8 <= room); j += 8) std::memcpy(dst + j, src + j, 8 * sizeof(float));
  for (; j < n; ++j) dst[j] = src[j];
}

using Float8 = FloatVec<8>::type;
typedef int32_t Int8 __attribute__((vector_size(32)));

// dst[0, n) += src[0, n); the lanes past n add +0 (no change: an accumulator that starts
// at +0 never holds −0).
GF_INLINE void add_run(const float* src, int64_t n, float* dst) {
  const Float8 lane = {0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f}, zero = {};
  for (int64_t j = 0; j < n; j += 8) {
    Float8 v, d;
    std::memcpy(&v, src + j, sizeof(v));
    std::memcpy(&d, dst + j, sizeof(d));
    d += lane < static_cast<float>(n - j) ? v : zero;
    std::memcpy(dst + j, &d, sizeof(d));
  }
}

// Moves one H × W plane into (kDeal) or out of (!kDeal) the phased layout, row by row:
// padded column wp = w + pad_w is position wp / stride_w of run wp % stride_w, runs
// run_stride floats apart. Each run is a strided walk over the row, vectorised when the
// stride is known at compile time (kPhases; 0 means stride_w at run time).
template <bool kDeal, int kPhases>
GF_INLINE void move_phased_rows(float* plane, const ConvGeometry& g, float* phased) {
  const Conv2dShape& s = g.s;
  const int64_t n = kPhases > 0 ? kPhases : s.stride_w, J = g.J, run_stride = g.Hp * J;
  for (int64_t h = 0; h < s.H; ++h) {
    float* row = plane + h * s.W;
    float* runs = phased + (s.pad_h + h) * J;
    for (int64_t b = 0; b < n; ++b) {
      const int64_t w0 = ((b - s.pad_w) % n + n) % n;  // first column of run b
      float* run = runs + b * run_stride + (w0 + s.pad_w) / n;
      const int64_t count = w0 < s.W ? (s.W - w0 + n - 1) / n : 0;
      if (kDeal) {
        for (int64_t m = 0; m < count; ++m) run[m] = row[w0 + m * n];
      } else {
        for (int64_t m = 0; m < count; ++m) row[w0 + m * n] = run[m];
      }
    }
  }
}

// Stride 2 (the model's convolutions): a row's even and odd columns are two runs, split
// and merged with vector shuffles 16 columns at a time. A vector step may read or write
// up to 15 floats past the row, so it runs only while that stays inside the plane (the
// next rows are moved later); lanes past a run's end deal zeros (the padding).
template <bool kDeal>
GF_INLINE void move_phased_rows2(float* plane, const ConvGeometry& g, float* phased) {
  const Conv2dShape& s = g.s;
  const int64_t J = g.J, run_stride = g.Hp * J;
  const int64_t even = (s.W + 1) / 2, odd = s.W / 2;  // columns of each parity
  const int64_t plane_size = s.H * s.W;
  const Float8 lane = {0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f}, zero = {};
  for (int64_t h = 0; h < s.H; ++h) {
    float* row = plane + h * s.W;
    float* runs = phased + (s.pad_h + h) * J;
    float* run_e = runs + (s.pad_w % 2) * run_stride + s.pad_w / 2;
    float* run_o = runs + (1 - s.pad_w % 2) * run_stride + (s.pad_w + 1) / 2;
    int64_t m = 0;
    for (; m < even && 2 * m + 16 <= plane_size - h * s.W; m += 8) {
      Float8 e, o;
      if (kDeal) {
        Float8 v0, v1;
        std::memcpy(&v0, row + 2 * m, sizeof(v0));
        std::memcpy(&v1, row + 2 * m + 8, sizeof(v1));
        e = __builtin_shuffle(v0, v1, Int8{0, 2, 4, 6, 8, 10, 12, 14});
        o = __builtin_shuffle(v0, v1, Int8{1, 3, 5, 7, 9, 11, 13, 15});
        e = lane < static_cast<float>(even - m) ? e : zero;
        o = lane < static_cast<float>(odd - m) ? o : zero;
        std::memcpy(run_e + m, &e, sizeof(e));
        std::memcpy(run_o + m, &o, sizeof(o));
      } else {
        std::memcpy(&e, run_e + m, sizeof(e));
        std::memcpy(&o, run_o + m, sizeof(o));
        const Float8 lo = __builtin_shuffle(e, o, Int8{0, 8, 1, 9, 2, 10, 3, 11});
        const Float8 hi = __builtin_shuffle(e, o, Int8{4, 12, 5, 13, 6, 14, 7, 15});
        std::memcpy(row + 2 * m, &lo, sizeof(lo));
        std::memcpy(row + 2 * m + 8, &hi, sizeof(hi));
      }
    }
    for (; m < even; ++m) {
      if (kDeal) {
        run_e[m] = row[2 * m];
        if (m < odd) run_o[m] = row[2 * m + 1];
      } else {
        row[2 * m] = run_e[m];
        if (m < odd) row[2 * m + 1] = run_o[m];
      }
    }
  }
}

template <bool kDeal>
GF_INLINE void move_phased(float* plane, const ConvGeometry& g, float* phased) {
  if (g.s.stride_w == 1) return move_phased_rows<kDeal, 1>(plane, g, phased);
  if (g.s.stride_w == 2) return move_phased_rows2<kDeal>(plane, g, phased);
  move_phased_rows<kDeal, 0>(plane, g, phased);
}

// Calls f(run, at) for every tap (r, t), c's rows of the unfold in order: run is where the
// tap's first run starts in the phased plane, at where its values for image i start in
// the unfold (rows ld apart). Each tap then has P runs, run_step() and Q floats apart.
template <class F>
GF_INLINE void for_each_tap(const ConvGeometry& g, int64_t c, int64_t i, int64_t ld, F f) {
  for (int64_t r = 0; r < g.s.R; ++r)
    for (int64_t t = 0; t < g.s.S; ++t) f(g.tap_run(r, t), ((c * g.s.R + r) * g.s.S + t) * ld + i * g.PQ);
}

// cols[(c, r, t), (i, p, q)] = x[n0 + i, c, p·stride_h − pad_h + r, q·stride_w − pad_w + t]
// (zero in the padding); the row stride of cols is ld. One row of the call is one image:
// per channel, its plane's phased copy, then R·S·P runs of Q values. The copies alternate
// between two phased buffers, one channel ahead of the runs: a run read right after its
// plane was dealt would straddle stores still in flight and wait for them (no store
// forwarding), which doubled the unfold's time. The buffers are zeroed once per image: a deal
// writes the same interior positions every time and only zeros anywhere else, so the
// padding stays zero.
struct Im2colImage {
  const float* x;
  float* cols;
  ConvGeometry g;
  int64_t ld, n0;
  GF_INLINE void operator()(int64_t i) const {
    const ConvGeometry g = this->g;  // a local copy, see ConvGeometry
    const Conv2dShape& s = g.s;
    const int64_t size = g.phased_size() + kRunSlack;
    float* buffers = thread_scratch(ScratchSlot::conv_plane, 2 * size);
    std::fill(buffers, buffers + std::min<int64_t>(s.C, 2) * size, 0.f);  // the buffers in use
    const auto deal = [&](int64_t c) {
      move_phased<true>(const_cast<float*>(x) + ((n0 + i) * s.C + c) * g.HW, g, buffers + c % 2 * size);
    };
    // Runs of at most 8 floats move as one 8-float vector while that stays inside the row
    // (its overrun lands in the next runs, written later); the rest through copy_run.
    const int64_t room = ld - i * g.PQ;  // floats from this image's first run to the row's end
    const int64_t vector_runs = g.Q <= 8 && room >= 8 ? std::min(g.P, (room - 8) / g.Q + 1) : 0;
    const int64_t step = g.run_step();
    if (s.C > 0) deal(0);
    for (int64_t c = 0; c < s.C; ++c) {
      if (c + 1 < s.C) deal(c + 1);
      const float* phased = buffers + c % 2 * size;
      for_each_tap(g, c, i, ld, [&](int64_t from, int64_t to) {
        const float* run = phased + from;
        float* dst = cols + to;
        int64_t p = 0;
        for (; p < vector_runs; ++p, run += step, dst += g.Q) std::memcpy(dst, run, 8 * sizeof(float));
        for (; p < g.P; ++p, run += step, dst += g.Q) copy_run(run, g.Q, dst, room - p * g.Q);
      });
    }
  }
};

void im2col(const float* x, const ConvGeometry& g, int64_t n0, int64_t count, float* cols) {
  range_on_active_isa<Loop::rows>(Im2colImage{x, cols, g, g.G * g.PQ, n0}, 0, count);
}

// rows[(i, p, q), (r, t, c)] = x[n0 + i, c, p·stride_h − pad_h + r, q·stride_w − pad_w + t]
// (zero in the padding): the unfold with the image's pixels as rows, for the dw gemm's B
// operand, which then packs with plain copies. Its columns run (r, t, c), channels
// innermost, so that one image copied channels-last into a zero-padded [Hp, Wp, C]
// buffer gives each (r, p, q) as one contiguous run of S·C values. One row of the call
// is one image.
struct Im2rowImage {
  const float* x;
  float* rows;
  ConvGeometry g;
  int64_t n0;
  GF_INLINE void operator()(int64_t i) const {
    const ConvGeometry g = this->g;  // a local copy, see ConvGeometry
    const Conv2dShape& s = g.s;
    const int64_t Wp = s.W + 2 * s.pad_w, C = s.C;
    const int64_t line = Wp * C;  // floats of one padded row
    float* hwc = thread_scratch(ScratchSlot::conv_plane, g.Hp * line);
    // Only the padding is zeroed (a quarter of conv2's buffer): the pixels fill the rest.
    std::fill(hwc, hwc + s.pad_h * line, 0.f);
    std::fill(hwc + (s.pad_h + s.H) * line, hwc + g.Hp * line, 0.f);
    const float* image = x + (n0 + i) * C * g.HW;
    for (int64_t h = 0; h < s.H; ++h) {
      const float* src = image + h * s.W;
      float* dst = hwc + (s.pad_h + h) * line + s.pad_w * C;
      std::fill(dst - s.pad_w * C, dst, 0.f);
      std::fill(dst + s.W * C, dst + (s.W + s.pad_w) * C, 0.f);
      if (s.W >= 8 && C >= 8) {  // 8 × 8 blocks, the last ones overlapping their neighbours
        for (int64_t w0 = 0;; w0 = std::min(w0 + 8, s.W - 8)) {
          for (int64_t c0 = 0;; c0 = std::min(c0 + 8, C - 8)) {
            transpose_8x8(src + c0 * g.HW + w0, g.HW, dst + w0 * C + c0, C);
            if (c0 + 8 == C) break;
          }
          if (w0 + 8 == s.W) break;
        }
      } else {
        for (int64_t w = 0; w < s.W; ++w)
          for (int64_t c = 0; c < C; ++c) dst[w * C + c] = src[c * g.HW + w];
      }
    }
    float* dst = rows + i * g.PQ * g.CRS;
    const int64_t run = s.S * C;
    for (int64_t p = 0; p < g.P; ++p)
      for (int64_t q = 0; q < g.Q; ++q)
        for (int64_t r = 0; r < s.R; ++r, dst += run) {
          const float* src = hwc + ((p * s.stride_h + r) * Wp + q * s.stride_w) * C;
#pragma omp simd
          for (int64_t j = 0; j < run; ++j) dst[j] = src[j];  // inline: runs can be 3 floats
        }
  }
};

void im2row(const float* x, const ConvGeometry& g, int64_t n0, int64_t count, float* rows) {
  rows_cpu(count, kParallelGrain / std::max<int64_t>(g.PQ * g.CRS, 1), Im2rowImage{x, rows, g, n0});
}

// A shallow unfold (C·R·S <= kShallow; conv1's is 9) bypasses gemm, which would spend
// more on packing and on C's loads and stores than on its few multiplies per element, and
// would need y or dy regrouped. Its kernels take W pixels per vector, W the SIMD path's
// width (vector_rows_cpu). Their small loops over register blocks are unrolled by
// pragma: fully unrolled, the arrays of vectors become registers, where GCC's own choice
// left them on the stack on the AVX2 path (4-8x slower).
constexpr int64_t kShallow = 16;

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

// The adjoint of im2col: dx[n0 + i, c] = Σ over taps (r, t) ascending of the dcols values
// that tap read from each pixel. Each tap's runs are added into a phased accumulator
// (a pixel gets at most one value per tap, so its sum runs over the taps in ascending
// order whatever the layout), which is then cropped into dx. One row of the call is one
// (image, channel) plane.
struct Col2imPlane {
  const float* dcols;
  float* dx;
  ConvGeometry g;
  int64_t ld, n0;
  GF_INLINE void operator()(int64_t row) const {
    const ConvGeometry g = this->g;  // a local copy, see ConvGeometry
    const Conv2dShape& s = g.s;
    const int64_t c = row % s.C, i = row / s.C, size = g.phased_size() + kRunSlack;
    const int64_t step = g.run_step();
    float* phased = thread_scratch(ScratchSlot::conv_plane, size);
    std::fill(phased, phased + size, 0.f);
    for_each_tap(g, c, i, ld, [&](int64_t from, int64_t to) {
      float* run = phased + from;
      const float* src = dcols + to;
      for (int64_t p = 0; p < g.P; ++p, run += step, src += g.Q) add_run(src, g.Q, run);
    });
    move_phased<false>(dx + ((n0 + i) * s.C + c) * g.HW, g, phased);
  }
};

void col2im(const float* dcols, const ConvGeometry& g, int64_t n0, int64_t count, float* dx) {
  rows_cpu(count * g.s.C, kParallelGrain / std::max<int64_t>(g.HW, 1),
           Col2imPlane{dcols, dx, g, g.G * g.PQ, n0});
}

// Strides of a run of count images' [K, PQ] planes: batch order is y's [n, K, P, Q];
// group order is gemm's [K, count·PQ].
struct PlaneStrides {
  int64_t image, channel;
};
PlaneStrides batch_order(const ConvGeometry& g) { return {g.s.K * g.PQ, g.PQ}; }
PlaneStrides group_order(const ConvGeometry& g, int64_t count) { return {g.PQ, count * g.PQ}; }

// Copies every (image, channel) plane of PQ floats from one order to the other.
void copy_planes(const float* src, PlaneStrides from, float* dst, PlaneStrides to,
                 const ConvGeometry& g, int64_t count) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t i = 0; i < count; ++i)
    for (int64_t k = 0; k < g.s.K; ++k) {
      const float* plane = src + i * from.image + k * from.channel;
      std::copy(plane, plane + g.PQ, dst + i * to.image + k * to.channel);
    }
}

// db[k] = Σ_n Σ_pq dy[n, k, pq] in double, n then pq ascending.
void bias_grad(const float* dy, const ConvGeometry& g, float* db) {
  const int64_t N = g.s.N, K = g.s.K, PQ = g.PQ;
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < K; ++k) {
    double acc = 0.0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < PQ; ++j) acc += dy[(n * K + k) * PQ + j];
    db[k] = static_cast<float>(acc);
  }
}


}  // namespace

void conv2d_forward_cpu(const float* x, const float* w, const float* b, float* y,
                        const Conv2dShape& s) {
  const ConvGeometry g = geometry(s, kForwardGroupColumns, kWidePlane);
  const int64_t groups = g.groups, ldc = g.G * g.PQ;
  // Groups are independent: with several, each thread takes whole groups (one fork per
  // call instead of three per group, and the nested im2col/gemm/copy run on one thread);
  // with one, the parallelism is inside instead.
#pragma omp parallel for schedule(static) if (groups > 1)
  for (int64_t group = 0; group < groups; ++group) {
    const int64_t n0 = g.group_start(group), count = g.group_start(group + 1) - n0;
    const int64_t ld = count * g.PQ;
    float* cols = thread_scratch(ScratchSlot::conv_cols, g.CRS * ldc + kRunSlack);
    im2col(x, g, n0, count, cols);
    if (g.CRS <= kShallow) {
      range_on_active_isa<Loop::vector_rows>(
          ShallowForward{cols, w, b, y + n0 * s.K * g.PQ, s.K, g.PQ, g.CRS, ldc}, 0, count);
      continue;
    }
    float* out = g.G > 1 ? thread_scratch(ScratchSlot::conv_grouped, s.K * g.G * g.PQ)
                         : y + n0 * s.K * g.PQ;
    if (b != nullptr)
      for (int64_t k = 0; k < s.K; ++k) std::fill(out + k * ld, out + (k + 1) * ld, b[k]);
    gemm_cpu(false, false, s.K, ld, g.CRS, 1.f, w, g.CRS, cols, ldc,
             b != nullptr ? 1.f : 0.f, out, ld);
    if (g.G > 1)
      copy_planes(out, group_order(g, count), y + n0 * s.K * g.PQ, batch_order(g), g, count);
  }
}

void conv2d_backward_cpu(const float* dy, const float* x, const float* w, float* dx, float* dw,
                         float* db, const Conv2dShape& s) {
  const ConvGeometry g = geometry(s, kBackwardGroupColumns, INT64_MAX);
  if (db != nullptr) bias_grad(dy, g, db);
  if (s.N == 0 && dw != nullptr) std::fill(dw, dw + s.K * g.CRS, 0.f);
  if (s.N == 0 || (dw == nullptr && dx == nullptr)) return;
  const int64_t groups = g.groups, ldc = g.G * g.PQ;
  // Each group's dw lands in its own partial (the calling thread's scratch, shared with
  // the team), so the groups can run on any thread and still be added in group order
  // below: from gemm, columns in im2row's (r, t, c) order; from ShallowDw, in dw's.
  const bool shallow = g.CRS <= kShallow;
  const int64_t dw_size = s.K * g.CRS;
  float* partials = dw != nullptr ? thread_scratch(ScratchSlot::conv_dw_partials, groups * dw_size) : nullptr;
#pragma omp parallel for schedule(static) if (groups > 1)
  for (int64_t group = 0; group < groups; ++group) {
    const int64_t n0 = g.group_start(group), count = g.group_start(group + 1) - n0;
    const int64_t ld = count * g.PQ;
    float* cols = thread_scratch(ScratchSlot::conv_cols, g.CRS * ldc + kRunSlack);
    float* partial = dw != nullptr ? partials + group * dw_size : nullptr;
    if (dw != nullptr && shallow) {  // before dy is regrouped: it reads dy per image
      im2col(x, g, n0, count, cols);
      range_on_active_isa<Loop::vector_rows>(
          ShallowDw{dy + n0 * s.K * g.PQ, cols, partial, count, s.K, g.PQ, g.CRS, ldc}, 0,
          (s.K + ShallowDw::kRows - 1) / ShallowDw::kRows);
    }
    const float* dy_g = dy + n0 * s.K * g.PQ;
    if (g.G > 1 && (dx != nullptr || (dw != nullptr && !shallow))) {
      float* grouped = thread_scratch(ScratchSlot::conv_grouped, s.K * g.G * g.PQ);
      copy_planes(dy_g, batch_order(g), grouped, group_order(g, count), g, count);
      dy_g = grouped;
    }
    if (dw != nullptr && !shallow) {
      im2row(x, g, n0, count, cols);
      gemm_cpu(false, false, s.K, g.CRS, ld, 1.f, dy_g, ld, cols, g.CRS, 0.f, partial, g.CRS);
    }
    if (dx != nullptr) {
      gemm_cpu(true, false, g.CRS, ld, s.K, 1.f, w, g.CRS, dy_g, ld, 0.f, cols, ldc);
      col2im(cols, g, n0, count, dx);
    }
  }
  if (dw != nullptr) {
    const int64_t RS = s.R * s.S;
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < s.K; ++k)
      for (int64_t c = 0; c < s.C; ++c)
        for (int64_t rs = 0; rs < RS; ++rs) {  // shallow partials are in dw's (c, r, t) order
          const float* at = partials + k * g.CRS + (shallow ? c * RS + rs : rs * s.C + c);
          float sum = at[0];
          for (int64_t group = 1; group < groups; ++group) sum += at[group * dw_size];
          dw[(k * s.C + c) * RS + rs] = sum;
        }
  }
}

}  // namespace gf
