// Snapshots of fibers and of the cancellation tree (weft/snapshot.hpp,
// src/obs/snapshot.hpp; the schema is docs/design/snapshots.md).
//
// Nothing is stopped while a snapshot is taken. A fiber's state comes from
// the same atomic reads as FiberRef::state(); a tree node is read under its
// own lock (CancelNode::inspect), one node at a time, as cancel() walks the
// tree, so a snapshot never holds two node locks, never blocks a fiber
// longer than a few loads, and never runs user code. Each child taken holds
// a reference, so it stays valid after its parent's lock is released even
// if it detaches meanwhile (it is then reported as it was).
//
// Bounds. The walk and the JSON conversion recurse once per level, so the
// depth is bounded: SnapshotLimits::max_depth <= 64. A level costs about
// 500 bytes of stack in a RelWithDebInfo build (measured: 128 levels
// overflow a 48 KiB fiber stack and fit in 96 KiB) and more than 2 KiB
// under ASan (128 levels overflowed the default 256 KiB stack there), so
// the maximum, 64, fits the default stack in every build and the default
// depth, 32, fits 64 KiB outside sanitizers. The node count is bounded
// too, so a runtime with 10^6 fibers answers with a bounded document.
// What is cut is counted in `omitted`.
#include "obs/snapshot.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <stdexcept>
#include <vector>

#include "fiber/fiber.hpp"
#include "sched/current.hpp"
#include "sched/runtime_impl.hpp"
#include "sched/waiter.hpp"

namespace weft {
namespace detail {
namespace {

constexpr std::size_t kMaxDepth = 64;

// Children taken by inspect(), each with a reference until released here
// (also when the walk throws).
class TakenChildren {
 public:
  TakenChildren() = default;
  TakenChildren(const TakenChildren&) = delete;
  TakenChildren& operator=(const TakenChildren&) = delete;
  ~TakenChildren() { release_from(0); }

  // Reads `node` with room for `room` children; grows and reads again while
  // more are attached than were taken and the budget allows more.
  CancelNode::Inspection take(CancelNode& node, std::size_t room) {
    for (;;) {
      release_from(0);
      nodes_.resize(room);
      CancelNode::Inspection in = node.inspect(nodes_.data(), room);
      taken_ = in.taken;
      if (in.taken == in.children || in.taken < room || room == max_room_) return in;
      // More attached than we had room for: try again with room for all
      // (as many as the budget allows).
      room = std::min(in.children, max_room_);
    }
  }
  void set_max_room(std::size_t n) noexcept { max_room_ = n; }
  std::size_t size() const noexcept { return taken_; }
  CancelNode& operator[](std::size_t i) const noexcept { return *nodes_[i]; }
  void release_one(std::size_t i) noexcept {
    nodes_[i]->release();
    nodes_[i] = nullptr;
  }

