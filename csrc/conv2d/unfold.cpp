// conv2d (CPU): the unfolds that lower conv2d to gemm (declared in conv2d_cpu.h).
//
// im2col and col2im work on phased planes: a plane zero-padded on every side, with the
// columns of each padded row dealt into stride_w interleaved runs, column wp going to run
// wp % stride_w at position wp / stride_w:
//   phased[(b·Hp + hp)·J + j] = x[hp − pad_h, j·stride_w + b − pad_w]  (zero outside x).
// Then the values a tap (r, t) reads along an output row p, columns q = 0..Q-1, sit
// contiguously: run t % stride_w, row p·stride_h + r, from t / stride_w on, and the
// unfolds are runs of contiguous copies (or adds) with no bounds checks.
//
// im2col (the forward's and the shallow dw's B operand) and col2im (dx) use them; im2row
// (the gemm dw's B operand) copies each image channels-last instead. Tests:
// tests/test_conv2d.py.
#include <algorithm>
#include <cstring>

#include "common/cpu_isa.h"
#include "common/parallel.h"
#include "common/scratch.h"
#include "common/transpose.h"
#include "conv2d/conv2d_cpu.h"

namespace gf::conv2d_cpu {
namespace {

// Runs are short (Q = 7 values, S = 3 taps in the model), so they move 8 floats at a time
// (one vector move) instead of through exact-length memcpy calls or scalar loops;
// kRunSlack (conv2d_cpu.h) keeps those loads inside the buffers.

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
GF_INLINE void move_phased_rows(float* plane, const ConvPlan& g, float* phased) {
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
GF_INLINE void move_phased_rows2(float* plane, const ConvPlan& g, float* phased) {
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
GF_INLINE void move_phased(float* plane, const ConvPlan& g, float* phased) {
  if (g.s.stride_w == 1) return move_phased_rows<kDeal, 1>(plane, g, phased);
  if (g.s.stride_w == 2) return move_phased_rows2<kDeal>(plane, g, phased);
  move_phased_rows<kDeal, 0>(plane, g, phased);
}

// Calls f(run, at) for every tap (r, t), c's rows of the unfold in order: run is where the
// tap's first run starts in the phased plane, at where its values for image i start in
// the unfold (rows ld apart). Each tap then has P runs, run_step() and Q floats apart.
template <class F>
GF_INLINE void for_each_tap(const ConvPlan& g, int64_t c, int64_t i, int64_t ld, F f) {
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
  ConvPlan g;
  int64_t ld, n0;
  GF_INLINE void operator()(int64_t i) const {
    const ConvPlan g = this->g;  // a local copy, see ConvPlan
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

// rows[(i, p, q), (r, t, c)] = x[n0 + i, c, p·stride_h − pad_h + r, q·stride_w − pad_w + t]
// (zero in the padding): the unfold with the image's pixels as rows, for the dw gemm's B
// operand, which then packs with plain copies. Its columns run (r, t, c), channels
// innermost, so that one image copied channels-last into a zero-padded [Hp, Wp, C]
// buffer gives each (r, p, q) as one contiguous run of S·C values. One row of the call
// is one image.
struct Im2rowImage {
  const float* x;
  float* rows;
  ConvPlan g;
  int64_t n0;
  GF_INLINE void operator()(int64_t i) const {
    const ConvPlan g = this->g;  // a local copy, see ConvPlan
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

// The adjoint of im2col: dx[n0 + i, c] = Σ over taps (r, t) ascending of the dcols values
// that tap read from each pixel. Each tap's runs are added into a phased accumulator
// (a pixel gets at most one value per tap, so its sum runs over the taps in ascending
// order whatever the layout), which is then cropped into dx. One row of the call is one
// (image, channel) plane.
struct Col2imPlane {
  const float* dcols;
  float* dx;
  ConvPlan g;
  int64_t ld, n0;
  GF_INLINE void operator()(int64_t row) const {
    const ConvPlan g = this->g;  // a local copy, see ConvPlan
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

}  // namespace

void im2col(const float* x, const ConvPlan& g, int64_t n0, int64_t count, float* cols) {
  range_on_active_isa<Loop::rows>(Im2colImage{x, cols, g, g.G * g.PQ, n0}, 0, count);
}

void im2row(const float* x, const ConvPlan& g, int64_t n0, int64_t count, float* rows) {
  rows_cpu(count, kParallelGrain / std::max<int64_t>(g.PQ * g.CRS, 1), Im2rowImage{x, rows, g, n0});
}

void col2im(const float* dcols, const ConvPlan& g, int64_t n0, int64_t count, float* dx) {
  rows_cpu(count * g.s.C, kParallelGrain / std::max<int64_t>(g.HW, 1),
           Col2imPlane{dcols, dx, g, g.G * g.PQ, n0});
}

}  // namespace gf::conv2d_cpu
