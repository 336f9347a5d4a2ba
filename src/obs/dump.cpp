// See dump.hpp.
#include "obs/dump.hpp"

#include <execinfo.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fiber/fiber.hpp"
#include "obs/backtrace.hpp"
#include "obs/snapshot.hpp"
#include "sched/current.hpp"
#include "sched/runtime_impl.hpp"
#include "sched/waiter.hpp"
#include "weft/log.hpp"
#include "weft/sync.hpp"
#include "weft/this_fiber.hpp"

namespace weft::detail {

// The owner hints of weft's locks (weft/detail/lock_owner.hpp).
struct LockOwnerProbe {
  /// The stack address the holder of the lock a fiber waits on (reason,
  /// arg) left, or 0 (free, not recorded, or not a lock). Precondition: the
  /// waiting fiber is pinned, so the lock it is queued on is alive.
  static std::uintptr_t hint(WaitReason reason, std::uint64_t arg) noexcept {
    switch (reason) {
      case WaitReason::mutex:
        return reinterpret_cast<const Mutex*>(arg)->owner_sp_.load(std::memory_order_relaxed);
      case WaitReason::rwlock:
        return reinterpret_cast<const SharedMutex*>(arg)->writer_sp_.load(
            std::memory_order_relaxed);
      default:
        return 0;
    }
  }
};

namespace obs {
namespace {

constexpr int kSchemaVersion = 1;
// The bytes of append_frame_line's "    #%-2zu " for one- and two-digit
// indexes (our backtraces have at most kMaxFrames < 100 frames).
constexpr std::size_t kFrameLineHead = 8;
static_assert(kMaxFrames < 100);
// How long a dump waits for a worker to record its running fiber's stack.
constexpr std::chrono::milliseconds kRunningPatience{20};
// The cancellation tree in a dump: as deep as a snapshot may go, and one
// node per fiber of a large runtime.
constexpr SnapshotLimits kTreeLimits{.max_depth = 64, .max_nodes = 1'000'000};

// One fiber as the dump saw it.
struct Entry {
  FiberSnapshot snap;
  const Fiber* fiber = nullptr;  // identity only (for sampling): never dereferenced later
  int worker = -1;               // running: its worker
  std::uint64_t switches = 0;    // running: its worker's switch count when seen
  bool self = false;             // the fiber taking the dump
  bool pinned = false;           // was parked: stack fields below are read
  bool waits = false;            // pinned: wait fields below are its park's
  WaitReason reason = WaitReason::other;
  std::uint64_t arg = 0;
  std::uint32_t since = 0;  // Waiter::parked_since()
  // Waits on a lock: the holder's stack hint (LockOwnerProbe), and the
  // holder's fiber id once resolved against the stacks below (0: unknown).
  std::uintptr_t owner_sp = 0;
  FiberId owner = 0;
  // Its stacks' address ranges, where known (pinned, or the fiber taking
  // the dump): its own and a generator's it runs in.
  std::uintptr_t stack_lo = 0, stack_hi = 0, gen_lo = 0, gen_hi = 0;
  std::size_t stack_reserved = 0;
  std::size_t stack_used = 0;
  FiberLabels labels;
  bool has_backtrace = false;
  std::vector<const Frame*> frames;
};

// Return addresses of a backtrace, symbolized into e (the first frame is
// the innermost pc, the others return addresses).
void take_frames(Symbolizer& sym, const RawBacktrace& bt, Entry& e) {
  e.frames.reserve(static_cast<std::size_t>(bt.count));
  for (int i = 0; i < bt.count; ++i) {
    e.frames.push_back(&sym.frame(reinterpret_cast<std::uintptr_t>(bt.frames[i]), i != 0));
  }
  e.has_backtrace = bt.count > 0;
}

class Collector final : public RuntimeImpl::FiberVisitor {
 public:
  explicit Collector(Symbolizer& sym) : sym_(sym) {}

