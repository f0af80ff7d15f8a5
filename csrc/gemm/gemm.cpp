// gemm (CPU): C = alpha·op(A)·op(B) + beta·C, row-major float32 (contract: gemm.h).
//
// GotoBLAS/BLIS design. C is cut into mc × nc blocks, one OpenMP task each (static
// schedule). A task walks K in fixed kKC steps: it packs op(A)[mc × kc] into MR-row
// panels and op(B)[kc × nc] into NR-column panels (zero-padded at the edges, so the
// micro-kernel never branches), then runs an MR × NR register-blocked micro-kernel over
// every panel pair; the A panel stays in L1 while the B panels stream from L2.
// Deterministic: every element of C is summed over k in the same kKC steps whatever the
// block split, so only mc and nc adapt to the thread count, never the order of a sum.
//
// Variants (common/variants.h, family "gemm"; each one adds to the one before, the last
// is the default; all sum each element of C over k in the same order):
//   1 full_tiles     every panel through the full MR × NR micro-tile, zero-padded
//   2 narrow_tail    + a half-width tile (one vector of columns) for a last panel that
//                    narrow: half the work there (the generator's 784 outputs on AVX-512
//                    end in a 16-column panel)
//   3 column_as_row  + a single-column C (matrix·vector) computed as the row
//                    Cᵀ = op(B)ᵀ·op(A)ᵀ, which fills the tile's vectors instead of one
//                    lane of each
// SIMD paths: one micro-kernel template (GCC vector extensions) compiled three times and
// picked by active_cpu_isa() (common/cpu_isa.h; gan_fast.set_cpu_isa forces one):
//   avx512  16-lane vectors, 8 × 32 tile  (16 zmm accumulators)
//   avx2    8-lane vectors,  6 × 16 tile  (12 ymm accumulators), FMA
//   scalar  4-lane vectors,  4 × 8 tile   (SSE2 on x86-64; plain scalar code elsewhere)
// Panels whose rows run along k are packed through 8 × 8 register transposes
// (common/transpose.h). `acc += a * b` on vectors becomes one FMA where the target has
// it: -std=gnu++17 (the CMake default) implies -ffp-contract=fast.
// Tests: tests/test_kernel_variants.py runs every variant on every SIMD path the CPU
// allows; tests/test_linear.py and tests/test_conv2d.py every SIMD path.
// Benchmark: python benchmarks/gemm_table.py (against OpenBLAS at the model's shapes).
#include "gemm/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "common/cpu_isa.h"
#include "common/scratch.h"
#include "common/transpose.h"
#include "common/variants.h"

