// weft runtime configuration.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace weft {

/// A configuration value that does not parse, has the wrong type, is out of
/// range, or names no setting; or a configuration file that cannot be read
/// or is not valid TOML. what() names all of it, e.g.
/// `weft: /etc/weft.toml:3: workers: must be an integer in 0..1024 (0 = one
/// per core), got 5000`.
class ConfigError : public std::invalid_argument {
 public:
  /// `key`: the setting ("" when the error is about the whole file);
  /// `where`: the environment variable, "path:line", "path" or
  /// "Config::<key>"; `allowed`: the allowed values ("" if not about one).
  ConfigError(const std::string& message, std::string key, std::string where, std::string allowed)
      : std::invalid_argument(message),
        key_(std::move(key)),
        where_(std::move(where)),
        allowed_(std::move(allowed)) {}
  /// The setting's schema key ("workers"), or "" for a file-level error.
  const std::string& key() const noexcept { return key_; }
  /// The environment variable, "file:line", file, or "Config::<key>".
  const std::string& where() const noexcept { return where_; }
  /// The allowed values as in docs/configuration.md, or "".
  const std::string& allowed() const noexcept { return allowed_; }

 private:
  std::string key_;
  std::string where_;
  std::string allowed_;
};

/// One entry of the configuration schema (Config::schema()): the single
/// description of a setting from which validation, the three sources
/// (API field, WEFT_* variable, TOML key), describe() and
/// docs/configuration.md all work.
struct ConfigSetting {
  std::string key;           ///< TOML key and Config field name, e.g. "stack_size"
  std::string env;           ///< environment variable, e.g. "WEFT_STACK_SIZE"
  std::string type;          ///< "count", "bytes", "duration", "bool" or "enum"
  std::string unit;          ///< unit of a bare number: "bytes", "ms", "us", or ""
  std::string default_text;  ///< default as written in TOML, e.g. "256K"
  std::string allowed;       ///< allowed values, e.g. "a size in 16K..1G bytes"
  std::string description;   ///< what it does (one paragraph)
  /// True if a running Runtime can change it (Runtime::set_<key>).
  bool runtime_changeable = false;
};

/// Where a setting's value came from (Config::describe()).
enum class ConfigSource {
  default_value,  ///< the schema default
  file,           ///< a TOML file (where = "path:line")
  env,            ///< an environment variable (where = its name)
  api,            ///< set in code, through the Config field or a Runtime setter
  derived,        ///< computed by the runtime (where = how)
};

/// The origin of one setting's value as loaded (Config::origins).
struct ConfigOrigin {
  /// Where the value came from.
  ConfigSource source = ConfigSource::default_value;
  std::string where;   ///< file:line, variable name, or how it was derived
  std::string loaded;  ///< the value as loaded, formatted as in TOML
};

/// How the runtime places fibers on workers.
enum class Strategy {
  /// N workers, each with its own run queue; idle workers steal half of a
  /// busy worker's queue (Go's proc.go, Tokio's multi_thread). The default.
  work_stealing,
  /// One worker; every fiber runs on it. Config::workers must be 0 or 1.
  single_threaded,
  /// N workers; a fiber never leaves the worker it starts on (no stealing).
  /// A fiber spawned by a fiber runs on its spawner's worker; one spawned
  /// from any other thread is placed round-robin over the workers. Each
  /// worker takes spawns and wake-ups from other threads through its own
  /// inbox, and its io_uring ring or epoll instance serves only its own
  /// fibers (docs/design/scheduler.md, "Thread per core"). Suits
  /// share-nothing servers: one fiber per connection accepted on each
  /// worker. A fiber that runs long without yielding delays only its own
  /// worker's fibers, and nobody takes them over.
  thread_per_core,
  /// work_stealing, unless a later version learns to choose (the schema's
  /// "auto"; Runtime::describe() says what it resolved to).
  auto_select,
};

/// The kernel interface behind a Runtime's reactor (docs/design/io.md).
enum class IoBackend {
  /// io_uring if a ring initialises on this kernel, otherwise epoll.
  auto_detect,
  /// io_uring through liburing: one ring per worker, SINGLE_ISSUER and
  /// DEFER_TASKRUN where the kernel accepts them. Runtime construction
  /// throws std::system_error if no ring can be created.
  io_uring,
  /// Edge-triggered epoll, one instance per worker; file operations run on
  /// the blocking pool.
  epoll,
};

