// Per-thread, grow-only scratch buffers for the CPU kernels.
//
// A fresh page costs ~1.5 µs on first touch, and a large malloc hands back fresh pages
// every call; a step runs hundreds of kernel calls, so each kernel's workspace is kept by
// the calling thread and reused by its next call. Buffers are thread-local, so concurrent
// calls from several Python threads share nothing. A slot is one live buffer: a kernel
// that calls another (conv2d -> gemm) uses a different slot for each buffer alive at once.
// The returned memory is 64-byte aligned, uninitialised, and valid until the same thread
// asks for the same slot again.
#pragma once

#include <cstdint>

namespace gf {

enum class ScratchSlot {
  gemm_pack, conv_cols, conv_grouped, conv_dw_partials, conv_plane, count
};

float* thread_scratch(ScratchSlot slot, int64_t floats);

}  // namespace gf
