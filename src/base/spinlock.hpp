// The runtime's spinlock (weft/detail/spinlock.hpp) and a TSan-safe full fence.
#pragma once

#include <atomic>

#include "base/sanitizers.hpp"
#include "weft/detail/spinlock.hpp"

namespace weft::detail {

/// A full (seq_cst) fence. TSan does not model std::atomic_thread_fence (GCC
/// warns, and it would miss the ordering), so under TSan a seq_cst RMW on a
/// private atomic stands in: on x86 both are one locked instruction, and for
/// TSan the RMW is a synchronisation point it understands.
inline void full_fence() noexcept {
#if WEFT_TSAN
  static std::atomic<int> fence_word{0};
  fence_word.fetch_add(0, std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

}  // namespace weft::detail
