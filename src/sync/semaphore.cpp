// Semaphore: counting, weighted, FIFO admission (docs/design/sync.md).
#include <limits>
#include <stdexcept>

#include "sync/wait_list.hpp"
#include "weft/sync.hpp"

namespace weft {

using detail::LockGuard;
using detail::Waiter;
using detail::WaitNode;
using detail::WaitReason;

namespace {
void check_count(std::int64_t n, const char* what) {
  if (n < 0)
    throw std::invalid_argument(std::string("weft::Semaphore::") + what + ": n must be >= 0");
}

/// Grants queued requests in order while permits last; the first one that
/// does not fit blocks the rest (no overtaking). Under the lock.
void admit(std::int64_t& permits, detail::WaitList& waiters) noexcept {
  while (WaitNode* f = detail::first_live(waiters)) {
    if (permits < f->count) return;
    detail::remove(waiters, f);
    if (!f->waiter->claim()) continue;
    permits -= f->count;
    f->granted = true;
    f->waiter->complete(Waiter::kNotified);
  }
}
}  // namespace

Semaphore::Semaphore(std::int64_t initial) : permits_(initial) {
  if (initial < 0) throw std::invalid_argument("weft::Semaphore: initial count must be >= 0");
}

bool Semaphore::try_acquire(std::int64_t n) {
  check_count(n, "try_acquire");
  LockGuard g(lock_);
  if (permits_ < n || detail::first_live(waiters_) != nullptr) return false;
  permits_ -= n;
  return true;
}

bool Semaphore::acquire_impl(std::int64_t n, std::int64_t deadline_ns) {
  check_count(n, "acquire");
  lock_.lock();
  if (permits_ >= n && detail::first_live(waiters_) == nullptr) {
    permits_ -= n;
    lock_.unlock();
    return true;
  }
  Waiter w(WaitReason::semaphore, reinterpret_cast<std::uintptr_t>(this));
  WaitNode node(&w);
  node.count = n;
  // A large request leaving the front may let smaller ones behind it in.
  const Waiter::Result r = detail::wait_queued_op(lock_, waiters_, node, deadline_ns, [&] {
    lock_.assert_held();  // on_abandon runs under the lock (wait_queued)
    admit(permits_, waiters_);
  });
  return r == Waiter::kNotified || detail::abandoned(r);
}

void Semaphore::release(std::int64_t n) {
  check_count(n, "release");
  LockGuard g(lock_);
  if (permits_ > std::numeric_limits<std::int64_t>::max() - n) {
    throw std::overflow_error("weft::Semaphore::release: permit count overflows int64");
  }
  permits_ += n;
  admit(permits_, waiters_);
}

std::int64_t Semaphore::available() const noexcept {
  LockGuard g(lock_);
  return permits_;
}

}  // namespace weft
