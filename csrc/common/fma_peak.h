// fma_peak: the machine's float32 FMA throughput, measured (for the benchmarks' "% of
// peak" column). Every OpenMP thread runs independent FMA chains on the widest path
// active_cpu_isa() allows (16 accumulators: enough to cover FMA latency on any current
// core) for about `seconds`; returns the best of `repeats` runs in GFLOP/s (2 per FMA lane).
#pragma once

namespace gf {

double fma_peak_gflops(double seconds, int repeats);

}  // namespace gf