  void see(Fiber& f, bool pinned, const FiberLabels* labels) noexcept override {
    try {
      Entry e;
      e.snap = snapshot_fiber(f);
      e.fiber = &f;
      e.self = &f == current_fiber();
      e.pinned = pinned;
      if (labels != nullptr) e.labels = *labels;
      // Pinned: the waiter of its current park, on its stack, holds still
      // (the pin's acquire orders the fiber's writes before these reads).
      const Waiter* w = pinned ? f.parked_on : nullptr;
      if (w != nullptr) {
        e.waits = true;
        e.reason = w->reason();
        e.arg = w->arg();
        e.since = w->parked_since();
        e.owner_sp = LockOwnerProbe::hint(e.reason, e.arg);
      } else if (e.snap.state == weft::FiberState::running) {
        e.worker = f.runtime->worker_running(&f, e.switches);
      }
      if (e.self) {  // its own stack fields: this thread runs it
        e.stack_lo = reinterpret_cast<std::uintptr_t>(f.stack.lo);
        e.stack_hi = reinterpret_cast<std::uintptr_t>(f.stack.hi);
      }
      entries.push_back(std::move(e));
    } catch (...) {
      ++missed;  // out of memory: counted, the dump goes on
    }
  }

  void inspect_pinned(Fiber& f) noexcept override {
    if (entries.empty() || entries.back().fiber != &f) return;  // its see() ran out of memory
    Entry& e = entries.back();
    // Pinned: the fiber cannot run, so its stack fields (written by its
    // worker before it first ran, ordered by the pin's acquire), the stack
    // of a generator it parked in, and the saved context hold still.
    const SavedStack own{nullptr, f.stack.lo, f.stack.hi};
    const void* sp = f.ctx.saved_sp();
    SavedStack s = own;
    if (f.generator_stack != nullptr && !(sp >= own.lo && sp < own.hi)) {
      s.lo = f.generator_stack->lo;
      s.hi = f.generator_stack->hi;
    }
    s.sp = sp;
    e.stack_lo = reinterpret_cast<std::uintptr_t>(own.lo);
    e.stack_hi = reinterpret_cast<std::uintptr_t>(own.hi);
    if (f.generator_stack != nullptr) {
      e.gen_lo = reinterpret_cast<std::uintptr_t>(f.generator_stack->lo);
      e.gen_hi = reinterpret_cast<std::uintptr_t>(f.generator_stack->hi);
    }
    e.stack_reserved = f.stack.usable_size();
    if (sp >= s.lo && sp < s.hi) {
      e.stack_used =
          static_cast<std::size_t>(static_cast<const char*>(s.hi) - static_cast<const char*>(sp));
    }
    try {
      RawBacktrace bt;
      if (sym_.unwind(s, bt)) take_frames(sym_, bt, e);
    } catch (...) {
      e.frames.clear();  // out of memory: no backtrace for this one
      e.has_backtrace = false;
    }
  }

  std::vector<Entry> entries;
  std::size_t missed = 0;

