// Cancellation: tokens, sources, callbacks, shields.
//
// Every fiber runs inside a tree of cancel scopes. A fiber's own node hangs
// under the innermost scope of the code that spawned it (the runtime's root
// for fibers spawned from outside); weft::scope, with_timeout and friends
// (weft/scope.hpp) open nested scopes on the calling fiber; a
// CancellationSource is a node you own. Cancelling a node cancels every
// node under it, never the ones above. A cancelled fiber's blocking calls
// (sleep, join, channel send/recv/select, every sync wait, I/O) throw
// weft::Cancelled, promptly if it is parked in one. Cancellation is
// cooperative: a fiber in a CPU loop sees it through
// this_fiber::is_cancelled() / check_cancelled(). The model is Trio's cancel
// scopes; docs/design/cancellation.md has the details.
#pragma once

#include <functional>
#include <type_traits>
#include <utility>

#include "weft/detail/cancel_node.hpp"
#include "weft/detail/cancel_scope.hpp"
#include "weft/errors.hpp"
#include "weft/this_fiber.hpp"

namespace weft {

class CancellationSource;

/// A read-only view of a node of the cancellation tree: can be asked whether
/// it is cancelled, and can have callbacks registered. Copyable and cheap (a
/// reference count); keeps the node alive, not the fiber or scope that owns
/// it. A default-constructed token is never cancelled. Thread-safe.
class CancellationToken {
 public:
  /// A token that is never cancelled.
  CancellationToken() noexcept = default;
  /// Another reference to the same node (shares its cancellation).
  CancellationToken(const CancellationToken& o) noexcept : node_(o.node_) {
    if (node_ != nullptr) node_->add_ref();
  }
  /// Takes over o's reference; o becomes a never-cancelled token.
  CancellationToken(CancellationToken&& o) noexcept : node_(std::exchange(o.node_, nullptr)) {}
  /// Replaces this token's node with o's (copy-and-swap).
  CancellationToken& operator=(CancellationToken o) noexcept {
    std::swap(node_, o.node_);
    return *this;
  }
  ~CancellationToken() {
    if (node_ != nullptr) node_->release();
  }

  /// True once the node (or an ancestor it was attached to) is cancelled.
  bool is_cancelled() const noexcept { return node_ != nullptr && node_->is_cancelled(); }
  /// False for a default-constructed token.
  bool can_be_cancelled() const noexcept { return node_ != nullptr; }
  /// @throws weft::Cancelled if is_cancelled().
  void throw_if_cancelled() const {
    if (is_cancelled()) throw Cancelled();
  }

  /// Internal: adopts a reference to `node`.
  static CancellationToken adopt(detail::CancelNode* node) noexcept {
    CancellationToken t;
    t.node_ = node;
    return t;
  }
  /// Internal: the node observed (nullptr for a default token); for weft's own layers.
  detail::CancelNode* node() const noexcept { return node_; }

 private:
  detail::CancelNode* node_ = nullptr;
};

/// Owner of a cancellation node: cancel() cancels its token and, if it was
/// created from a parent token, it is cancelled with that parent (not the
/// other way round). Destroying a source does not cancel it. Move-only;
/// cancel() and token() are thread-safe.
class CancellationSource {
 public:
  /// A root source: only cancel() cancels it. @throws std::bad_alloc.
  CancellationSource()
      : node_(detail::SharedCancelNode::create(detail::CancelNode::Kind::source)) {}
  /// A child of `parent`: cancelled when parent is (at once if it already
  /// is). A default-constructed parent makes a root. @throws std::bad_alloc.
  explicit CancellationSource(const CancellationToken& parent)
      : node_(detail::SharedCancelNode::create(detail::CancelNode::Kind::source)) {
    node_->attach(parent.node());
  }
  /// Takes over o's node; o is empty afterwards (cancel() on it does nothing).
  CancellationSource(CancellationSource&& o) noexcept : node_(std::exchange(o.node_, nullptr)) {}
  /// Releases this source's node and takes over o's.
  CancellationSource& operator=(CancellationSource&& o) noexcept {
    if (this != &o) {
      if (node_ != nullptr) node_->release();
      node_ = std::exchange(o.node_, nullptr);
    }
    return *this;
  }
  CancellationSource(const CancellationSource&) = delete;
  CancellationSource& operator=(const CancellationSource&) = delete;
  ~CancellationSource() {
    if (node_ != nullptr) node_->release();
  }

  /// Cancels the token and its descendants; runs their callbacks on this
  /// thread before returning. Returns true if this call cancelled it (false
  /// if already cancelled). Never throws, never blocks except to wait for a
  /// callback of this node already running on another thread.
  bool cancel() noexcept { return node_ != nullptr && node_->cancel(); }
  /// True once cancel() (or a parent's cancellation) has cancelled it. Never blocks.
  bool is_cancelled() const noexcept { return node_ != nullptr && node_->is_cancelled(); }
  /// A token observing this source (empty after a move).
  CancellationToken token() const noexcept {
    if (node_ == nullptr) return {};
    node_->add_ref();
    return CancellationToken::adopt(node_);
  }