 private:
  void release_from(std::size_t i) noexcept {
    for (; i < taken_; ++i) {
      if (nodes_[i] != nullptr) nodes_[i]->release();
    }
    taken_ = 0;
  }
  std::vector<CancelNode*> nodes_;
  std::size_t taken_ = 0;
  std::size_t max_room_ = 0;
};

CancelNodeKind kind_of(CancelNode& node) noexcept {
  switch (node.kind()) {
    case CancelNode::Kind::root:
      return CancelNodeKind::root;
    case CancelNode::Kind::task:
      return node.task()->fiber_id() != 0 ? CancelNodeKind::fiber : CancelNodeKind::blocking;
    case CancelNode::Kind::scope:
      return CancelNodeKind::scope;
    case CancelNode::Kind::shield:
      return CancelNodeKind::shield;
    case CancelNode::Kind::source:
      return CancelNodeKind::source;
  }
  return CancelNodeKind::root;
}

CancelNodeSnapshot walk(CancelNode& node, std::size_t depth, const SnapshotLimits& limits,
                        std::size_t& budget, std::int64_t now_ns) {
  CancelNodeSnapshot s;
  s.kind = kind_of(node);
  s.deadline_ns = node.deadline_ns();
  s.deadline_in_ns = s.deadline_ns >= 0 ? s.deadline_ns - now_ns : 0;
  s.deadline_fired = node.deadline_fired();
  if (TaskBase* t = node.task()) {
    s.fiber = t->fiber_id();
    s.fiber_state = task_state(t);
  } else {
    s.fiber = node.opener();
  }
  TakenChildren kids;
  const std::size_t room = depth < limits.max_depth ? budget : 0;
  kids.set_max_room(room);
  const CancelNode::Inspection in = kids.take(node, std::min<std::size_t>(room, 16));
  s.cancelled = in.cancelled;
  s.bound_fiber = in.bound_fiber;
  s.callbacks = in.callbacks;
  s.omitted = in.children - kids.size();
  budget -= kids.size();
  s.children.reserve(kids.size());
  for (std::size_t i = 0; i < kids.size(); ++i) {
    s.children.push_back(walk(kids[i], depth + 1, limits, budget, now_ns));
    kids.release_one(i);
  }
  return s;
}

}  // namespace

FiberSnapshot snapshot_fiber(const Fiber& f) {
  FiberSnapshot s;
  s.id = f.id;
  s.parent_id = f.parent_id;
  s.name = f.name;
  s.priority = f.priority;
  s.state = task_state(f.task);
  s.cancelled = f.task->cancel_node().is_cancelled();
  return s;
}

CancelNodeSnapshot snapshot_cancel_tree(CancelNode& node, const SnapshotLimits& limits,
                                        std::int64_t now_ns) {
  if (limits.max_depth > kMaxDepth) {
    throw std::invalid_argument("weft: SnapshotLimits::max_depth must be at most 64");
  }
  if (limits.max_nodes < 1) {
    throw std::invalid_argument("weft: SnapshotLimits::max_nodes must be at least 1");
  }
  std::size_t budget = limits.max_nodes - 1;  // the first node is always there
  return walk(node, 0, limits, budget, now_ns);
}

nlohmann::json snapshot_json(const FiberSnapshot& s) {
  return nlohmann::json{{"id", s.id},
                        {"parent_id", s.parent_id},
                        {"name", s.name},
                        {"state", to_string(s.state)},
                        {"priority", to_string(s.priority)},
                        {"cancelled", s.cancelled}};
}

void append_json(const CancelNodeSnapshot& s, std::string& out) {
  // Written by hand (a fiber dump's tree has a node per fiber: nlohmann's
  // DOM cost it a large part of a second per 100,000), in the key order
  // nlohmann's objects print (sorted), so to_json's text stays the same.
  // Absent values are null, not sentinels, so a reader need not know them.
  // Every string is a fixed name: nothing needs escaping.
  char buf[32];
  const auto num = [&](std::int64_t v) {
    out.append(buf, static_cast<std::size_t>(std::snprintf(buf, sizeof buf, "%" PRId64, v)));
  };
  const auto unum = [&](std::uint64_t v) {
    out.append(buf, static_cast<std::size_t>(std::snprintf(buf, sizeof buf, "%" PRIu64, v)));
  };
  const auto null = [&] { out += "null"; };
  out += "{\"bound_fiber\":";
  s.bound_fiber != 0 ? unum(s.bound_fiber) : null();
  out += ",\"callbacks\":";
  unum(s.callbacks);
  out += ",\"cancelled\":";
  out += s.cancelled ? "true" : "false";
  out += ",\"children\":[";
  for (std::size_t i = 0; i < s.children.size(); ++i) {
    if (i != 0) out += ',';
    append_json(s.children[i], out);
  }
  out += "],\"deadline_fired\":";
  out += s.deadline_fired ? "true" : "false";
  out += ",\"deadline_in_ns\":";
  s.deadline_ns >= 0 ? num(s.deadline_in_ns) : null();
  out += ",\"deadline_ns\":";
  s.deadline_ns >= 0 ? num(s.deadline_ns) : null();
  out += ",\"fiber\":";
  s.fiber != 0 ? unum(s.fiber) : null();
  out += ",\"fiber_state\":";
  if (s.kind == CancelNodeKind::fiber) {
    out += '"';
    out += to_string(s.fiber_state);
    out += '"';
  } else {
    null();
  }
  out += ",\"kind\":\"";
  out += to_string(s.kind);
  out += "\",\"omitted\":";
  unum(s.omitted);
  out += '}';
}

}  // namespace detail

const char* to_string(Priority p) noexcept {
  switch (p) {
    case Priority::low:
      return "low";
    case Priority::normal:
      return "normal";
    case Priority::high:
      return "high";
    case Priority::critical:
      return "critical";
  }
  return "unknown";
}

const char* to_string(CancelNodeKind k) noexcept {
  switch (k) {
    case CancelNodeKind::root:
      return "root";
    case CancelNodeKind::fiber:
      return "fiber";
    case CancelNodeKind::blocking:
      return "blocking";
    case CancelNodeKind::scope:
      return "scope";
    case CancelNodeKind::shield:
      return "shield";
    case CancelNodeKind::source:
      return "source";
  }
  return "unknown";
}

FiberSnapshot snapshot(const FiberRef& f) {
  FiberSnapshot s;
  s.id = f.id();
  s.parent_id = f.parent_id();
  s.name = f.name();
  s.priority = f.priority();
  s.state = f.state();
  s.cancelled = f.is_cancelled();
  return s;
}

CancelNodeSnapshot cancel_tree(const CancellationToken& token, const SnapshotLimits& limits) {
  if (token.node() == nullptr) {
    throw std::invalid_argument("weft: cancel_tree() of an empty token");
  }
  return detail::snapshot_cancel_tree(*token.node(), limits, detail::monotonic_ns());
}

CancelNodeSnapshot cancel_tree(const FiberRef& f, const SnapshotLimits& limits) {
  if (!f) throw std::invalid_argument("weft: cancel_tree() of an empty FiberRef");
  return detail::snapshot_cancel_tree(f.task_base()->cancel_node(), limits, detail::monotonic_ns());
}

CancelNodeSnapshot runtime_cancel_tree(const SnapshotLimits& limits) {
  detail::RuntimeImpl* rt = detail::current_runtime();
  if (rt == nullptr) throw std::logic_error("weft: runtime_cancel_tree() outside a runtime");
  // The root lives as long as the runtime, which outlives its own fibers
  // and blocking-pool threads (the only callers that get here).
  return detail::snapshot_cancel_tree(rt->root_cancel_node(), limits, detail::monotonic_ns());
}

std::string to_json(const FiberSnapshot& s) {
  return detail::snapshot_json(s).dump();
}

std::string to_json(const CancelNodeSnapshot& s) {
  std::string out;
  detail::append_json(s, out);
  return out;
}

namespace this_fiber {

FiberSnapshot snapshot() {
  const detail::Fiber* f = detail::current_fiber();
  if (f == nullptr) throw std::logic_error("weft: this_fiber::snapshot() outside a fiber");
  return detail::snapshot_fiber(*f);
}

}  // namespace this_fiber
}  // namespace weft
