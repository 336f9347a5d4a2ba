// A worker: one OS thread running fibers from its own run queues.
//
// Run queues, per worker (owner = the worker's thread):
//   * one Chase-Lev deque per priority level (stealable);
//   * a LIFO slot holding the normal-priority fiber most recently woken by
//     the running fiber (message-passing locality: the woken fiber runs next,
//     on a warm cache; Go's runnext, Tokio's lifo_slot). Owner-only.
// pick order: critical deque, high deque, LIFO slot, normal deque, low deque.
// The owner pops its deques LIFO (work-first, as Cilk: a spawning fiber's
// children run depth-first, which keeps few stacks alive). To bound
// starvation, every kFairnessTick-th pick polls the injector and the driver
// (a park with timeout 0: due timers, I/O completions), and takes the
// *oldest* fiber of a level instead if that one has waited longer than
// Config::preemption_interval (take_starved).
//
// Yielders go to a per-level owner-only FIFO (yielded_), behind every fiber
// already runnable at their level, so yielding fibers go round-robin without
// a single atomic operation. That list is invisible to thieves, so whenever
// another worker is idle the owner spills it into its deques (spill_yielded)
// where they can be stolen.
//
// Switching is direct, fiber to fiber, when the worker has a next fiber;
// only when it has none does a fiber switch to the worker's scheduler
// context (the thread's own stack), which searches for work and sleeps.
// Whatever must happen once the outgoing fiber's registers are saved (commit
// a park, recycle a finished fiber) is recorded as the
// pending post-switch action and run by the incoming context first thing.
//
// Idle protocol (Go's proc.go "spinning threads"): a worker out of work first
// searches (steals half of a random victim's deque, polls the injector, its
// driver and other workers' overdue timers) for Config::spin_before_park; at
// most half the workers search at once. Then it registers as idle,
// re-checks every queue (the re-check and notify_work's check are the two
// halves of a Dekker pattern with seq_cst fences), and sleeps in its
// driver's park (sched/driver.hpp: the reactor's wait, io_uring or epoll)
// until woken, until I/O completes or until the nearest timer is due.
//
// Every fiber the driver or a helped wheel makes runnable comes back as a
// list, and schedule_woken() is the one place that queues such lists: the
// surplus-wake rule and the deadline order of timer wake-ups live there.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "context/context.hpp"
#include "fiber/fiber.hpp"
#include "fiber/fiber_list.hpp"
#include "fiber/stack.hpp"
#include "obs/metrics.hpp"
#include "obs/trace.hpp"
#include "sched/current.hpp"
#include "sched/deque.hpp"
#include "sched/driver.hpp"
#include "sched/inbox.hpp"
#include "sched/memory_account.hpp"
#include "sched/timer_wheel.hpp"

namespace weft::detail {

class RuntimeImpl;

class Worker {
 public:
  static constexpr int kLevels = 4;
  static constexpr std::uint32_t kFairnessTick = 61;  // Go checks its global queue every 61 ticks

  /// A worker of rt, driving `reactor` (its own; see sched/driver.hpp).
  Worker(RuntimeImpl* rt, int index, std::unique_ptr<Reactor> reactor);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// Thread body: runs fibers until the runtime stops.
  void run() noexcept;

  // --- on this worker's thread -------------------------------------------
  Fiber* current() const noexcept { return current_; }
  /// Yields the running fiber (this_fiber::yield).
  void yield_current() noexcept;
  /// Parks the running fiber until one unpark() answers (see fiber.hpp).
  void park_current() noexcept;
  /// Ends the running fiber; its task has completed.
  [[noreturn]] void exit_current() noexcept;
  /// Runs the post-switch action recorded by whoever switched to us.
  void after_switch() noexcept;
  /// Queues a runnable fiber here. lifo: into the LIFO slot if normal
  /// priority (a wake by the running fiber). Notifies idle workers when the
  /// fiber lands where they can steal it.
  void schedule_local(Fiber* f, bool lifo) noexcept;
  /// True while a fiber runs user code here (wakes may use the LIFO slot).
  bool in_fiber_code() const noexcept { return current_ != nullptr && !in_maintenance_; }
  StackCache& stacks() noexcept { return stacks_; }
  FiberId next_fiber_id() noexcept;
  bool preempt_requested() const noexcept { return preempt_.load(std::memory_order_relaxed); }
  void bump_spawned() noexcept { bump(spawned_); }
  /// True when none of this worker's deques holds a fiber. Owner's view: it
  /// reads the owner-only nonempty_ mask and relaxed sizes, so a thief may
  /// empty a deque right after it answered false. See local_run_queue_empty().
  bool deques_empty() const noexcept;

