// Fiber-aware synchronization: Mutex, SharedMutex, Semaphore, CondVar,
// Barrier, Latch, WaitGroup, Event, Notify, Once/call_once, OnceCell,
// Synchronized.
//
// Every blocking call parks the calling fiber (its worker runs other fibers)
// or, from a plain thread, blocks the thread, so fibers and threads can share
// one primitive. Every blocking call has a timed form, and every blocking
// call is a cancellation point: it throws weft::Cancelled when the waiting
// fiber is cancelled, leaving the primitive as if the call had not been made.
// All of them park through the one Waiter mechanism (docs/design/parking.md);
// docs/design/sync.md describes each protocol.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "weft/detail/deadline.hpp"
#include "weft/detail/spinlock.hpp"
#include "weft/detail/wait_list.hpp"

namespace weft {

namespace detail {
/// wait(), wait_until() and wait_for() over Derived::wait_impl(deadline_ns),
/// for primitives whose only wait is "until signalled" (CRTP).
template <class Derived>
class TimedWait {
 public:
  /// Waits until signalled. @throws weft::Cancelled if the fiber is
  /// cancelled while waiting.
  void wait() { self().wait_impl(kNoDeadline); }
  /// wait() that gives up at `deadline`; true if signalled.
  template <class C, class D>
  bool wait_until(std::chrono::time_point<C, D> deadline) {
    return self().wait_impl(to_deadline_ns(deadline));
  }
  /// The same with a weft::Deadline (none: no time limit).
  bool wait_until(Deadline deadline) { return self().wait_impl(to_deadline_ns(deadline)); }
  /// wait_until(now + timeout).
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> timeout) {
    return self().wait_impl(timeout_to_deadline_ns(timeout));
  }

 private:
  Derived& self() noexcept { return static_cast<Derived&>(*this); }
};
}  // namespace detail

/// Mutual exclusion for fibers and threads; meets std's Lockable and
/// TimedLockable, so std::lock_guard / std::unique_lock / std::scoped_lock
/// work.
///
/// Policy (Go's sync.Mutex, with parking_lot's queue lock): normally an
/// unlock releases the lock and wakes one waiter, which competes with
/// arriving lockers (barging keeps the lock hot on a busy worker and avoids a
/// switch per hand-over). Only one woken waiter is outstanding at a time. A
/// waiter that has waited 1 ms or more is handed the lock directly (FIFO
/// hand-off, Go's starvation mode), so no waiter starves. Waiters queue FIFO.
/// Not recursive: locking a mutex the caller holds deadlocks. unlock() by a
/// fiber or thread other than the owner is allowed (like Go), not checked.
class Mutex {
 public:
  Mutex() noexcept = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  /// Acquires the lock, parking while it is held.
  /// @throws weft::Cancelled if the fiber is cancelled while waiting.
  void lock() {
    // Barging: take a free lock even when others are queued (one atomic).
    // acquire pairs with the release in unlock()/unlock_slow(): the previous
    // holder's critical section happens-before ours.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    if ((s & kLocked) != 0 ||
        !state_.compare_exchange_weak(s, s | kLocked, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
      lock_slow(detail::kNoDeadline);
    }
  }
  /// Acquires the lock if it is free now. Never blocks or throws.
  bool try_lock() noexcept;
  /// lock() that gives up at `deadline`; true if acquired.
  /// @throws weft::Cancelled if the fiber is cancelled while waiting.
  template <class C, class D>
  bool try_lock_until(std::chrono::time_point<C, D> deadline) {
    return try_lock() || lock_slow(detail::to_deadline_ns(deadline));
  }
  /// The same with a weft::Deadline (none: no time limit).
  bool try_lock_until(Deadline deadline) {
    return try_lock() || lock_slow(detail::to_deadline_ns(deadline));
  }
  /// try_lock_until(now + timeout).
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    return try_lock() || lock_slow(detail::timeout_to_deadline_ns(timeout));
  }
  /// Releases the lock, handing it to or waking a waiter if there is one.
  /// Precondition: the lock is held. Never throws.
  void unlock() noexcept {
    // Nobody queued, or a woken waiter already on its way: just release.
    // release pairs with the acquire CAS of the next locker.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    if (((s & kParked) == 0 || (s & kWoken) != 0) &&
        state_.compare_exchange_weak(s, s & ~kLocked, std::memory_order_release,
                                     std::memory_order_relaxed)) {
      return;
    }
    unlock_slow();
  }

 private:
  friend class CondVar;
  static constexpr std::uint32_t kLocked = 1;  // held
  static constexpr std::uint32_t kParked = 2;  // the wait queue is not empty
  static constexpr std::uint32_t kWoken = 4;   // a woken waiter is on its way to retry
  bool lock_slow(std::int64_t deadline_ns);
  bool lock_slow(std::int64_t deadline_ns, bool cancellable);
  void unlock_slow() noexcept;

  std::atomic<std::uint32_t> state_{0};
  detail::SpinLock queue_lock_;
  detail::WaitList waiters_;
};

