// weft runtime configuration.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace weft {

/// How the runtime places fibers on workers.
enum class Strategy {
  /// N workers, each with its own run queue; idle workers steal half of a
  /// busy worker's queue (Go's proc.go, Tokio's multi_thread). The default.
  work_stealing,
  /// One worker; every fiber runs on it. Config::workers must be 0 or 1.
  single_threaded,
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
struct Config {
  /// Worker threads running fibers. 0 means std::thread::hardware_concurrency().
  /// Allowed: 0..1024. Env: WEFT_WORKERS.
  std::size_t workers = 0;

  /// Default fiber stack size in bytes (fibers may override it per spawn).
  /// Reserved with MAP_NORESERVE: only touched pages cost memory. Rounded up
  /// to the page size. Allowed: 16 KiB..1 GiB. Env: WEFT_STACK_SIZE (bytes,
  /// or with a K/M/G suffix).
  std::size_t stack_size = 256 * 1024;

  /// Put an inaccessible guard page below every stack so that an overflow is
  /// reported (SIGSEGV handler naming the fiber) instead of corrupting memory.
  /// Env: WEFT_GUARD_PAGES (0/1).
  bool guard_pages = true;

  /// A fiber running longer than this without switching is flagged, and its
  /// next this_fiber::checkpoint() yields. Allowed: 1 ms..60 s.
  /// Env: WEFT_PREEMPT_MS.
  std::chrono::nanoseconds preemption_interval = std::chrono::milliseconds(10);

  /// A worker stuck on one fiber longer than this gets one warning on stderr
  /// naming the fiber. Allowed: 10 ms..1 h. Env: WEFT_STALL_WARN_MS.
  std::chrono::nanoseconds stall_warning = std::chrono::seconds(1);

  /// Scheduling strategy. Env: WEFT_STRATEGY (work_stealing|single_threaded).
  Strategy strategy = Strategy::work_stealing;

  /// Upper bound on the threads of the spawn_blocking pool. Allowed: 1..10000.
  /// Env: WEFT_MAX_BLOCKING_THREADS.
  std::size_t max_blocking_threads = 512;

  /// A blocking-pool thread idle this long exits. Allowed: 1 ms..1 h.
  std::chrono::nanoseconds blocking_keep_alive = std::chrono::seconds(10);

  /// How long an idle worker keeps looking for work (stealing, polling) before
  /// it sleeps on its futex. Cross-core futex wake-ups cost ~25 us on the VMs
  /// we measure on, so a short spin saves latency. Allowed: 0..10 ms.
  /// Env: WEFT_SPIN_US.
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

  /// Reads the WEFT_* variables named above over the defaults.
  /// @throws std::invalid_argument naming the variable and its allowed range
  ///         when a value does not parse or is out of range.
  static Config from_env();

  /// Checks every field. @throws std::invalid_argument naming the field and
  /// its allowed range.
  void validate() const;

  /// workers with 0 resolved to the hardware concurrency (at least 1).
  std::size_t resolved_workers() const;
};

}  // namespace weft
