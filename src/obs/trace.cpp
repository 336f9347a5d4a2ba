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
  void str(const char* k, std::string_view v) {
    key(k);
    quoted(v);
  }
  /// A JSON string (RFC 8259 escapes), appended.
  void quoted(std::string_view s) { append_quoted(out_, s); }
  static void append_quoted(std::string& to, std::string_view s) {
    to += '"';
    for (char c : s) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        to += '\\';
        to += c;
      } else if (u < 0x20) {
        char esc[8];
        std::snprintf(esc, sizeof esc, "\\u%04x", u);
        to += esc;
      } else {
        to += c;
      }
    }
    to += '"';
  }
  /// A JSON string's text (RFC 8259 escapes), quotes included.
  static std::string json_string(std::string_view s) {
    std::string t;
    append_quoted(t, s);
    return t;
  }
  using Arg = std::pair<const char*, std::string>;  // a key and its JSON value
  /// One event: `name` (a literal; or display_name, escaped here), an
  /// instant ("i") scoped to its track, `args` as an object.
  void event(const char* ph, const char* name, int tid, std::int64_t ns,
             std::initializer_list<Arg> args, std::string_view display_name = {}) {
    open(ph, tid, ns);
    if (name != nullptr) {
      str("name", name);
    } else if (!display_name.empty()) {
      str("name", display_name);
    }
    if (ph[0] == 'i') {
      str("cat", "weft");
      str("s", "t");
    } else if (ph[0] == 'B') {
      str("cat", "fiber");
    }
    if (args.size() != 0) {
      key("args");
      char sep = '{';
      for (const Arg& a : args) {
        out_ += sep;
        sep = ',';
        out_ += '"';
        out_ += a.first;
        out_ += "\":";
        out_ += a.second;
      }
      out_ += '}';
    }
    close();
  }
  /// A flow event ("s" tail or "f" head) of arrow `id`.
  void flow(const char* ph, int tid, std::int64_t ns, std::uint64_t id) {
    open(ph, tid, ns);
    str("name", "wake");
    str("cat", "flow");
    key("id");
    out_ += std::to_string(id);
    if (ph[0] == 'f') str("bp", "e");
    close();
  }

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
  w.event("M", "process_name", 0, start_ns_, {{"name", Writer::json_string("weft")}});
  for (int tid = 0; tid <= shared_tid; ++tid) {
    const std::string track = tid == shared_tid ? "other threads" : "worker " + std::to_string(tid);
    w.event("M", "thread_name", tid, start_ns_, {{"name", Writer::json_string(track)}});
    w.event("M", "thread_sort_index", tid, start_ns_, {{"sort_index", std::to_string(tid)}});
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
    auto num = [](std::uint64_t v) { return std::to_string(v); };
    auto snum = [](std::uint64_t v) { return std::to_string(static_cast<std::int64_t>(v)); };
    auto text = [](std::string_view v) { return Writer::json_string(v); };
    const std::string_view name(e.name, e.name_len);
    switch (e.kind) {
      case Kind::slice_begin: {
        if (open[t]) w.event("E", nullptr, r.tid, e.ts_ns, {});  // its end was dropped
        w.event("B", nullptr, r.tid, e.ts_ns, {{"fiber", num(e.fiber)}, {"name", text(name)}},
                name.empty() ? "fiber " + num(e.fiber) : std::string(name));
        open[t] = true;
        if (auto it = pending.find(e.fiber); it != pending.end()) {
          // The arrow's head: bound to the enclosing slice, the one just begun.
          w.flow("f", r.tid, e.ts_ns, it->second);
          pending.erase(it);
        }
        break;
      }
      case Kind::slice_end:
        if (!open[t]) break;  // began before the trace started (or was dropped)
        w.event("E", nullptr, r.tid, e.ts_ns,
                {{"fiber", num(e.fiber)}, {"why", text(label_or(e, "switch"))}});
        open[t] = false;
        break;
      case Kind::spawn:
        w.event("i", "spawn", r.tid, e.ts_ns,
                {{"fiber", num(e.a)}, {"parent", num(e.fiber)}, {"name", text(name)}});
        break;
      case Kind::park:
        w.event(
            "i", "park", r.tid, e.ts_ns,
            {{"fiber", num(e.fiber)}, {"reason", text(label_or(e, "other"))}, {"arg", num(e.a)}});
        break;
      case Kind::unpark:
        w.event("i", "unpark", r.tid, e.ts_ns, {{"fiber", num(e.a)}, {"waker", num(e.fiber)}});
        // The arrow's tail, bound to the waker's slice; none without one.
        if (open[t] && e.fiber != 0) {
          const std::uint64_t id = next_flow++;
          w.flow("s", r.tid, e.ts_ns, id);
          pending[e.a] = id;
        }
        break;
      case Kind::steal:
        w.event("i", "steal", r.tid, e.ts_ns,
                {{"fiber", num(e.fiber)}, {"victim", num(e.a)}, {"count", num(e.b)}});
        break;
      case Kind::io_submit:
        w.event("i", "io_submit", r.tid, e.ts_ns,
                {{"fiber", num(e.fiber)}, {"op", text(label_or(e, "?"))}, {"fd", snum(e.a)}});
        break;
      case Kind::io_complete:
        w.event("i", "io_complete", r.tid, e.ts_ns,
                {{"fiber", num(e.fiber)},
                 {"op", text(label_or(e, "?"))},
                 {"fd", snum(e.a)},
                 {"result", snum(e.b)}});
        break;
      case Kind::timer_fire:
        w.event("i", "timer_fire", r.tid, e.ts_ns,
                {{"fiber", num(e.fiber)}, {"deadline_ms", num(e.a)}});
        break;
    }
  }
  // Slices still running when the trace stopped end at their track's last event.
  for (std::size_t t = 0; t <= workers_; ++t) {
    if (!open[t]) continue;
    w.event("E", nullptr, static_cast<int>(t), last_ns[t], {});
  }
  out += "\n]}\n";
}

}  // namespace weft::detail::obs::trace