/// Reader-writer lock (RwLock) for fibers and threads; meets std's
/// SharedTimedLockable, so std::shared_lock works too.
///
/// Policy: phase-fair FIFO. A reader enters at once only if no writer holds
/// or waits; otherwise everyone queues in arrival order. A releasing writer
/// admits the next writer, or every reader queued before the next writer; the
/// last reader out admits the next writer. So neither writers nor readers
/// starve. Not recursive; upgrading a shared lock deadlocks.
class SharedMutex {
 public:
  SharedMutex() noexcept = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  /// Exclusive lock. @throws weft::Cancelled if cancelled while waiting.
  void lock() { lock_impl(true, detail::kNoDeadline); }
  /// Takes the exclusive lock if it is free and nobody queues. Never blocks.
  bool try_lock() noexcept;
  /// lock() that gives up at `deadline`; true if acquired.
  /// @throws weft::Cancelled if cancelled while waiting.
  template <class C, class D>
  bool try_lock_until(std::chrono::time_point<C, D> deadline) {
    return lock_impl(true, detail::to_deadline_ns(deadline));
  }
  /// The same with a weft::Deadline (none: no time limit).
  bool try_lock_until(Deadline deadline) {
    return lock_impl(true, detail::to_deadline_ns(deadline));
  }
  /// try_lock_until(now + timeout).
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    return lock_impl(true, detail::timeout_to_deadline_ns(timeout));
  }
  /// Releases the exclusive lock and admits the next waiters. Never throws.
  void unlock() noexcept;

  /// Shared lock. @throws weft::Cancelled if cancelled while waiting.
  void lock_shared() { lock_impl(false, detail::kNoDeadline); }
  /// Takes a shared lock if no writer holds it and nobody queues. Never
  /// blocks.
  bool try_lock_shared() noexcept;
  /// lock_shared() that gives up at `deadline`; true if acquired.
  /// @throws weft::Cancelled if cancelled while waiting.
  template <class C, class D>
  bool try_lock_shared_until(std::chrono::time_point<C, D> deadline) {
    return lock_impl(false, detail::to_deadline_ns(deadline));
  }
  /// The same with a weft::Deadline (none: no time limit).
  bool try_lock_shared_until(Deadline deadline) {
    return lock_impl(false, detail::to_deadline_ns(deadline));
  }
  /// try_lock_shared_until(now + timeout).
  template <class Rep, class Period>
  bool try_lock_shared_for(std::chrono::duration<Rep, Period> timeout) {
    return lock_impl(false, detail::timeout_to_deadline_ns(timeout));
  }
  /// Releases a shared lock; the last reader out admits the next writer.
  void unlock_shared() noexcept;

 private:
  bool lock_impl(bool exclusive, std::int64_t deadline_ns);
  void admit_locked() noexcept;

  detail::SpinLock lock_;
  std::size_t readers_ = 0;  // readers holding it
  bool writer_ = false;      // a writer holds it
  detail::WaitList waiters_;
};

