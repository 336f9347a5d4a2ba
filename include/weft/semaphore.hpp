// weft::Semaphore: a counting semaphore with FIFO admission for fibers and
// threads (part of weft/sync.hpp; docs/design/sync.md).
#pragma once

#include <chrono>
#include <cstdint>

#include "weft/detail/deadline.hpp"
#include "weft/detail/spinlock.hpp"
#include "weft/detail/wait_list.hpp"

namespace weft {

/// Counting semaphore with FIFO admission: a waiter is never overtaken, so a
/// large acquire is not starved by small ones (like Go's
/// x/sync/semaphore.Weighted). Permits are counts.
class Semaphore {
 public:
  /// @throws std::invalid_argument if initial < 0.
  explicit Semaphore(std::int64_t initial);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  /// Takes n permits, waiting for them.
  /// @throws weft::Cancelled if cancelled while waiting (nothing taken);
  /// std::invalid_argument if n < 0.
  void acquire(std::int64_t n = 1) { acquire_impl(n, detail::kNoDeadline); }
  /// Takes n permits if available now and nobody waits. Never blocks.
  /// @throws std::invalid_argument if n < 0.
  bool try_acquire(std::int64_t n = 1);
  /// acquire() that gives up at `deadline`; true if taken.
  template <class C, class D>
  bool acquire_until(std::chrono::time_point<C, D> deadline, std::int64_t n = 1) {
    return acquire_impl(n, detail::to_deadline_ns(deadline));
  }
  /// The same with a weft::Deadline (none: no time limit).
  bool acquire_until(Deadline deadline, std::int64_t n = 1) {
    return acquire_impl(n, detail::to_deadline_ns(deadline));
  }
  /// acquire_until(now + timeout).
  template <class Rep, class Period>
  bool acquire_for(std::chrono::duration<Rep, Period> timeout, std::int64_t n = 1) {
    return acquire_impl(n, detail::timeout_to_deadline_ns(timeout));
  }
  /// Returns n permits, admitting waiters in FIFO order.
  /// @throws std::invalid_argument if n < 0; std::overflow_error if the
  /// count would overflow.
  void release(std::int64_t n = 1);
  /// Permits available now (a snapshot).
  std::int64_t available() const noexcept;

 private:
  bool acquire_impl(std::int64_t n, std::int64_t deadline_ns);

  mutable detail::SpinLock lock_;
  std::int64_t permits_ WEFT_GUARDED_BY(lock_);
  detail::WaitList waiters_ WEFT_GUARDED_BY(lock_);
};

}  // namespace weft