  // --- any thread --------------------------------------------------------
  RuntimeImpl* runtime() const noexcept { return rt_; }
  int index() const noexcept { return index_; }
  /// This worker's driver: its reactor and timer wheel. The owner parks on
  /// it; other threads use its reactor's wake(), its wheel through Timer
  /// handles, and its timer hint.
  Driver& driver() noexcept { return driver_; }
  const Driver& driver() const noexcept { return driver_; }
  /// Moves up to half of the highest non-empty level of this worker's
  /// deques into `thief`'s, returning one fiber for the thief to run.
  Fiber* steal_half_into(Worker& thief) noexcept;
  /// Racy: fibers in this worker's deques (the stealable ones).
  std::size_t queued() const noexcept;
  /// Racy: fibers in this worker's yielded lists.
  std::size_t yielded() const noexcept { return yielded_len_.load(std::memory_order_relaxed); }
  /// Wakes the worker if it sleeps (in its driver's park).
  void wake() noexcept;

  // --- thread_per_core (Strategy::thread_per_core) ------------------------
  /// True if f may be queued on this worker: always under work stealing;
  /// under thread_per_core only on f's home worker. Any thread.
  bool owns(const Fiber* f) const noexcept { return !pinned_fibers_ || f->home == index_; }
  /// thread_per_core: queues f, runnable and homed here, through this
  /// worker's inbox, and wakes the worker if it sleeps (exactly this one:
  /// an eventfd write or ring message through its driver). The protocol
  /// against a lost wake-up is at sleep() and in docs/design/scheduler.md.
  /// Any thread; from a thread that is not a worker of this runtime, inside
  /// RuntimeImpl::begin_external_wake/end_external_wake.
  void post(Fiber* f) noexcept;
  /// Racy hint (the owner's sleep re-check reads it with seq_cst): true if
  /// nothing waits in the inbox. Always true under work stealing.
  bool inbox_empty() const noexcept { return inbox_.empty(); }
  /// Racy: the worker is in (or about to enter) its sleep's park.
  bool asleep() const noexcept { return sleeping_.load(std::memory_order_relaxed); }
  /// The tick this worker's sleep parks until, TimerWheel::kNone when it is
  /// not in a timed park (RuntimeImpl::uncovered_timer_tick). Racy hint.
  std::uint64_t parked_tick() const noexcept {
    return parked_tick_.load(std::memory_order_relaxed);
  }

  /// This worker's credit in the runtime's MemoryAccount (memory_account.hpp):
  /// bytes charged and not yet used. Owner-written.
  MemoryAccount::Credit memory_credit{0};
  /// Owner: charges or releases the change in the stack cache's resident
  /// bytes since `before` (memory_limit counts cached stacks).
  void account_stack_cache(std::size_t before) noexcept;
  /// Owner: trims the stack cache: everything when the runtime asked for a
  /// trim since the last one (memory_limit), else above StackCache::kResident.
  void trim_stack_cache() noexcept;

  // Monitor view (written by the owner with relaxed stores at each switch).
  std::atomic<Fiber*> running{nullptr};
  std::atomic<std::uint64_t> switch_count{0};
  std::atomic<bool> preempt_{false};

  // Statistics (owner-written, read by stats() and the metrics source).
  // steals_ counts fibers taken, steal_successes_ the attempts that took
  // any; noop_unparks_ counts wake-ups from a sleep that found nothing to
  // run before the next sleep (Tokio's worker_noop_count).
  std::atomic<std::uint64_t> spawned_{0}, completed_{0}, steals_{0}, parks_{0}, sleeps_{0};
  std::atomic<std::uint64_t> steal_attempts_{0}, steal_successes_{0}, noop_unparks_{0};

  /// Nanoseconds this worker's thread has spent outside its driver's
  /// blocking park since it started (running fibers, searching), up to
  /// now_ns. Any thread; racy (metrics).
  std::uint64_t busy_ns(std::int64_t now_ns) const noexcept;

  // Idle-list membership; guarded by RuntimeImpl's idle lock (which the
  // analysis cannot name from here: RuntimeImpl's idle functions carry it).
  bool idle_listed = false;
  std::thread thread;

 private:
  enum class PostAction : std::uint8_t { none, commit_park, recycle };
  using Deque = ChaseLevDeque<Fiber*>;

