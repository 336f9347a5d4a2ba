// Operations on the calling fiber.
#pragma once

#include <chrono>
#include <string_view>

#include "weft/deadline.hpp"
#include "weft/fiber.hpp"

namespace weft {

/// The clock of every weft deadline (CLOCK_MONOTONIC).
using Clock = std::chrono::steady_clock;

namespace this_fiber {

/// Lets other runnable fibers of the same or higher priority on this worker
/// run first; returns at once if there are none. Outside a fiber it calls
/// std::this_thread::yield(). Never throws.
void yield() noexcept;

/// Parks the calling fiber until `deadline` has passed. Never wakes early; on
/// an idle runtime it wakes within about 1-2 ms after the deadline (the timer
/// wheel's resolution is 1 ms). A deadline in the past returns at once after
/// a yield-free check. Outside a fiber it blocks the thread.
/// @throws weft::Cancelled if the fiber is cancelled while it sleeps (the
/// runtime shutting down does that).
void sleep_until(Clock::time_point deadline);

/// sleep_until for a weft::Deadline; Deadline::none() parks until the
/// fiber is cancelled (a plain thread then sleeps forever).
/// @throws weft::Cancelled as sleep_until.
void sleep_until(Deadline deadline);

/// sleep_until(Clock::now() + d). d <= 0 returns at once.
template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> d) {
  if (d <= d.zero()) return;
  sleep_until(Clock::now() + std::chrono::ceil<Clock::duration>(d));
}

/// The calling fiber's id; 0 outside a fiber.
FiberId id() noexcept;

/// The calling fiber's name (FiberOptions::name); empty outside a fiber or
/// for an unnamed fiber. Valid until the fiber ends.
std::string_view name() noexcept;

/// Sets a label of the calling fiber (pprof's labels): shown in fiber dumps
/// (Runtime::dump, SIGQUIT) and on every log line the fiber writes
/// (weft/log.hpp). Setting a key again replaces its value; an empty value
/// removes the key. Labels end with the fiber; spawned fibers do not
/// inherit them. @throws std::logic_error outside a fiber ("weft:
/// this_fiber::set_label() outside a fiber"); std::bad_alloc.
void set_label(std::string_view key, std::string_view value);

/// The calling fiber's priority; Priority::normal outside a fiber.
Priority priority() noexcept;

/// True when called from a fiber (not from a plain or blocking-pool thread).
bool in_fiber() noexcept;

/// Cooperative preemption point: yields if the runtime's monitor has flagged
/// this fiber for running longer than Config::preemption_interval, and
/// otherwise costs one load. Put it in long CPU loops.
void checkpoint() noexcept;

/// Index of the worker running the calling fiber (0..workers-1), or -1
/// outside a fiber. It can change across any call that parks or yields.
int worker_index() noexcept;

}  // namespace this_fiber
}  // namespace weft