namespace gf {
namespace {

constexpr int64_t kKC = 256;  // K step: fixed, so the order of every sum is fixed
constexpr int64_t kMC = 128;  // rows of a C block (rounded up to a multiple of MR)
constexpr int64_t kNC = 512;  // columns of a C block; kKC × kNC packed B = 512 KiB, in L2
// Below this many flops one thread finishes before a second one would have started.
constexpr double kMinParallelFlops = 1 << 18;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// One call's operands with the transposes resolved into strides:
// op(A)(i, k) = A[i·a_si + k·a_sk],  op(B)(k, j) = B[k·b_sk + j·b_sj].
struct GemmArgs {
  int64_t M, N, K;
  float alpha, beta;
  const float* A;
  int64_t a_si, a_sk;
  const float* B;
  int64_t b_sk, b_sj;
  float* C;
  int64_t ldc;
  bool narrow_tail;  // variant 2: a last panel of at most one vector's columns, half-width
};

struct Block {
  int64_t i0, mc, j0, nc;
};

// dst[k·R + r] = src[r·sx + k] for r < R (a multiple of 8), k < kc: a panel whose rows
// are contiguous along k, transposed 8 × 8 at a time in registers; the last kc % 8
// columns element by element.
template <int R>
GF_INLINE void pack_transposed(const float* src, int64_t sx, int64_t kc, float* dst) {
  int64_t k = 0;
  for (; k + 8 <= kc; k += 8)
    for (int r0 = 0; r0 < R; r0 += 8) transpose_8x8(src + r0 * sx + k, sx, dst + k * R + r0, R);
  for (; k < kc; ++k)
    for (int r = 0; r < R; ++r) dst[k * R + r] = src[r * sx + k];
}

// Packs src(x, k) = src[x·sx + k·sk] for x < width, k < kc into panels of R consecutive
// x: panel p holds dst[p·R·kc + k·R + r] = src(p·R + r, k), zero for x >= width.
template <int R>
GF_INLINE void pack_panels(const float* src, int64_t sx, int64_t sk, int64_t width, int64_t kc,
                           float* dst) {
  for (int64_t x0 = 0; x0 < width; x0 += R, dst += R * kc) {
    const int64_t live = std::min<int64_t>(R, width - x0);
    const float* panel = src + x0 * sx;
    if (sx == 1 && live == R) {  // a whole panel: R contiguous floats per k
      for (int64_t k = 0; k < kc; ++k) std::memcpy(dst + k * R, panel + k * sk, R * sizeof(float));
    } else if (sx == 1) {  // a panel's R values at one k are contiguous in src
      for (int64_t k = 0; k < kc; ++k)
        for (int r = 0; r < R; ++r) dst[k * R + r] = r < live ? panel[k * sk + r] : 0.f;
    } else if (sk == 1 && live == R && R % 8 == 0) {  // rows contiguous along k
      pack_transposed<R>(panel, sx, kc, dst);
    } else {  // walk each x along k, where src is contiguous (or at least shorter-strided)
      for (int r = 0; r < R; ++r)
        for (int64_t k = 0; k < kc; ++k) dst[k * R + r] = r < live ? panel[r * sx + k * sk] : 0.f;
    }
  }
}

// C[m × n] (m <= MR, n <= NR) = alpha · Ap·Bp + beta · C over one kc-deep panel pair;
// beta == 0 never reads C.
// The B panel's rows are BS floats apart: NR, or a full panel's width when a narrow tile
// (NV = 1) covers the last few columns of one.
template <int W, int MR, int NV, int BS = W * NV>
GF_INLINE void micro_tile(int64_t kc, const float* Ap, const float* Bp, float alpha, float beta,
                          float* C, int64_t ldc, int64_t m, int64_t n) {
  using V = typename FloatVec<W>::type;
  constexpr int NR = W * NV;
  V acc[MR][NV] = {};
  for (int64_t k = 0; k < kc; ++k, Ap += MR, Bp += BS) {
    V b[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) std::memcpy(&b[v], Bp + v * W, sizeof(V));
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const float a = Ap[i];
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] += a * b[v];
    }
  }
  if (m == MR && n == NR) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        float* c = C + i * ldc + v * W;
        V r = alpha * acc[i][v];
        if (beta != 0.f) {
          V old;
          std::memcpy(&old, c, sizeof(V));
          r += beta * old;
        }
        std::memcpy(c, &r, sizeof(V));
      }
    }
    return;
  }
  float tile[MR * NR];
  std::memcpy(tile, acc, sizeof(tile));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float& c = C[i * ldc + j];
      c = beta == 0.f ? alpha * tile[i * NR + j] : alpha * tile[i * NR + j] + beta * c;
    }
}

// One C block over all of K. Ap and Bp hold round_up(mc, MR)·kKC and round_up(nc, NR)·kKC floats.
template <int W, int MR, int NV>
GF_INLINE void gemm_block(const GemmArgs& g, const Block& blk, float* Ap, float* Bp) {
  constexpr int NR = W * NV;
  for (int64_t p0 = 0; p0 < g.K; p0 += kKC) {
    const int64_t kc = std::min(kKC, g.K - p0);
    pack_panels<MR>(g.A + blk.i0 * g.a_si + p0 * g.a_sk, g.a_si, g.a_sk, blk.mc, kc, Ap);
    pack_panels<NR>(g.B + p0 * g.b_sk + blk.j0 * g.b_sj, g.b_sj, g.b_sk, blk.nc, kc, Bp);
    const float beta = p0 == 0 ? g.beta : 1.f;  // later K steps accumulate onto the first
    for (int64_t i = 0; i < blk.mc; i += MR)
      for (int64_t j = 0; j < blk.nc; j += NR) {
        const int64_t m = std::min<int64_t>(MR, blk.mc - i), n = std::min<int64_t>(NR, blk.nc - j);
        float* c = g.C + (blk.i0 + i) * g.ldc + blk.j0 + j;
        if (NV > 1 && n <= W && g.narrow_tail)  // a last panel that narrow: half the work
          micro_tile<W, MR, 1, NR>(kc, Ap + i * kc, Bp + j * kc, g.alpha, beta, c, g.ldc, m, n);
        else
          micro_tile<W, MR, NV>(kc, Ap + i * kc, Bp + j * kc, g.alpha, beta, c, g.ldc, m, n);
      }
  }
}

