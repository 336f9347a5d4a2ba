// Barrier and WaitGroup (Latch is a WaitGroup). docs/design/sync.md.
#include <stdexcept>

#include "sync/wait_list.hpp"
#include "weft/sync.hpp"

namespace weft {

using detail::LockGuard;
using detail::Waiter;
using detail::WaitNode;
using detail::WaitReason;

Barrier::Barrier(std::size_t count) : count_(count) {
  if (count == 0) throw std::invalid_argument("weft::Barrier: count must be > 0");
}

Barrier::Result Barrier::arrive_impl(std::int64_t deadline_ns) {
  lock_.lock();
  if (++arrived_ == count_) {
    arrived_ = 0;
    ++generation_;
    detail::grant_all(waiters_);
    lock_.unlock();
    return Result::leader;
  }
  const std::uint64_t gen = generation_;
  Waiter w(WaitReason::barrier, reinterpret_cast<std::uintptr_t>(this));
  WaitNode n(&w);
  bool withdrawn = false;
  const Waiter::Result r = detail::wait_queued_op(lock_, waiters_, n, deadline_ns, [&] {
    // Still in our generation: withdraw the arrival. Otherwise the
    // generation completed counting us, so we did pass the barrier.
    lock_.assert_held();  // on_abandon runs under the lock (wait_queued)
    if (generation_ == gen) {
      --arrived_;
      withdrawn = true;
    }
  });
  if (r == Waiter::kNotified || !withdrawn) return Result::follower;
  detail::abandoned(r);
  return Result::timed_out;
}

std::uint64_t Barrier::generation() const noexcept {
  LockGuard g(lock_);
  return generation_;
}

WaitGroup::WaitGroup(std::int64_t initial) : count_(initial) {
  if (initial < 0) throw std::invalid_argument("weft::WaitGroup: initial count must be >= 0");
}

void WaitGroup::add(std::int64_t delta) {
  LockGuard g(lock_);
  if (delta < 0 ? count_ < -delta : count_ > INT64_MAX - delta) {
    throw std::logic_error("weft::WaitGroup: counter would go negative (or overflow)");
  }
  count_ += delta;
  if (count_ == 0) detail::grant_all(waiters_);
}

bool WaitGroup::wait_impl(std::int64_t deadline_ns) {
  lock_.lock();
  if (count_ == 0) {
    lock_.unlock();
    return true;
  }
  return detail::wait_for_grant(lock_, waiters_, deadline_ns, this);
}

std::int64_t WaitGroup::count() const noexcept {
  LockGuard g(lock_);
  return count_;
}

}  // namespace weft