 private:
  Symbolizer& sym_;
};

struct Dump {
  std::int64_t taken_ns = 0;
  std::uint32_t taken_stamp = 0;
  std::size_t workers = 0;
  std::vector<Entry> entries;
  std::size_t missed = 0;
  CancelNodeSnapshot tree;
  std::size_t tree_nodes = 0;  // fibers and scopes in tree (for estimated_size)
};

// Names the holder of each lock a fiber waits on: the fiber whose stack
// holds the holder's stack hint, among those whose stacks the dump knows
// (parked ones, the caller). A sorted table of ranges: O(n log n).
void resolve_owners(std::vector<Entry>& entries) {
  struct Range {
    std::uintptr_t lo, hi;
    FiberId id;
  };
  std::vector<Range> ranges;
  bool any = false;
  for (const Entry& e : entries) any |= e.owner_sp != 0;
  if (!any) return;
  for (const Entry& e : entries) {
    if (e.stack_hi > e.stack_lo) ranges.push_back({e.stack_lo, e.stack_hi, e.snap.id});
    if (e.gen_hi > e.gen_lo) ranges.push_back({e.gen_lo, e.gen_hi, e.snap.id});
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.lo < b.lo; });
  for (Entry& e : entries) {
    if (e.owner_sp == 0) continue;
    // The last range starting at or below the hint (stacks do not overlap).
    auto it = std::upper_bound(ranges.begin(), ranges.end(), e.owner_sp,
                               [](std::uintptr_t sp, const Range& r) { return sp < r.lo; });
    if (it != ranges.begin() && e.owner_sp < std::prev(it)->hi) e.owner = std::prev(it)->id;
  }
}

// The entries' frames point into sym's cache: sym outlives the Dump's use.
Dump collect(RuntimeImpl& rt, Symbolizer& sym) {
  Collector c(sym);
  Dump d;
  d.taken_ns = monotonic_ns();
  // The same clock as the parks' stamps, read later than any of them (the
  // monitor publishes a past reading of it): never a negative wait.
  d.taken_stamp = park_stamp_of(d.taken_ns);
  d.workers = rt.worker_count();
  rt.visit_fibers(c);
  // Running fibers: the caller's own stack here, the others' on their
  // workers (if they still run the same fiber without a switch).
  for (Entry& e : c.entries) {
    RawBacktrace bt;
    if (e.self) {
      void* frames[kMaxFrames];
      bt.count = ::backtrace(frames, kMaxFrames);
      for (int i = 0; i < bt.count; ++i) bt.frames[i] = frames[i];
    } else if (e.worker >= 0 && e.snap.state == weft::FiberState::running) {
      if (!rt.sample_running(e.worker, e.fiber, e.switches, kRunningPatience, bt)) continue;
    } else {
      continue;
    }
    take_frames(sym, bt, e);
  }
  resolve_owners(c.entries);
  d.entries = std::move(c.entries);
  d.missed = c.missed;
  d.tree = snapshot_cancel_tree(rt.root_cancel_node(), kTreeLimits, d.taken_ns);
  d.tree_nodes = d.entries.size();  // about one node per fiber
  return d;
}

std::int64_t waited_ms(const Dump& d, const Entry& e) noexcept {
  // Units of 2^20 ns; differences are exact modulo 2^32 units (52 days).
  const std::uint32_t units = d.taken_stamp - e.since;
  return static_cast<std::int64_t>((static_cast<std::uint64_t>(units) << 20) / 1'000'000);
}

// What a WaitReason's argument is: the one table both formats use.
enum class ArgKind { none, object, fiber, fd, until, cases };

ArgKind arg_kind(WaitReason r) noexcept {
  switch (r) {
    case WaitReason::chan_send:
    case WaitReason::chan_recv:
    case WaitReason::mutex:
    case WaitReason::condvar:
    case WaitReason::rwlock:
    case WaitReason::semaphore:
    case WaitReason::barrier:
    case WaitReason::event:
    case WaitReason::scope:
      return ArgKind::object;
    case WaitReason::join:
      return ArgKind::fiber;
    case WaitReason::io_read:
    case WaitReason::io_write:
      return ArgKind::fd;
    case WaitReason::sleep:
      return ArgKind::until;
    case WaitReason::select:
      return ArgKind::cases;
    case WaitReason::blocking:
    case WaitReason::parallel:
    case WaitReason::signal:
    case WaitReason::other:
      break;
  }
  return ArgKind::none;
}

// What a waiting fiber waits on, in words ("channel 0x7f..", "fiber 12").
std::string wait_object(const Dump& d, const Entry& e) {
  char buf[96];
  const auto until = static_cast<std::int64_t>(e.arg);
  switch (arg_kind(e.reason)) {
    case ArgKind::object: {
      const char* what = e.reason == WaitReason::chan_send || e.reason == WaitReason::chan_recv
                             ? "channel"
                         : e.reason == WaitReason::scope ? "the fibers of scope"
                                                         : to_string(e.reason);
      std::snprintf(buf, sizeof buf, "%s 0x%" PRIx64, what, e.arg);
      std::string out = buf;
      if (e.owner != 0) {
        std::snprintf(buf, sizeof buf, " held by fiber %" PRIu64, e.owner);
        out += buf;
      } else if (e.owner_sp != 0) {
        out += " held by a running fiber or a thread";
      }
      return out;
    }
    case ArgKind::fiber:
      std::snprintf(buf, sizeof buf, "fiber %" PRIu64, e.arg);
      return buf;
    case ArgKind::fd:
      std::snprintf(buf, sizeof buf, "fd %" PRId64, until);
      return buf;
    case ArgKind::until:
      if (until < 0) return "until cancelled";
      std::snprintf(buf, sizeof buf, "until %" PRId64 " ns (in %" PRId64 " ms)", until,
                    (until - d.taken_ns) / 1'000'000);
      return buf;
    case ArgKind::cases:
      std::snprintf(buf, sizeof buf, "%" PRIu64 " cases", e.arg);
      return buf;
    case ArgKind::none:
      break;
  }
  switch (e.reason) {
    case WaitReason::blocking:
      return "a spawn_blocking task";
    case WaitReason::parallel:
      return "the leaves of a parallel algorithm";
    case WaitReason::signal:
      return "a signal";
    default:
      return "";
  }
}

// An upper estimate of a dump's size in `per_frame` bytes of markup per
// frame plus `per_fiber` per fiber, for one reserve() instead of a string
// that doubles (and copies, and unmaps) its way to 100+ MB.
std::size_t estimated_size(const Dump& d, std::size_t per_fiber, std::size_t per_frame) {
  std::size_t n = 4096 + 96 * d.tree_nodes;
  for (const Entry& e : d.entries) {
    n += per_fiber + e.snap.name.size();
    for (const auto& [k, v] : e.labels) n += k.size() + v.size() + 8;
    for (const Frame* f : e.frames) n += per_frame + f->function.size() + f->location.size();
  }
  return n;
}

// JSON written by hand, not through nlohmann's DOM: a dump of 100,000
// parked fibers is ~150 MB of JSON, and building a tree of maps for it cost
// seconds (weft-bench-dump). The keys and values are those documented
// (docs/observability.md); the cancellation tree is snapshot.cpp's
// append_json (the schema of docs/design/snapshots.md, written once).
class JsonOut {
 public:
  explicit JsonOut(std::string& out) : out_(out) {}
  void raw(std::string_view s) { out_ += s; }
  void key(std::string_view k) {
    out_ += '"';
    out_ += k;
    out_ += "\":";
  }
  void str(std::string_view s) {
    for (const char c : s) {
      if (static_cast<unsigned char>(c) >= 0x80) {  // rare: let nlohmann check the UTF-8
        out_ += nlohmann::json(std::string(s))
                    .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        return;
      }
    }
    out_ += '"';
    for (const char c : s) {
      switch (c) {
        case '"':
          out_ += "\\\"";
          break;
        case '\\':
          out_ += "\\\\";
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
            out_ += buf;
          } else {
            out_ += c;
          }
      }
    }
    out_ += '"';
  }
  void num(std::int64_t v) {
    char buf[24];
    out_.append(buf, static_cast<std::size_t>(std::snprintf(buf, sizeof buf, "%" PRId64, v)));
  }
  void unum(std::uint64_t v) {
    char buf[24];
    out_.append(buf, static_cast<std::size_t>(std::snprintf(buf, sizeof buf, "%" PRIu64, v)));
  }
  void hex(std::uint64_t v) {
    char buf[24];
    out_.append(buf,
                static_cast<std::size_t>(std::snprintf(buf, sizeof buf, "\"0x%" PRIx64 "\"", v)));
  }
  void boolean(bool b) { out_ += b ? "true" : "false"; }
  void null() { out_ += "null"; }

