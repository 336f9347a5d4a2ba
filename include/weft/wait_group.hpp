// weft::WaitGroup: Go's sync.WaitGroup for fibers and threads (part of
// weft/sync.hpp; docs/design/sync.md).
#pragma once

#include <cstdint>

#include "weft/detail/spinlock.hpp"
#include "weft/detail/timed_wait.hpp"
#include "weft/detail/wait_list.hpp"

namespace weft {

class Latch;

/// Go's sync.WaitGroup: a counter; wait() returns when it is zero.
/// Waiting: wait(), wait_for(timeout) and wait_until(deadline) (true if
/// released in time); each throws weft::Cancelled if the fiber is
/// cancelled while waiting.
class WaitGroup : public detail::TimedWait<WaitGroup> {
 public:
  /// A group with `initial` outstanding tasks. @throws std::invalid_argument if negative.
  explicit WaitGroup(std::int64_t initial = 0);
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  /// Adds delta (may be negative); reaching zero wakes every waiter.
  /// @throws std::logic_error if the counter would go negative (unchanged).
  void add(std::int64_t delta);
  /// add(-1).
  void done() { add(-1); }
  /// The counter now (a snapshot).
  std::int64_t count() const noexcept;

 private:
  friend class detail::TimedWait<WaitGroup>;
  friend class Latch;
  /// Waits until the counter is zero.
  bool wait_impl(std::int64_t deadline_ns);

  mutable detail::SpinLock lock_;
  std::int64_t count_ WEFT_GUARDED_BY(lock_);
  detail::WaitList waiters_ WEFT_GUARDED_BY(lock_);
};

}  // namespace weft
