// weft::Barrier: a reusable barrier for a fixed number of fibers and threads
// (part of weft/sync.hpp; docs/design/sync.md).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "weft/detail/deadline.hpp"
#include "weft/detail/spinlock.hpp"
#include "weft/detail/wait_list.hpp"

namespace weft {

/// Reusable barrier for a fixed number of participants. Each generation
/// completes when the count-th participant arrives; exactly one of them (the
/// last to arrive) is the leader.
class Barrier {
 public:
  /// @throws std::invalid_argument if count == 0.
  explicit Barrier(std::size_t count);
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;

  /// How a timed arrival ended.
  enum class Result : std::uint8_t {
    leader,     ///< completed the generation (the last to arrive)
    follower,   ///< the generation completed
    timed_out,  ///< the deadline passed first; the arrival was withdrawn
  };

  /// Arrives and waits for the generation to complete; true for the leader.
  /// @throws weft::Cancelled if cancelled while waiting (the arrival is
  /// withdrawn, so the others keep waiting for a replacement).
  bool arrive_and_wait() { return arrive_impl(detail::kNoDeadline) == Result::leader; }
  /// arrive_and_wait() with a time limit: Result::timed_out (the arrival withdrawn) if `deadline`
  /// passes first. @throws weft::Cancelled as arrive_and_wait().
  template <class C, class D>
  Result arrive_and_wait_until(std::chrono::time_point<C, D> deadline) {
    return arrive_impl(detail::to_deadline_ns(deadline));
  }
  /// The same with a weft::Deadline (none: no time limit).
  Result arrive_and_wait_until(Deadline deadline) {
    return arrive_impl(detail::to_deadline_ns(deadline));
  }
  /// arrive_and_wait_until(now + timeout). @throws weft::Cancelled as arrive_and_wait().
  template <class Rep, class Period>
  Result arrive_and_wait_for(std::chrono::duration<Rep, Period> timeout) {
    return arrive_impl(detail::timeout_to_deadline_ns(timeout));
  }
  /// Completed generations so far (a snapshot).
  std::uint64_t generation() const noexcept;

 private:
  Result arrive_impl(std::int64_t deadline_ns);

  mutable detail::SpinLock lock_;
  const std::size_t count_;
  std::size_t arrived_ WEFT_GUARDED_BY(lock_) = 0;
  std::uint64_t generation_ WEFT_GUARDED_BY(lock_) = 0;
  detail::WaitList waiters_ WEFT_GUARDED_BY(lock_);
};

}  // namespace weft
