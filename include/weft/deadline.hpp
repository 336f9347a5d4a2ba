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
/// "None" comes in two kinds. A default-constructed Deadline is the call's
/// absence of a deadline: the runtime's default timeout for the call then
/// applies, if one is configured (Config::default_operation_timeout,
/// network_timeout, io_timeout; none by default). weft::no_deadline
/// (Deadline::never()) opts a call out: it waits without limit whatever the
/// configuration says. So does a duration beyond ~100 years.
///
/// Trivially copyable, no state shared: safe to use from any thread.
class Deadline {
 public:
  /// The clock of every deadline (CLOCK_MONOTONIC).
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

  /// No deadline of the call's own: a configured default timeout applies.
  static constexpr Deadline none() noexcept { return Deadline(); }
  /// No deadline, explicitly: no default timeout applies either
  /// (weft::no_deadline).
  static constexpr Deadline never() noexcept {
    Deadline d;
    d.ns_ = kNeverNs;
    return d;
  }
  /// `d` from now.
  template <class Rep, class Period>
  static Deadline after(std::chrono::duration<Rep, Period> d) noexcept {
    // Beyond ~100 years is never (and would overflow nanoseconds): the
    // caller asked for no limit, so no default timeout applies either.
    if (d >= std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(
                 std::chrono::hours(24 * 365 * 100))) {
      return never();
    }
    const auto now = Clock::now();
    const auto step = std::chrono::ceil<std::chrono::nanoseconds>(d);
    // Saturate instead of overflowing for huge durations.
    if (step > Clock::time_point::max() - now) return never();
    return Deadline(now + step);
  }

  /// True for "no deadline" of either kind (none() or never()).
  constexpr bool is_none() const noexcept { return ns_ < 0; }
  /// True for never(): no deadline, and no default timeout either.
  constexpr bool is_never() const noexcept { return ns_ == kNeverNs; }
  /// The deadline as a time_point; time_point::max() for none.
  constexpr Clock::time_point when() const noexcept {
    return is_none() ? Clock::time_point::max() : Clock::time_point(std::chrono::nanoseconds(ns_));
  }
  /// CLOCK_MONOTONIC nanoseconds; -1 for none(), -2 for never().
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
  /// The earlier of two deadlines (nested deadlines take the earliest);
  /// of two nones, never() if either is.
  constexpr Deadline earliest(Deadline other) const noexcept {
    if (is_none()) return other.is_none() && ns_ < other.ns_ ? *this : other;
    if (other.is_none()) return *this;
    return ns_ <= other.ns_ ? *this : other;
  }

  friend constexpr bool operator==(Deadline a, Deadline b) noexcept { return a.ns_ == b.ns_; }

 private:
  static constexpr std::int64_t kNeverNs = -2;
  std::int64_t ns_ = -1;
};

/// No deadline, explicitly: the call waits without limit even where the
/// runtime has a default timeout for it (Config::default_operation_timeout,
/// network_timeout, io_timeout). Pass it wherever a weft::Deadline goes,
/// e.g. `stream.read(buf, len, weft::no_deadline)`,
/// `rx.recv_until(weft::no_deadline)`.
inline constexpr Deadline no_deadline = Deadline::never();

}  // namespace weft
