// See trace.hpp.
#include "obs/trace.hpp"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

namespace weft::detail::obs::trace {

std::atomic<bool> g_on{false};

/// One worker's buffer (or the shared one). Written only by the thread
/// that holds its busy count (a worker) or the shared try-lock; read by
/// stop() once that count is zero (the writer's release decrement pairs
/// with stop()'s acquire load).
struct alignas(64) Session::Buffer {
  Event* events = nullptr;
  std::size_t len = 0;
  std::uint64_t dropped = 0;
};

namespace {

// The calling thread's track: its worker index and runtime, or -1 and
// nullptr on any other thread. Written once by the worker thread itself.
thread_local int t_index = -1;
thread_local const void* t_owner = nullptr;

// Per worker index, the writers inside record() right now: a count, not a
// flag, since workers of two runtimes share an index (only the tracing
// runtime's writes; the other's leaves at once). Each line is written by
// one worker thread in practice, so the RMW stays in its cache.
struct alignas(64) BusyCount {
  std::atomic<std::uint32_t> n{0};
};
BusyCount g_busy[kMaxWorkers];

// The shared buffer's try-lock, and the events its contention dropped
// (reset by start(), read by stop()).
std::atomic<bool> g_shared_busy{false};
std::atomic<std::uint64_t> g_shared_contended{0};

// The recording session, or nullptr. seq_cst on both sides of the Dekker
// pattern in trace.hpp: record() increments its busy count then loads this;
// stop() stores nullptr here then loads every busy count. In the single
// total order either the load sees nullptr or stop() sees the count.
std::atomic<Session*> g_session{nullptr};

std::int64_t clock_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void append(Session::Buffer& buf, std::size_t capacity, Kind kind, std::uint64_t fiber,
            std::uint64_t a, std::uint64_t b, const char* label, std::string_view name) noexcept {
  if (buf.len == capacity) {
    ++buf.dropped;
    return;
  }
  Event& e = buf.events[buf.len++];
  e.ts_ns = clock_ns();
  e.fiber = fiber;
  e.a = a;
  e.b = b;
  e.label = label;
  e.kind = kind;
  std::size_t n = std::min(name.size(), sizeof e.name);
  // Cut at a UTF-8 character boundary, so the JSON stays valid UTF-8.
  if (n < name.size()) {
    while (n > 0 && (static_cast<unsigned char>(name[n]) & 0xC0) == 0x80) --n;
  }
  if (n != 0) std::memcpy(e.name, name.data(), n);  // an empty view's data() may be null
  e.name_len = static_cast<std::uint8_t>(n);
}

}  // namespace

void set_thread_track(const void* owner, int index) noexcept {
  if (index < 0 || static_cast<std::size_t>(index) >= kMaxWorkers) return;
  t_owner = owner;
  t_index = index;
}

void record(Kind kind, std::uint64_t fiber, std::uint64_t a, std::uint64_t b, const char* label,
            std::string_view name) noexcept {
  const int index = t_index;
  if (index >= 0) {
    std::atomic<std::uint32_t>& busy = g_busy[index].n;
    busy.fetch_add(1, std::memory_order_seq_cst);
    Session* s = g_session.load(std::memory_order_seq_cst);
    if (s != nullptr && s->owner_ == t_owner) {
      append(s->buffers_[static_cast<std::size_t>(index)], s->capacity_, kind, fiber, a, b, label,
             name);
    }
    busy.fetch_sub(1, std::memory_order_release);  // pairs with stop()'s acquire
    return;
  }
  // Not a worker: the shared buffer, if nobody else holds it (never wait).
  if (g_shared_busy.exchange(true, std::memory_order_seq_cst)) {
    g_shared_contended.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (Session* s = g_session.load(std::memory_order_seq_cst)) {
    append(s->buffers_[s->workers_], s->capacity_, kind, fiber, a, b, label, name);
  }
  g_shared_busy.store(false, std::memory_order_release);  // pairs with stop()'s acquire
}

Session::Session(const void* owner, std::size_t workers, std::size_t capacity) noexcept
    : owner_(owner), workers_(std::min(workers, kMaxWorkers)), capacity_(capacity) {}

Session::~Session() {
  if (recording_) {
    std::string discard;
    try {
      stop(discard);
    } catch (...) {  // std::bad_alloc while writing: the buffers are freed anyway
    }
  }
}

void Session::start() {
  if (recording_) throw std::logic_error("weft: start_trace: a trace is already recording");
  const std::size_t tracks = workers_ + 1;
  auto buffers = std::make_unique<Buffer[]>(tracks);
  auto storage = std::make_unique_for_overwrite<Event[]>(tracks * capacity_);
  // Pre-fault every page now: a first touch while recording costs ~2.5 us.
  std::memset(static_cast<void*>(storage.get()), 0, tracks * capacity_ * sizeof(Event));
  for (std::size_t i = 0; i < tracks; ++i) buffers[i].events = storage.get() + i * capacity_;
  buffers_ = std::move(buffers);
  storage_ = std::move(storage);
  start_ns_ = clock_ns();
  g_shared_contended.store(0, std::memory_order_relaxed);
  Session* expected = nullptr;
  // seq_cst: publishes the buffers to record()'s load (and is its Dekker
  // partner's store; see g_session).
  if (!g_session.compare_exchange_strong(expected, this, std::memory_order_seq_cst)) {
    buffers_.reset();
    storage_.reset();
    throw std::logic_error(
        "weft: start_trace: another runtime of this process is recording a trace");
  }
  recording_ = true;
  g_on.store(true, std::memory_order_relaxed);
}

Summary Session::stop(std::string& out) {
  if (!recording_) return {};
  recording_ = false;
  g_on.store(false, std::memory_order_relaxed);
  g_session.store(nullptr, std::memory_order_seq_cst);
  // Every index, not just ours: a worker of another runtime may have loaded
  // this session and be reading owner_.
  for (BusyCount& b : g_busy) {
    if (b.n.load(std::memory_order_seq_cst) == 0) continue;
    while (b.n.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  }
  while (g_shared_busy.load(std::memory_order_acquire)) std::this_thread::yield();

  Summary sum;
  sum.dropped = g_shared_contended.exchange(0, std::memory_order_relaxed);
  for (std::size_t i = 0; i <= workers_; ++i) {
    sum.events += buffers_[i].len;
    sum.dropped += buffers_[i].dropped;
  }
  try {
    write_json(out, sum);
  } catch (...) {
    buffers_.reset();
    storage_.reset();
    throw;
  }
  buffers_.reset();
  storage_.reset();
  return sum;
}

namespace {

// The JSON text of one trace: Chrome's trace-event format, Object form
// ("traceEvents" plus metadata), one track (tid) per worker.
class Writer {
 public:
  Writer(std::string& out, std::int64_t start_ns, int pid)
      : out_(out), start_ns_(start_ns), pid_(pid) {}

  /// `{"ph":"<ph>","ts":<us>,"pid":..,"tid":..` : the caller adds the rest.
  void open(const char* ph, int tid, std::int64_t ns) {
    out_ += first_ ? "\n" : ",\n";
    first_ = false;
    out_ += "{\"ph\":\"";
    out_ += ph;
    out_ += "\",\"ts\":";
    const std::int64_t rel = ns > start_ns_ ? ns - start_ns_ : 0;
    char buf[48];
    // Microseconds with the nanoseconds kept (the format's unit is us).
    std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(rel / 1000),
                  static_cast<long long>(rel % 1000));
    out_ += buf;
    out_ += ",\"pid\":";
    out_ += std::to_string(pid_);
    out_ += ",\"tid\":";
    out_ += std::to_string(tid);
  }
  void close() { out_ += '}'; }
  void key(const char* k) {
    out_ += ",\"";
    out_ += k;
    out_ += "\":";
  }
  void num(const char* k, std::uint64_t v) {
    key(k);
    out_ += std::to_string(v);
  }
  void snum(const char* k, std::int64_t v) {
    key(k);
    out_ += std::to_string(v);
  }
  void str(const char* k, std::string_view v) {
    key(k);
    quoted(v);
  }
  /// A JSON string (RFC 8259 escapes).
  void quoted(std::string_view s) {
    out_ += '"';
    for (char c : s) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        out_ += '\\';
        out_ += c;
      } else if (u < 0x20) {
        char esc[8];
        std::snprintf(esc, sizeof esc, "\\u%04x", u);
        out_ += esc;
      } else {
        out_ += c;
      }
    }
    out_ += '"';
  }
  /// The fiber's display name: its own, or "fiber <id>".
  void fiber_name(const char* k, const Event& e) {
    if (e.name_len != 0) {
      str(k, std::string_view(e.name, e.name_len));
    } else {
      str(k, "fiber " + std::to_string(e.kind == Kind::spawn ? e.a : e.fiber));
    }
  }
  void instant(const char* name, int tid, const Event& e) {
    open("i", tid, e.ts_ns);
    str("name", name);
    str("cat", "weft");
    str("s", "t");
  }
  std::string& out() { return out_; }

 private:
  std::string& out_;
  const std::int64_t start_ns_;
  const int pid_;
  bool first_ = true;
};

const char* label_or(const Event& e, const char* fallback) {
  return e.label != nullptr ? e.label : fallback;
}

}  // namespace

