// Internal: a node of the cancellation tree. Not part of the API.
//
// Every fiber, every spawn_blocking task, every weft::scope, every
// with_timeout/move_on_after/fail_after and every CancellationSource owns one
// node. A node is attached to its parent (the cancel scope it was created
// in) and lists its attached children and its callbacks. Cancelling a node
// marks it and, depth first, every node attached under it, runs their
// callbacks and wakes the fibers whose innermost scope they are. A shield
// is a node that is deliberately not attached, so cancellation of the
// scopes around it does not reach inside (Trio's shielded cancel scopes).
//
// Lifetime: nodes are reference counted through add_ref/release, which a
// subclass maps onto its owner (a task's node onto the task's references;
// a heap node onto its own count). A child holds a reference on its parent
// while attached and detaches itself before it dies (fiber end, scope exit,
// last reference of a heap node), so a parent's list never names a freed
// node. The implementation is src/cancel/cancel_node.cpp; the design is in
// docs/design/cancellation.md.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "weft/detail/spinlock.hpp"

namespace weft::detail {

struct Fiber;
class CancelNode;
class TaskBase;

/// An entry in a node's list: an attached child node or a callback.
struct CancelLink {
  using Invoke = void (*)(CancelLink*) noexcept;

  CancelLink* prev = nullptr;
  CancelLink* next = nullptr;
  CancelNode* child = nullptr;  // set for a child's link, else null
  Invoke invoke = nullptr;      // set for a callback
  bool linked = false;          // guarded by the list owner's lock
};

class CancelNode {
 public:
  /// What owns the node: for snapshots (weft/snapshot.hpp), never for
  /// cancellation, which treats every node alike.
  enum class Kind : std::uint8_t {
    root,    ///< a runtime's root (and any node that names no owner)
    task,    ///< a fiber's or spawn_blocking task's own node
    scope,   ///< a nested cancel scope (weft::scope, with_timeout, ...)
    shield,  ///< a shield (not attached: the scopes around it do not reach it)
    source,  ///< a CancellationSource
  };

  /// What inspect() read of a node, under its lock.
  struct Inspection {
    bool cancelled = false;
    std::uint64_t bound_fiber = 0;  ///< id of the fiber whose innermost scope it is, or 0
    std::size_t children = 0;       ///< attached children (taken or not)
    std::size_t callbacks = 0;      ///< registered callbacks not yet run
    std::size_t taken = 0;          ///< children stored in the caller's array
  };

  explicit CancelNode(Kind kind = Kind::root) noexcept : kind_(kind) { link_.child = this; }
  CancelNode(const CancelNode&) = delete;
  CancelNode& operator=(const CancelNode&) = delete;

  /// Reference counting, mapped onto the node's owner.
  virtual void add_ref() noexcept = 0;
  /// Like add_ref, but fails (returns false) for a node whose last
  /// reference is already gone and that is about to detach.
  virtual bool try_add_ref() noexcept = 0;
  virtual void release() noexcept = 0;

  /// True once cancelled (by itself or through an ancestor). acquire: the
  /// canceller's writes before cancel() are visible.
  bool is_cancelled() const noexcept { return cancelled_.load(std::memory_order_acquire); }

  /// Cancels this node and everything attached under it. Returns true if
  /// this call did it (false if it was already cancelled). Callbacks run on
  /// the calling thread, before it returns. Never throws.
  bool cancel() noexcept;

  /// Cancels every node attached under this one now, but not this node:
  /// nodes attached later are not cancelled. Never throws.
  void cancel_children() noexcept;

  /// Attaches to `parent` (null: stays a root). Takes a reference on it.
  /// If the parent is already cancelled, this node starts cancelled.
  /// Called once, before the node is shared.
  void attach(CancelNode* parent) noexcept;

  /// Undoes attach() and bind_fiber(): unbinds the fiber, unlinks from the
  /// parent and drops the reference.
  /// Children still attached (fibers spawned inside and still running) are
  /// handed to `heir` (the parent by default; a shield names the scope it
  /// was pushed in), so cancelling an ancestor still reaches them. Called
  /// once, by the node's owner, when the scope or fiber ends.
  void detach() noexcept { release_parent(detach_keep_parent(nullptr, true)); }
  void detach(CancelNode* heir) noexcept { release_parent(detach_keep_parent(heir, false)); }

  /// The node as a SharedCancelNode, or null (lets release() walk a chain
  /// of dying heap nodes in a loop instead of recursing).
  virtual class SharedCancelNode* as_shared() noexcept { return nullptr; }

  /// The node this one was attached to (or, for a shield, pushed inside);
  /// null for a root. Stable until detach().
  CancelNode* parent() const noexcept { return __atomic_load_n(&parent_, __ATOMIC_ACQUIRE); }

