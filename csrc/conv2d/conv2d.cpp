// conv2d (CPU): NCHW cross-correlation and its gradients (contract: conv2d.h) lowered to
// gemm_cpu over groups of images.
//
// A group of G images (G depends only on the shape: about kGroupColumns output positions,
// so small feature maps still give gemm wide matrices) is unfolded by im2col into
// cols [C·R·S, G·P·Q], column (image, p, q). Then, with w viewed as [K, C·R·S]:
//   forward   out[K, G·P·Q] = w · cols (+ b),  scattered to y[n, K, P, Q]
//   dw       dw_g[K, C·R·S] = dy_g · rows, one partial per group (rows = colsᵀ
//            [G·P·Q, C·R·S] is unfolded directly by im2row), then dw = Σ_g dw_g with the
//            groups added in order
//   dx       dcols = wᵀ · dy_g, then col2im adds every tap back into dx in a fixed order
//   db       Σ over n, p, q of dy, in double, n and then p·Q + q ascending
// where dy_g [K, G·P·Q] gathers the group's dy. With G = 1, out and dy_g are y and dy
// themselves. Every sum runs in an order fixed by the shape, never by the threads.
// forward and backward run whole groups per thread (one fork per call; with a single
// group the parallelism is inside gemm instead). Workspace: per-thread scratch
// reused across calls (common/scratch.h). Tests: tests/test_conv2d.py.
#include "conv2d/conv2d.h"

#include <algorithm>

#include "common/cpu_isa.h"
#include "common/parallel.h"
#include "common/scratch.h"
#include "gemm/gemm.h"

namespace gf {
namespace {

constexpr int64_t kGroupColumns = 1024;

struct ConvGeometry {
  Conv2dShape s;
  int64_t P, Q, PQ, CRS;  // output plane, its size, and the depth of the lowered gemm
  int64_t G;              // images per group
};

ConvGeometry geometry(const Conv2dShape& s) {
  const int64_t P = s.P(), Q = s.Q(), PQ = P * Q;
  const int64_t G = std::max<int64_t>(1, std::min(s.N, kGroupColumns / PQ));
  return {s, P, Q, PQ, s.C * s.R * s.S, G};
}

// The unfolds below are gathers through index tables built once per call (on the
// calling thread, read by the whole team): an entry is the offset of the value in its
// source, or -1 where the value is a zero of the padding. The bounds checks then happen
// once per call instead of once per value, and every row of the unfold is one
// vectorisable loop (a gather and a select) on the active SIMD path.

// dst[j] = src[index[j]], zero where index[j] < 0. The load always happens (at offset 0
// for the padding, inside every non-empty source) so the loop needs no mask.
GF_INLINE void gather_row(const float* src, const int32_t* index, int64_t n, float* dst) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const int32_t o = index[j];
    const float v = src[o < 0 ? 0 : o];
    dst[j] = o < 0 ? 0.f : v;
  }
}

// taps[(r·S + t)·PQ + p·Q + q] = h·W + w, the pixel of an input plane under tap (r, t)
// at output (p, q): h = p·stride_h − pad_h + r, w = q·stride_w − pad_w + t.
void build_taps(const ConvGeometry& g, int32_t* taps) {
  const Conv2dShape& s = g.s;
  for (int64_t r = 0; r < s.R; ++r)
    for (int64_t t = 0; t < s.S; ++t)
      for (int64_t p = 0; p < g.P; ++p)
        for (int64_t q = 0; q < g.Q; ++q) {
          const int64_t h = p * s.stride_h - s.pad_h + r, w = q * s.stride_w - s.pad_w + t;
          const bool inside = h >= 0 && h < s.H && w >= 0 && w < s.W;
          taps[((r * s.S + t) * g.P + p) * g.Q + q] = inside ? static_cast<int32_t>(h * s.W + w) : -1;
        }
}

// cols[(c, r, t), (i, p, q)] = x[n0 + i, c] at taps[(r, t), (p, q)]; ld = g.G·PQ. One row
// of the call is one (image, channel, tap): PQ values.
struct Im2colRow {
  const float* x;
  const int32_t* taps;
  float* cols;
  int64_t C, HW, RS, PQ, ld, n0;
  GF_INLINE void operator()(int64_t row) const {
    const int64_t rs = row % RS, c = row / RS % C, i = row / RS / C;
    gather_row(x + ((n0 + i) * C + c) * HW, taps + rs * PQ, PQ, cols + (c * RS + rs) * ld + i * PQ);
  }
};

void im2col(const float* x, const ConvGeometry& g, const int32_t* taps, int64_t n0,
            int64_t count, float* cols) {
  const int64_t RS = g.s.R * g.s.S;
  rows_cpu(count * g.s.C * RS, kParallelGrain / g.PQ,
           Im2colRow{x, taps, cols, g.s.C, g.s.H * g.s.W, RS, g.PQ, g.G * g.PQ, n0});
}

