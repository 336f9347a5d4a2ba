// weft::Notify: Tokio's Notify, a wake-up signal without data, for fibers
// and threads (part of weft/sync.hpp; docs/design/sync.md).
#pragma once

#include <cstdint>

#include "weft/detail/spinlock.hpp"
#include "weft/detail/timed_wait.hpp"
#include "weft/detail/wait_list.hpp"

namespace weft {

/// Tokio's Notify: a wake-up signal without data. notify_one() wakes one
/// waiter, or, if none waits, stores a single permit that the next wait()
/// consumes at once (so a notify racing ahead of the wait is not lost).
/// notify_all() wakes every current waiter and stores nothing.
/// Waiting: wait(), wait_for(timeout) and wait_until(deadline) (true if
/// released in time); each throws weft::Cancelled if the fiber is
/// cancelled while waiting.
class Notify : public detail::TimedWait<Notify> {
 public:
  Notify() noexcept = default;
  Notify(const Notify&) = delete;
  Notify& operator=(const Notify&) = delete;

  /// Wakes the longest-waiting waiter, or stores one permit if none waits
  /// (permits do not accumulate). Never throws.
  void notify_one() noexcept;
  /// Wakes every current waiter; stores nothing. Never throws.
  void notify_all() noexcept;

 private:
  friend class detail::TimedWait<Notify>;
  /// Waits for a notification (or takes the stored permit).
  bool wait_impl(std::int64_t deadline_ns);

  detail::SpinLock lock_;
  bool permit_ WEFT_GUARDED_BY(lock_) = false;
  detail::WaitList waiters_ WEFT_GUARDED_BY(lock_);
};

}  // namespace weft
