// weft-kv: a latency histogram with fixed power-of-two buckets, for the
// server's own metrics (the AOF's fdatasync latency on /metrics). The
// runtime's histograms live in weft's registry; this one is the server's,
// exported next to them in the same Prometheus format.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace kv {

/// Counts observations into kBounds buckets whose upper bounds are 10 us
/// times a power of two (10 us, 20 us, 40 us, ... 10.49 s) plus +Inf.
/// Thread-safe: observe() is a few relaxed atomic adds (a statistic that
/// orders nothing); a snapshot read meanwhile may see an observation in
/// its bucket and not yet in the sum.
class LatencyHistogram {
 public:
  static constexpr std::size_t kBounds = 21;  ///< finite bucket bounds

  /// The upper bound of bucket `i` (< kBounds), in seconds.
  static constexpr double bound(std::size_t i) noexcept {
    return 1e-5 * static_cast<double>(std::uint64_t{1} << i);
  }

  /// Counts one observation of `ns` nanoseconds (negative counts as 0).
  void observe_ns(std::int64_t ns) noexcept {
    const std::uint64_t v = ns < 0 ? 0 : static_cast<std::uint64_t>(ns);
    std::size_t i = 0;
    while (i<kBounds&& static_cast<double>(v)> bound(i) * 1e9) ++i;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(v, std::memory_order_relaxed);
  }

  /// The buckets as Prometheus counts them: cumulative[i] observations
  /// <= bound(i), cumulative[kBounds] all of them (the +Inf bucket, also
  /// `count`); `sum_seconds` their sum.
  struct Snapshot {
    std::array<std::uint64_t, kBounds + 1> cumulative{};
    std::uint64_t count = 0;
    double sum_seconds = 0;
  };
  Snapshot snapshot() const noexcept {
    Snapshot s;
    std::uint64_t total = 0;
    for (std::size_t i = 0; i <= kBounds; ++i) {
      total += counts_[i].load(std::memory_order_relaxed);
      s.cumulative[i] = total;
    }
    s.count = total;
    s.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
    return s;
  }

 private:
  std::array<std::atomic<std::uint64_t>, kBounds + 1> counts_{};
  std::atomic<std::uint64_t> sum_ns_{0};
};

}  // namespace kv
