// SharedMutex: phase-fair FIFO reader-writer lock (docs/design/sync.md).
#include "sync/wait_list.hpp"
#include "weft/sync.hpp"

namespace weft {

using detail::LockGuard;
using detail::Waiter;
using detail::WaitNode;
using detail::WaitReason;

namespace {
constexpr std::int64_t kWriter = 1;
constexpr std::int64_t kReader = 0;
}  // namespace

void SharedMutex::admit_locked() noexcept {
  while (WaitNode* f = detail::first_live(waiters_)) {
    if (f->count == kWriter) {
      if (writer_ || readers_ > 0) return;
    } else if (writer_) {
      return;
    }
    detail::remove(waiters_, f);
    if (!f->waiter->claim()) continue;  // timed out or cancelled just now
    const bool writer = f->count == kWriter;
    if (writer) {
      writer_ = true;
      // The node lives on the admitted writer's stack (relaxed: see writer_sp_).
      writer_sp_.store(reinterpret_cast<std::uintptr_t>(f), std::memory_order_relaxed);
    } else {
      ++readers_;
    }
    f->granted = true;
    f->waiter->complete(Waiter::kNotified);  // f may be gone from here on
    if (writer) return;                      // readers keep coming until the next writer
  }
}

bool SharedMutex::lock_impl(bool exclusive, std::int64_t deadline_ns) {
  lock_.lock();
  // Enter at once only if nobody (live) queues ahead: FIFO both ways.
  const bool free = exclusive ? (!writer_ && readers_ == 0) : !writer_;
  if (free && detail::first_live(waiters_) == nullptr) {
    if (exclusive) {
      writer_ = true;
      writer_sp_.store(detail::stack_hint(), std::memory_order_relaxed);  // see writer_sp_
    } else {
      ++readers_;
    }
    lock_.unlock();
    return true;
  }
  Waiter w(WaitReason::rwlock, reinterpret_cast<std::uintptr_t>(this));
  WaitNode n(&w);
  n.count = exclusive ? kWriter : kReader;
  // Leaving may unblock the readers queued behind a departing writer.
  const Waiter::Result r = detail::wait_queued_op(lock_, waiters_, n, deadline_ns, [&] {
    lock_.assert_held();  // on_abandon runs under the lock (wait_queued)
    admit_locked();
  });
  return r == Waiter::kNotified || detail::abandoned(r);
}

bool SharedMutex::try_lock() noexcept {
  LockGuard g(lock_);
  if (writer_ || readers_ > 0 || detail::first_live(waiters_) != nullptr) return false;
  writer_ = true;
  writer_sp_.store(detail::stack_hint(), std::memory_order_relaxed);  // see writer_sp_
  return true;
}

bool SharedMutex::try_lock_shared() noexcept {
  LockGuard g(lock_);
  if (writer_ || detail::first_live(waiters_) != nullptr) return false;
  ++readers_;
  return true;
}

void SharedMutex::unlock() noexcept {
  LockGuard g(lock_);
  writer_ = false;
  writer_sp_.store(0, std::memory_order_relaxed);  // see writer_sp_
  admit_locked();
}

void SharedMutex::unlock_shared() noexcept {
  LockGuard g(lock_);
  if (--readers_ == 0) admit_locked();
}

}  // namespace weft