/// Settings a Runtime is built from. Plain aggregate: set fields, then hand it
/// to Runtime, which calls validate(). Not thread-safe to mutate while shared.
/// Every field is described once in the schema (schema(); the generated
/// docs/configuration.md lists keys, variables, units, ranges and defaults).
struct Config {
  /// Worker threads running fibers. 0 means one per CPU the process may use:
  /// the CPUs of its affinity mask, bounded by the tightest CPU bandwidth
  /// limit (cgroup v2 cpu.max, v1 cpu.cfs_quota_us) of its cgroup and every
  /// ancestor, rounded up (src/sched/cpu_budget.hpp).
  /// Allowed: 0..1024. Env: WEFT_WORKERS.
  std::size_t workers = 0;

  /// Pin each worker thread to one CPU of the affinity mask the Runtime was
  /// created with: worker i to the i-th allowed CPU in ascending order,
  /// wrapping when there are more workers than CPUs. The blocking pool's
  /// threads (and the monitor) stay on the whole mask. Off by default: the
  /// kernel places the workers. Env: WEFT_PIN_WORKERS (0/1).
  bool pin_workers = false;

  /// Default fiber stack size in bytes (fibers may override it per spawn).
  /// Reserved with MAP_NORESERVE: only touched pages cost memory. Rounded up
  /// to the page size. Allowed: 16 KiB..1 GiB. Env: WEFT_STACK_SIZE (bytes,
  /// or with a K/M/G suffix).
  std::size_t stack_size = 256 * 1024;

  /// Put an inaccessible guard page below every stack so that an overflow is
  /// reported (SIGSEGV handler naming the fiber) instead of corrupting memory.
  /// Env: WEFT_GUARD_PAGES (0/1).
  bool guard_pages = true;

  /// At most this many fibers alive at once (spawned and not yet ended);
  /// 0 = no limit. A spawn past it throws weft::ResourceExhausted (EAGAIN)
  /// and starts nothing. A fiber stops counting when its function has
  /// returned, before join() returns. Allowed: 0..1000000000.
  /// Env: WEFT_MAX_FIBERS.
  std::size_t max_fibers = 0;

  /// At most this many bytes of stack for the fibers alive at once: the sum
  /// of their stack sizes (page-rounded Config::stack_size or
  /// FiberOptions::stack_size), which bounds the stack memory they can
  /// commit (MAP_NORESERVE: untouched pages cost nothing, so the resident
  /// figure is lower). Free stacks kept in the workers' caches are not
  /// counted. 0 = no limit. A spawn past it throws weft::ResourceExhausted
  /// (EAGAIN) and starts nothing. Allowed: 0..64 TiB.
  /// Env: WEFT_MAX_STACK_MEMORY (bytes, or with a K/M/G suffix).
  std::size_t max_stack_memory = 0;

  /// memory_limit = auto: 90 % of the tightest cgroup memory limit (v2
  /// memory.max, v1 memory.limit_in_bytes) of the process's cgroup and its
  /// ancestors, resolved when the Runtime starts (Config::describe() then
  /// names the file). Runtime construction throws ConfigError if no cgroup
  /// sets one.
  static constexpr std::size_t memory_limit_auto = static_cast<std::size_t>(-1);

  /// A soft limit (bytes) on the runtime's own memory: the stacks of its
  /// live fibers (their whole sizes), the stacks its workers keep cached
  /// with their pages resident, and the fibers' control blocks. Channel
  /// buffers, I/O buffers and user allocations are not counted
  /// (docs/design/memory.md says why). Above it the runtime first trims its
  /// caches, then refuses new fibers (spawn throws weft::ResourceExhausted
  /// naming memory_limit and the usage) and new connections (accept waits)
  /// until usage falls below 90 % of the limit. 0 = off (the default), or
  /// memory_limit_auto. Allowed: 0, 1 MiB..64 TiB, auto.
  /// Env: WEFT_MEMORY_LIMIT (bytes, K/M/G suffix, `auto` or `none`).
  /// Changeable at run time: Runtime::set_memory_limit.
  std::size_t memory_limit = 0;