  /// Registers `link` (invoke set) to run when this node is cancelled.
  /// Returns false, without registering, if it already is: the caller then
  /// runs its callback itself.
  bool add_callback(CancelLink* link) noexcept;
  /// Unregisters `link`. If it is running on another thread right now,
  /// waits until it has returned. Safe from within the callback itself.
  void remove_callback(CancelLink* link) noexcept;

  /// Binds the fiber whose innermost cancel scope this node is (null to
  /// unbind). Binding a cancelled node marks the fiber cancelled. Returns
  /// is_cancelled() as seen under the node's lock.
  bool bind_fiber(Fiber* f) noexcept;

  /// Absolute CLOCK_MONOTONIC deadline of this scope (earliest of its own
  /// and its ancestors' at creation), or -1.
  std::int64_t deadline_ns() const noexcept { return deadline_ns_.load(std::memory_order_relaxed); }
  void set_deadline_ns(std::int64_t ns) noexcept {
    deadline_ns_.store(ns, std::memory_order_relaxed);
  }

  /// Set by a deadline timer before it cancels the node: the node's own
  /// deadline, not an ancestor, cancelled it.
  bool deadline_fired() const noexcept { return deadline_fired_.load(std::memory_order_acquire); }
  void mark_deadline_fired() noexcept { deadline_fired_.store(true, std::memory_order_release); }

  Kind kind() const noexcept { return kind_; }
  /// For a task's node, the task; null for every other kind.
  virtual TaskBase* task() noexcept { return nullptr; }
  /// The fiber that opened a scope or shield (0 for other kinds). Set once
  /// by the owner before the node is shared.
  std::uint64_t opener() const noexcept { return opener_; }
  void set_opener(std::uint64_t fiber_id) noexcept { opener_ = fiber_id; }

  /// For snapshots: reads the node's state under its lock and stores up to
  /// `capacity` of its attached children in `out`, each with a reference
  /// the caller releases. Takes no other lock and allocates nothing.
  Inspection inspect(CancelNode** out, std::size_t capacity) noexcept;

 protected:
  ~CancelNode() = default;

 private:
  // Marks this node, collects its fiber and children; see cancel_node.cpp.
  bool cancel_one(class CancelBatch& batch, CancelNode** work) noexcept;
  // detach() without dropping the reference on the old parent: returned
  // for the caller to release. heir_is_parent: hand the children to the
  // parent (read under our lock) instead of `heir`.
  CancelNode* detach_keep_parent(CancelNode* heir, bool heir_is_parent) noexcept;
  // Unlinks the attached children (and, if asked, the callbacks) and
  // returns the children, each with a reference, chained by work_next_.
  CancelNode* take_children(bool drop_callbacks) noexcept WEFT_REQUIRES(lock_);
  static void release_parent(CancelNode* p) noexcept {
    if (p != nullptr) p->release();
  }
  friend class SharedCancelNode;

  std::atomic<bool> cancelled_{false};  // written under lock_
  std::atomic<bool> deadline_fired_{false};
  SpinLock lock_;
  CancelLink* head_ WEFT_GUARDED_BY(lock_) = nullptr;            // children and callbacks
  CancelLink* running_ WEFT_GUARDED_BY(lock_) = nullptr;         // callback being invoked
  const void* running_thread_ WEFT_GUARDED_BY(lock_) = nullptr;  // the invoking thread
  Fiber* fiber_ WEFT_GUARDED_BY(lock_) = nullptr;
  CancelNode* parent_ = nullptr;     // changes only under lock_ (and a reference moves with it)
  CancelNode* work_next_ = nullptr;  // the canceller's work list
  CancelLink link_;                  // our entry in parent_'s list
  std::atomic<std::int64_t> deadline_ns_{-1};
  std::uint64_t opener_ = 0;  // written before the node is shared
  const Kind kind_;
};

/// A heap node with its own reference count (CancellationSource, scopes).
class SharedCancelNode final : public CancelNode {
 public:
  /// One reference, owned by the creator. @throws std::bad_alloc.
  static SharedCancelNode* create(Kind kind);
  void add_ref() noexcept override { refs_.fetch_add(1, std::memory_order_relaxed); }
  bool try_add_ref() noexcept override;
  void release() noexcept override;
  SharedCancelNode* as_shared() noexcept override { return this; }

 private:
  explicit SharedCancelNode(Kind kind) noexcept : CancelNode(kind) {}
  ~SharedCancelNode() = default;
  std::atomic<std::uint32_t> refs_{1};
};

}  // namespace weft::detail
