// RuntimeImpl: what a weft::Runtime owns - workers, the injector, the idle
// set, the fiber registry, the monitor thread and the blocking pool.
//
// Shutdown protocol (~RuntimeImpl), step by step:
//   1. stopping_ = true, and cancel the root of the cancellation tree
//      (root_cancel_): every fiber not inside a shield gets weft::Cancelled
//      from its blocking calls, so fibers unwind and end; fibers spawned
//      from now on start cancelled (they attach under a cancelled node).
//   2. Wait until no fiber is alive. Fibers still alive after
//      kShieldGraceMs (shielded cleanup that blocks, or fibers spawned from
//      inside a shield) are then force-cancelled every millisecond
//      (force_cancel_all: Fiber::hard_cancel, which shields do not stop).
//   3. closed_ = true: spawning now throws std::logic_error. Re-check alive.
//   4. Stop the monitor thread.
//   5. exiting_ = true, wake every worker, join them.
//   6. Stop the blocking pool, waiting for the tasks it is running.
//   7. Unmap cached stacks.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/spinlock.hpp"
#include "fiber/fiber.hpp"
#include "fiber/fls.hpp"
#include "fiber/stack.hpp"
#include "obs/backtrace.hpp"
#include "obs/metrics.hpp"
#include "sched/blocking_pool.hpp"
#include "sched/worker.hpp"
#include "weft/config.hpp"
#include "weft/runtime.hpp"

namespace weft::detail {

/// Makes the `count` reactors of a runtime's workers (the I/O layer's
/// io::make_reactors; sched/ does not depend on src/io). @throws what the
/// I/O layer throws when a reactor cannot be created.
using ReactorFactory = std::vector<std::unique_ptr<Reactor>> (*)(const Config& config,
                                                                 std::size_t count);

class RuntimeImpl;

/// The live runtimes of the process, for debuggers (tools/gdb/weft.py reads
/// it by name from the debug information): a list through
/// RuntimeImpl::debug_next_, newest first, linked at the end of a runtime's
/// constructor and unlinked at the start of its destructor, under
/// g_debug_runtimes_mu. Nothing in the runtime reads it.
extern RuntimeImpl* g_debug_runtimes;

class RuntimeImpl final : public obs::Source {
 public:
  /// Starts a runtime: validates config (@throws std::invalid_argument),
  /// makes the workers' reactors with make_reactors, starts the worker and
  /// monitor threads (@throws std::system_error).
  RuntimeImpl(const Config& config, ReactorFactory make_reactors);
  ~RuntimeImpl();
  RuntimeImpl(const RuntimeImpl&) = delete;
  RuntimeImpl& operator=(const RuntimeImpl&) = delete;

  /// Creates and queues a fiber for task (see weft::spawn for errors).
  void spawn(TaskBase* task, const FiberOptions& opts, CancelNode* parent_node = nullptr);
  /// Queues task on the blocking pool, its cancellation node attached
  /// under the caller's innermost cancel scope. Errors as BlockingPool::submit.
  void spawn_blocking(TaskBase* task);

  /// The node a task spawned now hangs under: `parent`'s innermost cancel
  /// scope if it is one of our fibers, else the running spawn_blocking
  /// task's node on one of our pool threads, else the root.
  CancelNode* spawn_parent_node(Fiber* parent) noexcept;

