// Internal: a cancel scope pushed on the calling fiber. Not part of the API.
//
// The building block of weft::scope, shield, with_timeout, move_on_after,
// fail_after and with_cancellation (weft/scope.hpp, weft/cancel.hpp): while
// it is open, the fiber's innermost cancel scope is the scope's node, so
// cancelling the node (its deadline timer, Scope::cancel, a linked token, or
// any enclosing scope unless it is a shield) makes the fiber's blocking calls
// throw weft::Cancelled, and fibers spawned inside hang under the node.
// Closing it restores the enclosing scope and recomputes whether the fiber
// is cancelled (cancel_node.cpp; docs/design/cancellation.md).
#pragma once

#include <cstdint>

#include "weft/detail/cancel_node.hpp"
#include "weft/detail/spinlock.hpp"

namespace weft::detail {

struct Fiber;
class DeadlineTimer;

class CancelScope {
 public:
  enum class Kind : std::uint8_t {
    nested,  ///< cancelled with the enclosing scope
    shield,  ///< not reached by the enclosing scopes' cancellation
  };

  /// Opens a scope on the calling fiber, with a deadline (CLOCK_MONOTONIC
  /// ns, -1 for none; a deadline already passed cancels it at once).
  /// @throws std::logic_error outside a fiber; std::bad_alloc.
  CancelScope(Kind kind, std::int64_t deadline_ns);
  ~CancelScope() { close(); }
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

  /// Closes the scope (idempotent). Must run on the fiber that opened it,
  /// with every scope opened inside it already closed.
  void close() noexcept;

  /// The scope's node (valid until the CancelScope is destroyed).
  CancelNode* node() const noexcept { return node_; }

  /// Cancels the scope (and everything inside it). Any thread.
  void cancel() noexcept { node_->cancel(); }

  /// Cancels the scope at `deadline_ns` unless an earlier deadline is
  /// already set. Must run on a fiber of the scope's runtime (the timer
  /// goes on that worker's wheel). @throws std::logic_error otherwise.
  void cancel_at(std::int64_t deadline_ns);

  /// After close(): true if the scope itself was cancelled while the
  /// scopes around it were not (the cancellation belongs to this scope,
  /// so a Cancelled that reached it is absorbed, as in Trio).
  bool cancelled_here() const noexcept { return cancelled_here_; }
  /// After close(): true if the enclosing scopes are cancelled (the fiber
  /// is cancelled again once this scope is gone).
  bool outer_cancelled() const noexcept { return outer_cancelled_; }
  /// After close(): true if the scope's own deadline cancelled it.
  bool deadline_fired() const noexcept { return deadline_fired_; }

 private:
  Fiber* fiber_;
  SharedCancelNode* node_ = nullptr;
  CancelNode* prev_ = nullptr;
  SpinLock timer_lock_;
  DeadlineTimer* timer_ WEFT_GUARDED_BY(timer_lock_) = nullptr;
  std::int64_t timer_deadline_ns_ WEFT_GUARDED_BY(timer_lock_) = -1;
  Kind kind_;
  bool open_ = false;
  bool cancelled_here_ = false;
  bool outer_cancelled_ = false;
  bool deadline_fired_ = false;
};

}  // namespace weft::detail
