// Hierarchical timer wheel, one per worker (owned by its driver), and Timer,
// the handle through which everything but the driver reaches a wheel.
//
// Resolution 1 ms. Six levels of 64 slots: a level-L slot covers 64^L ms.
// Delays beyond kMaxDelayMs (~12.4 days) are clamped and the sleeper
// re-arms when it wakes. Arm and cancel are O(1) (intrusive doubly linked
// slot lists); finding the next deadline is O(levels) with a 64-bit
// occupancy bitmap per level. The layout and the level arithmetic follow
// Tokio's time driver (tokio/src/runtime/time/wheel), itself after Varghese &
// Lauck, "Hashed and Hierarchical Timing Wheels", SOSP 1987.
//
// Never early: a timer's tick is the deadline rounded *up* to the next ms,
// and it fires only when the wheel has advanced to a time >= that tick.
//
// Concurrency: the owning worker's driver advances its wheel; idle workers
// advance other workers' overdue wheels (try_advance) when those are busy;
// any thread may arm, reset or cancel a Timer (a fiber resumes on another
// worker and cancels its timer there). All of that happens under the
// wheel's lock, which only this file takes. Fire callbacks run under it,
// which is what lets Timer::cancel() guarantee that no callback is running
// on a timer that is about to die. Work that must not run under a spin lock
// (cancelling a scope: callbacks, wake-ups, a membarrier) goes into the
// timer's AfterUnlock callback, which the advancing thread runs once the
// lock is released.
#pragma once

#include <atomic>
#include <cstdint>

#include "base/spinlock.hpp"
#include "fiber/fiber_list.hpp"

namespace weft::detail {

class TimerWheel;

/// One timer: arm it on a wheel, move it (reset), disarm it (cancel). The
/// handle is the timer: its owner keeps it alive while it is armed, and
/// derives from it to carry what firing needs (a Waiter, a cancel node).
class Timer {
 public:
  /// Runs under the wheel's lock when the timer fires, on whatever thread
  /// advances the wheel. Must be short, take no lock that comes before the
  /// wheel's in the lock order (HACKING.md), run no user code, and leave
  /// the fibers it makes runnable in `woken` (Waiter::wake(reason, woken)):
  /// the advancing worker queues them, in deadline order.
  using Fire = void (*)(Timer* t, FiberList& woken) noexcept;
  /// Runs after the wheel's lock is released, on the thread that fired the
  /// timer, for firing that takes other locks or wakes many fibers. Until
  /// it has run the timer must stay valid: an owner whose cancel() returns
  /// false leaves the timer's lifetime to this callback.
  using AfterUnlock = void (*)(Timer* t) noexcept;

  explicit Timer(Fire fire, AfterUnlock after_unlock = nullptr) noexcept
      : fire_(fire), after_unlock_(after_unlock) {}
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  /// Arms the timer on `wheel` to fire at `tick` (ms since the runtime's
  /// epoch: RuntimeImpl::deadline_to_tick). Returns false, without arming
  /// it, when the wheel has already reached tick: the caller acts as the
  /// timer would have. A tick more than kMaxDelayMs ahead is clamped (the
  /// owner sees an early expiry and re-arms). The timer must not be armed.
  /// Any thread.
  bool arm(TimerWheel& wheel, std::uint64_t tick) noexcept;

  /// Moves the timer to `tick` on the wheel it was armed on. Returns false,
  /// changing nothing, when it is no longer armed (it fired, or was
  /// cancelled) or the wheel has already reached tick. Any thread.
  bool reset(std::uint64_t tick) noexcept;

  /// Disarms the timer. Returns true if it was armed: then it never fires.
  /// Returns false if it has fired (or was never armed). Either way its
  /// Fire callback is not running when this returns (it runs under the lock
  /// taken here); after false, an AfterUnlock callback may still be
  /// pending. Any thread.
  bool cancel() noexcept;

 private:
  friend class TimerWheel;

