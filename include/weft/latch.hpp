// weft::Latch: a single-use countdown (std::latch's contract, fiber-aware,
// with timed waits), built on weft::WaitGroup (part of weft/sync.hpp).
#pragma once

#include <cstdint>
#include <stdexcept>

#include "weft/detail/timed_wait.hpp"
#include "weft/wait_group.hpp"

namespace weft {

/// Single-use countdown (std::latch's contract, fiber-aware, with timed
/// waits). Built on WaitGroup.
/// Waiting: wait(), wait_for(timeout) and wait_until(deadline) (true if
/// released in time); each throws weft::Cancelled if the fiber is
/// cancelled while waiting.
class Latch : public detail::TimedWait<Latch> {
 public:
  /// @throws std::invalid_argument if count < 0.
  explicit Latch(std::int64_t count) : wg_(check(count)) {}
  /// Decrements by n; reaching zero releases every waiter.
  /// @throws std::invalid_argument if n < 0; std::logic_error if the count
  /// would go below zero (unchanged).
  void count_down(std::int64_t n = 1) {
    if (n < 0) throw std::invalid_argument("weft::Latch::count_down: n must be >= 0");
    wg_.add(-n);
  }
  /// True once the count is zero. Never blocks.
  bool try_wait() const noexcept { return wg_.count() == 0; }
  /// count_down(n) then wait().
  void arrive_and_wait(std::int64_t n = 1) {
    count_down(n);
    wait();
  }

 private:
  friend class detail::TimedWait<Latch>;
  /// Waits until the count is zero.
  bool wait_impl(std::int64_t deadline_ns) { return wg_.wait_impl(deadline_ns); }
  static std::int64_t check(std::int64_t count) {
    if (count < 0) throw std::invalid_argument("weft::Latch: count must be >= 0");
    return count;
  }
  WaitGroup wg_;
};

}  // namespace weft
