// Snapshots for debugging (seed 001 §8.1 and §8.4): a fiber (id, parent,
// name, state, priority, whether it is cancelled) and the cancellation tree
// (who owns each node, cancelled or not, deadlines, callbacks, children),
// as values and as JSON text.
//
//   weft::FiberRef me = weft::this_fiber::handle();
//   std::cout << weft::to_json(weft::snapshot(me)) << '\n';
//   // {"cancelled":false,"id":7,"name":"crawler","parent_id":1,
//   //  "priority":"normal","state":"running"}
//   std::cout << weft::to_json(weft::runtime_cancel_tree()) << '\n';
//
// The JSON schema (field by field) is in docs/design/snapshots.md; the
// runtime's fiber dump builds on the same functions (src/obs/snapshot.hpp).
// A snapshot is a moment's view taken without stopping anything: fibers keep
// running while it is taken, so two nodes may be seen at slightly different
// moments, but every node is seen in a state it really had, and taking it
// never blocks a fiber (node locks are held only to copy a few fields).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "weft/cancel.hpp"
#include "weft/fiber.hpp"
#include "weft/selector.hpp"

namespace weft {

/// "low", "normal", "high" or "critical".
const char* to_string(Priority p) noexcept;

/// A fiber as seen at one moment.
struct FiberSnapshot {
  FiberId id = 0;         ///< 0: no fiber (an empty FiberRef)
  FiberId parent_id = 0;  ///< the spawning fiber; 0 when spawned from outside fibers
  std::string name;       ///< FiberOptions::name (may be empty)
  /// Its state at the moment of the snapshot.
  FiberState state = FiberState::finished;
  /// FiberOptions::priority.
  Priority priority = Priority::normal;
  bool cancelled = false;  ///< the fiber's own node is cancelled
};

/// What owns a node of the cancellation tree (see weft/cancel.hpp).
enum class CancelNodeKind : std::uint8_t {
  root,      ///< the runtime's root: fibers spawned from outside hang here
  fiber,     ///< a fiber's own node (JoinHandle::cancel cancels it)
  blocking,  ///< a spawn_blocking task's node
  scope,     ///< weft::scope, with_timeout, move_on_after, fail_after, with_cancellation
  shield,    ///< shield()/ShieldGuard: not attached, a root of its own
  source,    ///< a CancellationSource
};

/// "root", "fiber", "blocking", "scope", "shield" or "source".
const char* to_string(CancelNodeKind k) noexcept;

/// A node of the cancellation tree and what hangs under it.
struct CancelNodeSnapshot {
  /// What owns the node.
  CancelNodeKind kind = CancelNodeKind::root;
  /// The node is cancelled.
  bool cancelled = false;
  /// The node's deadline, absolute CLOCK_MONOTONIC ns (the earliest of its
  /// own and its ancestors' when it was made), or -1 for none.
  std::int64_t deadline_ns = -1;
  /// The deadline minus the time the snapshot was taken (<= 0: passed);
  /// meaningless when deadline_ns is -1.
  std::int64_t deadline_in_ns = 0;
  /// True if the node's own deadline cancelled it.
  bool deadline_fired = false;
  /// fiber: the fiber's id; scope, shield: the fiber that opened it; else 0.
  FiberId fiber = 0;
  /// fiber: the fiber's state; other kinds: finished (unused).
  FiberState fiber_state = FiberState::finished;
  /// The id of the fiber whose innermost scope this node is right now
  /// (where that fiber's cancellation is decided), or 0.
  FiberId bound_fiber = 0;
  /// Cancellation callbacks registered and not yet run.
  std::size_t callbacks = 0;
  /// Nodes attached under this one, as far as the limits allowed.
  std::vector<CancelNodeSnapshot> children;
  /// Attached children not in `children` (over a SnapshotLimits bound).
  std::size_t omitted = 0;
};

/// Bounds on a tree snapshot, so that a huge or deep tree (10^5 fibers, a
/// chain of sources) gives a bounded answer, never a stack overflow or an
/// allocation storm. Nodes past a bound are counted in their parent's
/// `omitted`. Taking and printing a snapshot uses about 500 bytes of the
/// caller's stack per level (over 2 KiB under ASan): the maximum depth (64)
/// fits the default fiber stack (256 KiB) in every build, the default depth
/// fits 64 KiB outside sanitizers.
struct SnapshotLimits {
  std::size_t max_depth = 32;      ///< levels below the node asked for, 0..64
  std::size_t max_nodes = 10'000;  ///< nodes in the whole snapshot, the first included
};

/// The fiber `f` refers to now. name, priority and parent_id are those the
/// ref holds; state and cancelled are read now. An empty ref gives id 0,
/// state finished. Never blocks. @throws std::bad_alloc.
FiberSnapshot snapshot(const FiberRef& f);

/// The cancellation tree under the node `token` observes (a fiber's
/// innermost scope for this_fiber::cancellation_token(), a source's node).
/// @throws std::invalid_argument for a token that observes no node ("weft:
/// cancel_tree() of an empty token"); std::bad_alloc.
CancelNodeSnapshot cancel_tree(const CancellationToken& token, const SnapshotLimits& limits = {});

/// The cancellation tree under the fiber's own node: the fiber, the scopes
/// it has open that are attached, the fibers it spawned in them.
/// @throws std::invalid_argument for an empty ref ("weft: cancel_tree() of
/// an empty FiberRef"); std::bad_alloc.
CancelNodeSnapshot cancel_tree(const FiberRef& f, const SnapshotLimits& limits = {});

/// The whole cancellation tree of the calling fiber's (or blocking-pool
/// thread's) runtime, from its root. Shields are not attached to the scopes
/// around them, so the subtrees inside shields do not appear (take them
/// from inside with cancel_tree(this_fiber::cancellation_token())).
/// @throws std::logic_error outside a runtime ("weft: runtime_cancel_tree()
/// outside a runtime"); std::bad_alloc.
CancelNodeSnapshot runtime_cancel_tree(const SnapshotLimits& limits = {});

/// Compact JSON text of a fiber snapshot: an object with the keys id,
/// parent_id, name, state, priority, cancelled (docs/design/snapshots.md).
/// @throws std::bad_alloc.
std::string to_json(const FiberSnapshot& s);

/// Compact JSON text of a tree snapshot: nested objects with the keys
/// kind, cancelled, deadline_ns, deadline_in_ns, deadline_fired, fiber,
/// fiber_state, bound_fiber, callbacks, children, omitted
/// (docs/design/snapshots.md). @throws std::bad_alloc.
std::string to_json(const CancelNodeSnapshot& s);

namespace this_fiber {
/// snapshot(handle()) without the reference count: the calling fiber
/// (state running). @throws std::logic_error outside a fiber ("weft:
/// this_fiber::snapshot() outside a fiber"); std::bad_alloc.
FiberSnapshot snapshot();
}  // namespace this_fiber

}  // namespace weft
