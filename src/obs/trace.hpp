// The scheduler trace (issue 15 §4): per-worker buffers of fixed-size
// events that Runtime::start_trace / stop_trace (and WEFT_TRACE) turn into
// Chrome trace-event JSON for ui.perfetto.dev and chrome://tracing
// (docs/observability.md, "Tracing").
//
// Problem. The events worth tracing (a fiber's run slice, its park and the
// unpark that ends it, a steal) happen on the hottest paths of the runtime:
// a yield costs ~14 ns, and tracing is off almost always. Off, an event
// site must cost next to nothing; on, recording must never block a worker,
// never allocate, and never make workers write a shared cache line.
//
// Rejected: a global lock-free MPSC queue of events (every event an atomic
// RMW on one shared tail: the cache-line ping-pong the metrics registry
// avoids); formatting JSON at the event site (allocates, ~1 us); a ring that
// overwrites its oldest events (a flight recorder: it would keep the end of
// a run and lose the start of slices whose ends it kept, and the writer
// could race a reader of the slot it overwrites).
//
// Chosen (Go's runtime/trace per-P buffers, Perfetto's per-thread chunks,
// without their streaming): while a trace runs, each worker of the tracing
// runtime owns a buffer of `capacity` 64-byte events, allocated and
// pre-faulted by start(). Only that worker's thread appends to it; the one
// atomic it writes is its own busy count (below), a cache line no other
// thread writes. A full buffer drops further events and counts them. Threads that are not workers
// of the tracing runtime (plain threads unparking a fiber, blocking-pool threads, the monitor)
// share one extra buffer behind a try-lock: contention drops the event (counted) instead of
// waiting. stop() then reads every buffer and writes the JSON; the pairing of unparks with the
// woken fiber's next run slice (the flow arrows) is done there, in time order, so the hot path
// stores nothing in the fiber.
//
// Off: every event site is `if (trace::on()) trace::record(...)`, a relaxed
// load of one global flag and a branch predicted not taken; record() is out
// of line and cold.
//
// Start and stop against concurrent writers (a Dekker pattern, seq_cst on
// both sides): a worker's record() increments its index's busy count, then
// loads the session pointer; stop() clears the session pointer, then waits
// until every busy count is zero. Either the writer sees no session (and
// writes nothing) or stop() sees it busy and waits for it. The busy counts
// are static (one per worker index, counts because two runtimes' workers
// share an index), so a writer never touches a session that stop() may
// free. Rejected: base/asymmetric_barrier.hpp's light/heavy barriers, which
// would save the two locked instructions per event (~10 ns) while tracing,
// but a flag shared by two runtimes' workers of one index would need them
// anyway; the cost while off is the same.
//
// Layering: like obs/metrics.hpp this file knows nothing of the scheduler;
// event sites pass plain numbers and static strings.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace weft::detail::obs::trace {

/// What an event records. `fiber`, `a`, `b` and `label` mean, per kind:
enum class Kind : std::uint8_t {
  spawn,        ///< fiber: the spawner (0: not a fiber); a: the new fiber; name: its name
  slice_begin,  ///< fiber: the fiber switched in; name: its name
  slice_end,    ///< fiber: the fiber switched out; label: yield, park or exit
  park,         ///< fiber: the fiber parking; label: the wait reason; a: its argument
  unpark,       ///< fiber: the waker (0: not a fiber); a: the fiber made runnable
  steal,        ///< fiber: the first fiber taken; a: the victim worker; b: fibers taken
  io_submit,    ///< fiber: the caller; label: the operation; a: the fd
  io_complete,  ///< fiber: the caller; label: the operation; a: the fd; b: the result
  timer_fire,   ///< fiber: the fiber it made runnable (0: none); a: the deadline tick (ms)
};

/// One recorded event: 64 bytes, a cache line.
struct Event {
  std::int64_t ts_ns;  ///< CLOCK_MONOTONIC
  std::uint64_t fiber;
  std::uint64_t a;
  std::uint64_t b;
  const char* label;  ///< static storage, or nullptr
  Kind kind;
  std::uint8_t name_len;
  char name[22];  ///< the fiber's name, cut to 22 bytes (spawn, slice_begin)
};
static_assert(sizeof(Event) == 64, "an event is one cache line");

/// The most workers a runtime has (Config::workers' upper bound).
inline constexpr std::size_t kMaxWorkers = 1024;

/// True while a trace is recording. relaxed: a hint for the event sites;
/// record() re-checks under the protocol above. Hidden: the library's own
/// code reads it rip-relative, without a GOT load (one compare per site).
extern std::atomic<bool> g_on [[gnu::visibility("hidden")]];

/// The branch at every event site.
inline bool on() noexcept {
  return __builtin_expect(g_on.load(std::memory_order_relaxed), 0);
}

/// Marks the calling thread as worker `index` of runtime `owner` (its
/// events go to that worker's buffer when `owner` is tracing). Called by
/// each worker thread when it starts, before it runs a fiber.
void set_thread_track(const void* owner, int index) noexcept;

/// Records an event on the calling thread's buffer (or the shared one).
/// Never blocks or allocates; drops (and counts) the event when the buffer
/// is full or the shared buffer busy. Any thread; a no-op when no trace of
/// the calling thread's runtime (or, from a plain thread, of any runtime)
/// is recording.
[[gnu::cold]] void record(Kind kind, std::uint64_t fiber, std::uint64_t a = 0, std::uint64_t b = 0,
                          const char* label = nullptr, std::string_view name = {}) noexcept;

/// What stop() reports.
struct Summary {
  std::uint64_t events = 0;   ///< events recorded (kept in the buffers)
  std::uint64_t dropped = 0;  ///< events lost: a full buffer, or the shared one contended
};

/// The buffers of one runtime's trace. Owned by the runtime; one at a time
/// records in a process.
class Session {
 public:
  /// Buffers for `workers` workers (1..kMaxWorkers) of `owner`, plus the
  /// shared one, `capacity` events each; allocated by start().
  Session(const void* owner, std::size_t workers, std::size_t capacity) noexcept;
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// Allocates and pre-faults the buffers, then starts recording.
  /// @throws std::logic_error if a trace already records in this process
  ///         (this session or another runtime's); std::bad_alloc.
  void start();

  /// Stops recording, waits out writers in progress (a few microseconds)
  /// and appends the Chrome trace-event JSON (Object format) to `out`.
  /// Frees the buffers. A session that is not recording appends nothing.
  /// Any thread but a worker of the owner (which would wait on itself).
  /// @throws std::bad_alloc (the buffers are freed, the trace is lost).
  Summary stop(std::string& out);

  bool recording() const noexcept { return recording_; }

  struct Buffer;

 private:
  void write_json(std::string& out, const Summary& sum) const;

  const void* const owner_;
  const std::size_t workers_;
  const std::size_t capacity_;
  std::int64_t start_ns_ = 0;
  bool recording_ = false;
  std::unique_ptr<Buffer[]> buffers_;  // workers_ + 1: the last one is shared
  std::unique_ptr<Event[]> storage_;   // (workers_ + 1) * capacity_

  friend void record(Kind, std::uint64_t, std::uint64_t, std::uint64_t, const char*,
                     std::string_view) noexcept;
};

}  // namespace weft::detail::obs::trace