 private:
  detail::SharedCancelNode* node_;
};

/// Runs a callback when a token is cancelled, for as long as it is alive
/// (RAII registration, like std::stop_callback). If the token is already
/// cancelled, the constructor runs the callback at once. Otherwise the
/// callback runs on the thread (or fiber) that cancels, before its cancel()
/// returns. The destructor unregisters it; if the callback is running on
/// another thread at that moment, the destructor waits until it returns (so
/// the callback may use state the registration outlives). Callbacks must be
/// short and must not park (no blocking weft calls); they may cancel other
/// sources. Not copyable or movable.
template <class F>
class CancellationCallback {
 public:
  /// @throws whatever moving/copying F throws; if the token is already
  /// cancelled, whatever the callback throws (it runs inline).
  template <class G>
  CancellationCallback(const CancellationToken& token, G&& fn) : fn_(std::forward<G>(fn)) {
    link_.self = this;
    link_.invoke = &invoke;
    if (token.node() == nullptr) return;
    if (token.node()->add_callback(&link_)) {
      node_ = token.node();
      node_->add_ref();
    } else {
      fn_();
    }
  }
  ~CancellationCallback() {
    if (node_ != nullptr) {
      node_->remove_callback(&link_);
      node_->release();
    }
  }
  CancellationCallback(const CancellationCallback&) = delete;
  CancellationCallback& operator=(const CancellationCallback&) = delete;

 private:
  struct Link : detail::CancelLink {
    CancellationCallback* self = nullptr;
  };
  static void invoke(detail::CancelLink* l) noexcept {
    // A throwing callback has nowhere to report to: terminate, as
    // std::stop_callback does.
    static_cast<Link*>(l)->self->fn_();
  }
  F fn_;
  Link link_;
  detail::CancelNode* node_ = nullptr;
};

/// Deduces the callback type: `CancellationCallback cb(token, [] { ... });`.
template <class G>
CancellationCallback(const CancellationToken&, G&&) -> CancellationCallback<std::decay_t<G>>;

/// Runs fn() on the calling fiber with cancellation deferred. Cancelling
/// the scopes around it (a JoinHandle::cancel, a failing sibling, a
/// timeout, runtime shutdown) does not interrupt the blocking calls inside;
/// the fiber sees the cancellation once fn returns, at its next blocking
/// call. For cleanup that must finish (flush, close, release). Scopes
/// opened inside (a move_on_after to bound the cleanup) still work. Fibers
/// spawned inside are shielded too. Shutdown forces cancellation into
/// shields that are still blocked after a grace period (1 s). Returns fn's
/// result; rethrows its exception. Outside a fiber fn just runs (threads
/// are never cancelled). Trio's `CancelScope(shield=True)` is the model.
/// @throws std::bad_alloc, or what fn throws.
template <class F>
auto shield(F&& fn) -> std::invoke_result_t<F&&> {
  if (!this_fiber::in_fiber()) return std::forward<F>(fn)();
  detail::CancelScope s(detail::CancelScope::Kind::shield, -1);
  return std::forward<F>(fn)();
}

/// RAII form of shield(): cancellation is deferred from construction until
/// destruction (handy in destructors doing cleanup). Must be destroyed on
/// the fiber that created it, in reverse order of other scopes. Does
/// nothing outside a fiber. @throws std::bad_alloc.
class ShieldGuard {
 public:
  ShieldGuard();
  ~ShieldGuard();
  ShieldGuard(const ShieldGuard&) = delete;
  ShieldGuard& operator=(const ShieldGuard&) = delete;

 private:
  alignas(detail::CancelScope) unsigned char storage_[sizeof(detail::CancelScope)];
  bool active_ = false;
};

/// Runs fn() on the calling fiber so that cancelling `token` cancels it (as
/// well as the enclosing scopes, as usual): fn's blocking calls then throw
/// weft::Cancelled, which propagates out of this call. Fibers spawned inside
/// are cancelled with it. Outside a fiber fn runs without cancellation.
/// @throws weft::Cancelled, std::bad_alloc, or what fn throws.
template <class F>
auto with_cancellation(const CancellationToken& token, F&& fn) -> std::invoke_result_t<F&&> {
  if (!this_fiber::in_fiber()) return std::forward<F>(fn)();
  detail::CancelScope s(detail::CancelScope::Kind::nested, -1);
  detail::CancelNode* node = s.node();
  CancellationCallback link(token, [node]() noexcept { node->cancel(); });
  return std::forward<F>(fn)();
}

namespace this_fiber {

/// True if the calling fiber's innermost cancel scope is cancelled (not
/// inside a shield). On a spawn_blocking thread: whether its task was
/// cancelled (JoinHandle::cancel or its spawner's scope). On other threads:
/// false. Costs one load on a fiber.
bool is_cancelled() noexcept;

/// @throws weft::Cancelled if is_cancelled(). A cancellation point for CPU
/// loops.
void check_cancelled();

/// A token for the calling fiber's innermost cancel scope (on a
/// spawn_blocking thread, its task's; elsewhere a token never cancelled).
CancellationToken cancellation_token() noexcept;

}  // namespace this_fiber
}  // namespace weft
