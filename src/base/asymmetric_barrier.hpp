// Asymmetric Dekker barriers (folly's asymmetricLightBarrier /
// asymmetricHeavyBarrier): the frequent side pays a compiler barrier, the
// rare side a membarrier(2) that runs a full barrier on every CPU currently
// running one of our threads (threads not running passed a context switch,
// itself a full barrier).
//
// Used by cancellation: every park publishes Fiber::current_waiter and then
// reads Fiber::cancel_requested (light); a canceller sets cancel_requested
// and then reads current_waiter (heavy). Either the fiber sees the request or
// the canceller sees the waiter: the classic store-load pattern, without a
// locked instruction on the park path. Where membarrier is unavailable (or
// under TSan, which does not model it) both sides use a full fence.
#pragma once

#include <atomic>

#include "base/spinlock.hpp"

namespace weft::detail {

/// True once MEMBARRIER_CMD_PRIVATE_EXPEDITED is registered for the process.
/// Set at most once, before the first runtime starts its workers.
extern std::atomic<bool> g_membarrier_ready;

/// Registers the process for expedited private membarriers (idempotent;
/// falls back to full fences if the kernel refuses). Called by RuntimeImpl.
void init_asymmetric_barriers() noexcept;

/// The cheap side: orders a preceding store before a following load against
/// a concurrent heavy_barrier().
inline void light_barrier() noexcept {
#if WEFT_TSAN
  full_fence();
#else
  if (g_membarrier_ready.load(std::memory_order_relaxed)) {
    asm volatile("" ::: "memory");
  } else {
    full_fence();
  }
#endif
}

/// The expensive side (a syscall, some microseconds): pairs with every
/// light_barrier() in the process.
void heavy_barrier() noexcept;

}  // namespace weft::detail
