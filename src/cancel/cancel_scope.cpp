// Cancel scopes on fibers and their deadline timers (weft/detail/cancel_scope.hpp).
#include "weft/detail/cancel_scope.hpp"

#include <stdexcept>

#include "fiber/fiber.hpp"
#include "sched/current.hpp"
#include "sched/runtime_impl.hpp"
#include "sched/timer_wheel.hpp"
#include "sched/waiter.hpp"

namespace weft::detail {

// A timer that cancels a node at its deadline. Cancelling (callbacks,
// wake-ups, a membarrier) must not run under the wheel's lock, so the timer
// has only an AfterUnlock callback: the thread that fires it cancels once
// the lock is released. Two references: the owner's (dropped by disarm) and
// the wheel's (dropped when the owner cancels it unfired, or by the
// AfterUnlock callback).
class DeadlineTimer final : public Timer {
 public:
  /// Arms a timer on the calling worker's wheel. Returns null, having
  /// cancelled the node already, if the deadline has passed; null without
  /// cancelling for a deadline beyond the wheel's reach (~12 days).
  static DeadlineTimer* arm(CancelNode* node, std::int64_t deadline_ns) {
    TimerWheel* wheel = current_timers();
    RuntimeImpl* rt = current_runtime();
    if (wheel == nullptr) {
      throw std::logic_error("weft: a cancel scope deadline needs a fiber of a runtime");
    }
    if (deadline_ns <= monotonic_ns()) {
      // Already passed: cancelled before fn starts, not a millisecond later.
      node->mark_deadline_fired();
      node->cancel();
      return nullptr;
    }
    const std::uint64_t tick = rt->deadline_to_tick(deadline_ns);
    if (tick > rt->now_tick() + TimerWheel::kMaxDelayMs) return nullptr;
    auto* t = new DeadlineTimer(node, rt);
    if (t->Timer::arm(*wheel, tick)) return t;
    delete t;
    node->mark_deadline_fired();
    node->cancel();
    return nullptr;
  }

  /// Moves an armed timer to an earlier deadline that has not passed, on
  /// the wheel it is armed on. False, changing nothing, if the timer has
  /// fired or the deadline's tick has been reached.
  bool move_earlier(std::int64_t deadline_ns) noexcept {
    return reset(rt_->deadline_to_tick(deadline_ns));
  }

  /// The owner is done with the timer: disarms it if it has not fired.
  void disarm() noexcept {
    // The owner's reference, and the wheel's if we took the timer out
    // unfired: one decrement, so nothing touches a timer already freed.
    unref(cancel() ? 2 : 1);
  }

 private:
  DeadlineTimer(CancelNode* node, RuntimeImpl* rt) noexcept
      : Timer(nullptr, &on_fired), node_(node), rt_(rt) {
    node_->add_ref();
  }
  ~DeadlineTimer() { node_->release(); }

  void unref(int n = 1) noexcept {
    // acq_rel: the last owner sees every write of the other before deleting.
    if (refs_.fetch_sub(n, std::memory_order_acq_rel) == n) delete this;
  }

  static void on_fired(Timer* t) noexcept {
    auto* d = static_cast<DeadlineTimer*>(t);
    d->node_->mark_deadline_fired();
    d->node_->cancel();
    d->unref();
  }

  CancelNode* node_;
  RuntimeImpl* const rt_;
  std::atomic<int> refs_{2};
};

CancelScope::CancelScope(Kind kind, std::int64_t deadline_ns)
    : fiber_(current_fiber()), kind_(kind) {
  if (fiber_ == nullptr) throw std::logic_error("weft: a cancel scope must be opened on a fiber");
  node_ = SharedCancelNode::create(kind == Kind::shield ? CancelNode::Kind::shield
                                                        : CancelNode::Kind::scope);
  node_->set_opener(fiber_->id);
  prev_ = fiber_->cancel_scope;
  if (kind == Kind::nested) {
    node_->attach(prev_);
  } else {
    node_->set_deadline_ns(-1);  // a shield hides the enclosing deadlines too
  }
  // Unbind the old scope, then bind the new one, which recomputes the
  // fiber's flag under its lock: a canceller of prev_ in between cancels
  // the new node too (it is attached), so the bind sees it.
  prev_->bind_fiber(nullptr);
  node_->bind_fiber(fiber_);
  fiber_->cancel_scope = node_;
  open_ = true;
  if (deadline_ns >= 0) {
    try {
      cancel_at(deadline_ns);
    } catch (...) {
      close();
      throw;
    }
  }
}

void CancelScope::cancel_at(std::int64_t deadline_ns) {
  LockGuard g(timer_lock_);
  if (timer_deadline_ns_ >= 0 && timer_deadline_ns_ <= deadline_ns) return;
  if (node_->deadline_ns() < 0 || deadline_ns < node_->deadline_ns()) {
    node_->set_deadline_ns(deadline_ns);
  }
  // An armed timer moves to the earlier deadline (no allocation); a timer
  // that has fired, or a deadline already passed, takes a fresh arm().
  if (timer_ != nullptr && deadline_ns > monotonic_ns() && timer_->move_earlier(deadline_ns)) {
    timer_deadline_ns_ = deadline_ns;
    return;
  }
  DeadlineTimer* old = timer_;
  timer_ = DeadlineTimer::arm(node_, deadline_ns);
  timer_deadline_ns_ = deadline_ns;
  if (old != nullptr) old->disarm();
}

void CancelScope::close() noexcept {
  if (!open_) return;
  open_ = false;
  {
    LockGuard g(timer_lock_);
    if (timer_ != nullptr) std::exchange(timer_, nullptr)->disarm();
  }
  // Unbinds the fiber; children still running (detached fibers spawned inside) pass to the
  // enclosing scope, shield or not.
  node_->detach(prev_);
  prev_->bind_fiber(fiber_);  // recomputes the fiber's cancellation flag
  fiber_->cancel_scope = prev_;
  const bool outer = fiber_->cancel_requested.load(std::memory_order_relaxed);
  deadline_fired_ = node_->deadline_fired();
  cancelled_here_ = node_->is_cancelled() && !outer;
  outer_cancelled_ = outer;
  std::exchange(node_, nullptr)->release();
}

}  // namespace weft::detail