  const Config& config() const noexcept { return config_; }
  /// The settings a running runtime can change (Config::schema(),
  /// runtime_changeable), in ns. Relaxed: each is a lone tunable read afresh
  /// on every use; no other data is published with it.
  std::int64_t stall_warning_ns() const noexcept {
    return stall_warning_ns_.load(std::memory_order_relaxed);
  }
  std::int64_t spin_before_park_ns() const noexcept {
    return spin_before_park_ns_.load(std::memory_order_relaxed);
  }
  void set_stall_warning_ns(std::int64_t ns) noexcept {
    stall_warning_ns_.store(ns, std::memory_order_relaxed);
  }
  void set_spin_before_park_ns(std::int64_t ns) noexcept {
    spin_before_park_ns_.store(ns, std::memory_order_relaxed);
  }
  /// Admits one more fiber with a stack of `stack_bytes` against
  /// Config::max_fibers, Config::max_stack_memory and Config::memory_limit,
  /// counting it; `w` is the calling worker of this runtime, or nullptr.
  /// Over the memory limit it first trims caches (trim_caches), then
  /// refuses. @throws ResourceExhausted naming the limit and its value,
  /// having counted nothing. Any thread.
  void admit_fiber(std::size_t stack_bytes, Worker* w);
  /// Stops counting a fiber admit_fiber counted: its function has returned
  /// (before its joiner can wake), it could not start, or its spawn failed
  /// after admission. `w`: the calling worker of this runtime, or nullptr.
  void retire_fiber(std::size_t stack_bytes, Worker* w) noexcept {
    memory_.release(w != nullptr ? &w->memory_credit : nullptr, fiber_charge(stack_bytes));
    if (!limits_on_) return;
    // relaxed: counts that publish nothing. A joiner that saw this fiber
    // complete (TaskBase::complete, which follows this call) and then
    // spawns reads, in admit_fiber's RMW, a value no older than these
    // (RMWs read the latest value in modification order).
    live_fibers_.fetch_sub(1, std::memory_order_relaxed);
    live_stack_bytes_.fetch_sub(stack_bytes, std::memory_order_relaxed);
  }

  // --- Config::memory_limit (memory_account.hpp; docs/design/memory.md).
  /// What a fiber with a stack of `stack_bytes` costs the account: its
  /// whole stack and its task block's fixed part (TaskBase, with the Fiber
  /// inside it); the closure and result beyond that are not counted.
  static std::int64_t fiber_charge(std::size_t stack_bytes) noexcept {
    return static_cast<std::int64_t>(stack_bytes + kTaskBlockCharge);
  }
  static const std::size_t kTaskBlockCharge;
  /// Runtime::set_memory_limit, validated: resolves memory_limit_auto
  /// (@throws ConfigError without a cgroup limit), then sets the limit.
  void set_memory_limit(std::size_t bytes);
  MemoryAccount& memory() noexcept { return memory_; }
  /// Bytes of the runtime's own memory in use (see Config::memory_limit).
  std::uint64_t memory_usage() const noexcept;
  /// Trims the caches (memory pressure): the calling worker's stack cache
  /// whole (`w`, or none), this thread's task-block cache, and asks every
  /// other worker to trim its stack cache whole when it next runs out of
  /// work. Any thread.
  void trim_caches(Worker* w) noexcept;
  /// True while the memory limit refuses new work: spawns, and the
  /// accepts of net::TcpListener/UnixListener, which back off until it
  /// ends (src/net/socket.cpp). While refusing it trims the caches (as a
  /// refused spawn does) and ends the refusal if usage fell below the
  /// low-water mark. Any thread.
  bool refusing_new_work() noexcept {
    if (!memory_.refusing()) [[likely]]
      return false;
    return refusing_new_work_slow();
  }
  /// Trim requests so far (Worker::trim_stack_cache compares).
  std::uint64_t trim_requests() const noexcept {
    return trim_requests_.load(std::memory_order_relaxed);
  }
  /// Puts the calling thread back on the whole affinity mask the runtime
  /// started with, when Config::pin_workers pinned the workers: a thread a
  /// pinned worker creates (a blocking-pool thread) inherits its one CPU.
  /// A no-op otherwise. Best effort: never throws.
  void unpin_current_thread() const noexcept;

  /// True under Strategy::thread_per_core: fibers never leave their home
  /// worker (Fiber::home). Fixed at construction.
  bool thread_per_core() const noexcept { return thread_per_core_; }
  /// thread_per_core: binds f, spawned from a thread that is not one of
  /// our workers, to the next worker in round-robin order and posts it to
  /// that worker's inbox. Any thread, inside begin/end_external_wake.
  void place_outside_spawn(Fiber* f) noexcept;

  /// The resolved I/O backend of every worker.
  IoBackend io_backend() const noexcept { return io_backend_; }
  std::size_t worker_count() const noexcept { return workers_.size(); }
  Worker& worker(std::size_t i) noexcept { return *workers_[i]; }
  StackAllocator& stack_allocator() noexcept { return stacks_; }

