// conv2d (CPU): NCHW cross-correlation and its gradients (contract: conv2d.h), the driver.
// It lowers the op to gemm_cpu over groups of images, on the unfolds of unfold.cpp, or for
// a shallow unfold to the direct kernels of shallow.cpp (both declared in conv2d_cpu.h).
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
// themselves. Every sum runs in an order fixed by the shape, never by the threads.
//
// Variants of the forward and dw (common/variants.h, family "conv2d"; dx and db have one
// kernel each):
//   1 unfold_gemm  as above, for any shape
//   2 shallow      shallow_forward and shallow_dw multiply straight from cols into y or a
//                  partial, without gemm; any shape, the default for a shallow unfold
//                  (C·R·S <= kShallow, as conv1's), where gemm would spend more on packing
//                  than on its few multiplies
// The default takes variant 2 for a shallow unfold, variant 1 otherwise.
// A fused activation (leaky_relu, with dropout when p > 0) runs the separate op's kernel in
// place over y after the convolution, as linear does.
// forward and backward run whole groups per thread (one fork per call; with a single
// group the parallelism is inside gemm instead). Workspace: per-thread scratch
// reused across calls (common/scratch.h). Tests: tests/test_conv2d.py;
// tests/test_kernel_variants.py runs both variants.
#include "conv2d/conv2d.h"

#include <algorithm>
#include <cstdint>

#include "common/scratch.h"
#include "common/variants.h"
#include "conv2d/conv2d_cpu.h"
#include "gemm/gemm.h"
#include "leaky_relu/leaky_relu.h"
#include "leaky_relu_dropout/leaky_relu_dropout.h"

namespace gf {
namespace {

using namespace conv2d_cpu;

// Output positions per group: the forward's unfolded group then stays in L2; the
// backward's dw sums one partial per group, so it takes fewer, larger groups. A forward
// feature map of kWidePlane positions or more is already a wide gemm on its own: one
// image per group then writes y directly, without the regrouping copy.
constexpr int64_t kForwardGroupColumns = 512, kBackwardGroupColumns = 1024, kWidePlane = 128;
// The number of groups is a multiple of this (sizes differing by at most one image), so
// 1, 2 or 4 threads get equal shares. It depends only on the shape, never on the thread
// count: dw adds its per-group partials in group order.
constexpr int64_t kGroupAlign = 4;

// Variant 2 (shallow) or 1 (unfold_gemm) for the forward and dw.
bool use_shallow(const ConvPlan& g) {
  const int forced = forced_variant(KernelFamily::conv2d);
  return forced == 0 ? g.CRS <= kShallow : forced == 2;
}

ConvPlan plan(const Conv2dGeometry& geo, int64_t group_columns, int64_t wide_plane) {
  const Conv2dShape& s = geo.s;
  const int64_t PQ = geo.PQ;
  const int64_t most = PQ >= wide_plane ? 1 : std::max<int64_t>(1, group_columns / PQ);
  const int64_t aligned = (s.N + most - 1) / most + kGroupAlign - 1;
  const int64_t groups = std::min(s.N, aligned / kGroupAlign * kGroupAlign);
  const int64_t G = groups > 0 ? (s.N + groups - 1) / groups : 1;
  const int64_t J = (s.W + 2 * s.pad_w + s.stride_w - 1) / s.stride_w;
  return {geo, s.H + 2 * s.pad_h, J, groups, G};
}

// Strides of a run of count images' [K, PQ] planes: batch order is y's [n, K, P, Q];
// group order is gemm's [K, count·PQ].
struct PlaneStrides {
  int64_t image, channel;
};
PlaneStrides batch_order(const ConvPlan& g) { return {g.s.K * g.PQ, g.PQ}; }
PlaneStrides group_order(const ConvPlan& g, int64_t count) { return {g.PQ, count * g.PQ}; }

// Copies every (image, channel) plane of PQ floats from one order to the other.
void copy_planes(const float* src, PlaneStrides from, float* dst, PlaneStrides to,
                 const ConvPlan& g, int64_t count) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t i = 0; i < count; ++i)
    for (int64_t k = 0; k < g.s.K; ++k) {
      const float* plane = src + i * from.image + k * from.channel;
      std::copy(plane, plane + g.PQ, dst + i * to.image + k * to.channel);
    }
}

// db[k] = Σ_n Σ_pq dy[n, k, pq] in double, n then pq ascending.
void bias_grad(const float* dy, const ConvPlan& g, float* db) {
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
                        const Conv2dGeometry& geo, Activation act, float slope, float p,
                        uint64_t seed, std::optional<int64_t> step) {
  const ConvPlan g = plan(geo, kForwardGroupColumns, kWidePlane);
  const Conv2dShape& s = g.s;
  const int64_t groups = g.groups, ldc = g.G * g.PQ;
  const bool shallow = use_shallow(g);
  // Groups are independent: with several, each thread takes whole groups (one fork per
  // call instead of three per group, and the nested im2col/gemm/copy run on one thread);
  // with one, the parallelism is inside instead.
#pragma omp parallel for schedule(static) if (groups > 1)
  for (int64_t group = 0; group < groups; ++group) {
    const int64_t n0 = g.group_start(group), count = g.group_start(group + 1) - n0;
    const int64_t ld = count * g.PQ;
    float* cols = thread_scratch(ScratchSlot::conv_cols, g.CRS * ldc + kRunSlack);
    im2col(x, g, n0, count, cols);
    if (shallow) {
      shallow_forward(cols, ldc, w, b, y + n0 * s.K * g.PQ, g, count);
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
  // The fused activation: the separate op's kernel, in place over all of y (the dropout
  // mask is indexed by y's flat index, so it runs once over the whole batch).
  if (act == Activation::leaky_relu) {
    const int64_t n = s.N * s.K * g.PQ;
    if (p > 0.f)
      leaky_relu_dropout_forward_cpu(y, y, n, slope, p, seed, step);
    else
      leaky_relu_forward_cpu(y, y, n, slope);
  }
}

void conv2d_backward_cpu(const float* dy, const float* x, const float* w, float* dx, float* dw,
                         float* db, const Conv2dGeometry& geo) {
  const ConvPlan g = plan(geo, kBackwardGroupColumns, INT64_MAX);
  const Conv2dShape& s = g.s;
  if (db != nullptr) bias_grad(dy, g, db);
  if (s.N == 0 && dw != nullptr) std::fill(dw, dw + s.K * g.CRS, 0.f);
  if (s.N == 0 || (dw == nullptr && dx == nullptr)) return;
  const int64_t groups = g.groups, ldc = g.G * g.PQ;
  // Each group's dw lands in its own partial (the calling thread's scratch, shared with
  // the team), so the groups can run on any thread and still be added in group order
  // below: from gemm, columns in im2row's (r, t, c) order; from shallow_dw, in dw's.
  const bool shallow = use_shallow(g);
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
      shallow_dw(dy + n0 * s.K * g.PQ, cols, ldc, partial, g, count);
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
