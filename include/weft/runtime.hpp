// The runtime: worker threads, run queues, timers, the blocking pool.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "weft/config.hpp"
#include "weft/fiber.hpp"

namespace weft {

namespace detail {
class RuntimeImpl;
class ShutdownWatcher;
class TraceControl;
}  // namespace detail

/// Receives a finished trace: the whole Chrome trace-event JSON, once, from
/// Runtime::stop_trace() (or the Runtime's destructor) on that thread.
using TraceSink = std::function<void(std::string_view json)>;

/// What a trace recorded (Runtime::stop_trace).
struct TraceSummary {
  std::uint64_t events = 0;  ///< events written to the trace
  std::uint64_t dropped =
      0;  ///< events lost: a worker's buffer was full (Config::trace_buffer_events)
};

/// Counters of one worker. Monotonic counts since the runtime started unless
/// noted.
struct WorkerStats {
  std::uint64_t fibers_spawned = 0;    ///< fibers spawned by fibers on this worker
  std::uint64_t fibers_completed = 0;  ///< fibers that ended on this worker
  std::uint64_t switches = 0;          ///< context switches into fibers
  std::uint64_t steals = 0;            ///< fibers taken from other workers' queues
  std::uint64_t fiber_parks = 0;       ///< fibers that parked on this worker
  std::uint64_t sleeps = 0;            ///< times the worker thread slept (in its I/O backend)
  std::uint64_t runnable = 0;          ///< current: fibers in its run queue (racy snapshot)
  std::uint64_t io_requests = 0;  ///< I/O requests submitted (io_uring) or readiness waits (epoll)
  std::uint64_t io_blocking_waits = 0;  ///< backend waits that could block (idle sleeps)
};

/// Snapshot of a runtime's counters (taken without stopping it; fields are
/// individually exact but not mutually consistent while fibers run).
struct RuntimeStats {
  /// fibers spawned since the runtime started
  std::uint64_t fibers_spawned = 0;
  /// fibers that ended
  std::uint64_t fibers_completed = 0;
  std::uint64_t fibers_alive = 0;     ///< spawned and not yet ended
  std::uint64_t fibers_runnable = 0;  ///< queued on a worker or the injector
  std::uint64_t fibers_parked = 0;    ///< waiting to be unparked
  /// sum of WorkerStats::steals
  std::uint64_t steals = 0;
  /// sum of WorkerStats::fiber_parks
  std::uint64_t fiber_parks = 0;
  std::uint64_t injector_depth = 0;    ///< current: fibers in the injector
  std::uint64_t blocking_threads = 0;  ///< current: threads of the blocking pool
  std::uint64_t blocking_tasks = 0;    ///< spawn_blocking tasks run so far
  std::uint64_t io_requests = 0;       ///< sum of WorkerStats::io_requests
  /// Times the monitor thread woke (its period, 5 ms at most, while a
  /// worker is busy; every 100 ms once the runtime has been idle for
  /// 100 ms; and when a worker leaves a long idle spell). For tests of the
  /// idle runtime's cost (docs/design/scheduler.md, "Monitor thread").
  std::uint64_t monitor_wakeups = 0;
  /// one entry per worker, by index
  std::vector<WorkerStats> workers;
};

/// The format of Runtime::dump: text for people (what SIGQUIT prints), JSON
/// for tools (schema: docs/observability.md, "Fiber dumps").
enum class DumpFormat : std::uint8_t { text, json };

/// The runtime's own memory as counted for Config::memory_limit
/// (Runtime::memory_usage; docs/design/memory.md).
struct MemoryUsage {
  /// Bytes in use: the stacks of live fibers (whole sizes), the workers'
  /// cached stacks with resident pages, the fibers' task blocks' fixed
  /// part. Exact while nothing runs; otherwise a sum of racy reads.
  std::uint64_t used = 0;
  /// Bytes charged: used plus the credit the busy workers hold (at most
  /// two chunks of four default fibers each; an idle worker holds none);
  /// what the limit is checked on.
  std::uint64_t charged = 0;
  std::uint64_t limit = 0;            ///< Config::memory_limit in bytes; 0 = off
  std::uint64_t refusals = 0;         ///< spawns refused for the limit
  std::uint64_t trims = 0;            ///< cache trims the limit caused
  std::uint64_t pressure_events = 0;  ///< upward crossings of the pressure fraction
  bool refusing = false;              ///< spawns and accepts are refused now
};

/// A memory-pressure callback (Runtime::on_memory_pressure): `charged` and
/// `limit` in bytes, as in MemoryUsage.
using MemoryPressureCallback = std::function<void(std::uint64_t charged, std::uint64_t limit)>;

/// An M:N fiber runtime: Config::workers threads run fibers, each with its own
/// run queue, stealing from each other when idle (Go's proc.go and Tokio's
/// multi_thread scheduler are the models; docs/design/scheduler.md).
///
/// Shutdown (destructor): the runtime cancels its root cancel scope, so
/// every fiber still alive - a fiber parked in a blocking call, or entering
/// one later - gets weft::Cancelled thrown from it so that it unwinds and
/// runs its destructors, and fibers spawned meanwhile start cancelled; then
/// it waits until every fiber has ended. Cancellation deferred by a shield
/// (weft::shield) is forced after 1 s. A fiber that never blocks again (an
/// endless CPU loop) keeps the destructor waiting.
/// Blocking-pool tasks already running are waited for.
///
/// Thread-safety: all members may be called from any thread, except that the
/// destructor must not run on one of the runtime's own threads.
class Runtime {
 public:
  /// Starts the worker threads. @throws std::invalid_argument for an invalid
  /// config (Config::validate); std::system_error if threads cannot start.
  explicit Runtime(Config config = Config::from_env());
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// Runs fn() as a fiber (the root fiber) and blocks the calling thread until
  /// it finishes; returns its value or rethrows its exception. Fibers it
  /// spawned and detached keep running afterwards. Called from a fiber, it
  /// parks that fiber instead of blocking a worker. Errors as weft::spawn.
  template <class F>
  auto block_on(F&& fn) {
    return spawn(FiberOptions{.name = "main"}, std::forward<F>(fn)).join();
  }

