// A test-and-test-and-set spinlock for weft's short critical sections (wait
// queues of channels and sync primitives, timer wheels, the fiber registry).
// Public only because primitives embed one by value; not part of the API.
// Holders never park or switch while holding one. After a short spin it
// yields the thread, because on an oversubscribed VM the holder may be
// descheduled.
#pragma once

#include <atomic>
#include <cstdlib>
#include <thread>

#include "weft/detail/thread_annotations.hpp"

namespace weft::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

class WEFT_CAPABILITY("mutex") SpinLock {
 public:
  void lock() noexcept WEFT_ACQUIRE() {
    // acquire pairs with the release in unlock(): the critical section of
    // the previous holder happens-before ours.
    if (!locked_.exchange(true, std::memory_order_acquire)) return;
    lock_contended();
  }
  bool try_lock() noexcept WEFT_TRY_ACQUIRE(true) {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept WEFT_RELEASE() { locked_.store(false, std::memory_order_release); }
  /// Tells the lock analysis that the caller holds this lock, where it
  /// cannot see that itself (a callback run under a lock taken elsewhere).
  /// Checks in debug builds that the lock is held by someone.
  void assert_held() const noexcept WEFT_ASSERT_CAPABILITY(this) {
#ifndef NDEBUG
    if (!locked_.load(std::memory_order_relaxed)) std::abort();
#endif
  }

 private:
  /// Test-and-test-and-set with exponential backoff (1, 2, 4 .. 64 pauses
  /// between looks at the word), then thread yields. Backoff keeps two cores
  /// from trading the line on every attempt, so a holder that releases and
  /// re-takes the lock (a channel under load) does so without a transfer.
  [[gnu::noinline]] void lock_contended() noexcept {
    int backoff = 1;
    for (int rounds = 0;; ++rounds) {
      while (locked_.load(std::memory_order_relaxed)) {
        if (rounds < 16) {
          for (int i = 0; i < backoff; ++i) cpu_relax();
          if (backoff < 64) backoff <<= 1;
          ++rounds;
        } else {
          std::this_thread::yield();
        }
      }
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
    }
  }

  std::atomic<bool> locked_{false};
};

/// std::lock_guard without including <mutex> everywhere.
template <class L>
class WEFT_SCOPED_CAPABILITY LockGuard {
 public:
  explicit LockGuard(L& l) noexcept WEFT_ACQUIRE(l) : l_(l) { l_.lock(); }
  ~LockGuard() WEFT_RELEASE() { l_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  L& l_;
};

}  // namespace weft::detail
