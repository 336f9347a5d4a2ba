// retry()'s backoff arithmetic (weft/ticker.hpp): validation and the
// jittered exponential delay.
#include <atomic>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <stdexcept>

#include "weft/ticker.hpp"

namespace weft::detail {
namespace {

/// splitmix64 (Steele, Lea, Flood 2014) over one process-wide counter: no
/// per-thread state, so nothing for a migrating fiber to hold across a
/// switch, and uncorrelated values for concurrent callers.
std::uint64_t next_random() noexcept {
  static std::atomic<std::uint64_t> counter{static_cast<std::uint64_t>(std::time(nullptr)) *
                                            0x9e3779b97f4a7c15ULL};
  // relaxed: only the distinctness of the values matters.
  std::uint64_t z = counter.fetch_add(0x9e3779b97f4a7c15ULL, std::memory_order_relaxed);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

void check_backoff(const Backoff& b) {
  if (b.initial <= std::chrono::nanoseconds::zero()) {
    throw std::invalid_argument("weft: Backoff::initial must be positive");
  }
  if (b.max < b.initial) throw std::invalid_argument("weft: Backoff::max must be at least initial");
  if (!(b.multiplier >= 1.0)) {
    throw std::invalid_argument("weft: Backoff::multiplier must be at least 1");
  }
  if (!(b.jitter >= 0.0 && b.jitter <= 1.0)) {
    throw std::invalid_argument("weft: Backoff::jitter must be in 0..1");
  }
}

std::chrono::nanoseconds backoff_delay(const Backoff& b, std::size_t retry) noexcept {
  double d = static_cast<double>(b.initial.count());
  const double cap = static_cast<double>(b.max.count());
  for (std::size_t i = 1; i < retry && d < cap; ++i) d *= b.multiplier;
  if (d > cap) d = cap;
  if (b.jitter > 0) {
    // A uniform factor in [1 - jitter, 1 + jitter] (53 random bits).
    const double u = static_cast<double>(next_random() >> 11) * 0x1.0p-53;
    d *= 1.0 - b.jitter + 2.0 * b.jitter * u;
  }
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(d)));
}

}  // namespace weft::detail
