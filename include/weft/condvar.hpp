// weft::CondVar: a condition variable over weft::Mutex (part of
// weft/sync.hpp; docs/design/sync.md).
#pragma once

#include <chrono>
#include <condition_variable>  // std::cv_status
#include <cstdint>
#include <mutex>  // std::unique_lock

#include "weft/detail/deadline.hpp"
#include "weft/detail/spinlock.hpp"
#include "weft/detail/wait_list.hpp"
#include "weft/mutex.hpp"

namespace weft {

/// Condition variable over weft::Mutex (std::condition_variable's contract,
/// fiber-aware). Waiters are woken FIFO; there are no spurious wake-ups, but
/// a woken waiter relocks the mutex after other lockers may have run, so use
/// the predicate forms.
class CondVar {
 public:
  CondVar() noexcept = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  /// Atomically releases `lock` and waits for a notify, then relocks.
  /// @throws weft::Cancelled if cancelled while waiting (the mutex is
  /// relocked before it propagates).
  void wait(std::unique_lock<Mutex>& lock) { wait_impl(lock, detail::kNoDeadline); }
  /// Waits until pred() is true (checked with the lock held).
  template <class Pred>
  void wait(std::unique_lock<Mutex>& lock, Pred pred) {
    while (!pred()) wait(lock);
  }
  /// wait() up to `deadline`; timeout if it passed without a notify.
  template <class C, class D>
  std::cv_status wait_until(std::unique_lock<Mutex>& lock, std::chrono::time_point<C, D> deadline) {
    return wait_impl(lock, detail::to_deadline_ns(deadline)) ? std::cv_status::no_timeout
                                                             : std::cv_status::timeout;
  }
  /// The same with a weft::Deadline (none: no time limit).
  std::cv_status wait_until(std::unique_lock<Mutex>& lock, Deadline deadline) {
    return wait_impl(lock, detail::to_deadline_ns(deadline)) ? std::cv_status::no_timeout
                                                             : std::cv_status::timeout;
  }
  /// Waits until pred() or `deadline`; returns pred() at the end.
  template <class C, class D, class Pred>
  bool wait_until(std::unique_lock<Mutex>& lock, std::chrono::time_point<C, D> deadline,
                  Pred pred) {
    const std::int64_t d = detail::to_deadline_ns(deadline);
    while (!pred()) {
      if (!wait_impl(lock, d)) return pred();
    }
    return true;
  }
  /// The same with a weft::Deadline (none: no time limit).
  template <class Pred>
  bool wait_until(std::unique_lock<Mutex>& lock, Deadline deadline, Pred pred) {
    const std::int64_t d = detail::to_deadline_ns(deadline);
    while (!pred()) {
      if (!wait_impl(lock, d)) return pred();
    }
    return true;
  }
  /// wait_until(lock, now + timeout).
  template <class Rep, class Period>
  std::cv_status wait_for(std::unique_lock<Mutex>& lock,
                          std::chrono::duration<Rep, Period> timeout) {
    return wait_impl(lock, detail::timeout_to_deadline_ns(timeout)) ? std::cv_status::no_timeout
                                                                    : std::cv_status::timeout;
  }
  /// wait_until(lock, now + timeout, pred).
  template <class Rep, class Period, class Pred>
  bool wait_for(std::unique_lock<Mutex>& lock, std::chrono::duration<Rep, Period> timeout,
                Pred pred) {
    const std::int64_t d = detail::timeout_to_deadline_ns(timeout);
    while (!pred()) {
      if (!wait_impl(lock, d)) return pred();
    }
    return true;
  }
  /// Wakes the longest-waiting waiter, if any. Never throws.
  void notify_one() noexcept;
  /// Wakes every current waiter. Never throws.
  void notify_all() noexcept;

 private:
  bool wait_impl(std::unique_lock<Mutex>& lock, std::int64_t deadline_ns);

  detail::SpinLock lock_;
  detail::WaitList waiters_ WEFT_GUARDED_BY(lock_);
};

}  // namespace weft