 private:
  std::string& out_;
};

void wait_json(const Dump& d, const Entry& e, JsonOut& j) {
  if (!e.waits) {
    j.null();
    return;
  }
  j.raw("{");
  j.key("reason");
  j.str(to_string(e.reason));
  j.raw(",");
  j.key("for_ms");
  j.num(waited_ms(d, e));
  const ArgKind kind = arg_kind(e.reason);
  const auto value = static_cast<std::int64_t>(e.arg);
  // Every key is present; the argument's one holds it, the others are null.
  j.raw(",");
  j.key("object");
  kind == ArgKind::object ? j.hex(e.arg) : j.null();
  j.raw(",");
  j.key("fiber");
  kind == ArgKind::fiber ? j.unum(e.arg) : j.null();
  j.raw(",");
  j.key("fd");
  kind == ArgKind::fd ? j.num(value) : j.null();
  j.raw(",");
  j.key("until_ns");
  kind == ArgKind::until&& value >= 0 ? j.num(value) : j.null();
  j.raw(",");
  j.key("cases");
  kind == ArgKind::cases ? j.unum(e.arg) : j.null();
  j.raw(",");
  j.key("owner");
  e.owner != 0 ? j.unum(e.owner) : j.null();
  j.raw("}");
}

std::string to_json_text(const Dump& d) {
  std::string out;
  out.reserve(estimated_size(d, 512, 48));
  JsonOut j(out);
  // Each distinct frame is written once and copied into every backtrace
  // that holds it (parked fibers share most frames).
  std::unordered_map<const Frame*, std::string> frame_json;
  j.raw("{");
  j.key("version");
  j.num(kSchemaVersion);
  j.raw(",");
  j.key("taken_ns");
  j.num(d.taken_ns);
  j.raw(",");
  j.key("workers");
  j.unum(d.workers);
  j.raw(",");
  j.key("missed");
  j.unum(d.missed);
  j.raw(",");
  j.key("fibers");
  j.raw("[");
  bool first = true;
  for (const Entry& e : d.entries) {
    if (!first) j.raw(",");
    first = false;
    // The fiber snapshot's keys (snapshot_json), then the dump's.
    j.raw("{");
    j.key("id");
    j.unum(e.snap.id);
    j.raw(",");
    j.key("parent_id");
    j.unum(e.snap.parent_id);
    j.raw(",");
    j.key("name");
    j.str(e.snap.name);
    j.raw(",");
    j.key("state");
    j.str(to_string(e.snap.state));
    j.raw(",");
    j.key("priority");
    j.str(to_string(e.snap.priority));
    j.raw(",");
    j.key("cancelled");
    j.boolean(e.snap.cancelled);
    j.raw(",");
    j.key("worker");
    e.worker >= 0 ? j.num(e.worker) : j.null();
    j.raw(",");
    j.key("wait");
    wait_json(d, e, j);
    j.raw(",");
    j.key("stack");
    if (e.pinned) {
      j.raw("{");
      j.key("reserved_bytes");
      j.unum(e.stack_reserved);
      j.raw(",");
      j.key("used_bytes");
      j.unum(e.stack_used);
      j.raw("}");
    } else {
      j.null();
    }
    j.raw(",");
    j.key("labels");
    j.raw("{");
    for (std::size_t i = 0; i < e.labels.size(); ++i) {
      if (i != 0) j.raw(",");
      j.str(e.labels[i].first);
      j.raw(":");
      j.str(e.labels[i].second);
    }
    j.raw("}");
    j.raw(",");
    j.key("backtrace");
    if (e.has_backtrace) {
      j.raw("[");
      for (std::size_t i = 0; i < e.frames.size(); ++i) {
        if (i != 0) j.raw(",");
        std::string& f = frame_json[e.frames[i]];
        if (f.empty()) {
          JsonOut fj(f);
          fj.raw("{");
          fj.key("pc");
          fj.hex(e.frames[i]->pc);
          fj.raw(",");
          fj.key("function");
          fj.str(e.frames[i]->function);
          fj.raw(",");
          fj.key("location");
          fj.str(e.frames[i]->location);
          fj.raw("}");
        }
        j.raw(f);
      }
      j.raw("]");
    } else {
      j.null();
    }
    j.raw("}");
  }
  j.raw("],");
  j.key("cancel_tree");
  append_json(d.tree, out);
  j.raw("}");
  return out;
}

void tree_text(const CancelNodeSnapshot& n, int depth, std::string& out) {
  out.append(static_cast<std::size_t>(2 + 2 * depth), ' ');
  out += to_string(n.kind);
  char buf[96];
  if (n.kind == CancelNodeKind::fiber) {
    std::snprintf(buf, sizeof buf, " %" PRIu64 " (%s)", n.fiber, to_string(n.fiber_state));
    out += buf;
  } else if (n.fiber != 0) {
    std::snprintf(buf, sizeof buf, " opened by fiber %" PRIu64, n.fiber);
    out += buf;
  }
  if (n.cancelled) out += " cancelled";
  if (n.deadline_ns >= 0) {
    std::snprintf(buf, sizeof buf, " deadline in %" PRId64 " ms", n.deadline_in_ns / 1'000'000);
    out += buf;
  }
  if (n.omitted != 0) {
    std::snprintf(buf, sizeof buf, " (+%zu more not shown)", n.omitted);
    out += buf;
  }
  out += '\n';
  for (const CancelNodeSnapshot& c : n.children) tree_text(c, depth + 1, out);
}

std::string to_text(const Dump& d) {
  std::string out;
  out.reserve(estimated_size(d, 256, 40));
  // A frame's line after its index, made once per distinct frame (append_frame_line's format).
  std::unordered_map<const Frame*, std::string> frame_lines;
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "weft fiber dump (pid %d): %zu fibers, %zu workers, at %" PRId64
                " ns CLOCK_MONOTONIC\n",
                static_cast<int>(::getpid()), d.entries.size(), d.workers, d.taken_ns);
  out += buf;
  if (d.missed != 0) {
    std::snprintf(buf, sizeof buf, "(%zu fibers left out: out of memory)\n", d.missed);
    out += buf;
  }
  for (const Entry& e : d.entries) {
    std::snprintf(buf, sizeof buf, "\nfiber %" PRIu64, e.snap.id);
    out += buf;
    if (!e.snap.name.empty()) {
      out += " \"";
      out += e.snap.name;
      out += '"';
    }
    out += " [";
    out += to_string(e.snap.state);
    if (e.waits) {
      out += ": ";
      out += to_string(e.reason);
      const std::string what = wait_object(d, e);
      if (!what.empty()) {
        out += " on ";
        out += what;
      }
      std::snprintf(buf, sizeof buf, ", %" PRId64 " ms", waited_ms(d, e));
      out += buf;
    } else if (e.worker >= 0) {
      std::snprintf(buf, sizeof buf, " on worker %d", e.worker);
      out += buf;
    }
    if (e.self) out += ", taking this dump";
    out += ']';
    std::snprintf(buf, sizeof buf, " parent %" PRIu64 ", %s priority%s\n", e.snap.parent_id,
                  to_string(e.snap.priority), e.snap.cancelled ? ", cancelled" : "");
    out += buf;
    if (!e.labels.empty()) {
      out += "  labels:";
      for (const auto& [k, v] : e.labels) {
        out += ' ';
        out += k;
        out += '=';
        out += v;
      }
      out += '\n';
    }
    if (e.pinned) {
      std::snprintf(buf, sizeof buf, "  stack: %zu bytes reserved, %zu used\n", e.stack_reserved,
                    e.stack_used);
      out += buf;
    }
    for (std::size_t i = 0; i < e.frames.size(); ++i) {
      std::string& line = frame_lines[e.frames[i]];
      if (line.empty()) append_frame_line(0, *e.frames[i], line);
      // "    #N  " padded as append_frame_line pads it ("%-2zu "), then the rest.
      std::snprintf(buf, sizeof buf, "    #%-2zu ", i);
      out += buf;
      out.append(line, kFrameLineHead, std::string::npos);
    }
  }
  out += "\ncancellation tree (scopes group the fibers they spawned):\n";
  tree_text(d.tree, 0, out);
  return out;
}

