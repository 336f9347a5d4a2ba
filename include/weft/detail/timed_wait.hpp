// TimedWait: the wait(), wait_until() and wait_for() family over one
// wait_impl(deadline_ns), shared by the primitives of weft/sync.hpp whose
// only wait is "until signalled". Internal; included by their headers.
#pragma once

#include <chrono>

#include "weft/detail/deadline.hpp"

namespace weft::detail {

/// wait(), wait_until() and wait_for() over Derived::wait_impl(deadline_ns),
/// for primitives whose only wait is "until signalled" (CRTP).
template <class Derived>
class TimedWait {
 public:
  /// Waits until signalled. @throws weft::Cancelled if the fiber is
  /// cancelled while waiting.
  void wait() { self().wait_impl(kNoDeadline); }
  /// wait() that gives up at `deadline`; true if signalled.
  template <class C, class D>
  bool wait_until(std::chrono::time_point<C, D> deadline) {
    return self().wait_impl(to_deadline_ns(deadline));
  }
  /// The same with a weft::Deadline (none: no time limit).
  bool wait_until(Deadline deadline) { return self().wait_impl(to_deadline_ns(deadline)); }
  /// wait_until(now + timeout).
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> timeout) {
    return self().wait_impl(timeout_to_deadline_ns(timeout));
  }

 private:
  Derived& self() noexcept { return static_cast<Derived&>(*this); }
};

}  // namespace weft::detail
