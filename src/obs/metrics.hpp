// The metrics registry: per-thread shards of counters and histograms that
// the runtime bumps without contention, and the aggregation that reads them
// (docs/observability.md lists every metric; weft/metrics.hpp exports them).
//
// Problem. Every layer has events worth counting (a fiber spawned, a value
// sent on a channel, bytes read from a socket), some on the hottest paths of
// the runtime (a yield costs ~14 ns). One shared atomic per metric would
// make every event a contended read-modify-write across cores (a cache line
// bouncing between workers); a lock per metric is worse.
//
// Rejected: counters owned by each object (a channel's own counts), summed
// over a registry of live objects at read time. Objects die and their counts
// with them unless retired somewhere, every constructor and destructor pays
// for the registry's lock, and the reader walks 10^5 objects.
//
// Chosen (the per-CPU counters of the Linux kernel, Tokio's per-worker
// MetricsBatch, Go's per-P stats): every thread that records an event owns
// a Shard, reached through one out-of-line TLS lookup (local()). Only the
// owner writes its shard, with a relaxed load and a relaxed store (no RMW,
// no fence: a plain increment that a concurrent reader may see torn in
// time, never in value). Readers sum every shard under the registry's
// mutex. A thread that exits folds its shard into the retired totals, so
// counters stay monotonic. Worker threads keep a pointer to their own shard
// (Worker::metrics_), so the scheduler's paths skip even the TLS lookup.
//
// Gauges that are levels, not events (channel queue depth, pending I/O,
// active connections, buffer bytes), are kept as two counters, in and out;
// the gauge is their difference at read time, so a value enqueued on one
// thread and dequeued on another needs no shared word either.
//
// Histograms: fixed log-linear buckets over nanoseconds (two per octave:
// 2^k and 1.5 * 2^k ns, from 1.024 us to 68.7 s, then +Inf), so shards
// merge by adding their counts and Prometheus gets fixed `le` bounds.
// Timing an event costs two clock reads (~20 ns each with the vDSO's TSC
// clock), too much for a 14 ns yield: the scheduler's and the I/O layer's
// histograms time one event in sample_period() (default 64) per worker or
// thread;
// their _count is then the number of timed events, not of events (the
// counters count every event). So does a send that blocked: a rendezvous
// between two fibers of one worker waits ~150 ns, and timing every one
// made a channel ping-pong 1.8x slower (docs/benchmarks.md, series O2).
// Only a TCP connection's life is timed every time.
//
// Layering: this file depends on nothing in weft; the scheduler registers
// itself as a Source of its own totals (fiber counts, queues, stacks) so
// that the exporter (src/obs/export.cpp) can read them without this layer
// knowing the scheduler.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace weft::detail::obs {

/// Events counted per thread. The gauges are differences of two of them
/// (docs/observability.md).
enum class Counter : std::uint16_t {
  chan_send,                // values delivered by a send (plain or in select)
  chan_recv,                // values taken by a receive (plain or in select)
  chan_buffered_in,         // values that entered a channel's buffer
  chan_buffered_out,        // values that left it (received or dropped)
  chan_buffer_alloc_bytes,  // bytes of channel buffer storage allocated
  chan_buffer_free_bytes,   // ... and freed
  io_read_bytes,            // bytes returned by read, readv, recv, recvmsg
  io_write_bytes,           // bytes accepted by write, writev, send, sendmsg
  io_started,               // I/O operations started (io::perform)
  io_finished,              // ... and finished
  tcp_opened,               // TCP connections established (connect, accept)
  tcp_closed,               // ... and closed
  tcp_sent_bytes,           // bytes sent on TCP streams
  tcp_received_bytes,       // bytes received on TCP streams
  task_block_alloc_bytes,   // bytes of task blocks (a fiber's shared state) allocated
  task_block_free_bytes,    // ... and freed
  fiber_cancelled,          // fibers whose function ended with weft::Cancelled
  trace_events,             // events written to traces (obs/trace.hpp; bumped at stop)
  trace_dropped,            // events traces dropped (a full buffer; bumped at stop)
  io_op_first,              // io_op_first + io::Op: operations by kind
  kCount = io_op_first + 18,
};
inline constexpr std::size_t kCounters = static_cast<std::size_t>(Counter::kCount);
/// The number of I/O operation kinds (io::Op) counted from io_op_first.
inline constexpr std::size_t kIoOps = 18;
/// io::Op's names, in its order (src/io/request.hpp; perform.cpp asserts
/// the count): the `op` label of weft_io_operations_total, the trace's I/O
/// events.
inline constexpr const char* kIoOpNames[kIoOps] = {
    "read",    "write", "readv", "writev",   "recv",   "send",  "recvmsg", "sendmsg",  "accept",
    "connect", "poll",  "fsync", "truncate", "openat", "statx", "mkdirat", "renameat", "unlinkat"};