  /// With a memory_limit: the memory-pressure callbacks
  /// (Runtime::on_memory_pressure) run once each time usage rises past
  /// this fraction of the limit (again only after it fell below).
  /// Allowed: 0.001..1. Env: WEFT_MEMORY_PRESSURE_FRACTION.
  double memory_pressure_fraction = 0.8;

  /// The deadline of a channel or synchronisation wait made without one
  /// (Channel send/recv, select, Selector, Mutex, SharedMutex, Semaphore,
  /// CondVar, Event, Notify, Barrier, WaitGroup, Latch...), measured from
  /// when the call starts to wait; 0 = none. Past it the call throws
  /// weft::TimedOut (it has no timed-out result of its own to return). A
  /// call's own deadline always wins; weft::no_deadline opts a call out.
  /// Applies on the runtime's fibers and spawn_blocking threads; join(),
  /// sleeps, process and signal waits are not covered.
  /// Allowed: 0..24 h. Env: WEFT_DEFAULT_TIMEOUT_MS.
  std::chrono::nanoseconds default_operation_timeout{0};

  /// The deadline of each wait of a weft::net call made without one
  /// (connect, read, write, send, recv...; not accept, where a server waits
  /// for clients without limit), so it bounds how long the peer may stay
  /// silent, not a whole read_exact or write_all that keeps making
  /// progress; 0 = none. Past it the call throws weft::TimedOut. A call's
  /// own deadline wins; weft::no_deadline opts a call out. Allowed: 0..24 h.
  /// Env: WEFT_NETWORK_TIMEOUT_MS.
  std::chrono::nanoseconds network_timeout{0};

  /// The deadline of each wait of a weft::fs call made without one; 0 =
  /// none. Past it the call throws weft::TimedOut. A call's own deadline
  /// wins; weft::no_deadline opts a call out. Only waits that a deadline
  /// can end are bounded: on the epoll backend file operations run on the
  /// blocking pool to completion, so neither applies there. Allowed: 0..24 h.
  /// Env: WEFT_IO_TIMEOUT_MS.
  std::chrono::nanoseconds io_timeout{0};

  /// A fiber running longer than this without switching is flagged, and its
  /// next this_fiber::checkpoint() yields. Allowed: 1 ms..60 s.
  /// Env: WEFT_PREEMPT_MS.
  std::chrono::nanoseconds preemption_interval = std::chrono::milliseconds(10);

  /// A worker stuck on one fiber longer than this gets one warning on stderr
  /// naming the fiber. Allowed: 10 ms..1 h. Env: WEFT_STALL_WARN_MS.
  /// Changeable at run time: Runtime::set_stall_warning.
  std::chrono::nanoseconds stall_warning = std::chrono::seconds(1);

  /// The deadlock report (docs/observability.md, "Deadlock report"): when
  /// every fiber of the runtime has been parked this long with nothing that
  /// could wake one (no timer armed, no I/O in flight, no spawn_blocking
  /// task queued or running, no wake-up or spawn from a plain thread), the
  /// runtime log gets one `error` event with the fiber dump; it is reported
  /// again only after some fiber has run. 0 = off (the default: plain
  /// threads holding handles are invisible to the runtime). Allowed: 0..1 h.
  /// Env: WEFT_DEADLOCK_REPORT_MS.
  std::chrono::nanoseconds deadlock_report{0};

  /// With deadlock_report on: abort the process (std::abort) after the
  /// report instead of going on. Env: WEFT_DEADLOCK_ABORT (0/1).
  bool deadlock_abort = false;

  /// Scheduling strategy. Env: WEFT_STRATEGY
  /// (work_stealing|single_threaded|thread_per_core|auto).
  Strategy strategy = Strategy::work_stealing;

  /// Upper bound on the threads of the spawn_blocking pool. Allowed: 1..10000.
  /// Env: WEFT_MAX_BLOCKING_THREADS.
  std::size_t max_blocking_threads = 512;

  /// A blocking-pool thread idle this long exits. Allowed: 1 ms..1 h.
  /// Env: WEFT_BLOCKING_KEEP_ALIVE_MS.
  std::chrono::nanoseconds blocking_keep_alive = std::chrono::seconds(10);

