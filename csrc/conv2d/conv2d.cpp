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

// cols[(c, r, t), (i, p, q)] = x[n0 + i, c, p·stride_h − pad_h + r, q·stride_w − pad_w + t],
// zero where that falls in the padding; ld = g·PQ.
void im2col(const float* x, const ConvGeometry& g, int64_t n0, int64_t count, float* cols) {
  const Conv2dShape& s = g.s;
  const int64_t ld = count * g.PQ;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t i = 0; i < count; ++i)
    for (int64_t c = 0; c < s.C; ++c) {
      const float* plane = x + ((n0 + i) * s.C + c) * s.H * s.W;
      for (int64_t r = 0; r < s.R; ++r)
        for (int64_t t = 0; t < s.S; ++t) {
          float* dst = cols + ((c * s.R + r) * s.S + t) * ld + i * g.PQ;
          for (int64_t p = 0; p < g.P; ++p) {
            const int64_t h = p * s.stride_h - s.pad_h + r;
            const bool row_inside = h >= 0 && h < s.H;
            for (int64_t q = 0; q < g.Q; ++q) {
              const int64_t w = q * s.stride_w - s.pad_w + t;
              dst[p * g.Q + q] = row_inside && w >= 0 && w < s.W ? plane[h * s.W + w] : 0.f;
            }
          }
        }
    }
}

// rows[(i, p, q), (c, r, t)] = cols[(c, r, t), (i, p, q)]: im2col transposed, so that the
// dw gemm reads its B operand (colsᵀ) row-contiguously and packs it with plain copies
// instead of a transposing gather.
void im2row(const float* x, const ConvGeometry& g, int64_t n0, int64_t count, float* rows) {
  const Conv2dShape& s = g.s;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t i = 0; i < count; ++i)
    for (int64_t p = 0; p < g.P; ++p) {
      const float* image = x + (n0 + i) * s.C * s.H * s.W;
      for (int64_t q = 0; q < g.Q; ++q) {
        float* dst = rows + ((i * g.P + p) * g.Q + q) * g.CRS;
        for (int64_t c = 0; c < s.C; ++c)
          for (int64_t r = 0; r < s.R; ++r) {
            const int64_t h = p * s.stride_h - s.pad_h + r;
            const bool row_inside = h >= 0 && h < s.H;
            for (int64_t t = 0; t < s.S; ++t) {
              const int64_t w = q * s.stride_w - s.pad_w + t;
              *dst++ = row_inside && w >= 0 && w < s.W ? image[(c * s.H + h) * s.W + w] : 0.f;
            }
          }
      }
    }
}

// The adjoint of im2col: dx[n0 + i, c] = Σ over (r, t, p, q) of the matching dcols entry,
// taps in ascending (r, t, p, q) order; each (image, channel) plane is one thread's.
void col2im(const float* dcols, const ConvGeometry& g, int64_t n0, int64_t count, float* dx) {
  const Conv2dShape& s = g.s;
  const int64_t ld = count * g.PQ;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t i = 0; i < count; ++i)
    for (int64_t c = 0; c < s.C; ++c) {
      float* plane = dx + ((n0 + i) * s.C + c) * s.H * s.W;
      std::fill(plane, plane + s.H * s.W, 0.f);
      for (int64_t r = 0; r < s.R; ++r)
        for (int64_t t = 0; t < s.S; ++t) {
          const float* src = dcols + ((c * s.R + r) * s.S + t) * ld + i * g.PQ;
          for (int64_t p = 0; p < g.P; ++p) {
            const int64_t h = p * s.stride_h - s.pad_h + r;
            if (h < 0 || h >= s.H) continue;
            for (int64_t q = 0; q < g.Q; ++q) {
              const int64_t w = q * s.stride_w - s.pad_w + t;
              if (w >= 0 && w < s.W) plane[h * s.W + w] += src[p * g.Q + q];
            }
          }
        }
    }
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
  const ConvGeometry g = geometry(s);
  const int64_t groups = (s.N + g.G - 1) / g.G;
  // Groups are independent: with several, each thread takes whole groups (one fork per
  // call instead of three per group, and the nested im2col/gemm/copy run on one thread);
  // with one, the parallelism is inside instead.
#pragma omp parallel for schedule(static) if (groups > 1)
  for (int64_t group = 0; group < groups; ++group) {
    const int64_t n0 = group * g.G, count = std::min(g.G, s.N - n0), ld = count * g.PQ;
    float* cols = thread_scratch(ScratchSlot::conv_cols, g.CRS * g.G * g.PQ);
    float* out = g.G > 1 ? thread_scratch(ScratchSlot::conv_grouped, s.K * g.G * g.PQ)
                         : y + n0 * s.K * g.PQ;
    im2col(x, g, n0, count, cols);
    if (b != nullptr)
      for (int64_t k = 0; k < s.K; ++k) std::fill(out + k * ld, out + (k + 1) * ld, b[k]);
    gemm_cpu(false, false, s.K, ld, g.CRS, 1.f, w, g.CRS, cols, ld,
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
  const int64_t groups = (s.N + g.G - 1) / g.G, dw_size = s.K * g.CRS;
  // Each group's dw lands in its own partial (the calling thread's scratch, shared with the
  // team), so the groups can run on any thread and still be added in group order below.
  float* partials = dw != nullptr && groups > 1
                        ? thread_scratch(ScratchSlot::conv_dw_partials, groups * dw_size)
                        : dw;
#pragma omp parallel for schedule(static) if (groups > 1)
  for (int64_t group = 0; group < groups; ++group) {
    const int64_t n0 = group * g.G, count = std::min(g.G, s.N - n0), ld = count * g.PQ;
    float* cols = thread_scratch(ScratchSlot::conv_cols, g.CRS * g.G * g.PQ);
    const float* dy_g = dy + n0 * s.K * g.PQ;
    if (g.G > 1) {
      float* grouped = thread_scratch(ScratchSlot::conv_grouped, s.K * g.G * g.PQ);
      copy_planes(dy_g, batch_order(g), grouped, group_order(g, count), g, count);
      dy_g = grouped;
    }
    if (dw != nullptr) {
      im2row(x, g, n0, count, cols);
      gemm_cpu(false, false, s.K, g.CRS, ld, 1.f, dy_g, ld, cols, g.CRS, 0.f,
               partials + group * dw_size, g.CRS);
    }
    if (dx != nullptr) {
      gemm_cpu(true, false, g.CRS, ld, s.K, 1.f, w, g.CRS, dy_g, ld, 0.f, cols, ld);
      col2im(cols, g, n0, count, dx);
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
