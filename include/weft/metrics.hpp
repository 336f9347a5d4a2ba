// Runtime metrics: counters, gauges and histograms of the whole process
// (every weft::Runtime in it, and every thread that used a channel, a
// socket or a file), always on, exported as Prometheus text or as values.
//
//   std::string page;
//   weft::metrics::write_prometheus(page);   // serve it as /metrics
//
//   for (const weft::metrics::Metric& m : weft::metrics::snapshot()) ...
//
// docs/observability.md lists every metric: name, type, unit, labels and
// what moves it. Recording costs no shared write: each thread counts in its
// own shard, and a read sums the shards (see docs/observability.md, "Cost").
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace weft::metrics {

/// The Prometheus metric types weft uses.
enum class MetricType : std::uint8_t { counter, gauge, histogram };

/// "counter", "gauge" or "histogram".
const char* to_string(MetricType t) noexcept;

/// One bucket of a histogram: how many observations were <= upper_bound
/// (cumulative, as Prometheus counts them). The last bucket's bound is
/// +infinity.
struct Bucket {
  double upper_bound = 0;  ///< in the metric's unit (seconds for every weft histogram)
  /// Observations <= upper_bound.
  std::uint64_t cumulative_count = 0;
};

/// One labelled series of a metric.
struct Series {
  /// Label name/value pairs, e.g. {{"op", "recv"}}; empty for most metrics.
  std::vector<std::pair<std::string, std::string>> labels;
  /// Counters and gauges: the value (in the metric's unit).
  double value = 0;
  /// Histograms: the buckets (fixed bounds, the same for every weft
  /// histogram), the sum of the observations and their count.
  std::vector<Bucket> buckets;
  /// Histograms: the sum of the observations (in the metric's unit).
  double sum = 0;
  /// Histograms: how many observations.
  std::uint64_t count = 0;
};

/// A metric and its series, as of the snapshot.
struct Metric {
  std::string name;  ///< e.g. "weft_fiber_spawned_total"
  /// counter, gauge or histogram.
  MetricType type = MetricType::counter;
  std::string unit;  ///< "seconds", "bytes", or empty for a plain count
  std::string help;  ///< one line: what moves it
  /// One series per label set.
  std::vector<Series> series;
};

/// Every weft metric now, in the order of docs/observability.md. Taken
/// without stopping anything: each value is exact for some moment during
/// the call, but two values may be from different moments (a gauge that is
/// a difference of two counters may be briefly off by the events in
/// flight). Any thread, including fibers (it may block the calling thread
/// for the few microseconds a read of the registry takes; it never parks).
/// @throws std::bad_alloc.
std::vector<Metric> snapshot();

/// Appends snapshot() to `out` in the Prometheus text exposition format
/// 0.0.4 (`# HELP`, `# TYPE`, then the samples; histograms as _bucket
/// series with `le` labels, _sum and _count), which `promtool check
/// metrics` accepts. Any thread. @throws std::bad_alloc.
void write_prometheus(std::string& out);

/// The histograms of the scheduler and of I/O (scheduling latency, run
/// slices, fiber execution, I/O operation duration) time one event in
/// `n` per thread, since reading the clock costs more than a yield; the
/// other histograms time every event. Default 64; 1 times every event
/// (tests, or a profiling session). A value of 0 is taken as 1. Takes
/// effect on each thread after its current period. Any thread.
void set_sample_period(std::uint32_t n) noexcept;

/// The period set by set_sample_period().
std::uint32_t sample_period() noexcept;

}  // namespace weft::metrics
