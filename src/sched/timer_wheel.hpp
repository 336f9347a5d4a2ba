// Hierarchical timer wheel, one per worker.
//
// Resolution 1 ms. Six levels of 64 slots: a level-L slot covers 64^L ms.
// Delays beyond kMaxDelayMs (~12.4 days) are clamped and the sleeper
// re-arms when it wakes. Insert and cancel are O(1) (intrusive doubly linked
// slot lists); finding the next deadline is O(levels) with a 64-bit
// occupancy bitmap per level. The layout and the level arithmetic follow
// Tokio's time driver (tokio/src/runtime/time/wheel), itself after Varghese &
// Lauck, "Hashed and Hierarchical Timing Wheels", SOSP 1987.
//
// Never early: an entry's tick is the deadline rounded *up* to the next ms,
// and it fires only when the wheel has advanced to a time >= that tick.
//
// Concurrency: the owning worker inserts and advances it; any thread may
// cancel (a fiber resumes on another worker) and idle workers advance other
// workers' wheels when those are busy. All of that happens under `lock`.
// Fire callbacks run under the lock, which is what lets cancel() guarantee
// that a callback is not running on an entry that is about to die.
#pragma once

#include <atomic>
#include <cstdint>

#include "sched/spinlock.hpp"

namespace weft::detail {

struct TimerEntry {
  using Fire = void (*)(TimerEntry*) noexcept;

  std::uint64_t when_ms = 0;  // tick it fires at (ms since the wheel's epoch)
  Fire fire = nullptr;
  // Optional: run after the wheel's lock is released, by the worker that
  // fired the entry (Worker::defer_after_timers). For callbacks that take
  // other locks or wake many fibers (deadline timers of cancel scopes).
  Fire after_unlock = nullptr;
  TimerEntry* prev = nullptr;
  TimerEntry* next = nullptr;
  std::uint8_t level = 0;
  std::uint8_t slot = 0;
  bool inserted = false;
};

class TimerWheel {
 public:
  static constexpr int kLevels = 6;
  static constexpr int kSlots = 64;
  static constexpr std::uint64_t kSpanMs = (std::uint64_t{1} << (6 * kLevels)) - 1;
  /// Longest delay an entry is given (~12.4 days); a later deadline is
  /// clamped to it and its owner re-arms on wake-up. Keeping delays below
  /// 64^5 ms means a delay can carry into the top digit at most once, which
  /// next_expiration() handles.
  static constexpr std::uint64_t kMaxDelayMs = (std::uint64_t{1} << 30) - 1;
  static constexpr std::uint64_t kNone = ~std::uint64_t{0};

  TimerWheel() = default;
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  /// Adds e (e->when_ms and e->fire set). Returns false, without adding it,
  /// when e->when_ms has already been reached: the caller fires it itself.
  /// Requires `lock` held.
  bool insert(TimerEntry* e) noexcept;

  /// Removes e if it is still in the wheel. Requires `lock` held.
  void remove(TimerEntry* e) noexcept;

  /// Advances to now_ms, firing every entry whose tick has come, in tick
  /// order. Requires `lock` held.
  void advance(std::uint64_t now_ms) noexcept;

  /// Tick of the earliest entry, or kNone; readable without the lock (a racy
  /// hint used to pick sleep timeouts). Updated under the lock.
  std::uint64_t next_expiry_hint() const noexcept {
    return next_hint_.load(std::memory_order_acquire);
  }

  std::uint64_t elapsed_ms() const noexcept { return elapsed_; }
  std::size_t size() const noexcept { return count_; }

  SpinLock lock;

 private:
  struct Expiry {
    std::uint64_t deadline;
    int level;
    int slot;
  };
  bool next_expiration(Expiry& out) const noexcept;
  void link(TimerEntry* e) noexcept;
  void update_hint() noexcept;

  std::uint64_t elapsed_ = 0;
  std::size_t count_ = 0;
  std::uint64_t occupied_[kLevels] = {};
  TimerEntry* slots_[kLevels][kSlots] = {};
  std::atomic<std::uint64_t> next_hint_{kNone};
};

}  // namespace weft::detail