/// Counting semaphore with FIFO admission: a waiter is never overtaken, so a
/// large acquire is not starved by small ones (like Go's
/// x/sync/semaphore.Weighted). Permits are counts.
class Semaphore {
 public:
  /// @throws std::invalid_argument if initial < 0.
  explicit Semaphore(std::int64_t initial);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  /// Takes n permits, waiting for them.
  /// @throws weft::Cancelled if cancelled while waiting (nothing taken);
  /// std::invalid_argument if n < 0.
  void acquire(std::int64_t n = 1) { acquire_impl(n, detail::kNoDeadline); }
  /// Takes n permits if available now and nobody waits. Never blocks.
  /// @throws std::invalid_argument if n < 0.
  bool try_acquire(std::int64_t n = 1);
  /// acquire() that gives up at `deadline`; true if taken.
  template <class C, class D>
  bool acquire_until(std::chrono::time_point<C, D> deadline, std::int64_t n = 1) {
    return acquire_impl(n, detail::to_deadline_ns(deadline));
  }
  /// The same with a weft::Deadline (none: no time limit).
  bool acquire_until(Deadline deadline, std::int64_t n = 1) {
    return acquire_impl(n, detail::to_deadline_ns(deadline));
  }
  /// acquire_until(now + timeout).
  template <class Rep, class Period>
  bool acquire_for(std::chrono::duration<Rep, Period> timeout, std::int64_t n = 1) {
    return acquire_impl(n, detail::timeout_to_deadline_ns(timeout));
  }
  /// Returns n permits, admitting waiters in FIFO order.
  /// @throws std::invalid_argument if n < 0; std::overflow_error if the
  /// count would overflow.
  void release(std::int64_t n = 1);
  /// Permits available now (a snapshot).
  std::int64_t available() const noexcept;

 private:
  bool acquire_impl(std::int64_t n, std::int64_t deadline_ns);

  mutable detail::SpinLock lock_;
  std::int64_t permits_;
  detail::WaitList waiters_;
};

/// Condition variable over weft::Mutex (std::condition_variable's contract,
/// fiber-aware). Waiters are woken FIFO; there are no spurious wake-ups, but
/// a woken waiter relocks the mutex after other lockers may have run, so use
/// the predicate forms.
class CondVar {
 public:
  CondVar() noexcept = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  /// Atomically releases `lock` and waits for a notify, then relocks.
  /// @throws weft::Cancelled if cancelled while waiting (the mutex is
  /// relocked before it propagates).
  void wait(std::unique_lock<Mutex>& lock) { wait_impl(lock, detail::kNoDeadline); }
  /// Waits until pred() is true (checked with the lock held).
  template <class Pred>
  void wait(std::unique_lock<Mutex>& lock, Pred pred) {
    while (!pred()) wait(lock);
  }
  /// wait() up to `deadline`; timeout if it passed without a notify.
  template <class C, class D>
  std::cv_status wait_until(std::unique_lock<Mutex>& lock, std::chrono::time_point<C, D> deadline) {
    return wait_impl(lock, detail::to_deadline_ns(deadline)) ? std::cv_status::no_timeout
                                                             : std::cv_status::timeout;
  }
  /// The same with a weft::Deadline (none: no time limit).
  std::cv_status wait_until(std::unique_lock<Mutex>& lock, Deadline deadline) {
    return wait_impl(lock, detail::to_deadline_ns(deadline)) ? std::cv_status::no_timeout
                                                             : std::cv_status::timeout;
  }
  /// Waits until pred() or `deadline`; returns pred() at the end.
  template <class C, class D, class Pred>
  bool wait_until(std::unique_lock<Mutex>& lock, std::chrono::time_point<C, D> deadline,
                  Pred pred) {
    const std::int64_t d = detail::to_deadline_ns(deadline);
    while (!pred()) {
      if (!wait_impl(lock, d)) return pred();
    }
    return true;
  }
  /// The same with a weft::Deadline (none: no time limit).
  template <class Pred>
  bool wait_until(std::unique_lock<Mutex>& lock, Deadline deadline, Pred pred) {
    const std::int64_t d = detail::to_deadline_ns(deadline);
    while (!pred()) {
      if (!wait_impl(lock, d)) return pred();
    }
    return true;
  }
  template <class Rep, class Period>
  std::cv_status wait_for(std::unique_lock<Mutex>& lock,
                          std::chrono::duration<Rep, Period> timeout) {
    return wait_impl(lock, detail::timeout_to_deadline_ns(timeout)) ? std::cv_status::no_timeout
                                                                    : std::cv_status::timeout;
  }
  template <class Rep, class Period, class Pred>
  bool wait_for(std::unique_lock<Mutex>& lock, std::chrono::duration<Rep, Period> timeout,
                Pred pred) {
    const std::int64_t d = detail::timeout_to_deadline_ns(timeout);
    while (!pred()) {
      if (!wait_impl(lock, d)) return pred();
    }
    return true;
  }
  /// Wakes the longest-waiting waiter, if any. Never throws.
  void notify_one() noexcept;
  /// Wakes every current waiter. Never throws.
  void notify_all() noexcept;