  /// How long an idle worker keeps looking for work (stealing, polling) before
  /// it sleeps on its futex. Cross-core futex wake-ups cost ~25 us on the VMs
  /// we measure on, so a short spin saves latency. Allowed: 0..10 ms.
  /// Env: WEFT_SPIN_US. Changeable at run time: Runtime::set_spin_before_park.
  std::chrono::nanoseconds spin_before_park = std::chrono::microseconds(20);

  /// For tests; leave it on in programs. On, the monitor thread is a
  /// backstop for wake-ups: every min(preemption_interval / 2, 5 ms), if a
  /// worker sleeps while no worker searches and a fiber is queued or a timer
  /// is overdue, it wakes one. That covers a timer armed on a worker that
  /// then runs one fiber for long without switching (nobody else knows the
  /// timer is due), and it also hides a lost wake-up in the scheduler as a
  /// few milliseconds of latency. Off, the monitor only flags and reports
  /// stalls (preemption_interval, stall_warning): a lost wake-up then hangs,
  /// which is what the runtime's own wake-path tests want to see.
  /// Env: WEFT_WAKE_BACKSTOP (0/1).
  bool wake_backstop = true;

  /// I/O backend. Env: WEFT_IO_BACKEND (auto|io_uring|epoll).
  IoBackend io_backend = IoBackend::auto_detect;

  /// Submission-queue entries of each worker's io_uring (the completion
  /// queue gets 4x). More requests than this may be in flight; the queue
  /// only bounds one submission batch. Allowed: powers of two in 8..32768.
  /// Env: WEFT_IO_URING_ENTRIES.
  std::uint32_t io_uring_entries = 1024;

  /// Events each worker's trace buffer holds (Runtime::start_trace,
  /// WEFT_TRACE; 64 bytes each, allocated and pre-faulted when a trace
  /// starts, freed when it stops). Past it the worker drops its further
  /// events and counts them (the trace's metadata, weft_trace_dropped_events_total).
  /// Allowed: 64..16777216. Env: WEFT_TRACE_BUFFER_EVENTS.
  std::size_t trace_buffer_events = 65536;

  /// Where each setting's value came from, filled by from_env() and
  /// from_file() (and by Runtime for the values it derives); describe()
  /// reads it. Not a setting: leave it alone. Empty in a Config built in
  /// code, where every value is either the default or set through the API.
  std::vector<ConfigOrigin> origins = {};

  /// The defaults, then the TOML file named by WEFT_CONFIG if that variable
  /// is set, then the WEFT_* variables of the schema (docs/configuration.md).
  /// Precedence: what the caller then assigns (the API) > environment >
  /// file > default.
  /// @throws ConfigError naming the variable (or file and line), the value
  ///         and the allowed range when a value does not parse, is out of
  ///         range or the file is unreadable or not valid TOML.
  static Config from_env();

  /// The defaults, then the TOML file at `path`, then the WEFT_* variables
  /// over it (environment > file). WEFT_CONFIG is not read.
  /// The file holds top-level `key = value` pairs, keys as in
  /// docs/configuration.md. @throws ConfigError as from_env(), also for an
  /// unknown key or a value of the wrong TOML type (naming file and line).
  static Config from_file(const std::string& path);

  /// Checks every field against the schema. @throws ConfigError naming the
  /// field ("Config::workers"), its value and its allowed range.
  void validate() const;

  /// workers with 0 resolved as Runtime does (affinity mask and cgroup CPU
  /// limits, 1..1024), 1 for Strategy::single_threaded. Reads /proc.
  std::size_t resolved_workers() const;

  /// Records that the runtime computed `key`'s current value itself (the
  /// worker count from the CPUs allowed, the stack size rounded to pages):
  /// describe() then reports `derived: why`. Used by Runtime.
  /// @throws std::invalid_argument if no setting is named key.
  void note_derived(std::string_view key, std::string why);

  /// One line per setting, in schema order: `key = value  (source)`, the
  /// source being `default`, `env WEFT_X`, `file path:line`, `api` (the
  /// value differs from what was loaded), or `derived: why`. Values print
  /// as they would be written in a TOML file. Allocates; does not validate.
  std::string describe() const;

  /// Every setting, in the order of docs/configuration.md. Static storage.
  static const std::vector<ConfigSetting>& schema();

  /// docs/configuration.md as generated from schema() (a test compares the
  /// two; `make config-doc` rewrites the file).
  static std::string reference_markdown();
};

}  // namespace weft
