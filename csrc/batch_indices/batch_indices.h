// batch_indices: the dataset indices of the rows of one training step, drawn on the device
// from (seed, step) with no host work and no sort, every epoch a fresh permutation.
//
//   epoch e = step / steps_per_epoch,  position j = (step % steps_per_epoch)·batch_size + r
//   out[r]  = perm_e(j)   for r < n (n ≤ batch_size, int64 out [n] overwritten)
// perm_e is a keyed bijection of [0, n_items): a 6-round Feistel network on b-bit integers
// (b = bits of n_items − 1; the halves have ⌊b/2⌋ and ⌈b/2⌉ bits and swap widths each
// round), keyed by counter_key(seed, e) (common/counter_rng.h), with cycle walking: values
// ≥ n_items are fed through the network again until one lands below n_items, which
// restricts the bijection of [0, 2^b) to one of [0, n_items) (at most 2^b < 2·n_items, so
// under two rounds of walking on average). Round r's function is
// counter_bits(key, r·2^32 + lo) masked to the other half's width. So every epoch visits
// every item exactly once in an order that looks random, and the steps of an epoch need
// nothing from each other. gan_fast.reference computes the same integers in NumPy.
//
// Positions j ≥ n_items (a step past the last, partial batch of an epoch) and negative steps
// have no item: the bindings refuse them when the step is known on the host (ValueError); a
// CUDA kernel reading a device step writes −1 for such rows instead (gather_rows then writes
// NaN / −1 rows). 1 ≤ n_items ≤ 2^62 (so each Feistel half fits in 31 bits).
#pragma once

#include <cstdint>

#include "common/check.h"
#include "common/counter_rng.h"
#include "common/hd.h"
#include "common/step_arg.h"

namespace gf {

constexpr int kFeistelRounds = 6;

struct BatchGeometry {
  int64_t n_items, batch_size, steps_per_epoch;
};

// Bits of n_items − 1: perm works on [0, 2^b), the smallest power of two ≥ n_items.
GF_HD int feistel_bits(int64_t n_items) {
  int b = 0;
  while (b < 63 && (int64_t{1} << b) < n_items) ++b;
  return b;
}

// One pass of the Feistel network over [0, 2^bits): a bijection for every key.
GF_HD uint64_t feistel_permute(uint64_t x, uint64_t key, int bits) {
  int lo_bits = bits / 2, hi_bits = bits - lo_bits;
  for (int r = 0; r < kFeistelRounds; ++r) {
    const uint64_t lo = x & ((uint64_t{1} << lo_bits) - 1);
    const uint64_t hi = x >> lo_bits;
    const uint64_t f = counter_bits(key, (static_cast<uint64_t>(r) << 32) | lo);
    x = (lo << hi_bits) | (hi ^ (f & ((uint64_t{1} << hi_bits) - 1)));  // halves swap
    const int t = lo_bits;
    lo_bits = hi_bits;
    hi_bits = t;
  }
  return x;
}

// The item of row r of this step, or −1 when the step has no such row.
GF_HD int64_t batch_index(uint64_t seed, int64_t step, int64_t r, const BatchGeometry& g) {
  if (step < 0) return -1;
  const int64_t j = (step % g.steps_per_epoch) * g.batch_size + r;
  if (j >= g.n_items) return -1;
  const uint64_t key = counter_key(seed, step / g.steps_per_epoch);
  const int bits = feistel_bits(g.n_items);
  uint64_t x = static_cast<uint64_t>(j);
  do {
    x = feistel_permute(x, key, bits);
  } while (x >= static_cast<uint64_t>(g.n_items));  // ends: x's cycle passes through j
  return static_cast<int64_t>(x);
}

// Per-row functor, run by the CPU loop and the CUDA kernel (which reads a device step when
// it runs).
struct BatchIndexFill {
  int64_t* out;
  uint64_t seed;
  StepArg step;
  BatchGeometry g;
  GF_HD void operator()(int64_t r) const { out[r] = batch_index(seed, step.get(), r, g); }
};

void batch_indices_cpu(int64_t* out, int64_t n, uint64_t seed, int64_t step,
                       const BatchGeometry& g);

#ifdef GF_WITH_CUDA
void batch_indices_cuda(int64_t* out, int64_t n, uint64_t seed, StepArg step,
                        const BatchGeometry& g, Stream stream);
#endif

}  // namespace gf