// rows_index[(p, q), (c, r, t)] = c·HW + taps[(r, t), (p, q)] (-1 in the padding): where
// im2row's values sit inside one image.
void build_rows_index(const ConvGeometry& g, const int32_t* taps, int32_t* rows_index) {
  const int64_t RS = g.s.R * g.s.S, HW = g.s.H * g.s.W;
  for (int64_t pq = 0; pq < g.PQ; ++pq)
    for (int64_t c = 0; c < g.s.C; ++c)
      for (int64_t rs = 0; rs < RS; ++rs) {
        const int32_t tap = taps[rs * g.PQ + pq];
        rows_index[pq * g.CRS + c * RS + rs] = tap < 0 ? -1 : static_cast<int32_t>(c * HW + tap);
      }
}

// rows[(i, p, q), (c, r, t)] = cols[(c, r, t), (i, p, q)]: im2col transposed, so that the
// dw gemm reads its B operand (colsᵀ) row-contiguously and packs it with plain copies
// instead of a transposing gather. One row of the call is one (image, output pixel).
struct Im2rowRow {
  const float* x;
  const int32_t* rows_index;
  float* rows;
  int64_t CHW, PQ, CRS, n0;
  GF_INLINE void operator()(int64_t row) const {
    const int64_t i = row / PQ, pq = row % PQ;
    gather_row(x + (n0 + i) * CHW, rows_index + pq * CRS, CRS, rows + row * CRS);
  }
};

void im2row(const float* x, const ConvGeometry& g, const int32_t* rows_index, int64_t n0,
            int64_t count, float* rows) {
  rows_cpu(count * g.PQ, kParallelGrain / std::max<int64_t>(g.CRS, 1),
           Im2rowRow{x, rows_index, rows, g.s.C * g.s.H * g.s.W, g.PQ, g.CRS, n0});
}

// The adjoint of im2col as a gather: input pixel hw of a plane receives one dcols entry
// from each tap (r, t) whose window covers it (at most one output pixel per tap).
// sources[e·HW + hw] = (r·S + t)·ld + p·Q + q of its e-th such tap, taps ascending, -1
// past the last; returns the most taps any pixel has.
int64_t build_col2im_sources(const ConvGeometry& g, const int32_t* taps, int32_t* sources) {
  const int64_t RS = g.s.R * g.s.S, HW = g.s.H * g.s.W, ld = g.G * g.PQ;
  std::fill(sources, sources + RS * HW, -1);
  int64_t most = 0;
  for (int64_t rs = 0; rs < RS; ++rs)
    for (int64_t pq = 0; pq < g.PQ; ++pq) {
      const int32_t hw = taps[rs * g.PQ + pq];
      if (hw < 0) continue;
      int64_t e = 0;
      while (sources[e * HW + hw] >= 0) ++e;
      sources[e * HW + hw] = static_cast<int32_t>(rs * ld + pq);
      most = std::max(most, e + 1);
    }
  return most;
}

// dx[n0 + i, c] = Σ_e of its sources in dcols, e ascending: the same sum, in the same
// order, as adding every tap back into dx with taps ascending. One row of the call is one
// (image, channel) plane.
struct Col2imPlane {
  const float* dcols;
  const int32_t* sources;
  float* dx;
  int64_t C, HW, RS, PQ, ld, n0, most;
  GF_INLINE void operator()(int64_t row) const {
    const int64_t c = row % C, i = row / C;
    const float* src = dcols + c * RS * ld + i * PQ;
    float* plane = dx + ((n0 + i) * C + c) * HW;
    std::fill(plane, plane + HW, 0.f);
    for (int64_t e = 0; e < most; ++e) {
      const int32_t* index = sources + e * HW;
#pragma omp simd
      for (int64_t j = 0; j < HW; ++j) {
        const int32_t o = index[j];
        const float v = src[o < 0 ? 0 : o];
        plane[j] += o < 0 ? 0.f : v;
      }
    }
  }
};

