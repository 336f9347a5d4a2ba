// Conversions from std::chrono timeouts and deadlines to the runtime's
// deadline representation: CLOCK_MONOTONIC nanoseconds, negative meaning
// none: -1 (kNoDeadline) when the caller gave none, so that the runtime's
// default timeout applies (sched/waiter.hpp, effective_deadline), -2
// (kNeverDeadline) when it asked for none (weft::no_deadline, a timeout too
// far to represent). Everything that waits treats both as "no deadline".
#pragma once

#include <chrono>
#include <cstdint>

#include "weft/deadline.hpp"

namespace weft::detail {

/// No deadline given: a configured default timeout applies.
inline constexpr std::int64_t kNoDeadline = -1;
/// No deadline, explicitly: no default timeout applies (Deadline::never()).
inline constexpr std::int64_t kNeverDeadline = -2;

/// A deadline on any clock as CLOCK_MONOTONIC ns (steady_clock is
/// CLOCK_MONOTONIC on Linux). A time point of another clock is converted
/// through that clock's now(). A deadline in the past becomes 0 (already
/// expired); one too far to represent becomes kNeverDeadline.
template <class C, class D>
std::int64_t to_deadline_ns(std::chrono::time_point<C, D> tp) noexcept {
  using std::chrono::nanoseconds;
  using std::chrono::steady_clock;
  if constexpr (std::is_same_v<C, steady_clock>) {
    if (tp.time_since_epoch() >=
        std::chrono::duration_cast<D>(std::chrono::hours(24 * 365 * 200))) {
      return kNeverDeadline;  // beyond ~200 years of uptime: forever
    }
    const auto ns = std::chrono::ceil<nanoseconds>(tp.time_since_epoch()).count();
    return ns < 0 ? 0 : ns;
  } else {
    const auto left = tp - C::now();
    if (left >= std::chrono::duration_cast<decltype(left)>(std::chrono::hours(24 * 365 * 100))) {
      return kNeverDeadline;
    }
    return to_deadline_ns(steady_clock::now() + std::chrono::ceil<steady_clock::duration>(left));
  }
}

/// A weft::Deadline as CLOCK_MONOTONIC ns (kNoDeadline for none(),
/// kNeverDeadline for never()).
inline std::int64_t to_deadline_ns(Deadline d) noexcept {
  return d.ns();
}

/// now + d as CLOCK_MONOTONIC ns. d <= 0 gives an expired deadline; a
/// duration beyond ~100 years (for example duration::max()) gives
/// kNeverDeadline.
template <class Rep, class Period>
std::int64_t timeout_to_deadline_ns(std::chrono::duration<Rep, Period> d) noexcept {
  if (d <= d.zero()) return 0;
  if (d >= std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(
               std::chrono::hours(24 * 365 * 100))) {
    return kNeverDeadline;
  }
  return to_deadline_ns(std::chrono::steady_clock::now() +
                        std::chrono::ceil<std::chrono::steady_clock::duration>(d));
}

}  // namespace weft::detail
