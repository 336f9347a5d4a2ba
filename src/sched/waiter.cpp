#include "sched/waiter.hpp"

#include <time.h>

#include "base/asymmetric_barrier.hpp"
#include "base/futex.hpp"
#include "fiber/fiber.hpp"
#include "obs/trace.hpp"
#include "sched/runtime_impl.hpp"
#include "sched/timer_wheel.hpp"
#include "sched/worker.hpp"

namespace weft::detail {
namespace {

// The timer of a timed fiber wait.
struct WaiterTimer final : Timer {
  explicit WaiterTimer(Waiter* w) noexcept : Timer(&fire), waiter(w) {}

  static void fire(Timer* t, FiberList& woken) noexcept {
    // Runs under the wheel's lock; the waiting fiber cancels this timer
    // under the same lock before its waiter dies (lifetime rule in
    // waiter.hpp). The fiber goes to the firing worker's list: the driver
    // hands it back and the worker queues it.
    static_cast<WaiterTimer*>(t)->waiter->wake(Waiter::kTimedOut, woken);
  }

  Waiter* const waiter;
};

// The CAS that decides the wait: exactly one caller wins.
inline bool win(std::atomic<std::uint32_t>& state, Waiter::Result reason) noexcept {
  std::uint32_t expected = Waiter::kWaiting;
  // acq_rel: release publishes what the waker did for this waiter (a value
  // handed over, a dequeue) to the waiting side's acquire in result();
  // acquire keeps the losers' view consistent.
  return state.compare_exchange_strong(expected, reason, std::memory_order_acq_rel,
                                       std::memory_order_relaxed);
}

}  // namespace

std::int64_t monotonic_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Waiter::Waiter(WaitReason reason, std::uint64_t arg) noexcept
    : fiber_(current_fiber()), arg_(arg), reason_(reason) {}

inline void Waiter::unpark_waiter(Fiber* f, FiberList* woken) noexcept {
  if (f == nullptr) {
    futex_wake(&state_, 1);  // address only: safe even if the waiter left
  } else if (woken != nullptr) {
    unpark(f, *woken);
  } else {
    unpark(f);
  }
}

bool Waiter::wake(Result reason) noexcept {
  Fiber* const f = fiber_;  // read before the CAS: a thread waiter may be gone after it
  if (!win(state_, reason)) return false;
  unpark_waiter(f, nullptr);
  return true;
}

bool Waiter::wake(Result reason, FiberList& woken) noexcept {
  Fiber* const f = fiber_;  // as above
  if (!win(state_, reason)) return false;
  unpark_waiter(f, &woken);
  return true;
}

bool Waiter::claim() noexcept {
  std::uint32_t expected = kWaiting;
  // acquire: the node's contents are ordered by the queue lock the claimer
  // holds (the waiting side linked the node under it); the acquire, free on
  // a CAS, keeps claim() correct without relying on that.
  return state_.compare_exchange_strong(expected, kClaimed, std::memory_order_acquire,
                                        std::memory_order_relaxed);
}

void Waiter::complete(Result reason) noexcept {
  Fiber* const f = fiber_;  // read before the store: a thread waiter may be gone after it
  // release publishes what the claimer wrote into the node to result().
  state_.store(reason, std::memory_order_release);
  unpark_waiter(f, nullptr);
}

void Waiter::complete(Result reason, FiberList& woken) noexcept {
  Fiber* const f = fiber_;                          // as above
  state_.store(reason, std::memory_order_release);  // as above
  unpark_waiter(f, &woken);
}

Waiter::Result Waiter::wait(std::int64_t deadline_ns, bool cancellable) noexcept {
  return fiber_ != nullptr ? wait_fiber(deadline_ns, cancellable) : wait_thread(deadline_ns);
}

Waiter::Result Waiter::wait_thread(std::int64_t deadline_ns) noexcept {
  for (;;) {
    const auto s = static_cast<Result>(state_.load(std::memory_order_acquire));
    if (s == kClaimed) {  // a claimer is handing something over; complete() follows
      futex_wait(&state_, kClaimed, -1);
      continue;
    }
    if (s != kWaiting) return s;
    std::int64_t timeout = -1;
    if (deadline_ns >= 0) {
      const std::int64_t now = monotonic_ns();
      if (now >= deadline_ns) {
        std::uint32_t expected = kWaiting;
        if (state_.compare_exchange_strong(expected, kTimedOut, std::memory_order_acq_rel,
                                           std::memory_order_acquire)) {
          return kTimedOut;
        }
        continue;  // a waker won meanwhile
      }
      timeout = deadline_ns - now;
    }
    futex_wait(&state_, kWaiting, timeout);
  }
}

// The park event (obs/trace.hpp): what the fiber waits for, as a dump shows it.
[[gnu::noinline, gnu::cold]] void Waiter::trace_park(const Fiber* self) const noexcept {
  obs::trace::record(obs::trace::Kind::park, self->id, arg_, 0, to_string(reason_));
}

Waiter::Result Waiter::wait_fiber(std::int64_t deadline_ns, bool cancellable) noexcept {
  Fiber* const self = fiber_;
  // A self-won CAS (we decide the outcome ourselves) means no unpark is on its
  // way, so we must not park; any other winner sends exactly one unpark,
  // which park_current() consumes.
  bool self_won = false;
  if (cancellable) {
    // Publish the waiter, then look for a cancellation request (store-load,
    // paired with request_cancel's heavy barrier): either we see the request
    // or the canceller sees the waiter; if both, the CAS below decides.
    self->current_waiter.store(this, std::memory_order_release);
    light_barrier();
    if (self->cancel_requested.load(std::memory_order_relaxed)) {
      std::uint32_t expected = kWaiting;
      self_won = state_.compare_exchange_strong(expected, kCancelled, std::memory_order_acq_rel,
                                                std::memory_order_acquire);
    }
  }

  WaiterTimer timer(this);
  bool armed = false;
  if (!self_won && deadline_ns >= 0 && state_.load(std::memory_order_acquire) == kWaiting) {
    armed = timer.arm(*current_timers(), self->runtime->deadline_to_tick(deadline_ns));
    if (!armed) {  // the deadline's tick has passed: time out ourselves
      std::uint32_t expected = kWaiting;
      self_won = state_.compare_exchange_strong(expected, kTimedOut, std::memory_order_acq_rel,
                                                std::memory_order_acquire);
    }
  }

  if (!self_won) {
    // For fiber dumps: what we wait for (fiber.hpp, parked_on).
    since_ = self->runtime->park_stamp();
    self->parked_on = this;
    if (obs::trace::on()) trace_park(self);
    current_worker()->park_current();
  }

  // Whoever woke us, the timer must be out of the wheel (or its fire
  // finished) before `this` and `timer` die.
  if (armed) timer.cancel();
  if (cancellable) {
    self->current_waiter.store(nullptr, std::memory_order_relaxed);
    light_barrier();
    // A canceller that saw the waiter may still be inside wake() on it,
    // under wait_lock: wait it out before the waiter goes away.
    if (self->cancel_requested.load(std::memory_order_relaxed)) {
      LockGuard g(self->wait_lock);
    }
  }
  return result();
}

}  // namespace weft::detail