// One symbolizer for every dump of the process: reading the binaries'
// symbols and line tables costs far more than a dump (over a second for a
// large test binary with debug information), and dumps repeat the same
// frames. Dumps take turns on it (it is single-threaded): a dump's frames
// point into its cache until the dump's text is made. Never destroyed (a
// dump may run while the process exits). Modules loaded after its creation
// (dlopen) are not known to it: their frames show as "??".
std::mutex g_symbolizer_mu;

Symbolizer& shared_symbolizer() {
  static Symbolizer* const sym = new Symbolizer;
  return *sym;
}

// --- the dump signal ------------------------------------------------------

std::atomic<int> g_live_runtimes{0};
std::mutex g_signal_mu;  // installs and checks of the handler

void on_dump_signal(int sig) noexcept {
  const int saved_errno = errno;
  if (g_live_runtimes.load(std::memory_order_relaxed) == 0) {
    // No runtime to dump: the signal's default action, as if weft had
    // never handled it (a new runtime installs the handler again).
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(sig, &dfl, nullptr);
    ::raise(sig);
  } else {
    RuntimeImpl::note_dump_signal();
  }
  errno = saved_errno;
}

int parse_dump_signal() noexcept {
  const char* v = std::getenv("WEFT_DUMP_SIGNAL");
  if (v == nullptr || *v == '\0') return SIGQUIT;
  std::string_view s(v);
  if (s == "none") return 0;
  if (s.substr(0, 3) == "SIG") s.remove_prefix(3);
  static constexpr std::pair<std::string_view, int> kNames[] = {{"QUIT", SIGQUIT},
                                                                {"USR1", SIGUSR1},
                                                                {"USR2", SIGUSR2},
                                                                {"HUP", SIGHUP},
                                                                {"WINCH", SIGWINCH}};
  for (const auto& [name, sig] : kNames) {
    if (s == name) return sig;
  }
  weft::log::logf(weft::log::Level::warn,
                  "weft: WEFT_DUMP_SIGNAL='%s' is not one of SIGQUIT, SIGUSR1, SIGUSR2, SIGHUP, "
                  "SIGWINCH, none; using SIGQUIT",
                  v);
  return SIGQUIT;
}

}  // namespace

