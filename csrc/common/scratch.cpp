// Per-thread grow-only scratch buffers (contract: scratch.h).
#include "common/scratch.h"

#include <cstdlib>
#include <memory>
#include <new>

namespace gf {
namespace {

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};

struct Buffer {
  std::unique_ptr<float, FreeDeleter> data;
  int64_t floats = 0;
};

thread_local Buffer t_buffers[static_cast<int>(ScratchSlot::count)];

}  // namespace

float* thread_scratch(ScratchSlot slot, int64_t floats) {
  Buffer& b = t_buffers[static_cast<int>(slot)];
  if (floats > b.floats) {
    const int64_t bytes = (floats * 4 + 4095) / 4096 * 4096;
    b.data.reset();  // free first: the peak is one buffer, not two
    b.floats = 0;
    void* p = std::aligned_alloc(64, static_cast<size_t>(bytes));
    if (p == nullptr) throw std::bad_alloc();
    b.data.reset(static_cast<float*>(p));
    b.floats = bytes / 4;
  }
  return b.data.get();
}

}  // namespace gf
