// Event, Notify and Once (docs/design/sync.md).
#include "sync/wait_list.hpp"
#include "weft/sync.hpp"

namespace weft {

using detail::LockGuard;
using detail::Waiter;
using detail::WaitNode;
using detail::WaitReason;

void Event::set() noexcept {
  LockGuard g(lock_);
  set_ = true;
  detail::grant_all(waiters_);
}

void Event::reset() noexcept {
  LockGuard g(lock_);
  set_ = false;
}

bool Event::is_set() const noexcept {
  LockGuard g(lock_);
  return set_;
}

bool Event::wait_impl(std::int64_t deadline_ns) {
  lock_.lock();
  if (set_) {
    lock_.unlock();
    return true;
  }
  return detail::wait_for_grant(lock_, waiters_, deadline_ns, this);
}

void Notify::notify_one() noexcept {
  LockGuard g(lock_);
  if (!detail::grant_one(waiters_)) permit_ = true;
}

void Notify::notify_all() noexcept {
  LockGuard g(lock_);
  detail::grant_all(waiters_);
}

bool Notify::wait_impl(std::int64_t deadline_ns) {
  lock_.lock();
  if (permit_) {
    permit_ = false;
    lock_.unlock();
    return true;
  }
  return detail::wait_for_grant(lock_, waiters_, deadline_ns, this);
}

bool Once::begin() {
  lock_.lock();
  for (;;) {
    const std::uint32_t s = state_.load(std::memory_order_relaxed);
    if (s == kDone) {
      lock_.unlock();
      return false;
    }
    if (s == kNew) {
      // relaxed: kRunning is only read under lock_; is_done() looks for kDone.
      state_.store(kRunning, std::memory_order_relaxed);
      lock_.unlock();
      return true;
    }
    Waiter w(WaitReason::event, reinterpret_cast<std::uintptr_t>(this));
    WaitNode n(&w);
    const Waiter::Result r = detail::wait_queued(lock_, waiters_, n, detail::kNoDeadline);
    if (r != Waiter::kNotified) detail::abandoned(r);
    lock_.lock();
  }
}

void Once::finish(bool done) noexcept {
  LockGuard g(lock_);
  // release: is_done()'s acquire sees everything the function did.
  state_.store(done ? kDone : kNew, std::memory_order_release);
  // Done: everyone returns. Failed: everyone retries; one of them runs it.
  detail::grant_all(waiters_);
}

}  // namespace weft
