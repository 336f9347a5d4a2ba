// Time: periodic ticks (weft::Ticker, weft::interval, on_tick) and retries
// with exponential backoff (weft::retry). Tokio's time::interval and
// MissedTickBehavior are the model for ticks; seed 001 §2.3 for retry.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "weft/deadline.hpp"
#include "weft/errors.hpp"
#include "weft/select.hpp"
#include "weft/this_fiber.hpp"

namespace weft {

/// What a Ticker does when ticks were missed (the fiber came back to tick()
/// after more than a period).
enum class MissedTickBehavior : std::uint8_t {
  /// Fire the missed ticks at once, one per tick() call, until caught up
  /// (the schedule stays start + k*period). Tokio's default.
  burst,
  /// Fire now, and schedule the next tick one period after now: the
  /// schedule shifts.
  delay,
  /// Fire now, and schedule the next tick at the next start + k*period
  /// after now: missed ticks are dropped, the schedule stays aligned.
  skip,
};

/// A periodic schedule of ticks. tick() waits for the next one (the first
/// fires at once, or at `start`). Used by one fiber at a time; not
/// thread-safe. No timer is held between ticks, so an idle Ticker costs
/// nothing.
class Ticker {
 public:
  /// Ticks at start, start + period, ... @throws std::invalid_argument
  /// ("weft: Ticker period must be positive") for period <= 0.
  Ticker(Clock::time_point start, Clock::duration period,
         MissedTickBehavior missed = MissedTickBehavior::burst)
      : next_(start), period_(period), missed_(missed) {
    if (period <= Clock::duration::zero()) {
      throw std::invalid_argument("weft: Ticker period must be positive");
    }
  }

  /// Parks until the next tick is due (at once if it is) and returns its
  /// scheduled time, then schedules the one after (see MissedTickBehavior).
  /// @throws std::logic_error after stop() ("weft: tick() on a stopped
  /// Ticker"); weft::TimedOut if `deadline` comes first (the tick stays
  /// due); weft::Cancelled (likewise).
  Clock::time_point tick(Deadline deadline = {}) {
    check();
    if (!deadline.is_none() && deadline.when() < next_) {
      this_fiber::sleep_until(deadline);
      throw TimedOut();
    }
    this_fiber::sleep_until(next_);
    return consume(Clock::now());
  }

  /// The time the next tick is due.
  Clock::time_point next() const noexcept { return next_; }
  /// The next tick is one period from now.
  void reset() noexcept { next_ = Clock::now() + period_; }
  /// The next tick is at `when`.
  void reset_at(Clock::time_point when) noexcept { next_ = when; }
  /// No more ticks: tick() throws, on_tick cases never fire. reset()
  /// starts it again.
  void stop() noexcept { next_ = Clock::time_point::max(); }
  /// True after stop() (until a reset).
  bool is_stopped() const noexcept { return next_ == Clock::time_point::max(); }
  /// The period given at construction.
  Clock::duration period() const noexcept { return period_; }
  /// What happens to ticks missed while nobody waited.
  MissedTickBehavior missed_tick_behavior() const noexcept { return missed_; }
  /// Changes missed_tick_behavior() from the next tick on.
  void set_missed_tick_behavior(MissedTickBehavior m) noexcept { missed_ = m; }

  /// Internal (on_tick): the tick due at next() fired at `now`; returns its
  /// scheduled time and schedules the next.
  Clock::time_point consume(Clock::time_point now) noexcept {
    const Clock::time_point due = next_;
    if (now < due + period_) {
      next_ = due + period_;  // on time
    } else {
      switch (missed_) {
        case MissedTickBehavior::burst:
          next_ = due + period_;
          break;
        case MissedTickBehavior::delay:
          next_ = now + period_;
          break;
        case MissedTickBehavior::skip:
          next_ = due + ((now - due) / period_ + 1) * period_;
          break;
      }
    }
    return due;
  }

