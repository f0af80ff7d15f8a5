// gemm_cuda: C = alpha·op(A)·op(B) + beta·C, row-major float32 (contract in gemm.h).
//
// Variants (common/variants.h, family "gemm_cuda"; the default picks by shape):
//   1 one_pass     one kernel over all of K, 64×64 tiles of C
//   2 split_k      the K range cut into slices summed in a second kernel
//   3 small_tiles  variant 1 with 32×32 tiles
//
// Variant 1: one kernel, instantiated for the four (trans_a, trans_b) pairs: a 256-thread
// block owns a 64×64 tile of C and walks K in slices of 16. Each slice of op(A) (64×16) and
// op(B) (16×64) is staged in shared memory, zero-filled outside the matrices so any M, N, K
// works; each thread then accumulates a 4×4 micro-tile of C in registers with float32 FMAs.
// Every element of C is summed k = 0, 1, ..., K−1 by one thread: no atomics, bitwise
// repeatable.
//
// Variant 2, split-K, for products whose C has too few tiles to fill the GPU but a long K
// (conv1's weight gradient: C is 64×9, K = N·196; the 6272→1 head: C is N×1): the grid
// gains a z dimension of S slices, slice z sums its own range of K into a [S, M, N]
// workspace, and a second kernel adds the S partials in slice order and applies alpha and
// beta. Forced, it splits every product with K > kBK into at least two slices.
//
// Variant 3, the same kernel with 32×32 tiles (64 threads, the same 4×4 micro-tile per
// thread), for products with too few 64×64 tiles but a short K: conv2's forward at batch 64
// (the generator step's 64 → 128 convolution, C = 128 × 64·49, K = 576) has 98 tiles for 132
// SMs, which variant 2 would cut into 2 slices (196 blocks, a workspace and a second launch);
// variant 3 runs it as 392 blocks in one pass. Each element of C is still summed k = 0..K−1
// by one thread, so variants 1 and 3 give bitwise the same C.
//
// The default (gemm_plan): one pass on 64×64 tiles when they are enough (>= kTargetBlocks/4);
// else, when K is short enough that split-K would cut it into at most 2 slices and the 32×32
// tiles are enough, variant 3; else split-K. The choice depends only on M, N, K (never on
// the device), so results stay bitwise repeatable, also across GPUs. Not timed yet (no GPU
// when variant 3 was written): benchmarks/perf/cases.py times conv2's forward against the
// forced variants 1 and 2. Tested through linear and conv2d (tests/test_linear.py,
// tests/test_conv2d.py) against gan_fast.reference; tests/test_kernel_variants.py forces
// each variant, and checks variants 1 and 3 bitwise equal.
//
// Epilogue (gemm.h's GemmEpilogue): whichever kernel writes C (the tile kernel, or the
// slice sum after a split-K product) computes each value's place (offset) and passes the
// value through an epilogue functor, a template parameter: StoreAsIs for every product
// without one (the same code as before the epilogue existed), FusedEpilogue for linear's
// bias and activation and for conv2d's bias, activation, dropout and NCHW layout.
#include "gemm/gemm.h"

#include "common/cuda_launch.cuh"
#include "common/variants.h"
#include "dropout/dropout.h"
#include "leaky_relu/leaky_relu.h"