  // --- injector: global FIFO for fibers queued from outside the workers and
  // for deque overflow. Any thread.
  void inject(Fiber* f) noexcept;
  void inject_batch(Fiber* head, Fiber* tail, std::size_t n) noexcept;
  /// Pops up to max fibers (linked through Fiber::next); returns the count.
  std::size_t take_injected(Fiber** head, std::size_t max) noexcept;
  std::size_t injector_size() const noexcept { return inject_len_.load(std::memory_order_relaxed); }

  // --- idle workers and searching (see worker.hpp). Any thread.
  /// Called after making work stealable: wakes an idle worker if none is
  /// searching. Contains the seq_cst fence of the Dekker pair.
  void notify_work() noexcept;
  bool try_begin_search() noexcept;
  std::uint32_t idle_workers() const noexcept {
    return idle_count_.load(std::memory_order_relaxed);
  }
  /// Ends a search; returns true if it was the last searcher.
  bool end_search() noexcept;
  void add_idle(Worker* w) noexcept;
  /// Takes w out of the idle set (if there) and wakes the monitor if it
  /// sleeps its idle wait. Not under idle_lock_ (takes it).
  void remove_idle(Worker* w) noexcept;
  bool wake_one_idle() noexcept;
  /// Racy: any fiber queued on any worker or the injector.
  bool has_queued_work() const noexcept;

  // --- time
  std::int64_t epoch_ns() const noexcept { return epoch_ns_; }
  /// Now as a park stamp (fiber.hpp, park_stamp_of), as the monitor read it
  /// last: behind the clock by at most its period (0.5-5 ms) while it runs.
  /// A parking fiber's one clock "read": a relaxed load (fiber dumps only
  /// show how long a fiber has waited, to the ms). Any thread.
  std::uint32_t park_stamp() const noexcept { return park_clock_.load(std::memory_order_relaxed); }
  std::uint64_t now_tick() const noexcept;
  std::uint64_t deadline_to_tick(std::int64_t deadline_ns) const noexcept;
  /// Earliest timer tick hint over all workers' wheels (TimerWheel::kNone if none).
  std::uint64_t earliest_timer_tick() const noexcept;
  /// The earliest timer tick of the workers that will not wake for it
  /// themselves (not parked until that tick or before), or kNone: what a
  /// sleeping worker parks until (Worker::sleep). Racy hint.
  std::uint64_t uncovered_timer_tick() const noexcept;

  // --- registry of live fibers (cancellation at shutdown, stall reports).
  void register_fiber(Fiber* f) noexcept;
  void unregister_fiber(Fiber* f) noexcept;
  /// What visit_fibers shows (the fiber dump, src/obs/dump.cpp).
  class FiberVisitor {
   public:
    /// Every registered fiber, under its registry shard's lock: copy what
    /// is needed (the fields fiber.hpp says may be read there), nothing
    /// that blocks. `pinned`: f was parked and is pinned (pin_parked);
    /// `labels`: its labels, or nullptr.
    virtual void see(Fiber& f, bool pinned, const FiberLabels* labels) noexcept = 0;
    /// Then, for a pinned fiber, outside every lock and while it stays
    /// pinned: its saved context and stack hold still (unwind them here).
    virtual void inspect_pinned(Fiber& f) noexcept = 0;

   protected:
    ~FiberVisitor() = default;
  };
  /// Shows v every fiber registered now (one registered meanwhile may be
  /// missed). A parked fiber stays pinned from its see() until after its
  /// inspect_pinned(), and serves as the walk's place in its shard's list
  /// meanwhile (a pinned fiber cannot end); a wake-up that reaches it then
  /// is delayed until unpinned, never lost. One fiber pinned at a time; a
  /// shard's lock is held only while the fibers between two parked ones
  /// are seen. Any thread.
  void visit_fibers(FiberVisitor& v) noexcept;
  /// this_fiber::set_label for the calling fiber f: sets key to value, or
  /// removes key for an empty value. @throws std::bad_alloc.
  void set_label(Fiber* f, std::string_view key, std::string_view value);
  /// The calling fiber f's own labels, or nullptr: valid until f sets a
  /// label or ends, read without a lock (only f changes them; dumps only
  /// read). For f itself only.
  const FiberLabels* own_labels(const Fiber* f) const noexcept;
  /// The index of the worker running f now and its switch count then, or
  /// -1. Racy (a dump's hint; sample_running checks it again).
  int worker_running(const Fiber* f, std::uint64_t& switches) const noexcept;
  /// The stack of fiber f, taken on worker `worker` (obs::sample_thread)
  /// if f still runs there without a switch since the switch count
  /// `switches`; waits up to `patience` for the worker's answer. False
  /// otherwise (`out` empty). Any thread but that worker's.
  bool sample_running(int worker, const Fiber* f, std::uint64_t switches,
                      std::chrono::milliseconds patience, obs::RawBacktrace& out) noexcept;
  /// A dump of this runtime's fibers, written by the monitor thread when a
  /// dump signal arrives (obs/dump.cpp installs the signal, api/ sets this).
  void set_dump_writer(void (*writer)(RuntimeImpl&)) noexcept {
    dump_writer_.store(writer, std::memory_order_release);
  }
  /// Counts a dump signal (async-signal-safe): every runtime's monitor
  /// writes one dump per signal it sees.
  static void note_dump_signal() noexcept;

