#include "sched/timer_wheel.hpp"

#include <bit>

#include "obs/trace.hpp"

namespace weft::detail {
namespace {

// The trace's timer event: the fiber the fire made runnable is the list's
// new front, if the fire added one (a fire may find its waiter woken).
[[gnu::noinline, gnu::cold]] void trace_fire(std::uint64_t when_ms, const Fiber* before,
                                             const Fiber* after) noexcept {
  obs::trace::record(obs::trace::Kind::timer_fire, after != before ? after->id : 0, when_ms);
}

constexpr std::uint64_t slot_range(int level) {
  return std::uint64_t{1} << (6 * level);
}
constexpr std::uint64_t level_range(int level) {
  return std::uint64_t{1} << (6 * (level + 1));
}

// The level is the highest 6-bit digit in which `when` differs from
// `elapsed`: a timer lands at the finest level that still separates it from
// the current time.
int level_for(std::uint64_t elapsed, std::uint64_t when) {
  std::uint64_t masked = (elapsed ^ when) | 63;
  if (masked > TimerWheel::kSpanMs) masked = TimerWheel::kSpanMs;
  const int significant = 63 - std::countl_zero(masked);
  return significant / 6;
}

}  // namespace

// --- Timer: the only way in besides advancing -------------------------------

bool Timer::arm(TimerWheel& wheel, std::uint64_t tick) noexcept {
  wheel_ = &wheel;
  LockGuard g(wheel.lock_);
  when_ms_ = tick;
  return wheel.insert(this);
}

bool Timer::reset(std::uint64_t tick) noexcept {
  if (wheel_ == nullptr) return false;
  TimerWheel& wheel = *wheel_;
  LockGuard g(wheel.lock_);
  if (!inserted_ || tick <= wheel.elapsed_) return false;
  wheel.remove(this);
  when_ms_ = tick;
  return wheel.insert(this);  // true: tick > elapsed_
}

bool Timer::cancel() noexcept {
  if (wheel_ == nullptr) return false;
  TimerWheel& wheel = *wheel_;
  LockGuard g(wheel.lock_);
  if (!inserted_) return false;
  wheel.remove(this);
  return true;
}

// --- the wheel --------------------------------------------------------------

void TimerWheel::link(Timer* t) noexcept {
  const int level = level_for(elapsed_, t->when_ms_);
  const int slot = static_cast<int>((t->when_ms_ >> (6 * level)) & 63);
  t->level_ = static_cast<std::uint8_t>(level);
  t->slot_ = static_cast<std::uint8_t>(slot);
  t->prev_ = nullptr;
  t->next_ = slots_[level][slot];
  if (t->next_ != nullptr) t->next_->prev_ = t;
  slots_[level][slot] = t;
  occupied_[level] |= std::uint64_t{1} << slot;
  t->inserted_ = true;
}

bool TimerWheel::insert(Timer* t) noexcept {
  if (t->when_ms_ <= elapsed_) return false;
  if (t->when_ms_ - elapsed_ > kMaxDelayMs) t->when_ms_ = elapsed_ + kMaxDelayMs;
  link(t);
  ++count_;
  update_hint();
  return true;
}

void TimerWheel::remove(Timer* t) noexcept {
  if (!t->inserted_) return;
  if (t->prev_ != nullptr) {
    t->prev_->next_ = t->next_;
  } else {
    slots_[t->level_][t->slot_] = t->next_;
  }
  if (t->next_ != nullptr) t->next_->prev_ = t->prev_;
  if (slots_[t->level_][t->slot_] == nullptr) {
    occupied_[t->level_] &= ~(std::uint64_t{1} << t->slot_);
  }
  t->inserted_ = false;
  t->prev_ = t->next_ = nullptr;
  --count_;
  update_hint();
}

bool TimerWheel::next_expiration(Expiry& out) const noexcept {
  for (int level = 0; level < kLevels; ++level) {
    if (occupied_[level] == 0) continue;
    // Rotate so that bit 0 is the slot `elapsed_` is in at this level; the
    // first set bit after it is the next occupied slot in time order.
    const std::uint64_t now_slot = elapsed_ / slot_range(level);
    const std::uint64_t rotated = std::rotr(occupied_[level], static_cast<int>(now_slot % 64));
    const int zeros = std::countr_zero(rotated);
    const int slot = static_cast<int>((static_cast<std::uint64_t>(zeros) + now_slot) % 64);
    const std::uint64_t level_start = elapsed_ & ~(level_range(level) - 1);
    std::uint64_t deadline = level_start + static_cast<std::uint64_t>(slot) * slot_range(level);
    // A slot "before" now at this level belongs to the next rotation (at
    // the top level: a timer whose delay carried into a digit beyond the
    // wheel).
    if (deadline < elapsed_) deadline += level_range(level);
    out = Expiry{deadline, level, slot};
    return true;
  }
  return false;
}

Timer* TimerWheel::advance_locked(std::uint64_t now_ms, FiberList& woken) noexcept {
  Timer* later_head = nullptr;
  Timer* later_tail = nullptr;
  Expiry exp{};
  while (next_expiration(exp) && exp.deadline <= now_ms) {
    if (exp.deadline > elapsed_) elapsed_ = exp.deadline;
    Timer* t = slots_[exp.level][exp.slot];
    slots_[exp.level][exp.slot] = nullptr;
    occupied_[exp.level] &= ~(std::uint64_t{1} << exp.slot);
    while (t != nullptr) {
      Timer* next = t->next_;
      t->prev_ = t->next_ = nullptr;
      t->inserted_ = false;
      // Compare with the slot's own deadline, not with now_ms: a timer of a
      // coarse slot that is due later than the slot's start cascades to a
      // finer level, so that one long advance still fires in tick order.
      if (t->when_ms_ <= elapsed_) {
        --count_;
        // Read before fire_: firing may end the owner's interest (a waiter
        // woken here may return and take its timer with it once we unlock;
        // never before).
        const bool later = t->after_unlock_ != nullptr;
        if (obs::trace::on()) {
          const Fiber* before = woken.front();
          if (t->fire_ != nullptr) t->fire_(t, woken);
          trace_fire(t->when_ms_, before, woken.front());
        } else if (t->fire_ != nullptr) {
          t->fire_(t, woken);
        }
        if (later) {
          // The owner left the timer's lifetime to its AfterUnlock
          // callback (see Timer), so the link is ours until that runs.
          if (later_tail != nullptr) {
            later_tail->next_ = t;
          } else {
            later_head = t;
          }
          later_tail = t;
        }
      } else {
        link(t);
      }
      t = next;
    }
  }
  if (now_ms > elapsed_) elapsed_ = now_ms;
  update_hint();
  return later_head;
}

void TimerWheel::run_after_unlock(Timer* list) noexcept {
  while (list != nullptr) {
    Timer* t = list;
    list = t->next_;  // before the callback, which may free t
    t->next_ = nullptr;
    t->after_unlock_(t);
  }
}

void TimerWheel::advance(std::uint64_t now_ms, FiberList& woken) noexcept {
  Timer* later;
  {
    LockGuard g(lock_);
    later = advance_locked(now_ms, woken);
  }
  run_after_unlock(later);
}

bool TimerWheel::try_advance(std::uint64_t now_ms, FiberList& woken) noexcept {
  if (!lock_.try_lock()) return false;
  Timer* later = advance_locked(now_ms, woken);
  lock_.unlock();
  run_after_unlock(later);
  return true;
}

std::uint64_t TimerWheel::elapsed_ms() const noexcept {
  LockGuard g(lock_);
  return elapsed_;
}

std::size_t TimerWheel::size() const noexcept {
  LockGuard g(lock_);
  return count_;
}

void TimerWheel::update_hint() noexcept {
  Expiry exp{};
  // release: pairs with the acquire in next_expiry_hint(); a racy reader
  // only uses the value to choose how long to sleep.
  next_hint_.store(next_expiration(exp) ? exp.deadline : kNone, std::memory_order_release);
}

}  // namespace weft::detail
