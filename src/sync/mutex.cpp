// Mutex (Go's sync.Mutex policy on a parking_lot-style queue lock) and
// CondVar. docs/design/sync.md has the state machine.
#include "sched/waiter.hpp"
#include "sync/wait_list.hpp"
#include "weft/sync.hpp"

namespace weft {

using detail::LockGuard;
using detail::Waiter;
using detail::WaitNode;
using detail::WaitReason;

namespace {
/// A waiter queued this long is handed the lock directly on the next
/// unlock (Go's starvationThresholdNs).
constexpr std::int64_t kStarvationNs = 1'000'000;
/// Spins before queueing while the holder may be running on another worker
/// and nobody is queued (a cross-core futex wake costs ~25 us here).
constexpr int kSpins = 40;
}  // namespace

bool Mutex::try_lock() noexcept {
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  while ((s & kLocked) == 0) {
    // acquire pairs with the releasing CAS of unlock()/unlock_slow().
    if (state_.compare_exchange_weak(s, s | kLocked, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      note_owner();
      return true;
    }
  }
  return false;
}

bool Mutex::lock_slow(std::int64_t deadline_ns) {
  // Taken once: a waiter woken and overtaken queues again (below) with the
  // same deadline, not a fresh default timeout.
  const detail::EffectiveDeadline d =
      detail::effective_deadline(deadline_ns, detail::TimeoutKind::operation);
  if (lock_slow(d.ns, true)) return true;
  if (d.from_default) throw TimedOut();
  return false;
}

bool Mutex::lock_slow(std::int64_t deadline_ns, bool cancellable) {
  bool woken = false;      // we were woken by unlock_slow and own kWoken
  std::int64_t since = 0;  // when we first queued
  int spins = 0;
  for (;;) {
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    if ((s & kLocked) == 0) {
      const std::uint32_t next = (s | kLocked) & ~(woken ? kWoken : 0u);
      // acquire: the previous holder's critical section happens-before ours.
      if (state_.compare_exchange_weak(s, next, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        note_owner();
        return true;
      }
      continue;
    }
    if (spins < kSpins && (s & kParked) == 0) {
      ++spins;
      detail::cpu_relax();
      continue;
    }

    queue_lock_.lock();
    // Announce the queue (kParked) while the lock is still held, so the
    // holder's unlock takes the slow path and finds our node; give up our
    // kWoken in the same step, letting the next unlock wake someone.
    s = state_.load(std::memory_order_relaxed);
    bool announced = false;
    while ((s & kLocked) != 0) {
      // relaxed: kParked publishes nothing; the queue it announces is read
      // under queue_lock_, which orders it.
      const std::uint32_t next = (s | kParked) & ~(woken ? kWoken : 0u);
      if (state_.compare_exchange_weak(s, next, std::memory_order_relaxed,
                                       std::memory_order_relaxed)) {
        announced = true;
        break;
      }
    }
    if (!announced) {  // released meanwhile: retry the acquire
      queue_lock_.unlock();
      continue;
    }
    woken = false;
    Waiter w(WaitReason::mutex, reinterpret_cast<std::uintptr_t>(this));
    WaitNode n(&w);
    const bool requeue = since != 0;  // woken and overtaken: back to the front, Go-style
    if (!requeue) since = detail::monotonic_ns();
    n.since_ns = since;
    const Waiter::Result r = detail::wait_queued(
        queue_lock_, waiters_, n, deadline_ns,
        [&] {
          queue_lock_.assert_held();  // on_abandon runs under the lock (wait_queued)
          // relaxed: under queue_lock_, like every other change of kParked.
          if (detail::empty(waiters_)) state_.fetch_and(~kParked, std::memory_order_relaxed);
        },
        requeue, cancellable);
    if (r == Waiter::kNotified) {
      if (n.granted) {  // handed over by a starvation unlock
        note_owner();
        return true;
      }
      woken = true;
      spins = 0;
      continue;
    }
    return detail::abandoned(r);
  }
}

void Mutex::unlock_slow() noexcept {
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  // Nobody queued, or a woken waiter is already on its way: just release.
  while ((s & kParked) == 0 || (s & kWoken) != 0) {
    // release pairs with the next locker's acquire CAS.
    if (state_.compare_exchange_weak(s, s & ~kLocked, std::memory_order_release,
                                     std::memory_order_relaxed)) {
      return;
    }
  }
  queue_lock_.lock();
  WaitNode* n = detail::claim_front(waiters_);
  const std::uint32_t parked = detail::empty(waiters_) ? 0 : kParked;
  if (n == nullptr) {  // every queued waiter timed out or was cancelled
    state_.fetch_and(~(kLocked | kParked), std::memory_order_release);  // as above
    queue_lock_.unlock();
    return;
  }
  const bool handoff = detail::monotonic_ns() - n->since_ns >= kStarvationNs;
  s = state_.load(std::memory_order_relaxed);
  for (;;) {
    // Hand-off keeps kLocked: the waiter owns the lock when it resumes (the
    // release in complete() publishes our critical section to it).
    const std::uint32_t next = handoff ? ((s & ~kParked) | kLocked | parked)
                                       : ((s & ~(kLocked | kParked)) | kWoken | parked);
    if (state_.compare_exchange_weak(s, next, std::memory_order_release,
                                     std::memory_order_relaxed)) {
      break;
    }
  }
  n->granted = handoff;
  queue_lock_.unlock();
  n->waiter->complete(Waiter::kNotified);
}

bool CondVar::wait_impl(std::unique_lock<Mutex>& lock, std::int64_t deadline_ns) {
  Mutex* m = lock.mutex();
  if (m == nullptr || !lock.owns_lock()) {
    throw std::logic_error("weft::CondVar::wait: the unique_lock must own its mutex");
  }
  Waiter w(WaitReason::condvar, reinterpret_cast<std::uintptr_t>(this));
  WaitNode n(&w);
  lock_.lock();
  detail::push_back(waiters_, &n);
  lock_.unlock();
  m->unlock();
  const detail::EffectiveDeadline d =
      detail::effective_deadline(deadline_ns, detail::TimeoutKind::operation);
  const Waiter::Result r = w.wait(d.ns);
  if (r != Waiter::kNotified) {
    LockGuard g(lock_);
    detail::remove(waiters_, &n);
  }
  // Relock whatever happened; not a cancellation point, so that Cancelled
  // propagates with the mutex held, as the caller's unique_lock expects.
  if (!m->try_lock()) m->lock_slow(detail::kNoDeadline, false);
  if (r == Waiter::kNotified) return true;
  if (r == Waiter::kTimedOut && d.from_default) throw TimedOut();
  return detail::abandoned(r);
}

void CondVar::notify_one() noexcept {
  LockGuard g(lock_);
  detail::grant_one(waiters_);
}

void CondVar::notify_all() noexcept {
  LockGuard g(lock_);
  detail::grant_all(waiters_);
}

}  // namespace weft
