// The driver: where a worker waits, and the one place its I/O completions
// and timer expiries come back to it (Go's netpoll(delay) returning a gList
// for injectglist; Tokio's runtime/driver.rs, whose Driver::park drives the
// I/O and time drivers).
//
// Problem. A worker that runs out of fibers must sleep until one of three
// things happens: an I/O request of one of its fibers completes, a timer
// comes due, or another thread gives it work. And a busy worker must look
// at completions and timers now and then, or their fibers starve. Both must
// turn "this completion / this expiry" into "this fiber is runnable"
// without losing a wake-up, and a worker should queue what one wait
// produced in one go (one decision about waking other workers, deadline
// order for timers).
//
// Rejected: the reactor and the wheel waking fibers straight into the
// worker that polls them, with thread-local flags telling the worker it is
// being re-entered from inside its own wait so that it batches instead of
// scheduling (weft's first design: a per-worker "collecting" flag, a
// buffer of batched wakes and a deferral flag for timer wake-ups). It
// worked, but every waker had to know about the batch, and the next users
// of the wait (metrics, tracing, a thread-per-core scheduler) would have
// had to thread through it too.
//
// Chosen: the wait returns its result. Driver::park(timeout, woken) fires
// the worker's due timers, polls its reactor (waiting up to `timeout` when
// nothing is runnable yet), fires the timers due after the wait, and hands
// back every fiber it made runnable in `woken`. The reactor and the wheel
// never schedule: their wakes go through Waiter::wake(reason, woken) /
// unpark(fiber, woken), which only move a fiber's park state to runnable
// and prepend it to the list. The worker then queues the list in one place
// (Worker::schedule_woken): the surplus-wake rule and the deadline order
// live there. A busy worker's poll on its fairness tick is the same call
// with timeout 0.
//
// Order of the list: newest wake first (each wake is prepended). Timers fire
// in deadline order and completions are reaped in completion order, and the
// worker's deques pop LIFO, so pushing the list front to back leaves the
// earliest timer on top: timers run first, in deadline order, then
// completions in completion order.
//
// The reactor is an interface here, implemented by src/io (io_uring or
// epoll), so the scheduler does not depend on the I/O layer above it
// (docs/design/overview.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "fiber/fiber_list.hpp"
#include "sched/timer_wheel.hpp"
#include "weft/config.hpp"

namespace weft::detail {

/// The I/O half of a worker's driver: an io_uring ring or an epoll instance
/// (src/io/backend.hpp). One per worker; "owner" below is that worker's
/// thread.
class Reactor {
 public:
  virtual ~Reactor() = default;
  virtual IoBackend kind() const noexcept = 0;

  /// Owner thread, once, before any other owner call (enables the ring for
  /// this thread: IORING_SETUP_SINGLE_ISSUER binds it to its submitter).
  virtual void attach() noexcept = 0;

  /// Owner thread: submits queued requests, dispatches completions and
  /// readiness, and waits up to timeout_ns (0: never; < 0: until an event
  /// or wake()) when there is none. The fibers whose operations it
  /// completes go to `woken` (prepended), never to a run queue.
  virtual void poll(std::int64_t timeout_ns, FiberList& woken) noexcept = 0;

  /// Owner thread: true if poll(0) could find something (requests queued
  /// or in flight, descriptors registered, messages from other threads).
  virtual bool has_pending() const noexcept = 0;

  /// Any thread: makes the owner's current blocking poll() return, or its
  /// next one return at once.
  virtual void wake() noexcept = 0;

  /// Counters for Runtime::stats(): requests submitted (io_uring) or
  /// readiness waits (epoll), and poll() calls that blocked.
  std::uint64_t submitted() const noexcept { return submitted_.load(std::memory_order_relaxed); }
  std::uint64_t blocking_waits() const noexcept {
    return blocking_waits_.load(std::memory_order_relaxed);
  }

 protected:
  /// Owner-written counters; relaxed: statistics only.
  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::atomic<std::uint64_t> submitted_{0};
  std::atomic<std::uint64_t> blocking_waits_{0};
};

/// A worker's driver: its reactor and its timer wheel, and the one place
/// the worker waits.
class Driver {
 public:
  /// epoch_ns: the runtime's time origin (CLOCK_MONOTONIC ns), tick 0 of
  /// the wheel.
  Driver(std::int64_t epoch_ns, std::unique_ptr<Reactor> reactor) noexcept
      : epoch_ns_(epoch_ns), reactor_(std::move(reactor)) {}
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  /// Owner thread, once, before park().
  void attach() noexcept { reactor_->attach(); }

  /// Owner thread. Fires the due timers of this worker's wheel, polls the
  /// reactor - waiting up to timeout_ns (< 0: no limit) for an event if
  /// nothing was made runnable yet, not at all for 0 - and after a wait
  /// fires the timers that came due meanwhile. Every fiber made runnable is
  /// prepended to `woken` (see the file comment for the order); the caller
  /// queues them. A wait also ends early on unpark(). Timer AfterUnlock
  /// callbacks (cancel-scope deadlines) run inside, after the wheel's lock
  /// is released; fibers they wake are scheduled the ordinary way.
  void park(std::int64_t timeout_ns, FiberList& woken) noexcept;

  /// Any thread: ends the owner's park() (or makes the next one return at
  /// once).
  void unpark() noexcept { reactor_->wake(); }

  Reactor& reactor() noexcept { return *reactor_; }
  const Reactor& reactor() const noexcept { return *reactor_; }
  TimerWheel& timers() noexcept { return timers_; }
  const TimerWheel& timers() const noexcept { return timers_; }

  /// Milliseconds since the epoch, now: the wheel's clock.
  std::uint64_t now_tick() const noexcept;

 private:
  /// Advances the wheel to now if a timer is due (the hint says so).
  void fire_due_timers(FiberList& woken) noexcept;

  const std::int64_t epoch_ns_;
  std::unique_ptr<Reactor> reactor_;
  TimerWheel timers_;
};

}  // namespace weft::detail