std::string dump_fibers(RuntimeImpl& rt, DumpFormat format) {
  std::unique_lock<std::mutex> turn(g_symbolizer_mu, std::defer_lock);
  if (current_fiber() == nullptr) {
    turn.lock();
  } else {
    // A fiber waits its turn by yielding, never by blocking its worker:
    // the fibers queued behind it (its LIFO slot, which no one steals)
    // run meanwhile.
    while (!turn.try_lock()) weft::this_fiber::yield();
  }
  const Dump d = collect(rt, shared_symbolizer());
  return format == DumpFormat::json ? to_json_text(d) : to_text(d);
}

namespace {

// A wait that something other than a fiber of the runtime ends: the
// reactor (I/O) or the signal dispatcher thread. (Timers and blocking tasks
// the runtime rules out itself: RuntimeImpl::quiet_now.)
bool ends_from_outside(WaitReason r) noexcept {
  return r == WaitReason::io_read || r == WaitReason::io_write || r == WaitReason::signal;
}

// The deadlock report's first look, before any stack is unwound: is some
// fiber not parked (any more), or parked on a wait ends_from_outside?
class WakeableScan final : public RuntimeImpl::FiberVisitor {
 public:
  void see(Fiber& f, bool pinned, const FiberLabels*) noexcept override {
    // Pinned: its current park's waiter holds still (see Collector::see).
    const Waiter* w = pinned ? f.parked_on : nullptr;
    if (w == nullptr || ends_from_outside(w->reason())) wakeable = true;
  }
  void inspect_pinned(Fiber&) noexcept override {}
  bool wakeable = false;
};

}  // namespace