  // --- the deadlock report (Config::deadlock_report; docs/observability.md).
  //
  // Checked where the workers go idle, not by polling: the last worker to
  // park (Worker::sleep) with no timeout finds the whole runtime quiet
  // (quiet_now) and parks for the report period instead of forever
  // (deadlock_watch); if it wakes to nothing and the runtime is still
  // quiet, with no fiber run meanwhile (the workers' switch counts), it
  // hands the report to the monitor thread (deadlock_check), whose
  // reporter walks the fibers (a fiber waiting for I/O or a signal is no
  // deadlock) and writes the report with the dump. The same quiet state
  // (same switch counts) is looked at once; any fiber that runs starts a
  // new quiet period.

  /// True if Config::deadlock_report is on.
  bool deadlock_report_on() const noexcept { return deadlock_report_ns_ > 0; }
  /// A worker about to park idle with no timeout, already on the idle list:
  /// if the runtime is quiet, starts (or goes on with) its quiet period and
  /// returns how long to park until the report is due (ns, >= 0); if it is
  /// about to be (a plain thread's wake-up or a blocking task still ending),
  /// the report period, to look again; else -1 (busy, or this quiet state
  /// was reported already). Workers only.
  std::int64_t deadlock_watch() noexcept;
  /// After a park that deadlock_watch timed and that woke no fiber, still
  /// on the idle list: if the runtime stayed quiet for the whole period,
  /// has the monitor write the report. Workers only.
  void deadlock_check() noexcept;
  /// What the monitor calls to write a report: (runtime, quiet ms); returns
  /// false if the fibers show the runtime was not deadlocked after all (a
  /// fiber not parked, or one waiting for I/O or a signal). obs/dump.cpp
  /// implements it; api/ sets it.
  using DeadlockReporter = bool (*)(RuntimeImpl&, std::int64_t);
  void set_deadlock_reporter(DeadlockReporter r) noexcept {
    deadlock_reporter_.store(r, std::memory_order_release);
  }

  /// Wakes f's published waiter with kCancelled. Precondition: f's
  /// cancel_requested was set before a heavy_barrier().
  static void wake_cancelled(Fiber* f) noexcept;

  bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }
  bool exiting() const noexcept { return exiting_.load(std::memory_order_acquire); }

  RuntimeStats stats() const;
  std::uint64_t alive() const noexcept;

  /// The metrics registry's view of this runtime (obs::Source): its
  /// workers' counts, queues, blocking pool and stacks. Registered from the
  /// end of the constructor to the end of the destructor's step 6.
  void collect(obs::RuntimeTotals& out) const noexcept override;

  /// Cancels every fiber of this runtime alive now, outside shields (the
  /// root's children: Runtime::shutdown_on_signals); fibers spawned later
  /// are not cancelled. Shutdown cancels the root itself instead. Any thread.
  void cancel_all() noexcept { root_cancel_.cancel_children(); }

  /// Forced cancellation of every live fiber, shields included
  /// (Fiber::hard_cancel): the last resort of shutdown. Any thread.
  void force_cancel_all() noexcept;

  /// The root of the cancellation tree: the parent of fibers spawned from
  /// outside the runtime's fibers and tasks. Lives as long as the runtime.
  CancelNode& root_cancel_node() noexcept { return root_cancel_; }

