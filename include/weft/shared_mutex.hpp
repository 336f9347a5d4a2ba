// weft::SharedMutex: a phase-fair reader-writer lock for fibers and threads
// (part of weft/sync.hpp; docs/design/sync.md).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "weft/detail/deadline.hpp"
#include "weft/detail/lock_owner.hpp"
#include "weft/detail/spinlock.hpp"
#include "weft/detail/wait_list.hpp"

namespace weft {

/// Reader-writer lock (RwLock) for fibers and threads; meets std's
/// SharedTimedLockable, so std::shared_lock works too.
///
/// Policy: phase-fair FIFO. A reader enters at once only if no writer holds
/// or waits; otherwise everyone queues in arrival order. A releasing writer
/// admits the next writer, or every reader queued before the next writer; the
/// last reader out admits the next writer. So neither writers nor readers
/// starve. Not recursive; upgrading a shared lock deadlocks. Fiber dumps
/// name the fiber holding the exclusive lock (weft/detail/lock_owner.hpp);
/// readers are not recorded.
class SharedMutex {
 public:
  SharedMutex() noexcept = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  /// Exclusive lock. @throws weft::Cancelled if cancelled while waiting.
  void lock() { lock_impl(true, detail::kNoDeadline); }
  /// Takes the exclusive lock if it is free and nobody queues. Never blocks.
  bool try_lock() noexcept;
  /// lock() that gives up at `deadline`; true if acquired.
  /// @throws weft::Cancelled if cancelled while waiting.
  template <class C, class D>
  bool try_lock_until(std::chrono::time_point<C, D> deadline) {
    return lock_impl(true, detail::to_deadline_ns(deadline));
  }
  /// The same with a weft::Deadline (none: no time limit).
  bool try_lock_until(Deadline deadline) {
    return lock_impl(true, detail::to_deadline_ns(deadline));
  }
  /// try_lock_until(now + timeout).
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    return lock_impl(true, detail::timeout_to_deadline_ns(timeout));
  }
  /// Releases the exclusive lock and admits the next waiters. Never throws.
  void unlock() noexcept;

  /// Shared lock. @throws weft::Cancelled if cancelled while waiting.
  void lock_shared() { lock_impl(false, detail::kNoDeadline); }
  /// Takes a shared lock if no writer holds it and nobody queues. Never
  /// blocks.
  bool try_lock_shared() noexcept;
  /// lock_shared() that gives up at `deadline`; true if acquired.
  /// @throws weft::Cancelled if cancelled while waiting.
  template <class C, class D>
  bool try_lock_shared_until(std::chrono::time_point<C, D> deadline) {
    return lock_impl(false, detail::to_deadline_ns(deadline));
  }
  /// The same with a weft::Deadline (none: no time limit).
  bool try_lock_shared_until(Deadline deadline) {
    return lock_impl(false, detail::to_deadline_ns(deadline));
  }
  /// try_lock_shared_until(now + timeout).
  template <class Rep, class Period>
  bool try_lock_shared_for(std::chrono::duration<Rep, Period> timeout) {
    return lock_impl(false, detail::timeout_to_deadline_ns(timeout));
  }
  /// Releases a shared lock; the last reader out admits the next writer.
  void unlock_shared() noexcept;

 private:
  bool lock_impl(bool exclusive, std::int64_t deadline_ns);
  void admit_locked() noexcept WEFT_REQUIRES(lock_);
  friend struct detail::LockOwnerProbe;

  detail::SpinLock lock_;
  std::size_t readers_ WEFT_GUARDED_BY(lock_) = 0;  // readers holding it
  bool writer_ WEFT_GUARDED_BY(lock_) = false;      // a writer holds it
  detail::WaitList waiters_ WEFT_GUARDED_BY(lock_);
  // The exclusive holder's stack (an address on it: detail::stack_hint, or
  // its wait node when admitted from the queue), 0 otherwise. Written
  // under lock_; read racily by fiber dumps only, hence atomic (relaxed).
  std::atomic<std::uintptr_t> writer_sp_{0};
};

}  // namespace weft
