// weft::Once, weft::call_once and weft::OnceCell: run-once initialisation
// for fibers and threads (part of weft/sync.hpp; docs/design/sync.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <new>
#include <utility>

#include "weft/detail/spinlock.hpp"
#include "weft/detail/wait_list.hpp"

namespace weft {

/// Runs a function once (std::once_flag's contract, fiber-aware: callers
/// that arrive while it runs park). If the function throws, the Once stays
/// unset, the exception propagates to that caller, and one waiting caller
/// runs it next.
class Once {
 public:
  Once() noexcept = default;
  Once(const Once&) = delete;
  Once& operator=(const Once&) = delete;

  /// True once a call completed without throwing.
  bool is_done() const noexcept { return state_.load(std::memory_order_acquire) == kDone; }

 private:
  template <class F, class... Args>
  friend void call_once(Once& once, F&& fn, Args&&... args);
  static constexpr std::uint32_t kNew = 0, kRunning = 1, kDone = 2;
  /// True if the caller must run the function; false if it is done. Parks
  /// while another caller runs it. @throws weft::Cancelled.
  bool begin();
  /// Ends the run: done (wakes every waiter) or failed (wakes one to retry).
  void finish(bool done) noexcept;

  std::atomic<std::uint32_t> state_{kNew};
  detail::SpinLock lock_;
  detail::WaitList waiters_ WEFT_GUARDED_BY(lock_);
};

/// Calls fn(args...) exactly once per Once across all fibers and threads;
/// every caller returns after it completed. @throws what fn throws (to the
/// caller that ran it); weft::Cancelled if cancelled while waiting.
template <class F, class... Args>
void call_once(Once& once, F&& fn, Args&&... args) {
  if (once.is_done() || !once.begin()) return;
  try {
    std::forward<F>(fn)(std::forward<Args>(args)...);
  } catch (...) {
    once.finish(false);
    throw;
  }
  once.finish(true);
}

/// A value set at most once, then read without locking (Rust's OnceLock).
template <class T>
class OnceCell {
 public:
  OnceCell() = default;
  OnceCell(const OnceCell&) = delete;
  OnceCell& operator=(const OnceCell&) = delete;
  ~OnceCell() {
    if (once_.is_done()) value()->~T();
  }

  /// The value, or nullptr if not set yet. Never blocks.
  T* get() noexcept { return once_.is_done() ? value() : nullptr; }
  /// The value if it has been set (or made), else nullptr. Never blocks.
  const T* get() const noexcept { return once_.is_done() ? value() : nullptr; }
  /// The value, initialising it with init() if unset; concurrent callers
  /// park until the one running init() finishes. If init() throws, the cell
  /// stays unset and the exception propagates.
  template <class F>
  T& get_or_init(F&& init) {
    call_once(once_, [&] { ::new (static_cast<void*>(storage_)) T(std::forward<F>(init)()); });
    return *value();
  }
  /// Sets the value if unset; returns false (v unused) if it was set.
  bool set(T v) {
    bool stored = false;
    call_once(once_, [&] {
      ::new (static_cast<void*>(storage_)) T(std::move(v));
      stored = true;
    });
    return stored;
  }

 private:
  T* value() noexcept { return std::launder(reinterpret_cast<T*>(storage_)); }
  const T* value() const noexcept { return std::launder(reinterpret_cast<const T*>(storage_)); }
  Once once_;
  alignas(T) unsigned char storage_[sizeof(T)];
};

}  // namespace weft
