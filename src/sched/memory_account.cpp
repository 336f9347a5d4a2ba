// The slow paths of MemoryAccount (see memory_account.hpp).
#include "sched/memory_account.hpp"

namespace weft::detail {

std::int64_t MemoryAccount::usage(const Credit* const* credits, std::size_t n) const noexcept {
  std::int64_t used = charged_.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < n; ++i) used -= credits[i]->load(std::memory_order_relaxed);
  return used > 0 ? used : 0;
}

bool MemoryAccount::charge_slow(Credit* credit, std::int64_t n, bool refusable) noexcept {
  const auto limit = static_cast<std::int64_t>(limit_.load(std::memory_order_relaxed));
  if (refusable && limit != 0 && refusing_.load(std::memory_order_relaxed)) return false;
  const std::int64_t have = credit != nullptr ? credit->load(std::memory_order_relaxed) : 0;
  if (credit != nullptr && have >= n) {  // limit off, or a cache's charge
    credit->store(have - n, std::memory_order_relaxed);
    return true;
  }
  // A worker takes what it lacks plus a chunk of credit for its next ones.
  const std::int64_t refill = credit != nullptr ? n - have + chunk_ : 0;
  const std::int64_t take = credit != nullptr ? refill : n;
  std::int64_t now = charged_.fetch_add(take, std::memory_order_relaxed) + take;
  if (refusable && limit != 0 && now > limit) {
    // Over with the chunk: try with just what this charge needs.
    const std::int64_t spare = credit != nullptr ? chunk_ : 0;
    if (spare > 0 && now - spare <= limit) {
      now = charged_.fetch_sub(spare, std::memory_order_relaxed) - spare;
      if (credit != nullptr) credit->store(have + take - spare - n, std::memory_order_relaxed);
      check_pressure(now);
      return true;
    }
    charged_.fetch_sub(take, std::memory_order_relaxed);
    return false;
  }
  if (credit != nullptr) credit->store(have + take - n, std::memory_order_relaxed);
  check_pressure(now);
  return true;
}

void MemoryAccount::give_back(std::int64_t n) noexcept {
  const std::int64_t now = charged_.fetch_sub(n, std::memory_order_relaxed) - n;
  check_pressure(now);
}

void MemoryAccount::check_pressure(std::int64_t charged) noexcept {
  const auto limit = static_cast<std::int64_t>(limit_.load(std::memory_order_relaxed));
  if (limit == 0) return;
  const std::int64_t mark = static_cast<std::int64_t>(static_cast<double>(limit) *
                                                      static_cast<double>(pressure_ppm_) / 1e6);
  // `charged` is this thread's RMW result, and the flag is updated after
  // it: two threads may act on their values in the other order (one that
  // saw charged_ above the mark sets the flag after one that saw it below,
  // later, cleared it). Then a crossing fires twice, or one is not re-armed
  // until the next give-back or refill below the mark. Accepted: "once per
  // crossing" is exact for one thread, a hint under a race; the exchange
  // still lets one thread only fire for one flag transition.
  if (charged < mark) {
    if (above_pressure_.load(std::memory_order_relaxed)) {
      above_pressure_.store(false, std::memory_order_relaxed);
    }
    return;
  }
  if (above_pressure_.load(std::memory_order_relaxed) ||
      above_pressure_.exchange(true, std::memory_order_relaxed)) {
    return;
  }
  pressure_events_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> g(callbacks_mu_);
  for (auto& [id, fn] : callbacks_) {
    try {
      fn(static_cast<std::uint64_t>(charged), static_cast<std::uint64_t>(limit));
    } catch (...) {
      // A callback's exception must not unwind into spawn or a fiber's end.
    }
  }
}

void MemoryAccount::set_limit(std::uint64_t limit) noexcept {
  // Racing spawns (all relaxed, no lock): a refill that read the old limit
  // may still complete after this, leaving charged_ above a lowered limit
  // by that one refill (the next refill sees the new one); a spawn refused
  // under the old limit may store refusing_ after the store below, and the
  // refusal then lasts until a spawn finds the usage under 90 % of the new
  // limit, as any refusal does. Neither admits more than one spawn's worth
  // nor refuses for ever.
  limit_.store(limit, std::memory_order_relaxed);
  // Below what is charged already, the workers' credits (granted under the
  // old limit) must not admit anything: refuse until the slow path finds
  // the usage below the new low-water mark.
  const std::int64_t charged = charged_.load(std::memory_order_relaxed);
  refusing_.store(limit != 0 && charged > static_cast<std::int64_t>(limit),
                  std::memory_order_relaxed);
  above_pressure_.store(false, std::memory_order_relaxed);
}

bool MemoryAccount::end_refusal_if_below(std::int64_t usage) noexcept {
  if (!refusing_.load(std::memory_order_relaxed)) return true;
  const auto limit = static_cast<std::int64_t>(limit_.load(std::memory_order_relaxed));
  if (limit != 0 && usage >= limit / 10 * 9) return false;
  refusing_.store(false, std::memory_order_relaxed);
  return true;
}

std::uint64_t MemoryAccount::add_callback(
    std::function<void(std::uint64_t usage, std::uint64_t limit)> fn) {
  std::lock_guard<std::mutex> g(callbacks_mu_);
  const std::uint64_t id = next_id_++;
  callbacks_.emplace_back(id, std::move(fn));
  return id;
}

bool MemoryAccount::remove_callback(std::uint64_t id) {
  std::lock_guard<std::mutex> g(callbacks_mu_);
  for (auto it = callbacks_.begin(); it != callbacks_.end(); ++it) {
    if (it->first == id) {
      callbacks_.erase(it);
      return true;
    }
  }
  return false;
}

}  // namespace weft::detail
