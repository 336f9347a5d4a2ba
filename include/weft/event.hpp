// weft::Event: a manual-reset event for fibers and threads (part of
// weft/sync.hpp; docs/design/sync.md).
#pragma once

#include <cstdint>

#include "weft/detail/spinlock.hpp"
#include "weft/detail/timed_wait.hpp"
#include "weft/detail/wait_list.hpp"

namespace weft {

/// Manual-reset event: set() releases every waiter and keeps later wait()s
/// from blocking until reset().
/// Waiting: wait(), wait_for(timeout) and wait_until(deadline) (true if
/// released in time); each throws weft::Cancelled if the fiber is
/// cancelled while waiting.
class Event : public detail::TimedWait<Event> {
 public:
  /// An event, set already if `initially_set`.
  explicit Event(bool initially_set = false) noexcept : set_(initially_set) {}
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  /// Sets the event and releases every waiter. Never throws.
  void set() noexcept;
  /// Clears the event: later wait()s block until the next set().
  void reset() noexcept;
  /// Whether the event is set now (a snapshot).
  bool is_set() const noexcept;

 private:
  friend class detail::TimedWait<Event>;
  /// Waits until set.
  bool wait_impl(std::int64_t deadline_ns);

  mutable detail::SpinLock lock_;
  bool set_ WEFT_GUARDED_BY(lock_);
  detail::WaitList waiters_ WEFT_GUARDED_BY(lock_);
};

}  // namespace weft
