// weft::scope's bookkeeping (weft/scope.hpp): live children and failures.
#include "weft/scope.hpp"

#include <utility>

#include "sched/waiter.hpp"

namespace weft::detail {

bool is_cancelled_error(const std::exception_ptr& e) noexcept {
  if (!e) return false;
  try {
    std::rethrow_exception(e);
  } catch (const Cancelled&) {
    return true;
  } catch (...) {
    return false;
  }
}

void ScopeState::child_starting() noexcept {
  LockGuard g(lock_);
  ++live_;
}

void ScopeState::fail(std::exception_ptr e) noexcept {
  bool first = false;
  {
    LockGuard g(lock_);
    if (!first_) {
      first_ = e;
      first = true;
    }
    try {
      failures_.push_back(std::move(e));
    } catch (...) {
      // Out of memory: the first failure is kept in first_ regardless.
    }
  }
  if (first) cs_.cancel();
}

void ScopeState::task_completed(TaskBase* task) noexcept {
  // Runs on the child before its join can complete, after run() stored its
  // result (TaskBase::complete): error() is stable here. Record the failure
  // (and cancel the siblings) before the count drops: after that the scope
  // may return and this object be gone.
  if (task != nullptr && task->error() && !is_cancelled_error(task->error())) fail(task->error());
  LockGuard g(lock_);
  if (--live_ == 0 && waiter_ != nullptr) {
    // Under the lock: the scope unlinks (reads waiter_) under it too, so it
    // cannot return while we touch its waiter.
    static_cast<Waiter*>(std::exchange(waiter_, nullptr))->wake(Waiter::kNotified);
  }
}

void ScopeState::wait_children() noexcept {
  for (;;) {
    Waiter w(WaitReason::scope, reinterpret_cast<std::uintptr_t>(this));
    {
      LockGuard g(lock_);
      if (live_ == 0) return;
      waiter_ = &w;
    }
    // Not cancellable: a scope never returns while a child runs (the
    // children are cancelled through the tree instead).
    w.wait(-1, false);
    LockGuard g(lock_);
    if (waiter_ == &w) waiter_ = nullptr;
  }
}

}  // namespace weft::detail