bool report_deadlock(RuntimeImpl& rt, std::int64_t quiet_ms) noexcept {
  // A server idle in accept() looks quiet to the runtime (epoll cannot tell
  // a registered descriptor's waiter is gone): this walk, once per quiet
  // state, costs no unwinding or symbols.
  WakeableScan scan;
  rt.visit_fibers(scan);
  if (scan.wakeable) return false;
  try {
    std::lock_guard<std::mutex> turn(g_symbolizer_mu);  // the monitor thread: no fiber
    const Dump d = collect(rt, shared_symbolizer());
    for (const Entry& e : d.entries) {  // changed since the scan: no report
      if (!e.waits || ends_from_outside(e.reason)) return false;
    }
    char head[320];
    std::snprintf(head, sizeof head,
                  "weft: deadlock: all %zu fibers of the runtime have been parked for %" PRId64
                  " ms and nothing can wake any of them (no timer armed, no I/O in flight, no "
                  "spawn_blocking task, no wake-up from a plain thread); the fiber dump "
                  "follows (Config::deadlock_report)\n",
                  d.entries.size(), quiet_ms);
    weft::log::write(weft::log::Level::error, head + to_text(d));
  } catch (...) {
    weft::log::write(weft::log::Level::error,
                     "weft: deadlock: every fiber is parked and nothing can wake one; the fiber "
                     "dump failed: out of memory");
  }
  return true;
}

void write_dump_to_stderr(RuntimeImpl& rt) noexcept {
  std::string text;
  try {
    text = dump_fibers(rt, DumpFormat::text);
  } catch (...) {
    text = "weft: fiber dump failed: out of memory\n";
  }
  const char* p = text.data();
  std::size_t left = text.size();
  while (left != 0) {
    const ssize_t n = ::write(2, p, left < 65536 ? left : 65536);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stderr closed or full: nothing better to do
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

int dump_signal() noexcept {
  static const int sig = parse_dump_signal();
  return sig;
}

bool dump_signal_runtime_started() noexcept {
  g_live_runtimes.fetch_add(1, std::memory_order_relaxed);
  const int sig = dump_signal();
  if (sig == 0) return false;
  std::lock_guard<std::mutex> g(g_signal_mu);
  struct sigaction old {};
  if (::sigaction(sig, nullptr, &old) != 0) return false;
  const bool ours = (old.sa_flags & SA_SIGINFO) == 0 && old.sa_handler == &on_dump_signal;
  if (ours) return true;
  const bool program_s =
      (old.sa_flags & SA_SIGINFO) != 0 ? old.sa_sigaction != nullptr : old.sa_handler != SIG_DFL;
  if (program_s) return false;  // the program's handler (or SIG_IGN): never replaced
  struct sigaction sa {};
  sa.sa_handler = &on_dump_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  return ::sigaction(sig, &sa, nullptr) == 0;
}

void dump_signal_runtime_ended() noexcept {
  g_live_runtimes.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace obs
}  // namespace weft::detail