void Session::write_json(std::string& out, const Summary& sum) const {
  struct Ref {
    const Event* e;
    int tid;
  };
  std::vector<Ref> all;
  all.reserve(sum.events);
  for (std::size_t i = 0; i <= workers_; ++i) {
    for (std::size_t k = 0; k < buffers_[i].len; ++k) {
      all.push_back({&buffers_[i].events[k], static_cast<int>(i)});
    }
  }
  // Time order across tracks (each track is in order already): an unpark
  // precedes the woken fiber's next slice, which the flows need.
  std::stable_sort(all.begin(), all.end(),
                   [](const Ref& x, const Ref& y) { return x.e->ts_ns < y.e->ts_ns; });

  out.reserve(out.size() + 256 * (all.size() + workers_ + 4));
  Writer w(out, start_ns_, static_cast<int>(::getpid()));
  out += "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"weft\",\"version\":1";
  out += ",\"clock\":\"CLOCK_MONOTONIC\",\"start_ns\":" + std::to_string(start_ns_);
  out += ",\"workers\":" + std::to_string(workers_);
  out += ",\"buffer_events\":" + std::to_string(capacity_);
  out += ",\"events\":" + std::to_string(sum.events);
  out += ",\"dropped_events\":" + std::to_string(sum.dropped);
  out += "},\"traceEvents\":[";

  // Track names: worker i is tid i; the shared buffer is tid `workers_`.
  const int shared_tid = static_cast<int>(workers_);
  w.open("M", 0, start_ns_);
  w.str("name", "process_name");
  w.key("args");
  out += "{\"name\":\"weft\"}";
  w.close();
  for (int tid = 0; tid <= shared_tid; ++tid) {
    w.open("M", tid, start_ns_);
    w.str("name", "thread_name");
    w.key("args");
    out += "{\"name\":";
    w.quoted(tid == shared_tid ? std::string("other threads") : "worker " + std::to_string(tid));
    out += '}';
    w.close();
    w.open("M", tid, start_ns_);
    w.str("name", "thread_sort_index");
    w.key("args");
    out += "{\"sort_index\":" + std::to_string(tid) + '}';
    w.close();
  }

  // Per track: whether a slice is open (B written, E not yet), and when
  // the track's last event was (to close a slice whose end was dropped).
  std::vector<bool> open(workers_ + 1, false);
  std::vector<std::int64_t> last_ns(workers_ + 1, start_ns_);
  // Woken fiber -> the flow id its waker's arrow starts.
  std::unordered_map<std::uint64_t, std::uint64_t> pending;
  std::uint64_t next_flow = 1;

  for (const Ref& r : all) {
    const Event& e = *r.e;
    const auto t = static_cast<std::size_t>(r.tid);
    last_ns[t] = e.ts_ns;
    switch (e.kind) {
      case Kind::slice_begin: {
        if (open[t]) {  // the previous slice's end was dropped: close it here
          w.open("E", r.tid, e.ts_ns);
          w.close();
        }
        w.open("B", r.tid, e.ts_ns);
        w.fiber_name("name", e);
        w.str("cat", "fiber");
        w.key("args");
        out += "{\"fiber\":" + std::to_string(e.fiber) + ",\"name\":";
        w.quoted(e.name_len != 0 ? std::string(e.name, e.name_len) : std::string());
        out += "}";
        w.close();
        open[t] = true;
        if (auto it = pending.find(e.fiber); it != pending.end()) {
          // The arrow's head: bound to the enclosing slice, the one just begun.
          w.open("f", r.tid, e.ts_ns);
          w.str("name", "wake");
          w.str("cat", "flow");
          w.num("id", it->second);
          w.str("bp", "e");
          w.close();
          pending.erase(it);
        }
        break;
      }
      case Kind::slice_end:
        if (!open[t]) break;  // began before the trace started (or was dropped)
        w.open("E", r.tid, e.ts_ns);
        w.key("args");
        out +=
            "{\"fiber\":" + std::to_string(e.fiber) + ",\"why\":\"" + label_or(e, "switch") + "\"}";
        w.close();
        open[t] = false;
        break;
      case Kind::spawn:
        w.instant("spawn", r.tid, e);
        w.key("args");
        out += "{\"fiber\":" + std::to_string(e.a) + ",\"parent\":" + std::to_string(e.fiber) +
               ",\"name\":";
        w.quoted(std::string_view(e.name, e.name_len));
        out += '}';
        w.close();
        break;
      case Kind::park:
        w.instant("park", r.tid, e);
        w.key("args");
        out += "{\"fiber\":" + std::to_string(e.fiber) + ",\"reason\":\"" + label_or(e, "other") +
               "\",\"arg\":" + std::to_string(e.a) + '}';
        w.close();
        break;
      case Kind::unpark:
        w.instant("unpark", r.tid, e);
        w.key("args");
        out += "{\"fiber\":" + std::to_string(e.a) + ",\"waker\":" + std::to_string(e.fiber) + '}';
        w.close();
        // The arrow's tail, bound to the waker's slice; none without one.
        if (open[t] && e.fiber != 0) {
          const std::uint64_t id = next_flow++;
          w.open("s", r.tid, e.ts_ns);
          w.str("name", "wake");
          w.str("cat", "flow");
          w.num("id", id);
          w.close();
          pending[e.a] = id;
        }
        break;
      case Kind::steal:
        w.instant("steal", r.tid, e);
        w.key("args");
        out += "{\"fiber\":" + std::to_string(e.fiber) + ",\"victim\":" + std::to_string(e.a) +
               ",\"count\":" + std::to_string(e.b) + '}';
        w.close();
        break;
      case Kind::io_submit:
      case Kind::io_complete:
        w.instant(e.kind == Kind::io_submit ? "io_submit" : "io_complete", r.tid, e);
        w.key("args");
        out += "{\"fiber\":" + std::to_string(e.fiber) + ",\"op\":\"" + label_or(e, "?") +
               "\",\"fd\":" + std::to_string(static_cast<std::int64_t>(e.a));
        if (e.kind == Kind::io_complete) {
          out += ",\"result\":" + std::to_string(static_cast<std::int64_t>(e.b));
        }
        out += '}';
        w.close();
        break;
      case Kind::timer_fire:
        w.instant("timer_fire", r.tid, e);
        w.key("args");
        out += "{\"fiber\":" + std::to_string(e.fiber) + ",\"deadline_ms\":" + std::to_string(e.a) +
               '}';
        w.close();
        break;
    }
  }
  // Slices still running when the trace stopped end at their track's last event.
  for (std::size_t t = 0; t <= workers_; ++t) {
    if (!open[t]) continue;
    w.open("E", static_cast<int>(t), last_ns[t]);
    w.close();
  }
  out += "\n]}\n";
}

}  // namespace weft::detail::obs::trace