  /// How long shutdown lets shielded fibers finish before forcing them.
  static constexpr int kShieldGraceMs = 1000;

  /// Brackets an unpark, or the queueing of a spawn, from a thread that is
  /// not one of this runtime's workers: ~RuntimeImpl waits until none is in
  /// progress before freeing the workers, which such a thread still wakes
  /// after the fiber has become runnable (and could have ended).
  void begin_external_wake() noexcept { external_wakes_.fetch_add(1, std::memory_order_seq_cst); }
  void end_external_wake() noexcept { external_wakes_.fetch_sub(1, std::memory_order_release); }

 private:
  struct RegistryShard {
    mutable SpinLock lock;
    Fiber* head WEFT_GUARDED_BY(lock) = nullptr;  // and every reg_prev/reg_next in its list
    // The labels of its fibers that have some (Fiber::has_labels): kept
    // here rather than in the control block, which is full (256 bytes).
    std::unordered_map<const Fiber*, FiberLabels> labels WEFT_GUARDED_BY(lock);
  };
  static constexpr std::size_t kShards = 64;
  static std::size_t shard_of(const Fiber* f) noexcept {
    return (reinterpret_cast<std::uintptr_t>(f) >> 12) % kShards;
  }

  /// admit_fiber over the memory limit: trims, then admits or refuses
  /// (@throws ResourceExhausted naming memory_limit and the usage).
  void admit_memory_slow(MemoryAccount::Credit* credit, std::int64_t charge, Worker* w);
  /// admit_fiber's max_fibers and max_stack_memory part.
  void admit_counted(std::size_t stack_bytes);
  bool refusing_new_work_slow() noexcept;
  void monitor_main() noexcept;
  /// yes: every worker idle, nothing queued, no timer armed, some fiber
  /// alive, no blocking-pool task and no wake-up from a plain thread in
  /// progress. not_yet: all but the last two, which end without waking a
  /// worker, so the watcher looks again a period later. no: otherwise.
  /// (Fibers waiting for I/O or a signal are found by the reporter's walk
  /// of the fibers: epoll's reactor cannot tell whether a registered
  /// descriptor still has a waiter.) Racy snapshot; reads the blocking pool
  /// under its mutex.
  enum class Quiet { no, not_yet, yes };
  Quiet quiet_now() const noexcept;
  /// The sum of the workers' switch counts: changes whenever a fiber runs.
  std::uint64_t switch_sum() const noexcept;
  /// The monitor: writes a report deadlock_check asked for.
  void write_deadlock_report() noexcept;
  /// The monitor's wake-up backstop, once per period (see the definition).
  void monitor_backstop() noexcept;
  /// Called after a worker left the idle count (a seq_cst RMW), and to stop
  /// or hand the monitor a report: wakes it out of its idle wait (see
  /// monitor_main). Takes no lock; any thread.
  void wake_idle_monitor() noexcept;
  void report_stall(Worker& w, Fiber* f, std::uint64_t switches, std::int64_t ran_ns) noexcept;

  Config config_;
  std::atomic<std::int64_t> stall_warning_ns_;
  std::atomic<std::int64_t> spin_before_park_ns_;
  IoBackend io_backend_ = IoBackend::epoll;
  // Limits (admit_fiber/retire_fiber). limits_on_ is fixed at construction:
  // without limits a spawn touches neither counter.
  const bool limits_on_;
  const std::uint64_t fiber_cap_;                   // max_fibers, or UINT64_MAX for none
  const std::uint64_t stack_cap_;                   // max_stack_memory, or UINT64_MAX for none
  std::atomic<std::uint64_t> live_fibers_{0};       // admitted, not yet retired
  std::atomic<std::uint64_t> live_stack_bytes_{0};  // their stack sizes
  // Config::memory_limit. trim_requests_: relaxed, a lone counter the
  // workers poll when idle (a missed bump only delays a trim).
  MemoryAccount memory_;
  std::atomic<std::uint64_t> trim_requests_{0};
  // The per-worker credits, for MemoryAccount::usage. Immutable once built.
  std::vector<const MemoryAccount::Credit*> credits_;
  // Config::pin_workers: the affinity mask at construction (ascending CPU
  // numbers); empty when the workers are not pinned. Immutable after.
  std::vector<int> allowed_cpus_;
  std::atomic<std::uint32_t> external_wakes_{0};
  const std::int64_t epoch_ns_;
  // park_stamp(): written by the monitor each period (and at construction),
  // relaxed: a clock reading that orders nothing.
  std::atomic<std::uint32_t> park_clock_;
  // Strategy::thread_per_core (resolved: auto is work stealing). Immutable.
  const bool thread_per_core_;
  // thread_per_core: the round-robin turn of the next spawn from outside
  // the workers (place_outside_spawn).
  std::atomic<std::uint32_t> next_home_{0};
  StackAllocator stacks_;
  std::vector<std::unique_ptr<Worker>> workers_;