/// Histograms kept per thread. The first kSampled are timed for one event
/// in sample_period(): the scheduler's two by their worker's own countdown
/// (Worker::begin_sample: one switch-in in the period times its slice and
/// stamps the next fiber queued), the other three by Shard::sample().
enum class Hist : std::uint8_t {
  sched_latency,      // runnable (queued on a worker) -> running; sampled
  run_slice,          // a fiber's run from switch-in to switch-out; sampled
  fiber_execution,    // a fiber's first switch-in to its end; sampled
  io_duration,        // one io::perform call; sampled
  chan_send_blocked,  // a send that waited, from parking to its outcome; sampled
  tcp_connection,     // a TCP connection from establishment to close
  kCount,
};
inline constexpr std::size_t kHists = static_cast<std::size_t>(Hist::kCount);
inline constexpr std::size_t kSampled = 5;

/// Upper bound (ns, inclusive) of finite bucket i of every histogram:
/// 1024 * {1, 1.5, 2, 3, 4, 6, ...}; kBuckets - 1 is +Inf.
inline constexpr std::size_t kBuckets = 54;
std::uint64_t bucket_bound_ns(std::size_t i) noexcept;

/// The bucket holding a value of `ns` nanoseconds.
inline std::size_t bucket_of(std::uint64_t ns) noexcept {
  if (ns <= 1024) return 0;
  const std::uint64_t u = ns - 1;  // ns <= bound  <=>  u < bound
  const int octave = 63 - __builtin_clzll(u);
  const std::size_t i = 2 * static_cast<std::size_t>(octave - 10) + 1 +
                        static_cast<std::size_t>((u >> (octave - 1)) & 1);
  return i < kBuckets - 1 ? i : kBuckets - 1;
}

/// One thread's histogram. Owner-written (relaxed load + store), read by
/// collect() at any time.
struct Histogram {
  std::atomic<std::uint64_t> counts[kBuckets] = {};
  std::atomic<std::uint64_t> sum_ns{0};