 private:
  void check() const {
    if (is_stopped()) throw std::logic_error("weft: tick() on a stopped Ticker");
  }
  Clock::time_point next_;
  Clock::duration period_;
  MissedTickBehavior missed_;
};

/// A Ticker whose first tick is now (Tokio's interval()).
/// @throws std::invalid_argument for period <= 0.
template <class Rep, class Per>
Ticker interval(std::chrono::duration<Rep, Per> period,
                MissedTickBehavior missed = MissedTickBehavior::burst) {
  return Ticker(Clock::now(), std::chrono::ceil<Clock::duration>(period), missed);
}

namespace detail {
template <class F>
struct TickHandler {
  Ticker* ticker;
  F fn;
  void operator()() {
    const Clock::time_point due = ticker->consume(Clock::now());
    if constexpr (std::is_invocable_v<F&, Clock::time_point>) {
      fn(due);
    } else {
      fn();
    }
  }
};
}  // namespace detail

/// A select case (weft::select, Selector::add_timeout) that fires when the
/// ticker's next tick is due; the handler takes the tick's scheduled time
/// or nothing, and the ticker moves on only if this case fired. It is the
/// select's deadline case (at most one per variadic select). A stopped
/// ticker's case never fires.
template <class F>
detail::DeadlineCase<detail::TickHandler<std::decay_t<F>>> on_tick(Ticker& t, F&& fn) {
  const std::int64_t ns = t.is_stopped() ? detail::kNoDeadline : detail::to_deadline_ns(t.next());
  return {ns, detail::TickHandler<std::decay_t<F>>{&t, std::forward<F>(fn)}};
}

/// Exponential backoff for retry(): the first retry waits `initial`, each
/// next one `multiplier` times longer, at most `max`; each wait is then
/// scaled by a random factor in [1 - jitter, 1 + jitter] (AWS's "full
/// jitter" family, here the bounded variant) so that many clients do not
/// retry in lockstep.
struct Backoff {
  /// The first retry's wait.
  std::chrono::nanoseconds initial = std::chrono::milliseconds(10);
  /// No wait is longer (before jitter).
  std::chrono::nanoseconds max = std::chrono::seconds(1);
  /// Each wait is this many times the previous one.
  double multiplier = 2.0;
  /// 0..1: the fraction by which a wait may randomly vary.
  double jitter = 0.1;
  /// Attempts in all (the first call included); 0: unlimited (the deadline
  /// ends it).
  std::size_t max_attempts = 0;
};

namespace detail {
/// Validates b. @throws std::invalid_argument naming the field.
void check_backoff(const Backoff& b);
/// The wait before retry number `retry` (1-based), jitter applied.
std::chrono::nanoseconds backoff_delay(const Backoff& b, std::size_t retry) noexcept;
}  // namespace detail

/// Calls fn() (or fn(attempt), attempt = 1, 2, ...) until it returns, and
/// returns its result. When it throws, waits per `backoff` and calls again,
/// unless the attempts are used up or the wait would end past `deadline`:
/// then the last exception is rethrown. weft::Cancelled is never retried
/// (it propagates at once, also from the waits). Seed 001 §2.3.
/// @throws std::invalid_argument for a bad Backoff ("weft: Backoff::initial
/// must be positive", "weft: Backoff::max must be at least initial",
/// "weft: Backoff::multiplier must be at least 1", "weft: Backoff::jitter
/// must be in 0..1"); the last exception of fn; weft::Cancelled.
template <class F>
auto retry(F&& fn, const Backoff& backoff, Deadline deadline = {}) {
  detail::check_backoff(backoff);
  for (std::size_t attempt = 1;; ++attempt) {
    std::exception_ptr failure;
    try {
      if constexpr (std::is_invocable_v<F&, std::size_t>) {
        return fn(attempt);
      } else {
        return fn();
      }
    } catch (const Cancelled&) {
      throw;
    } catch (...) {
      failure = std::current_exception();
    }
    const auto wait = detail::backoff_delay(backoff, attempt);
    const bool attempts_left = backoff.max_attempts == 0 || attempt < backoff.max_attempts;
    if (!attempts_left || (!deadline.is_none() && Clock::now() + wait >= deadline.when())) {
      std::rethrow_exception(failure);
    }
    this_fiber::sleep_for(wait);
  }
}

}  // namespace weft