  /// Spawns a fiber on this runtime from any thread. From outside the runtime
  /// it goes through the injector queue. Errors as weft::spawn.
  template <class F>
  auto spawn(const FiberOptions& opts, F&& fn) {
    return detail::make_task_and_start(std::forward<F>(fn),
                                       [&](detail::TaskBase* t) { spawn_task(t, opts); });
  }
  /// spawn() with default FiberOptions.
  template <class F>
  auto spawn(F&& fn) {
    return spawn(FiberOptions{}, std::forward<F>(fn));
  }

  /// Counters; see RuntimeStats.
  RuntimeStats stats() const;

  /// A dump of every live fiber (Go's SIGQUIT goroutine dump, the JDK's
  /// thread dump). Per fiber: id, name, state, parent, priority, whether cancelled;
  /// for a parked fiber what it waits on (channel send/recv and the
  /// channel's address, mutex, condvar, rwlock, semaphore, barrier, event,
  /// join on fiber N, sleep until T, I/O read or write on fd N, select over
  /// N cases, a spawn_blocking task, a scope's children) and for how long
  /// (ms, at the kernel tick's resolution), its stack (bytes reserved and
  /// used) and a symbolized backtrace unwound from its saved context; for a
  /// running fiber its worker and a backtrace taken on that worker (the
  /// calling fiber's own included); user labels (this_fiber::set_label);
  /// then the cancellation tree, in which scopes group the fibers they
  /// spawned. docs/observability.md describes both formats and the JSON
  /// schema (version 1).
  ///
  /// Taken without stopping the runtime: a parked fiber is pinned only while
  /// its stack is read (a wake-up meanwhile is delayed, never lost), a
  /// registry shard's lock is held only while the fibers between two parked
  /// ones are copied, and a running fiber is interrupted by a signal only
  /// to record its return addresses. Fibers spawned or ended meanwhile may
  /// be missed or shown. Any thread or fiber (from a fiber of this runtime
  /// the calling worker stays busy for the dump's duration).
  /// @throws std::bad_alloc.
  std::string dump(DumpFormat format = DumpFormat::text) const;

  /// Starts recording a trace of this runtime (docs/observability.md,
  /// "Tracing"). Per-worker buffers of Config::trace_buffer_events events
  /// (fiber spawn, run slice begin and end, park with its reason, unpark
  /// with the waking fiber, steal, I/O submit and completion, timer fire),
  /// written by stop_trace() to `path` as Chrome trace-event JSON for
  /// ui.perfetto.dev or chrome://tracing: one track per worker, a flow arrow
  /// from each waker's slice to the woken fiber's next slice. The file is
  /// created (truncated) now, so a bad path fails here. Recording never
  /// blocks a worker; a full buffer drops its worker's further events and
  /// counts them. WEFT_TRACE=path does the same from the constructor to the
  /// destructor. Any thread.
  /// @throws std::system_error naming the path if it cannot be opened for
  ///         writing; std::logic_error if a trace is recording already (in
  ///         this runtime or in another runtime of the process: one at a
  ///         time); std::bad_alloc for the buffers.
  void start_trace(const std::string& path);

  /// As start_trace(path), handing the JSON to `sink` instead of a file.
  /// @throws std::invalid_argument for an empty sink; otherwise as above.
  void start_trace(TraceSink sink);

  /// Stops the trace, writes it (to the file, which is then closed, or to
  /// the sink) and frees the buffers. The recording ends at once; the JSON
  /// takes ~100-200 ns per event to produce, on the calling thread (from a
  /// fiber, its worker is busy that long). Also bumps
  /// weft_trace_events_total and weft_trace_dropped_events_total. A runtime
  /// destroyed while recording writes its trace the same way (errors go to
  /// the log). Any thread.
  /// @throws std::logic_error if no trace is recording; std::system_error
  ///         naming the path if the file cannot be written (the trace is
  ///         lost); whatever the sink throws.
  TraceSummary stop_trace();