  SpinLock inject_lock_;
  Fiber* inject_head_ WEFT_GUARDED_BY(inject_lock_) = nullptr;
  Fiber* inject_tail_ WEFT_GUARDED_BY(inject_lock_) = nullptr;
  // Written under inject_lock_; read without it (relaxed) only as a hint
  // ("is there anything?"). Deciders re-check under the lock, and sleepers
  // rely on notify_work's fence, not on this load's ordering.
  std::atomic<std::size_t> inject_len_{0};

  SpinLock idle_lock_;
  std::vector<Worker*> idle_ WEFT_GUARDED_BY(idle_lock_);  // and each Worker::idle_listed
  std::atomic<std::uint32_t> idle_count_{0};
  std::atomic<std::uint32_t> searching_{0};

  std::array<RegistryShard, kShards> registry_;

  std::atomic<bool> stopping_{false};
  // The tree's root: every descendant detaches before the runtime ends.
  class RootCancelNode final : public CancelNode {
   public:
    void add_ref() noexcept override {}
    bool try_add_ref() noexcept override { return true; }
    void release() noexcept override {}
  };
  RootCancelNode root_cancel_;
  std::atomic<bool> closed_{false};
  std::atomic<bool> exiting_{false};
  std::atomic<std::uint64_t> spawned_outside_{0};
  std::atomic<std::uint64_t> stalls_{0};  // written by the monitor thread only
  std::int64_t last_stall_trace_ns_ = 0;  // monitor thread only: rate limit of stall backtraces

  std::atomic<void (*)(RuntimeImpl&)> dump_writer_{nullptr};

  // The deadlock report (deadlock_watch). deadlock_report_ns_: 0 = off.
  const std::int64_t deadlock_report_ns_;
  SpinLock deadlock_lock_;
  // The current quiet period: its start (0: none) and the switch sum then.
  std::int64_t quiet_since_ns_ WEFT_GUARDED_BY(deadlock_lock_) = 0;
  std::uint64_t quiet_switches_ WEFT_GUARDED_BY(deadlock_lock_) = 0;
  // The switch sum of the quiet state reported last (~0: none yet).
  std::uint64_t reported_switches_ WEFT_GUARDED_BY(deadlock_lock_) = ~std::uint64_t{0};
  // A report the monitor owes: the quiet period's length in ms, or -1.
  // relaxed: nothing else is handed over (the monitor takes its own dump).
  std::atomic<std::int64_t> deadlock_due_ms_{-1};
  std::atomic<DeadlockReporter> deadlock_reporter_{nullptr};

  std::mutex monitor_mu_;
  std::condition_variable monitor_cv_;
  bool monitor_stop_ = false;  // guarded by monitor_mu_ (a std::mutex: not annotated)
  // True while the monitor waits its long idle period (monitor_main). The
  // monitor stores it (seq_cst) and then re-reads idle_count_ (seq_cst); a
  // worker leaving the idle count (seq_cst RMW) then loads it (seq_cst): a
  // Dekker pair, so either the monitor sees the busy worker and keeps its
  // short period, or the worker sees the flag and wakes it
  // (wake_idle_monitor: exchange to 0, then futex_wake; the monitor's
  // futex_wait on 1 cannot miss it). 1 while waiting, else 0.
  std::atomic<std::uint32_t> monitor_idle_{0};
  std::atomic<std::uint64_t> monitor_wakeups_{0};  // monitor-written; relaxed (stats)
  std::thread monitor_;

  BlockingPool blocking_;

  RuntimeImpl* debug_next_ = nullptr;  // g_debug_runtimes' link
};

}  // namespace weft::detail
