// Cancel scopes on fibers and their deadline timers (weft/detail/cancel_scope.hpp).
#include "weft/detail/cancel_scope.hpp"

#include <stdexcept>

#include "fiber/fiber.hpp"
#include "sched/runtime_impl.hpp"
#include "sched/timer_wheel.hpp"
#include "sched/waiter.hpp"
#include "sched/worker.hpp"

namespace weft::detail {

// A timer that cancels a node at its deadline. The wheel fires it under
// the wheel's lock, where cancelling (callbacks, wake-ups, a membarrier)
// must not run: the fire callback only hands it to the firing worker, which
// cancels after unlocking (Worker::defer_after_timers). Two references: the
// owner's (dropped by disarm) and the wheel's (dropped when the owner
// removes it unfired, or after the deferred cancel).
class DeadlineTimer : public TimerEntry {
 public:
  /// Arms a timer on the calling worker's wheel. Returns null, having
  /// cancelled the node already, if the deadline has passed; null without
  /// cancelling for a deadline beyond the wheel's reach (~12 days).
  static DeadlineTimer* arm(CancelNode* node, std::int64_t deadline_ns) {
    Worker* w = current_worker();
    if (w == nullptr) {
      throw std::logic_error("weft: a cancel scope deadline needs a fiber of a runtime");
    }
    if (deadline_ns <= monotonic_ns()) {
      // Already passed: cancelled before fn starts, not a millisecond later.
      node->mark_deadline_fired();
      node->cancel();
      return nullptr;
    }
    RuntimeImpl* rt = w->runtime();
    const std::uint64_t tick = rt->deadline_to_tick(deadline_ns);
    if (tick > rt->now_tick() + TimerWheel::kMaxDelayMs) return nullptr;
    auto* t = new DeadlineTimer(node);
    t->when_ms = tick;
    t->fire = &on_fire;
    t->after_unlock = &on_deferred;
    bool inserted;
    {
      LockGuard g(w->timers().lock);
      inserted = w->timers().insert(t);
    }
    if (inserted) {
      t->wheel_ = &w->timers();
      return t;
    }
    delete t;
    node->mark_deadline_fired();
    node->cancel();
    return nullptr;
  }

  /// The owner is done with the timer: removes it if it has not fired.
  void disarm() noexcept {
    bool removed = false;
    {
      LockGuard g(wheel_->lock);
      if (inserted) {
        wheel_->remove(this);
        removed = true;
      }
    }
    // The owner's reference, and the wheel's if we took the timer out
    // unfired: one decrement, so nothing touches a timer already freed.
    unref(removed ? 2 : 1);
  }

 private:
  explicit DeadlineTimer(CancelNode* node) noexcept : node_(node) { node_->add_ref(); }
  ~DeadlineTimer() { node_->release(); }

  void unref(int n = 1) noexcept {
    if (refs_.fetch_sub(n, std::memory_order_acq_rel) == n) delete this;
  }

  static void on_fire(TimerEntry* e) noexcept { current_worker()->defer_after_timers(e); }

  static void on_deferred(TimerEntry* e) noexcept {
    auto* t = static_cast<DeadlineTimer*>(e);
    t->node_->mark_deadline_fired();
    t->node_->cancel();
    t->unref();
  }

  CancelNode* node_;
  TimerWheel* wheel_ = nullptr;
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
