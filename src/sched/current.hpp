// Who is running here: the calling thread's worker, runtime and fiber.
//
// The narrow view of the scheduler for code that only needs to know where
// it runs (the I/O layer, cancellation, generators, the public API's
// queries). Include sched/worker.hpp only to use the Worker type itself.
//
// TLS hazard (docs/design/HACKING.md): a fiber may resume on another
// thread, and a compiler may keep a TLS address in a register across a call
// that switches. So these are out-of-line calls (defined in worker.cpp);
// never keep their result across a call that may park or yield.
#pragma once

namespace weft::detail {

struct Fiber;
class Worker;
class RuntimeImpl;
class Reactor;
class TimerWheel;

/// The worker whose thread calls, or nullptr.
Worker* current_worker() noexcept;

/// The runtime of the calling thread: a worker's, or a blocking-pool
/// thread's; nullptr elsewhere.
RuntimeImpl* current_runtime() noexcept;

/// Sets current_runtime() for the calling thread (blocking-pool threads).
void set_current_runtime(RuntimeImpl* rt) noexcept;

/// The fiber running on this thread, or nullptr (plain threads, and a
/// worker's scheduler context between fibers).
Fiber* current_fiber() noexcept;

/// The calling worker's reactor (its driver's I/O half; src/io implements
/// it), or nullptr off the workers.
Reactor* current_reactor() noexcept;

/// The calling worker's timer wheel, or nullptr off the workers. Arm timers
/// on it through a Timer handle (sched/timer_wheel.hpp).
TimerWheel* current_timers() noexcept;

/// The probe of lazy binary splitting (A. Tzannes, G. C. Caragea, R. Barua,
/// U. Vishkin, "Lazy Binary-Splitting: A Run-Time Adaptive Work-Stealing
/// Scheduler", PPoPP 2010; used by weft/parallel.hpp): true when the calling
/// fiber's worker has no fiber in its stealable run queues (its deques). A
/// loop that offered work before (pushed a fiber) sees true again once that
/// work has been stolen or run, i.e. when a hungry worker would find nothing
/// here; that is when splitting off more work pays. The LIFO slot and the
/// yielded lists are not counted: thieves cannot take from them. True outside
/// a worker (no local queue). Racy by design: a thief may empty a deque just
/// after a false answer, which only delays a split to the next probe.
/// Cost: one out-of-line TLS read, the owner's level mask and two relaxed
/// loads per level that may hold fibers; no locked instruction, no fence.
bool local_run_queue_empty() noexcept;

}  // namespace weft::detail
