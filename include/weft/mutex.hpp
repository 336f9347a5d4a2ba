// weft::Mutex: mutual exclusion for fibers and threads (part of
// weft/sync.hpp; docs/design/sync.md). Its blocking calls park the calling
// fiber, or block a plain thread, and are cancellation points.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "weft/detail/deadline.hpp"
#include "weft/detail/lock_owner.hpp"
#include "weft/detail/spinlock.hpp"
#include "weft/detail/wait_list.hpp"

namespace weft {

/// Mutual exclusion for fibers and threads; meets std's Lockable and
/// TimedLockable, so std::lock_guard / std::unique_lock / std::scoped_lock
/// work.
///
/// Policy (Go's sync.Mutex, with parking_lot's queue lock): normally an
/// unlock releases the lock and wakes one waiter, which competes with
/// arriving lockers (barging keeps the lock hot on a busy worker and avoids a
/// switch per hand-over). Only one woken waiter is outstanding at a time. A
/// waiter that has waited 1 ms or more is handed the lock directly (FIFO
/// hand-off, Go's starvation mode), so no waiter starves. Waiters queue FIFO.
/// Not recursive: locking a mutex the caller holds deadlocks. unlock() by a
/// fiber or thread other than the owner is allowed (like Go), not checked.
/// Fiber dumps name the fiber holding it (weft/detail/lock_owner.hpp).
class Mutex {
 public:
  Mutex() noexcept = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  /// Acquires the lock, parking while it is held.
  /// @throws weft::Cancelled if the fiber is cancelled while waiting.
  void lock() {
    // Barging: take a free lock even when others are queued (one atomic).
    // acquire pairs with the release in unlock()/unlock_slow(): the previous
    // holder's critical section happens-before ours.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    if ((s & kLocked) != 0 ||
        !state_.compare_exchange_weak(s, s | kLocked, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
      lock_slow(detail::kNoDeadline);  // records the owner itself
      return;
    }
    note_owner();
  }
  /// Acquires the lock if it is free now. Never blocks or throws.
  bool try_lock() noexcept;
  /// lock() that gives up at `deadline`; true if acquired.
  /// @throws weft::Cancelled if the fiber is cancelled while waiting.
  template <class C, class D>
  bool try_lock_until(std::chrono::time_point<C, D> deadline) {
    return try_lock() || lock_slow(detail::to_deadline_ns(deadline));
  }
  /// The same with a weft::Deadline (none: no time limit).
  bool try_lock_until(Deadline deadline) {
    return try_lock() || lock_slow(detail::to_deadline_ns(deadline));
  }
  /// try_lock_until(now + timeout).
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    return try_lock() || lock_slow(detail::timeout_to_deadline_ns(timeout));
  }
  /// Releases the lock, handing it to or waking a waiter if there is one.
  /// Precondition: the lock is held. Never throws.
  void unlock() noexcept {
    // relaxed: a hint for dumps; the lock's own release/acquire orders it
    // before the next holder's note_owner(), so the last store wins.
    owner_sp_.store(0, std::memory_order_relaxed);
    // Nobody queued, or a woken waiter already on its way: just release.
    // release pairs with the acquire CAS of the next locker.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    if (((s & kParked) == 0 || (s & kWoken) != 0) &&
        state_.compare_exchange_weak(s, s & ~kLocked, std::memory_order_release,
                                     std::memory_order_relaxed)) {
      return;
    }
    unlock_slow();
  }

 private:
  friend class CondVar;
  static constexpr std::uint32_t kLocked = 1;  // held
  static constexpr std::uint32_t kParked = 2;  // the wait queue is not empty
  static constexpr std::uint32_t kWoken = 4;   // a woken waiter is on its way to retry
  bool lock_slow(std::int64_t deadline_ns);
  bool lock_slow(std::int64_t deadline_ns, bool cancellable);
  void unlock_slow() noexcept;
  /// Records the caller's stack as the holder's (just acquired).
  void note_owner() noexcept {
    owner_sp_.store(detail::stack_hint(), std::memory_order_relaxed);  // as in unlock()
  }
  friend struct detail::LockOwnerProbe;

  std::atomic<std::uint32_t> state_{0};
  // An address on the holder's stack (detail::stack_hint), 0 when free or
  // while a hand-off is in flight. Read racily by fiber dumps only.
  std::atomic<std::uintptr_t> owner_sp_{0};
  detail::SpinLock queue_lock_;
  detail::WaitList waiters_ WEFT_GUARDED_BY(queue_lock_);
};

}  // namespace weft