namespace gf {

namespace {

constexpr int kBK = 16;   // depth of one shared-memory slice
constexpr int kTM = 4;    // rows of C per thread
constexpr int kTN = 4;    // columns of C per thread
// Row padding of the shared tiles: breaks the 16-way bank conflicts of the stores from a
// K-contiguous operand (to 2-way) and keeps rows 16-byte aligned for the float4 reads.
constexpr int kPad = 4;

static_assert(kTM == 4 && kTN == 4, "the inner loop reads the micro-tile as one float4");

// A block's tile of C: kM × kN, one kTM × kTN micro-tile per thread.
template <int BM, int BN>
struct Tile {
  static constexpr int kM = BM, kN = BN;
  static constexpr int threads = (BM / kTM) * (BN / kTN);
  static_assert(BM % kTM == 0 && BN % kTN == 0, "whole micro-tiles");
  static_assert((BM * kBK) % threads == 0 && (kBK * BN) % threads == 0,
                "tile loads split evenly over the threads");
  static_assert((BM + kPad) % 4 == 0 && (BN + kPad) % 4 == 0, "float4-aligned shared rows");
};
using WideTile = Tile<64, 64>;   // 256 threads: variants 1 and 2
using SmallTile = Tile<32, 32>;  // 64 threads: variant 3

template <class T>
int64_t tiles_of(int64_t M, int64_t N) {
  return ((M + T::kM - 1) / T::kM) * ((N + T::kN - 1) / T::kN);
}

// Where C[m, n] goes and what is stored there, given v = alpha·(A·B)[m, n] + beta·C at that
// place. StoreAsIs: every product without an epilogue, and split-K's partial products.
struct StoreAsIs {
  __device__ __forceinline__ int64_t offset(int64_t m, int64_t n, int64_t, int64_t ldc) const {
    return m * ldc + n;
  }
  __device__ __forceinline__ float operator()(float v, int64_t, int64_t, int64_t) const {
    return v;
  }
};

// gemm.h's epilogue, applied in the order gemm.h gives.
struct FusedEpilogue {
  GemmEpilogue e;
  float keep_scale;  // dropout_scale(e.dropout_p), computed once on the host as the ops do
  __device__ __forceinline__ int64_t offset(int64_t m, int64_t n, int64_t M, int64_t ldc) const {
    if (e.plane == 0) return m * ldc + n;
    return ((n / e.plane) * M + m) * e.plane + n % e.plane;  // y[n / PQ, m, n % PQ]
  }
  __device__ __forceinline__ float operator()(float v, int64_t m, int64_t n, int64_t at) const {
    if (e.bias != nullptr) v += e.bias[e.plane == 0 ? n : m];
    switch (e.activation) {
      case Activation::tanh: v = tanhf(v); break;  // as tanh_forward_cuda computes it
      case Activation::leaky_relu: v = leaky_relu(v, e.slope); break;
      default: break;
    }
    if (e.dropout_p > 0.f) {  // as dropout/dropout_launch.cuh keys the mask
      const uint64_t seed = e.dropout_step != nullptr
                                ? dropout_step_seed(e.dropout_seed, *e.dropout_step)
                                : e.dropout_seed;
      v = dropout_apply(v, seed, static_cast<uint64_t>(at), e.dropout_p, keep_scale);
    }
    return v;
  }
};

template <class T, bool kTransA, bool kTransB, class Epilogue>
__global__ void __launch_bounds__(T::threads)
    gemm_kernel(int64_t M, int64_t N, int64_t K, int64_t k_slice, float alpha,
                const float* __restrict__ A, int64_t lda, const float* __restrict__ B,
                int64_t ldb, float beta, float* __restrict__ C, int64_t ldc,
                int64_t c_slice_stride, Epilogue epilogue) {
  constexpr int BM = T::kM, BN = T::kN, kBlock = T::threads;
  __shared__ __align__(16) float As[kBK][BM + kPad];  // As[k][m] = op(A)[m0 + m][k0 + k]
  __shared__ __align__(16) float Bs[kBK][BN + kPad];  // Bs[k][n] = op(B)[k0 + k][n0 + n]

  const int tid = threadIdx.x;
  const int tx = tid % (BN / kTN);  // this thread's columns: tx·4 .. tx·4+3 of the tile
  const int ty = tid / (BN / kTN);  // this thread's rows:    ty·4 .. ty·4+3 of the tile
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * BM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * BN;

  // This block's range of K: all of it, or slice blockIdx.z of a split-K product.
  const int64_t k_begin = static_cast<int64_t>(blockIdx.z) * k_slice;
  const int64_t k_end = k_begin + k_slice < K ? k_begin + k_slice : K;
  C += static_cast<int64_t>(blockIdx.z) * c_slice_stride;

  float acc[kTM][kTN] = {};

  for (int64_t k0 = k_begin; k0 < k_end; k0 += kBK) {
    // Stage the slices. Consecutive threads take consecutive addresses of whichever
    // dimension is contiguous in global memory, so the loads coalesce.
#pragma unroll
    for (int e = tid; e < BM * kBK; e += kBlock) {
      // op(A)ᵀ stored: A is [K, M], m contiguous; otherwise A is [M, K], k contiguous.
      const int m = kTransA ? e % BM : e / kBK;
      const int k = kTransA ? e / BM : e % kBK;
      const int64_t gm = m0 + m, gk = k0 + k;
      float v = 0.f;
      if (gm < M && gk < k_end) v = kTransA ? A[gk * lda + gm] : A[gm * lda + gk];
      As[k][m] = v;
    }
#pragma unroll
    for (int e = tid; e < kBK * BN; e += kBlock) {
      // op(B)ᵀ stored: B is [N, K], k contiguous; otherwise B is [K, N], n contiguous.
      const int n = kTransB ? e / kBK : e % BN;
      const int k = kTransB ? e % kBK : e / BN;
      const int64_t gn = n0 + n, gk = k0 + k;
      float v = 0.f;
      if (gn < N && gk < k_end) v = kTransB ? B[gn * ldb + gk] : B[gk * ldb + gn];
      Bs[k][n] = v;
    }
    __syncthreads();

#pragma unroll
    for (int k = 0; k < kBK; ++k) {
      const float4 a4 = *reinterpret_cast<const float4*>(&As[k][ty * kTM]);
      const float4 b4 = *reinterpret_cast<const float4*>(&Bs[k][tx * kTN]);
      const float a[kTM] = {a4.x, a4.y, a4.z, a4.w};
      const float b[kTN] = {b4.x, b4.y, b4.z, b4.w};
#pragma unroll
      for (int i = 0; i < kTM; ++i)
#pragma unroll
        for (int j = 0; j < kTN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();  // the next slice overwrites As / Bs
  }

#pragma unroll
  for (int i = 0; i < kTM; ++i) {
    const int64_t gm = m0 + ty * kTM + i;
    if (gm >= M) continue;
#pragma unroll
    for (int j = 0; j < kTN; ++j) {
      const int64_t gn = n0 + tx * kTN + j;
      if (gn >= N) continue;
      const int64_t at = epilogue.offset(gm, gn, M, ldc);
      // beta == 0 must not read C: it may hold NaN (e.g. a fresh, poisoned output).
      C[at] = epilogue(beta == 0.f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * C[at], gm,
                       gn, at);
    }
  }
}

template <class Epilogue>
using GemmKernel = void (*)(int64_t, int64_t, int64_t, int64_t, float, const float*, int64_t,
                            const float*, int64_t, float, float*, int64_t, int64_t, Epilogue);

// C[m, n] = alpha·Σ_s partial[s, m, n] + beta·C[m, n], the slices added in order s = 0..S−1.
template <class Epilogue>
__global__ void sum_slices_kernel(int64_t M, int64_t N, int64_t slices, float alpha,
                                  const float* __restrict__ partial, float beta,
                                  float* __restrict__ C, int64_t ldc, Epilogue epilogue) {
  const int64_t mn = M * N, step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < mn;
       i += step) {
    float sum = 0.f;
    for (int64_t s = 0; s < slices; ++s) sum += partial[s * mn + i];
    const int64_t m = i / N, n = i % N, at = epilogue.offset(m, n, M, ldc);
    C[at] = epilogue(beta == 0.f ? alpha * sum : alpha * sum + beta * C[at], m, n, at);
  }
}

// Enough blocks for a few waves on any current GPU; a constant, so the split (and with it
// the summation order) never depends on the device.
constexpr int64_t kTargetBlocks = 512;
constexpr int64_t kMinSlice = 256;  // shorter slices cost more in the partial sums than they gain

// How a product runs: on which tiles, and in how many K slices (1: no split).
struct GemmPlan {
  bool small_tiles;
  int64_t slices;
};

GemmPlan gemm_plan(int64_t M, int64_t N, int64_t K) {
  const int64_t tiles = tiles_of<WideTile>(M, N);
  switch (forced_variant(KernelFamily::gemm_cuda)) {
    case 1: return {false, 1};
    case 2:  // K == 0 has nothing to split
      return {false, K > 0 ? std::max<int64_t>(
                                 2, std::min<int64_t>(K / kMinSlice, kTargetBlocks / tiles))
                           : 1};
    case 3: return {true, 1};
    default: break;
  }
  if (tiles >= kTargetBlocks / 4) return {false, 1};
  const int64_t slices =
      std::max<int64_t>(1, std::min<int64_t>(K / kMinSlice, kTargetBlocks / tiles));
  if (slices <= 2 && tiles_of<SmallTile>(M, N) >= kTargetBlocks / 4) return {true, 1};
  return {false, slices};
}

template <class T, class Epilogue>
GemmKernel<Epilogue> gemm_kernel_for(bool trans_a, bool trans_b) {
  static constexpr GemmKernel<Epilogue> kernels[2][2] = {
      {gemm_kernel<T, false, false, Epilogue>, gemm_kernel<T, false, true, Epilogue>},
      {gemm_kernel<T, true, false, Epilogue>, gemm_kernel<T, true, true, Epilogue>}};
  return kernels[trans_a][trans_b];
}

// One launch of the tile kernel over all of C, in `slices` slices of k_slice (the z
// dimension of the grid; C of slice z starts c_slice_stride floats after C).
template <class T, class Epilogue>
void launch_tiles(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, int64_t k_slice,
                  int64_t slices, float alpha, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float beta, float* C, int64_t ldc, int64_t c_slice_stride,
                  cudaStream_t st, Epilogue epilogue) {
  const int64_t grid_m = (M + T::kM - 1) / T::kM, grid_n = (N + T::kN - 1) / T::kN;
  GF_CHECK(grid_m <= 65535 && grid_n <= 0x7fffffff && slices <= 65535,
           "gemm_cuda: matrix too large for one grid");
  const dim3 grid(static_cast<unsigned>(grid_n), static_cast<unsigned>(grid_m),
                  static_cast<unsigned>(slices));
  gemm_kernel_for<T, Epilogue>(trans_a, trans_b)<<<grid, T::threads, 0, st>>>(
      M, N, K, k_slice, alpha, A, lda, B, ldb, beta, C, ldc, c_slice_stride, epilogue);
  GF_CUDA_CHECK_LAUNCH();
}

template <class Epilogue>
void gemm_launch(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                 int64_t ldc, cudaStream_t st, Epilogue epilogue) {
  const GemmPlan plan = gemm_plan(M, N, K);
  if (plan.slices == 1) {
    if (plan.small_tiles)
      launch_tiles<SmallTile>(trans_a, trans_b, M, N, K, K, 1, alpha, A, lda, B, ldb, beta, C,
                              ldc, 0, st, epilogue);
    else
      launch_tiles<WideTile>(trans_a, trans_b, M, N, K, K, 1, alpha, A, lda, B, ldb, beta, C,
                             ldc, 0, st, epilogue);
    return;
  }
  // Slices are whole multiples of the shared-memory depth, so only the last is ragged. The
  // partial products are stored as they are; the epilogue runs in the slice sum.
  const int64_t k_slice = ((K + plan.slices - 1) / plan.slices + kBK - 1) / kBK * kBK;
  const int64_t used = (K + k_slice - 1) / k_slice;
  DeviceBuffer partial(used * M * N, st);
  launch_tiles<WideTile>(trans_a, trans_b, M, N, K, k_slice, used, 1.f, A, lda, B, ldb, 0.f,
                         partial.get(), N, M * N, st, StoreAsIs{});
  sum_slices_kernel<<<elementwise_blocks(M * N), kThreads, 0, st>>>(
      M, N, used, alpha, partial.get(), beta, C, ldc, epilogue);
  GF_CUDA_CHECK_LAUNCH();
  partial.release();
}

}  // namespace

void gemm_cuda(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
               int64_t ldc, Stream stream, const GemmEpilogue& epilogue) {
  if (M <= 0 || N <= 0) return;  // K == 0 still runs: C = beta·C (zeros when beta == 0)
  auto st = static_cast<cudaStream_t>(stream);
  if (epilogue.trivial())
    gemm_launch(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, st, StoreAsIs{});
  else
    gemm_launch(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, st,
                FusedEpilogue{epilogue, dropout_scale(epilogue.dropout_p)});
}

}  // namespace gf
