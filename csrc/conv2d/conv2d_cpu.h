// conv2d's CPU internals (not part of the op's contract, conv2d.h): the plan of one call
// (ConvPlan), and the two mechanisms the driver (conv2d.cpp) combines:
//   unfold.cpp   im2col, im2row and col2im, the unfolds that lower conv2d to gemm
//   shallow.cpp  direct kernels for a shallow unfold (C·R·S <= kShallow), no gemm
#pragma once

#include <cstdint>

#include "conv2d/conv2d.h"

namespace gf::conv2d_cpu {

// The geometry plus the CPU's own layout: the phased planes of the unfolds (unfold.cpp)
// and the image groups of the driver (conv2d.cpp: plan()). The unfold kernels read it
// from a local copy: read through `this`, it could have been changed by any of their
// memcpy stores as far as the compiler knows, and every offset was recomputed per row and
// run (a third of im2col's instructions).
struct ConvPlan : Conv2dGeometry {
  int64_t Hp, J;      // padded input height; columns of one phase of a padded row
  int64_t groups, G;  // image groups, and the most images in one
  int64_t group_start(int64_t group) const { return group * s.N / groups; }
  // Floats of a phased plane, and where tap (r, t)'s first run starts in it (unfold.cpp).
  int64_t phased_size() const { return s.stride_w * Hp * J; }
  int64_t tap_run(int64_t r, int64_t t) const { return ((t % s.stride_w) * Hp + r) * J + t / s.stride_w; }
  int64_t run_step() const { return s.stride_h * J; }  // from a tap's run for p to p + 1
};

// kRunSlack floats after every buffer an unfold run reads (cols, dcols) keep its 8-float
// loads inside the buffer (unfold.cpp).
constexpr int64_t kRunSlack = 8;

// cols[(c, r, t), (i, p, q)] = x[n0 + i, c, p·stride_h − pad_h + r, q·stride_w − pad_w + t]
// for the count images from n0 (zero in the padding); cols' rows are g.G·g.PQ apart.
void im2col(const float* x, const ConvPlan& g, int64_t n0, int64_t count, float* cols);
// rows[(i, p, q), (r, t, c)]: the same values with the pixels as rows, channels innermost.
void im2row(const float* x, const ConvPlan& g, int64_t n0, int64_t count, float* rows);
// The adjoint of im2col: dx[n0 + i] for i < count = Σ over taps of the dcols values each
// tap read from each pixel, in ascending tap order.
void col2im(const float* dcols, const ConvPlan& g, int64_t n0, int64_t count, float* dx);

// An unfold at most this deep (C·R·S; conv1's is 9) takes the shallow kernels.
constexpr int64_t kShallow = 16;

// y[n0 + i, k, pq] = Σ_j w[k, j]·cols[j, (i, pq)] (+ b[k]) for i < count, from the group's
// im2col (rows ld apart); y points at image n0.
void shallow_forward(const float* cols, int64_t ld, const float* w, const float* b, float* y,
                     const ConvPlan& g, int64_t count);
// partial[k, j] = Σ over the group's images and pixels of dy[n0 + i, k, pq]·cols[j, (i, pq)],
// dy pointing at image n0, cols the group's im2col (rows ld apart); partial is [K, C·R·S].
void shallow_dw(const float* dy, const float* cols, int64_t ld, float* partial,
                const ConvPlan& g, int64_t count);

}  // namespace gf::conv2d_cpu
