// projection_head_*_cuda: the projection discriminator's logit and its gradients
// (contract in projection_head.h). Variant 1 (the only one):
//   forward   a warp per row: lanes stride over D, each keeping its partial sum of
//             h·(w + embed[label]); an xor-shuffle butterfly (the same tree every time)
//             combines the lanes, lane 0 writes the logit. Deterministic, no atomics.
//   backward  dh one thread per element; dw and dembed by class_row_sums_cuda (embedding.cu:
//             one thread per (class, column) looping over n, the column totals as one more
//             "class"); db by strided_sum_cuda (one block, fixed tree).
// Tested in tests/test_projection_head.py.
#include "projection_head/projection_head.h"

#include "common/cuda_launch.cuh"
#include "common/labels.h"
#include "embedding/embedding.h"

namespace gf {

namespace {

constexpr int kHeadThreads = 256;  // 8 rows per block

__device__ float warp_allreduce_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__global__ void __launch_bounds__(kHeadThreads)
    projection_head_forward_kernel(const float* h, const float* w, const float* b,
                                   const float* embed, const int64_t* labels, float* logits,
                                   int64_t N, int64_t D, int64_t C) {
  const int lane = threadIdx.x % 32;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (n >= N) return;  // the whole warp: n is the same for its 32 lanes
  const int64_t label = labels[n];
  if (!label_in_range(label, C)) {
    if (lane == 0) logits[n] = label_nan();
    return;
  }
  const float* row = h + n * D;
  const float* e = embed + label * D;
  float dot = 0.f;
  for (int64_t k = lane; k < D; k += 32) dot += row[k] * (w[k] + e[k]);
  dot = warp_allreduce_sum(dot);
  if (lane == 0) logits[n] = projection_head_logit(dot, b);
}

struct DhElement {  // dh[n, k] = dlogits[n]·(w[k] + embed[labels[n], k])
  const float *dlogits, *w, *embed;
  const int64_t* labels;
  float* dh;
  int64_t D, C;
  __device__ void operator()(int64_t i) const {
    const int64_t n = i / D, k = i - n * D, label = labels[n];
    dh[i] = label_in_range(label, C) ? projection_head_dh(dlogits[n], w[k], embed[label * D + k])
                                     : label_nan();
  }
};

}  // namespace

void projection_head_forward_cuda(const float* h, const float* w, const float* b,
                                  const float* embed, const int64_t* labels, float* logits,
                                  int64_t N, int64_t D, int64_t C, Stream stream) {
  if (N == 0) return;
  constexpr int64_t kRowsPerBlock = kHeadThreads / 32;
  const int64_t blocks = (N + kRowsPerBlock - 1) / kRowsPerBlock;
  GF_CHECK(blocks <= 0x7fffffff, "projection_head_forward: too many rows for one grid");
  projection_head_forward_kernel<<<static_cast<unsigned>(blocks), kHeadThreads, 0,
                                   static_cast<cudaStream_t>(stream)>>>(h, w, b, embed, labels,
                                                                        logits, N, D, C);
  GF_CUDA_CHECK_LAUNCH();
}

void projection_head_backward_cuda(const float* dlogits, const float* h, const float* w,
                                   const float* embed, const int64_t* labels, float* dh,
                                   float* dw, float* db, float* dembed, int64_t N, int64_t D,
                                   int64_t C, Stream stream) {
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (dh != nullptr) launch_elementwise(N * D, DhElement{dlogits, w, embed, labels, dh, D, C}, s);
  class_row_sums_cuda(h, dlogits, labels, dembed, dw, N, D, C, stream);
  // db = Σ_n dlogits[n]: one output, N elements of stride 1.
  if (db != nullptr) strided_sum_cuda(dlogits, db, 1, N, 1, N, s);
}

}  // namespace gf
