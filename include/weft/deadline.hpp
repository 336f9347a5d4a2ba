// weft::Deadline: the optional point in time every timed I/O call accepts.
#pragma once

#include <chrono>
#include <cstdint>

namespace weft {

/// A point on the monotonic clock (std::chrono::steady_clock, which is
/// CLOCK_MONOTONIC on Linux) by which an operation must finish, or none.
///
/// Converts implicitly from a time_point (an absolute deadline) and from a
/// duration (that long from now, measured at conversion), so timed calls
/// read naturally: `stream.read(buf, 5s)`, `listener.accept(deadline)`. A
/// default-constructed Deadline is none: wait indefinitely. Operations that
/// run past their deadline throw weft::TimedOut. A negative or zero
/// duration is a deadline already passed (the operation still completes if
/// it can do so without waiting).
///
/// Trivially copyable, no state shared: safe to use from any thread.
class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  /// No deadline.
  constexpr Deadline() noexcept = default;
  /// The absolute deadline `t`.
  constexpr Deadline(Clock::time_point t) noexcept  // NOLINT(google-explicit-constructor)
      : ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count()) {
    if (ns_ < 0) ns_ = 0;
  }
  /// `d` from now (rounded up to whole nanoseconds).
  template <class Rep, class Period>
  Deadline(std::chrono::duration<Rep, Period> d) noexcept  // NOLINT(google-explicit-constructor)
      : Deadline(after(d)) {}

  /// No deadline.
  static constexpr Deadline none() noexcept { return Deadline(); }
  /// `d` from now.
  template <class Rep, class Period>
  static Deadline after(std::chrono::duration<Rep, Period> d) noexcept {
    // Beyond ~100 years is "never" (and would overflow nanoseconds).
    if (d >= std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(
                 std::chrono::hours(24 * 365 * 100))) {
      return Deadline();
    }
    const auto now = Clock::now();
    const auto step = std::chrono::ceil<std::chrono::nanoseconds>(d);
    // Saturate instead of overflowing for huge durations.
    if (step > Clock::time_point::max() - now) return Deadline();
    return Deadline(now + step);
  }

  /// True for "no deadline".
  constexpr bool is_none() const noexcept { return ns_ < 0; }
  /// The deadline as a time_point; time_point::max() for none.
  constexpr Clock::time_point when() const noexcept {
    return is_none() ? Clock::time_point::max() : Clock::time_point(std::chrono::nanoseconds(ns_));
  }
  /// CLOCK_MONOTONIC nanoseconds, or -1 for none.
  constexpr std::int64_t ns() const noexcept { return ns_; }
  /// True if the deadline has passed (never for none).
  bool expired() const noexcept { return !is_none() && Clock::now() >= when(); }
  /// Time left (zero once passed; duration::max() for none).
  std::chrono::nanoseconds remaining() const noexcept {
    if (is_none()) return std::chrono::nanoseconds::max();
    const auto left = when() - Clock::now();
    return left.count() > 0 ? std::chrono::duration_cast<std::chrono::nanoseconds>(left)
                            : std::chrono::nanoseconds(0);
  }
  /// The earlier of two deadlines (nested deadlines take the earliest).
  constexpr Deadline earliest(Deadline other) const noexcept {
    if (is_none()) return other;
    if (other.is_none()) return *this;
    return ns_ <= other.ns_ ? *this : other;
  }

  friend constexpr bool operator==(Deadline a, Deadline b) noexcept { return a.ns_ == b.ns_; }

 private:
  std::int64_t ns_ = -1;
};

}  // namespace weft