  Fire const fire_;
  AfterUnlock const after_unlock_;
  // Set by arm() before the timer is in the wheel; read by whoever owns
  // the timer to find the wheel's lock (ordered by the owner's own
  // hand-offs, e.g. a fiber's migration).
  TimerWheel* wheel_ = nullptr;
  // The rest is the wheel's, guarded by its lock (the analysis cannot name
  // a lock of another object here, so the wheel's methods carry it).
  std::uint64_t when_ms_ = 0;  // tick it fires at
  Timer* prev_ = nullptr;
  Timer* next_ = nullptr;  // slot list; after firing, the AfterUnlock list
  std::uint8_t level_ = 0;
  std::uint8_t slot_ = 0;
  bool inserted_ = false;
};

class TimerWheel {
 public:
  static constexpr int kLevels = 6;
  static constexpr int kSlots = 64;
  static constexpr std::uint64_t kSpanMs = (std::uint64_t{1} << (6 * kLevels)) - 1;
  /// Longest delay a timer is given (~12.4 days); a later deadline is
  /// clamped to it and its owner re-arms on wake-up. Keeping delays below
  /// 64^5 ms means a delay can carry into the top digit at most once, which
  /// next_expiration() handles.
  static constexpr std::uint64_t kMaxDelayMs = (std::uint64_t{1} << 30) - 1;
  static constexpr std::uint64_t kNone = ~std::uint64_t{0};

  TimerWheel() = default;
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  /// Advances to now_ms, firing every timer whose tick has come, in tick
  /// order: Fire callbacks under the lock (their fibers appended to
  /// `woken`), then, with the lock released, the AfterUnlock callbacks in
  /// the same order. Takes the lock.
  void advance(std::uint64_t now_ms, FiberList& woken) noexcept WEFT_EXCLUDES(lock_);

  /// advance(), unless another thread holds the lock: then nothing is done
  /// and false returned (an idle worker helping a busy one's wheel).
  bool try_advance(std::uint64_t now_ms, FiberList& woken) noexcept WEFT_EXCLUDES(lock_);

  /// Tick of the earliest timer, or kNone; readable without the lock (a
  /// racy hint used to pick sleep timeouts and to skip empty advances).
  /// Updated under the lock.
  std::uint64_t next_expiry_hint() const noexcept {
    return next_hint_.load(std::memory_order_acquire);
  }

  /// The time the wheel has advanced to (ms). Takes the lock.
  std::uint64_t elapsed_ms() const noexcept WEFT_EXCLUDES(lock_);
  /// Armed timers. Takes the lock.
  std::size_t size() const noexcept WEFT_EXCLUDES(lock_);

 private:
  friend class Timer;
  struct Expiry {
    std::uint64_t deadline;
    int level;
    int slot;
  };
  bool insert(Timer* t) noexcept WEFT_REQUIRES(lock_);
  void remove(Timer* t) noexcept WEFT_REQUIRES(lock_);
  /// Fires what is due; returns the AfterUnlock list (linked through next_).
  Timer* advance_locked(std::uint64_t now_ms, FiberList& woken) noexcept WEFT_REQUIRES(lock_);
  static void run_after_unlock(Timer* list) noexcept;
  bool next_expiration(Expiry& out) const noexcept WEFT_REQUIRES(lock_);
  void link(Timer* t) noexcept WEFT_REQUIRES(lock_);
  void update_hint() noexcept WEFT_REQUIRES(lock_);

  mutable SpinLock lock_;
  std::uint64_t elapsed_ WEFT_GUARDED_BY(lock_) = 0;
  std::size_t count_ WEFT_GUARDED_BY(lock_) = 0;
  std::uint64_t occupied_[kLevels] WEFT_GUARDED_BY(lock_) = {};
  Timer* slots_[kLevels][kSlots] WEFT_GUARDED_BY(lock_) = {};
  // release/acquire: see next_expiry_hint(); written under lock_.
  std::atomic<std::uint64_t> next_hint_{kNone};
};

}  // namespace weft::detail
