#include "sched/timer_wheel.hpp"

#include <bit>

namespace weft::detail {
namespace {

constexpr std::uint64_t slot_range(int level) {
  return std::uint64_t{1} << (6 * level);
}
constexpr std::uint64_t level_range(int level) {
  return std::uint64_t{1} << (6 * (level + 1));
}

// The level is the highest 6-bit digit in which `when` differs from
// `elapsed`: an entry lands at the finest level that still separates it from
// the current time.
int level_for(std::uint64_t elapsed, std::uint64_t when) {
  std::uint64_t masked = (elapsed ^ when) | 63;
  if (masked > TimerWheel::kSpanMs) masked = TimerWheel::kSpanMs;
  const int significant = 63 - std::countl_zero(masked);
  return significant / 6;
}

}  // namespace

void TimerWheel::link(TimerEntry* e) noexcept {
  const int level = level_for(elapsed_, e->when_ms);
  const int slot = static_cast<int>((e->when_ms >> (6 * level)) & 63);
  e->level = static_cast<std::uint8_t>(level);
  e->slot = static_cast<std::uint8_t>(slot);
  e->prev = nullptr;
  e->next = slots_[level][slot];
  if (e->next != nullptr) e->next->prev = e;
  slots_[level][slot] = e;
  occupied_[level] |= std::uint64_t{1} << slot;
  e->inserted = true;
}

bool TimerWheel::insert(TimerEntry* e) noexcept {
  if (e->when_ms <= elapsed_) return false;
  if (e->when_ms - elapsed_ > kMaxDelayMs) e->when_ms = elapsed_ + kMaxDelayMs;
  link(e);
  ++count_;
  update_hint();
  return true;
}

void TimerWheel::remove(TimerEntry* e) noexcept {
  if (!e->inserted) return;
  if (e->prev != nullptr) {
    e->prev->next = e->next;
  } else {
    slots_[e->level][e->slot] = e->next;
  }
  if (e->next != nullptr) e->next->prev = e->prev;
  if (slots_[e->level][e->slot] == nullptr) occupied_[e->level] &= ~(std::uint64_t{1} << e->slot);
  e->inserted = false;
  e->prev = e->next = nullptr;
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
    // A slot "before" now at this level belongs to the next rotation.
    // A slot "before" now at the top level belongs to the next rotation
    // (an entry whose delay carried into a digit beyond the wheel).
    if (deadline < elapsed_) deadline += level_range(level);
    out = Expiry{deadline, level, slot};
    return true;
  }
  return false;
}

void TimerWheel::advance(std::uint64_t now_ms) noexcept {
  Expiry exp{};
  while (next_expiration(exp) && exp.deadline <= now_ms) {
    if (exp.deadline > elapsed_) elapsed_ = exp.deadline;
    TimerEntry* e = slots_[exp.level][exp.slot];
    slots_[exp.level][exp.slot] = nullptr;
    occupied_[exp.level] &= ~(std::uint64_t{1} << exp.slot);
    while (e != nullptr) {
      TimerEntry* next = e->next;
      e->prev = e->next = nullptr;
      e->inserted = false;
      // Compare with the slot's own deadline, not with now_ms: an entry of
      // a coarse slot that is due later than the slot's start cascades to a
      // finer level, so that one long advance still fires in tick order.
      if (e->when_ms <= elapsed_) {
        --count_;
        e->fire(e);  // may end e's owner's interest, never frees e (see header)
      } else {
        link(e);
      }
      e = next;
    }
  }
  if (now_ms > elapsed_) elapsed_ = now_ms;
  update_hint();
}

void TimerWheel::update_hint() noexcept {
  Expiry exp{};
  // release: pairs with the acquire in next_expiry_hint(); a racy reader
  // only uses the value to choose how long to sleep.
  next_hint_.store(next_expiration(exp) ? exp.deadline : kNone, std::memory_order_release);
}

}  // namespace weft::detail