 private:
  bool wait_impl(std::unique_lock<Mutex>& lock, std::int64_t deadline_ns);

  detail::SpinLock lock_;
  detail::WaitList waiters_;
};

/// Reusable barrier for a fixed number of participants. Each generation
/// completes when the count-th participant arrives; exactly one of them (the
/// last to arrive) is the leader.
class Barrier {
 public:
  /// @throws std::invalid_argument if count == 0.
  explicit Barrier(std::size_t count);
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;

  /// How a timed arrival ended.
  enum class Result : std::uint8_t {
    leader,     ///< completed the generation (the last to arrive)
    follower,   ///< the generation completed
    timed_out,  ///< the deadline passed first; the arrival was withdrawn
  };

  /// Arrives and waits for the generation to complete; true for the leader.
  /// @throws weft::Cancelled if cancelled while waiting (the arrival is
  /// withdrawn, so the others keep waiting for a replacement).
  bool arrive_and_wait() { return arrive_impl(detail::kNoDeadline) == Result::leader; }
  template <class C, class D>
  Result arrive_and_wait_until(std::chrono::time_point<C, D> deadline) {
    return arrive_impl(detail::to_deadline_ns(deadline));
  }
  /// The same with a weft::Deadline (none: no time limit).
  Result arrive_and_wait_until(Deadline deadline) {
    return arrive_impl(detail::to_deadline_ns(deadline));
  }
  template <class Rep, class Period>
  Result arrive_and_wait_for(std::chrono::duration<Rep, Period> timeout) {
    return arrive_impl(detail::timeout_to_deadline_ns(timeout));
  }
  /// Completed generations so far (a snapshot).
  std::uint64_t generation() const noexcept;

 private:
  Result arrive_impl(std::int64_t deadline_ns);

  mutable detail::SpinLock lock_;
  const std::size_t count_;
  std::size_t arrived_ = 0;
  std::uint64_t generation_ = 0;
  detail::WaitList waiters_;
};

/// Go's sync.WaitGroup: a counter; wait() returns when it is zero.
class WaitGroup : public detail::TimedWait<WaitGroup> {
 public:
  explicit WaitGroup(std::int64_t initial = 0);
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  /// Adds delta (may be negative); reaching zero wakes every waiter.
  /// @throws std::logic_error if the counter would go negative (unchanged).
  void add(std::int64_t delta);
  /// add(-1).
  void done() { add(-1); }
  /// The counter now (a snapshot).
  std::int64_t count() const noexcept;

 private:
  friend class detail::TimedWait<WaitGroup>;
  friend class Latch;
  /// Waits until the counter is zero.
  bool wait_impl(std::int64_t deadline_ns);

  mutable detail::SpinLock lock_;
  std::int64_t count_;
  detail::WaitList waiters_;
};

/// Single-use countdown (std::latch's contract, fiber-aware, with timed
/// waits). Built on WaitGroup.
class Latch : public detail::TimedWait<Latch> {
 public:
  /// @throws std::invalid_argument if count < 0.
  explicit Latch(std::int64_t count) : wg_(check(count)) {}
  /// Decrements by n; reaching zero releases every waiter.
  /// @throws std::invalid_argument if n < 0; std::logic_error if the count
  /// would go below zero (unchanged).
  void count_down(std::int64_t n = 1) {
    if (n < 0) throw std::invalid_argument("weft::Latch::count_down: n must be >= 0");
    wg_.add(-n);
  }
  /// True once the count is zero. Never blocks.
  bool try_wait() const noexcept { return wg_.count() == 0; }
  /// count_down(n) then wait().
  void arrive_and_wait(std::int64_t n = 1) {
    count_down(n);
    wait();
  }

