// See driver.hpp.
#include "sched/driver.hpp"

#include "sched/waiter.hpp"

namespace weft::detail {

std::uint64_t Driver::now_tick() const noexcept {
  return static_cast<std::uint64_t>(monotonic_ns() - epoch_ns_) / 1'000'000;
}

void Driver::fire_due_timers(FiberList& woken) noexcept {
  // The hint is never later than the earliest timer (timer_wheel.hpp), so
  // skipping on it never misses a due timer; it saves the lock on the busy
  // worker's fairness tick and on every turn of the search loop.
  if (timers_.next_expiry_hint() == TimerWheel::kNone) return;
  const std::uint64_t now = now_tick();
  if (timers_.next_expiry_hint() > now) return;
  timers_.advance(now, woken);
}

void Driver::park(std::int64_t timeout_ns, FiberList& woken) noexcept {
  fire_due_timers(woken);
  // Something to run already: look at the reactor, but do not wait on it.
  if (!woken.empty()) timeout_ns = 0;
  if (timeout_ns != 0) {
    reactor_->poll(timeout_ns, woken);
    // The wait may have ended at a timer's deadline (the caller's timeout).
    fire_due_timers(woken);
  } else if (reactor_->has_pending()) {
    reactor_->poll(0, woken);
  }
}

}  // namespace weft::detail
