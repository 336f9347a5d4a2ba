#include "base/asymmetric_barrier.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace weft::detail {

std::atomic<bool> g_membarrier_ready{false};

namespace {
[[maybe_unused]] long membarrier(int cmd) noexcept {
  return syscall(__NR_membarrier, cmd, 0, 0);
}
}  // namespace

void init_asymmetric_barriers() noexcept {
#if !WEFT_TSAN
  static const bool ready = [] {
    const long cmds = membarrier(MEMBARRIER_CMD_QUERY);
    if (cmds < 0 || (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
    return membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
  }();
  // relaxed: set once, before the first runtime starts its workers (thread
  // creation orders it for them). A reader that still sees false uses a
  // full fence, which is stronger, so a stale false is harmless.
  if (ready) g_membarrier_ready.store(true, std::memory_order_relaxed);
#endif
}

void heavy_barrier() noexcept {
#if !WEFT_TSAN
  if (g_membarrier_ready.load(std::memory_order_relaxed) &&
      membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) {
    return;
  }
#endif
  full_fence();
}

}  // namespace weft::detail