  /// The validated configuration the runtime was built with (workers
  /// resolved). Settings changed since through the setters below are not
  /// in it: describe() shows the values in force.
  const Config& config() const noexcept;

  /// Config::describe() of the configuration in force: config() with the
  /// settings changed at run time, each with its source ("api" for a
  /// setter's value). Any thread.
  std::string describe() const;

  /// Changes Config::stall_warning of the running runtime; the monitor uses
  /// the new threshold from its next sample on. Any thread.
  /// @throws ConfigError (naming Config::stall_warning and the allowed
  ///         range) if out of range; nothing changes then.
  void set_stall_warning(std::chrono::nanoseconds threshold);

  /// Changes Config::spin_before_park; each worker uses it from its next
  /// search for work on. Any thread. @throws ConfigError if out of range.
  void set_spin_before_park(std::chrono::nanoseconds spin);

  /// Changes Config::memory_limit (bytes; 0 = off; Config::memory_limit_auto
  /// resolves the cgroup limit again). Spawns are judged against it from
  /// the next one on and the pressure callbacks re-arm. Lowering it below
  /// the memory charged starts a refusal at once (until the memory is
  /// below 90 % of the new limit); it frees nothing: fibers alive stay.
  /// Any thread.
  /// @throws ConfigError naming Config::memory_limit and the allowed values
  ///         if out of range, or if auto finds no cgroup limit; nothing
  ///         changes then.
  void set_memory_limit(std::size_t bytes);

  /// The memory limit in force (bytes, 0 = off), auto resolved.
  std::size_t memory_limit() const noexcept;

  /// The runtime's own memory and the limit's counts. Reads every worker's
  /// credit (racy, relaxed). Any thread; does not allocate.
  MemoryUsage memory_usage() const noexcept;

  /// Registers `fn` to run each time the runtime's charged memory rises
  /// past Config::memory_pressure_fraction of the limit (once per crossing:
  /// again only after it fell below). It runs synchronously on the thread
  /// whose charge crossed the mark: inside the spawn (a fiber or a plain
  /// thread calling spawn) or a worker recycling a fiber; so it must be
  /// short and must not block, spawn, nor register or remove callbacks
  /// (they run under the registry's lock). Exceptions it throws are
  /// ignored. Returns an id for remove_memory_pressure_callback.
  /// @throws std::bad_alloc.
  std::uint64_t on_memory_pressure(MemoryPressureCallback fn);

  /// Removes the callback `id`; false if there is none. When it returns, no
  /// call of that callback is running. Not from inside a callback.
  bool remove_memory_pressure_callback(std::uint64_t id);

  /// Number of worker threads.
  std::size_t workers() const noexcept;

  /// The I/O backend the reactor uses (Config::io_backend resolved:
  /// never auto_detect).
  IoBackend io_backend() const noexcept;

  /// Graceful shutdown on signals (weft/signal.hpp explains how weft
  /// catches them). From this call on, the first of `signals` to arrive
  /// cancels every fiber of this runtime alive at that moment: each gets
  /// weft::Cancelled from its current or next blocking call (deferred
  /// inside a shield), so fibers unwind and end (a block_on() in progress
  /// rethrows Cancelled, and the program decides what to do next, e.g. a
  /// final block_on() that flushes state: fibers spawned after the signal
  /// are not cancelled). If fibers of this runtime are still alive `grace`
  /// after the signal (one ignores cancellation, a shielded cleanup takes
  /// longer, or fibers spawned after the signal still run), the process
  /// ends with
  /// _exit(128 + signo), exit handlers and destructors skipped. A second
  /// signal from the set ends the process the same way at once, with its
  /// own number. Ctrl-C twice thus always works.
  ///
  /// The signals are handled by weft for the rest of the process (their
  /// default action, terminating the process, no longer runs); before the
  /// first signal nothing changes for the fibers. A signal that arrives
  /// when no fiber is alive only arms the second-signal exit. The watch
  /// ends with the Runtime; during its destructor (which cancels every
  /// fiber itself) the grace period and a second signal still apply. A
  /// second call replaces the first one's signals and grace (calls must not
  /// run concurrently with each other or with the destructor).
  ///
  /// @throws std::invalid_argument for an empty list, a signal that cannot
  ///         be handled (as weft::signal::wait) or a negative grace;
  ///         std::system_error if the signal machinery cannot be set up.
  void shutdown_on_signals(std::initializer_list<int> signals = {SIGINT, SIGTERM},
                           std::chrono::nanoseconds grace = std::chrono::seconds(5));

 private:
  void spawn_task(detail::TaskBase* task, const FiberOptions& opts);
  std::unique_ptr<detail::RuntimeImpl> impl_;
  std::unique_ptr<detail::ShutdownWatcher> shutdown_;  // see ~Runtime for the order
  std::unique_ptr<detail::TraceControl> trace_;        // start_trace, WEFT_TRACE
};

}  // namespace weft