void col2im(const float* dcols, const ConvGeometry& g, const int32_t* sources, int64_t most,
            int64_t n0, int64_t count, float* dx) {
  const int64_t HW = g.s.H * g.s.W;
  rows_cpu(count * g.s.C, kParallelGrain / std::max<int64_t>(HW, 1),
           Col2imPlane{dcols, sources, dx, g.s.C, HW, g.s.R * g.s.S, g.PQ, g.G * g.PQ, n0, most});
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


// The index tables of one call, in the calling thread's scratch. An image without pixels
// (H or W or C zero: all padding) unfolds to zeros without touching x.
struct Unfold {
  const int32_t* taps;        // im2col's
  const int32_t* rows_index;  // im2row's (backward with dw only)
  const int32_t* sources;     // col2im's (backward with dx only)
  int64_t most_sources;
  bool empty_input;
};

Unfold build_unfold(const ConvGeometry& g, bool rows, bool sources) {
  const int64_t RS = g.s.R * g.s.S, HW = g.s.H * g.s.W;
  int32_t* taps = thread_scratch_ints(ScratchSlot::conv_gather, RS * g.PQ + (rows ? g.PQ * g.CRS : 0));
  build_taps(g, taps);
  Unfold u{taps, nullptr, nullptr, 0, g.s.C * HW == 0};
  if (rows) {
    int32_t* rows_index = taps + RS * g.PQ;
    build_rows_index(g, taps, rows_index);
    u.rows_index = rows_index;
  }
  if (sources) {
    int32_t* table = thread_scratch_ints(ScratchSlot::conv_scatter, RS * HW);
    u.most_sources = build_col2im_sources(g, taps, table);
    u.sources = table;
  }
  return u;
}

}  // namespace

void conv2d_forward_cpu(const float* x, const float* w, const float* b, float* y,
                        const Conv2dShape& s) {
  const ConvGeometry g = geometry(s);
  const int64_t groups = (s.N + g.G - 1) / g.G, ldc = g.G * g.PQ;
  const Unfold u = build_unfold(g, false, false);
  // Groups are independent: with several, each thread takes whole groups (one fork per
  // call instead of three per group, and the nested im2col/gemm/copy run on one thread);
  // with one, the parallelism is inside instead.
#pragma omp parallel for schedule(static) if (groups > 1)
  for (int64_t group = 0; group < groups; ++group) {
    const int64_t n0 = group * g.G, count = std::min(g.G, s.N - n0), ld = count * g.PQ;
    float* cols = thread_scratch(ScratchSlot::conv_cols, g.CRS * ldc);
    float* out = g.G > 1 ? thread_scratch(ScratchSlot::conv_grouped, s.K * g.G * g.PQ)
                         : y + n0 * s.K * g.PQ;
    if (u.empty_input)
      std::fill(cols, cols + g.CRS * ldc, 0.f);
    else
      im2col(x, g, u.taps, n0, count, cols);
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
  const ConvGeometry g = geometry(s);
  if (db != nullptr) bias_grad(dy, g, db);
  if (dw != nullptr && s.N == 0) std::fill(dw, dw + s.K * g.CRS, 0.f);
  if (dw == nullptr && dx == nullptr) return;
  const int64_t groups = (s.N + g.G - 1) / g.G, dw_size = s.K * g.CRS, ldc = g.G * g.PQ;
  const Unfold u = build_unfold(g, dw != nullptr, dx != nullptr);
  // Each group's dw lands in its own partial (the calling thread's scratch, shared with the
  // team), so the groups can run on any thread and still be added in group order below.
  float* partials = dw != nullptr && groups > 1
                        ? thread_scratch(ScratchSlot::conv_dw_partials, groups * dw_size)
                        : dw;
#pragma omp parallel for schedule(static) if (groups > 1)
  for (int64_t group = 0; group < groups; ++group) {
    const int64_t n0 = group * g.G, count = std::min(g.G, s.N - n0), ld = count * g.PQ;
    float* cols = thread_scratch(ScratchSlot::conv_cols, g.CRS * ldc);
    const float* dy_g = dy + n0 * s.K * g.PQ;
    if (g.G > 1) {
      float* grouped = thread_scratch(ScratchSlot::conv_grouped, s.K * g.G * g.PQ);
      copy_planes(dy_g, batch_order(g), grouped, group_order(g, count), g, count);
      dy_g = grouped;
    }
    if (dw != nullptr) {
      if (u.empty_input)
        std::fill(cols, cols + ld * g.CRS, 0.f);
      else
        im2row(x, g, u.rows_index, n0, count, cols);
      gemm_cpu(false, false, s.K, g.CRS, ld, 1.f, dy_g, ld, cols, g.CRS, 0.f,
               partials + group * dw_size, g.CRS);
    }
    if (dx != nullptr) {
      gemm_cpu(true, false, g.CRS, ld, s.K, 1.f, w, g.CRS, dy_g, ld, 0.f, cols, ldc);
      col2im(cols, g, u.sources, u.most_sources, n0, count, dx);
    }
  }
  if (dw != nullptr && groups > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < dw_size; ++j) {
      float sum = partials[j];
      for (int64_t group = 1; group < groups; ++group) sum += partials[group * dw_size + j];
      dw[j] = sum;
    }
  }
}

}  // namespace gf