  void observe(std::uint64_t ns) noexcept {
    bump(counts[bucket_of(ns)], 1);
    bump(sum_ns, ns);
  }
  /// The owner's increment: no RMW, since nobody else writes this word.
  static void bump(std::atomic<std::uint64_t>& a, std::uint64_t n) noexcept {
    a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

/// The events one thread recorded. Only the owner thread writes; relaxed:
/// the values are statistics and order nothing.
struct Shard {
  std::atomic<std::uint64_t> counters[kCounters] = {};
  Histogram hists[kHists];
  std::uint32_t sample_left[kSampled] = {1, 1, 1, 1, 1};  // owner-only countdowns
  Shard* next = nullptr;                                  // registry link (its mutex)

  void add(Counter c, std::uint64_t n = 1) noexcept {
    Histogram::bump(counters[static_cast<std::size_t>(c)], n);
  }
  void observe(Hist h, std::uint64_t ns) noexcept {
    hists[static_cast<std::size_t>(h)].observe(ns);
  }
  /// Owner: true for one call in sample_period() per sampled histogram.
  bool sample(Hist h) noexcept {
    std::uint32_t& left = sample_left[static_cast<std::size_t>(h)];
    if (--left != 0) return false;
    left = sample_period();
    return true;
  }
  static std::uint32_t sample_period() noexcept;
};

/// The calling thread's shard, made and registered on first use. Out of
/// line (the TLS hazard of HACKING.md: never keep it across a switch,
/// except a worker's own, which never changes thread). Never fails: if no
/// memory is left the thread shares an overflow shard (see metrics.cpp).
Shard& local() noexcept;

inline void add(Counter c, std::uint64_t n = 1) noexcept {
  local().add(c, n);
}

/// Sets the histograms' sampling period (1: time every event). Any thread.
void set_sample_period(std::uint32_t n) noexcept;

/// The sum of every shard, live and retired.
struct Totals {
  std::uint64_t counters[kCounters] = {};
  std::uint64_t buckets[kHists][kBuckets] = {};
  std::uint64_t sum_ns[kHists] = {};

  std::uint64_t operator[](Counter c) const noexcept {
    return counters[static_cast<std::size_t>(c)];
  }
};

/// What a runtime reports about itself at read time: monotonic counts
/// (kept by its workers) and current levels.
struct RuntimeTotals {
  // Monotonic (a runtime that ends adds them to the retired totals).
  std::uint64_t fibers_spawned = 0;
  std::uint64_t fibers_completed = 0;
  std::uint64_t steal_attempts = 0;
  std::uint64_t steals = 0;         // successful attempts
  std::uint64_t stolen_fibers = 0;  // fibers they moved
  std::uint64_t fiber_parks = 0;
  std::uint64_t worker_parks = 0;
  std::uint64_t noop_unparks = 0;
  std::uint64_t busy_ns = 0;
  std::uint64_t stalls = 0;
  std::uint64_t blocking_tasks = 0;
  std::uint64_t memory_refusals = 0;         // spawns refused for Config::memory_limit
  std::uint64_t memory_trims = 0;            // cache trims it caused
  std::uint64_t memory_pressure_events = 0;  // upward crossings of the pressure fraction
  // Levels now (not retired).
  std::uint64_t fibers_active = 0;
  std::uint64_t queued = 0;  // in workers' run queues and the injector
  std::uint64_t injector = 0;
  std::uint64_t blocking_threads = 0;
  std::uint64_t blocking_queued = 0;
  std::uint64_t stack_reserved_bytes = 0;
  std::uint64_t stacks_live = 0;
  std::uint64_t workers = 0;
  std::uint64_t memory_used_bytes = 0;   // MemoryAccount usage (Runtime::memory_usage)
  std::uint64_t memory_limit_bytes = 0;  // Config::memory_limit in force, 0 = off

  /// Adds the monotonic fields of `o` (what a retired runtime leaves).
  void add_monotonic(const RuntimeTotals& o) noexcept;
  /// Adds every field of `o`.
  void add_all(const RuntimeTotals& o) noexcept;
};

/// A runtime, as the registry sees it. collect() is called under the
/// registry's mutex, with the source alive (it unregisters before dying).
class Source {
 public:
  virtual void collect(RuntimeTotals& out) const noexcept = 0;

 protected:
  ~Source() = default;
};

/// Registers a source until unregister_source(s), which also keeps its
/// monotonic counts in the retired totals. Any thread.
void register_source(const Source* s) noexcept;
void unregister_source(const Source* s) noexcept;

/// Reads every shard and every source (shards: live and retired; sources:
/// live, plus the monotonic counts of retired ones). Any thread; takes the
/// registry's mutex (never held by a hot path).
void collect(Totals& shards, RuntimeTotals& runtimes);

}  // namespace weft::detail::obs