  static void bump(std::atomic<std::uint64_t>& c) noexcept {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  /// The owner's handle on level's deque (this thread only).
  Deque::Owner own(int level) noexcept { return queues_[static_cast<std::size_t>(level)].owner(); }
  Fiber* pick_local() noexcept;
  Fiber* pop_local() noexcept;
  Fiber* take_oldest(int min_level) noexcept;
  Fiber* take_starved() noexcept;
  Fiber* take_yielded(int level) noexcept;
  void spill_yielded() noexcept;
  void maintenance() noexcept;
  /// Parks on the driver with timeout 0 and queues what it returns.
  void poll_driver() noexcept;
  /// Queues the fibers a driver park or a helped wheel made runnable (Go's
  /// injectglist): the one place such lists enter the run queues. Empties
  /// `woken`.
  void schedule_woken(FiberList& woken) noexcept;
  void pull_injector() noexcept;
  /// thread_per_core: queues what the inbox holds, oldest first.
  void pull_inbox() noexcept;
  /// thread_per_core, owner: queues a woken list whose fibers may belong
  /// to other workers (each goes home).
  void schedule_woken_pinned(FiberList& woken) noexcept;
  void push_deque(Fiber* f) noexcept;
  /// push_deque's full-deque case: the older half moves to the injector,
  /// or under thread_per_core f joins the level's owner-only FIFO.
  [[gnu::noinline]] void push_overflow(Fiber* f) noexcept;
  /// sleep()'s re-check after announcing idleness: work this worker may
  /// run, or a due timer of its own.
  bool work_after_idle() noexcept;
  Fiber* find_work() noexcept;
  Fiber* steal_from_others() noexcept;
  bool help_timers() noexcept;
  void sleep() noexcept;
  void resume(Fiber* f) noexcept;
  void begin_run(Fiber* f) noexcept;
  /// Attaches a stack to a fiber about to run for the first time. On
  /// failure the fiber ends without running, its join() rethrowing the
  /// std::system_error, and false is returned.
  bool ensure_stack(Fiber* f) noexcept;
  /// f, or if f cannot get a stack, the next local fiber that can.
  Fiber* startable(Fiber* f) noexcept;
  void switch_away(Fiber* self, Fiber* next, PostAction action) noexcept;
  /// The trace's run-slice events (obs/trace.hpp) of a switch from
  /// pending_fiber_ (leaving by pending_action_) to next; either may be
  /// null (the scheduler context). Out of line: the switch paths keep only
  /// the branch on trace::on().
  void trace_switch(const Fiber* next) noexcept;
  void commit_park(Fiber* f) noexcept;
  /// Owner, f being queued here: stamps it for the scheduling-latency
  /// histogram when the sampler asked for one (stamp_next_).
  void stamp_runnable(Fiber* f) noexcept {
    if (__builtin_expect(stamp_next_, 0)) stamp_runnable_now(f);
  }
  void stamp_runnable_now(Fiber* f) noexcept;
  /// Owner: a sampled switch-in: times this slice, stamps the next fiber
  /// queued, restarts the countdown.
  void begin_sample() noexcept;
  /// Owner: records the run-queue wait of f, which carries a stamp.
  void observe_latency(Fiber* f) noexcept;
  /// Owner: ends the sampled run slice in progress.
  void end_slice() noexcept;
  /// Owner: sets sleep_since_ns_ and adds add_ns to idle_ns_ (a seqlock
  /// write; see busy_ns()).
  void note_idle(std::int64_t since_ns, std::uint64_t add_ns) noexcept;
  void recycle(Fiber* f) noexcept;
  std::uint32_t next_random() noexcept;

  RuntimeImpl* const rt_;
  const int index_;
  // Strategy::thread_per_core: this worker runs only the fibers homed
  // here; no stealing, no injector, no helping other workers' timers.
  const bool pinned_fibers_;
  const std::uint32_t starve_ms_;  // Config::preemption_interval in ms
  // The worker's clock (ms since the runtime's epoch), refreshed on every
  // maintenance tick and search round: cheap stamps for queued fibers.
  std::uint32_t coarse_ms_ = 0;
  Context sched_ctx_;
  Fiber* current_ = nullptr;
  std::array<Deque, kLevels> queues_;
  Fiber* lifo_ = nullptr;
  std::array<FiberList, kLevels> yielded_;     // owner-only FIFOs
  std::atomic<std::uint64_t> yielded_len_{0};  // owner-written; read by stats
  std::uint32_t nonempty_ = 0;                 // bit per level that may hold fibers (see pop_local)
  Driver driver_;
  // Set by wake() before it wakes the driver; the sleeper clears it before
  // announcing itself idle and skips its park if it is set by then. So a
  // wake-up that lands between the two is not slept through.
  std::atomic<bool> wake_requested_{false};
  // thread_per_core: fibers for this worker from other threads (spawns
  // from outside, wake-ups made elsewhere); drained by the owner only.
  Inbox inbox_;
  // thread_per_core: true from the owner's announcement that it is going
  // to sleep until it is awake again; a producer that finds it true after
  // its inbox push clears it and wakes the owner (post). Owner stores
  // true/false; producers exchange. seq_cst: see post() and sleep().
  std::atomic<bool> sleeping_{false};
  StackCache stacks_;
  std::uint64_t trims_seen_ = 0;  // owner-only: RuntimeImpl::trim_requests() last acted on
  std::uint32_t ticks_left_ = kFairnessTick;
  /// True on every kFairnessTick-th scheduling decision.
  bool fairness_tick() noexcept {
    if (--ticks_left_ != 0) return false;
    ticks_left_ = kFairnessTick;
    return true;
  }
  std::uint32_t rng_;
  // True while maintenance() runs on a fiber's behalf (yield, park): wakes
  // made meanwhile (a deadline's cancellation) go to the deques, not to the
  // LIFO slot, which belongs to wakes by the running fiber's own code.
  bool in_maintenance_ = false;
  PostAction pending_action_ = PostAction::none;
  Fiber* pending_fiber_ = nullptr;
  FiberId id_next_ = 0, id_limit_ = 0;

  // Metrics. metrics_ is this thread's shard (obs/metrics.hpp), set when
  // run() starts: the worker never changes thread, so its paths use it
  // without the TLS lookup. sample_left_ counts switch-ins down to the next
  // sampled one (begin_sample), which times its slice (slice_start_ns_, 0
  // when none is timed) and stamps the next fiber queued here
  // (stamp_next_). woke_idle_ is set by a sleep's wake-up and cleared when
  // a fiber runs (noop_unparks_). Owner-only.
  obs::Shard* metrics_ = nullptr;
  std::int64_t slice_start_ns_ = 0;
  std::uint32_t sample_left_ = 1;
  bool stamp_next_ = false;
  bool woke_idle_ = false;
  // Time accounting for busy_ns(): written by the owner around each
  // blocking park (relaxed stores; readers only need each value, not an
  // order between them). sleep_since_ns_ is the start of the park in
  // progress, 0 outside one; stop_ns_ is set when run() returns.
  std::atomic<std::int64_t> start_ns_{0}, stop_ns_{0}, sleep_since_ns_{0};
  std::atomic<std::uint64_t> idle_ns_{0};
  std::atomic<std::uint32_t> idle_seq_{0};  // seqlock over the two above (note_idle)
  // The tick this worker's sleep parks until (it then fires its own due
  // timers), TimerWheel::kNone outside a timed park. Written by the owner
  // around the park, read by RuntimeImpl::uncovered_timer_tick (relaxed: a
  // hint; see there why a stale value loses no timer).
  std::atomic<std::uint64_t> parked_tick_{~std::uint64_t{0}};
};

/// Wakes a parked fiber (see the protocol in fiber.hpp). Any thread.
void unpark(Fiber* f) noexcept;

/// As unpark(f), for a driver's reactor and timer wheel: a fiber this makes
/// runnable is prepended to `woken` instead of being queued; the worker that
/// parked on the driver queues the list (Worker::schedule_woken). A wake
/// that reaches f before it has switched out leaves a notification as
/// unpark() does, and nothing is added. Owner thread of the list.
void unpark(Fiber* f, FiberList& woken) noexcept;

/// Pins a parked fiber for a dump (fiber.hpp: kParked -> kDumping): until
/// unpin_parked(f) it cannot run, so its saved context and stack hold still
/// and it stays registered. An unpark meanwhile is left for unpin_parked.
/// False if f is not parked (then it is not pinned). Any thread; the caller
/// keeps f alive for the call (holds its registry shard lock).
bool pin_parked(Fiber* f) noexcept;

/// Ends pin_parked(f): f is parked again, or, if an unpark came meanwhile,
/// queued as unpark() would have. Any thread.
void unpin_parked(Fiber* f) noexcept;

}  // namespace weft::detail