 private:
  friend class detail::TimedWait<Latch>;
  /// Waits until the count is zero.
  bool wait_impl(std::int64_t deadline_ns) { return wg_.wait_impl(deadline_ns); }
  static std::int64_t check(std::int64_t count) {
    if (count < 0) throw std::invalid_argument("weft::Latch: count must be >= 0");
    return count;
  }
  WaitGroup wg_;
};

/// Manual-reset event: set() releases every waiter and keeps later wait()s
/// from blocking until reset().
class Event : public detail::TimedWait<Event> {
 public:
  explicit Event(bool initially_set = false) noexcept : set_(initially_set) {}
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  /// Sets the event and releases every waiter. Never throws.
  void set() noexcept;
  /// Clears the event: later wait()s block until the next set().
  void reset() noexcept;
  /// Whether the event is set now (a snapshot).
  bool is_set() const noexcept;

 private:
  friend class detail::TimedWait<Event>;
  /// Waits until set.
  bool wait_impl(std::int64_t deadline_ns);

  mutable detail::SpinLock lock_;
  bool set_;
  detail::WaitList waiters_;
};

/// Tokio's Notify: a wake-up signal without data. notify_one() wakes one
/// waiter, or, if none waits, stores a single permit that the next wait()
/// consumes at once (so a notify racing ahead of the wait is not lost).
/// notify_all() wakes every current waiter and stores nothing.
class Notify : public detail::TimedWait<Notify> {
 public:
  Notify() noexcept = default;
  Notify(const Notify&) = delete;
  Notify& operator=(const Notify&) = delete;

  /// Wakes the longest-waiting waiter, or stores one permit if none waits
  /// (permits do not accumulate). Never throws.
  void notify_one() noexcept;
  /// Wakes every current waiter; stores nothing. Never throws.
  void notify_all() noexcept;

 private:
  friend class detail::TimedWait<Notify>;
  /// Waits for a notification (or takes the stored permit).
  bool wait_impl(std::int64_t deadline_ns);

  detail::SpinLock lock_;
  bool permit_ = false;
  detail::WaitList waiters_;
};

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
  detail::WaitList waiters_;
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

/// A value that can only be reached with its Mutex held.
///
///   weft::Synchronized<std::map<int, int>> m;
///   m.lock()->emplace(1, 2);
///   m.with_lock([](auto& map) { map.clear(); });
template <class T>
class Synchronized {
 public:
  /// Holds the lock; gives access to the value. Move-only; unlocks when
  /// destroyed.
  template <class V>
  class Guard {
   public:
    Guard(Guard&& o) noexcept : m_(std::exchange(o.m_, nullptr)), v_(o.v_) {}
    Guard& operator=(Guard&&) = delete;
    ~Guard() {
      if (m_ != nullptr) m_->unlock();
    }
    V& operator*() const noexcept { return *v_; }
    V* operator->() const noexcept { return v_; }

   private:
    friend class Synchronized;
    Guard(Mutex* m, V* v) noexcept : m_(m), v_(v) {}
    Mutex* m_;
    V* v_;
  };

  template <class... Args>
  explicit Synchronized(Args&&... args) : value_(std::forward<Args>(args)...) {}

  /// Locks and returns a guard. @throws weft::Cancelled.
  Guard<T> lock() {
    mutex_.lock();
    return Guard<T>(&mutex_, &value_);
  }
  /// A guard if the lock is free now.
  std::optional<Guard<T>> try_lock() noexcept {
    if (!mutex_.try_lock()) return std::nullopt;
    return Guard<T>(&mutex_, &value_);
  }
  /// A guard if the lock could be taken within `timeout`.
  template <class Rep, class Period>
  std::optional<Guard<T>> try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    if (!mutex_.try_lock_for(timeout)) return std::nullopt;
    return Guard<T>(&mutex_, &value_);
  }
  /// Runs fn(value) with the lock held and returns its result.
  template <class F>
  decltype(auto) with_lock(F&& fn) {
    std::lock_guard g(mutex_);
    return std::forward<F>(fn)(value_);
  }

 private:
  Mutex mutex_;
  T value_;
};

}  // namespace weft