GF_TARGET_AVX512 void gemm_block_avx512(const GemmArgs& g, const Block& b, float* Ap, float* Bp) {
  gemm_block<16, 8, 2>(g, b, Ap, Bp);
}
GF_TARGET_AVX2 void gemm_block_avx2(const GemmArgs& g, const Block& b, float* Ap, float* Bp) {
  gemm_block<8, 6, 2>(g, b, Ap, Bp);
}
void gemm_block_scalar(const GemmArgs& g, const Block& b, float* Ap, float* Bp) {
  gemm_block<4, 4, 2>(g, b, Ap, Bp);
}

struct Kernel {
  int64_t mr, nr;
  void (*block)(const GemmArgs&, const Block&, float*, float*);
};

// Indexed by CpuIsa.
constexpr Kernel kKernels[] = {
    {8, 32, gemm_block_avx512},
    {6, 16, gemm_block_avx2},
    {4, 8, gemm_block_scalar},
};

const Kernel& active_kernel() { return kKernels[static_cast<int>(active_cpu_isa())]; }

// C = beta·C, the whole answer when K == 0.
void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.f ? 0.f : beta * C[i * ldc + j];
}

// Cᵀ = op(B)ᵀ·op(A)ᵀ. A contiguous single column C (a matrix-vector product) becomes a
// contiguous row, which fills the micro-kernel's vectors instead of one lane of each.
GemmArgs transposed(const GemmArgs& g) {
  return {g.N, g.M, g.K, g.alpha, g.beta, g.B, g.b_sj, g.b_sk, g.A, g.a_sk, g.a_si, g.C, g.M,
          g.narrow_tail};
}

// Block sizes: at most cache-sized, split evenly (a 128-row C is two 64-row blocks, not
// 96 + 32, which would leave one thread idle for half the call), then halved until every
// thread has about two blocks.
int64_t even_split(int64_t extent, int64_t cap, int64_t unit) {
  return round_up(ceil_div(extent, ceil_div(extent, cap)), unit);
}

Block block_shape(int64_t M, int64_t N, const Kernel& k, int threads) {
  int64_t mc = even_split(M, kMC, k.mr), nc = even_split(N, kNC, k.nr);
  while (threads > 1 && ceil_div(M, mc) * ceil_div(N, nc) < 2 * threads) {
    if (nc >= 4 * k.nr)
      nc = round_up(nc / 2, k.nr);
    else if (mc >= 2 * k.mr)
      mc = round_up(mc / 2, k.mr);
    else
      break;
  }
  return {0, mc, 0, nc};
}

}  // namespace

void gemm_cpu(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
              int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return scale_c(M, N, beta, C, ldc);
  const int variant = forced_variant(KernelFamily::gemm);  // 0: auto, the last
  GemmArgs g{M, N, K, alpha, beta,
             A, trans_a ? 1 : lda, trans_a ? lda : 1,
             B, trans_b ? 1 : ldb, trans_b ? ldb : 1,
             C, ldc, variant == 0 || variant >= 2};
  if (N == 1 && ldc == 1 && (variant == 0 || variant >= 3)) g = transposed(g);
  const Kernel& kern = active_kernel();
  const bool worth_threads = 2.0 * M * N * K >= kMinParallelFlops && !omp_in_parallel();
  const int threads = worth_threads ? omp_get_max_threads() : 1;
  const Block shape = block_shape(g.M, g.N, kern, threads);
  const int64_t mblocks = ceil_div(g.M, shape.mc), nblocks = ceil_div(g.N, shape.nc);
  const int64_t team = std::min<int64_t>(threads, mblocks * nblocks);
  const int64_t kc = std::min(K, kKC);
  const int64_t a_size = round_up(shape.mc, kern.mr) * kc, b_size = round_up(shape.nc, kern.nr) * kc;
  const int64_t slice = round_up(a_size + b_size, 16);  // keeps each slice 64-byte aligned
  float* scratch = thread_scratch(ScratchSlot::gemm_pack, slice * team);
  const auto run_block = [&](int64_t t, float* Ap) {
    const int64_t i0 = (t / nblocks) * shape.mc, j0 = (t % nblocks) * shape.nc;
    const Block blk{i0, std::min(shape.mc, g.M - i0), j0, std::min(shape.nc, g.N - j0)};
    kern.block(g, blk, Ap, Ap + a_size);
  };
  if (team == 1) {  // no OpenMP region at all: conv2d calls small gemms by the thousand
    for (int64_t t = 0; t < mblocks * nblocks; ++t) run_block(t, scratch);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(team)
  for (int64_t t = 0; t < mblocks * nblocks; ++t) run_block(t, scratch + slice * omp_get_thread_num());
}

}  // namespace gf
