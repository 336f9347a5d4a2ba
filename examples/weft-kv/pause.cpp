// weft-kv: CLIENT PAUSE's state. See pause.hpp.
#include "pause.hpp"

#include <algorithm>

namespace kv {

void ClientPause::pause(Mode m, std::int64_t end_ms) noexcept {
  std::lock_guard lk(mu_);
  const int current = mode_.load(std::memory_order_relaxed);
  if (current == kOff) {
    end_ms_ = end_ms;
  } else {
    end_ms_ = std::max(end_ms_, end_ms);
  }
  // Release: pairs with the acquire load in mode().
  mode_.store(std::max(current, static_cast<int>(m)), std::memory_order_release);
  wake_all_locked();
}

void ClientPause::unpause() noexcept {
  std::lock_guard lk(mu_);
  clear_locked();
}

bool ClientPause::paused(std::int64_t now_ms) noexcept {
  if (mode() == kOff) return false;
  std::lock_guard lk(mu_);
  if (mode_.load(std::memory_order_relaxed) == kOff) return false;
  if (end_ms_ <= now_ms) {
    clear_locked();
    return false;
  }
  return true;
}

bool ClientPause::enter(bool writes, std::int64_t now_ms, weft::Event& wake, std::int64_t& end_ms) {
  std::lock_guard lk(mu_);
  const int m = mode_.load(std::memory_order_relaxed);
  if (m == kOff) return false;
  if (end_ms_ <= now_ms) {
    clear_locked();
    return false;
  }
  if (m != kAll && !writes) return false;
  waiters_.push_back(&wake);
  end_ms = end_ms_;
  return true;
}

void ClientPause::leave(weft::Event& wake) noexcept {
  std::lock_guard lk(mu_);
  const auto it = std::find(waiters_.begin(), waiters_.end(), &wake);
  if (it != waiters_.end()) waiters_.erase(it);
}

void ClientPause::clear_locked() noexcept {
  mode_.store(kOff, std::memory_order_relaxed);
  end_ms_ = 0;
  wake_all_locked();
}

void ClientPause::wake_all_locked() noexcept {
  for (weft::Event* e : waiters_) e->set();
}

}  // namespace kv
