// weft/metrics.hpp: the registry's totals (obs/metrics.hpp) as named
// metrics, and their Prometheus text. docs/observability.md is the table
// this file must match, metric for metric.
#include <charconv>
#include <cmath>
#include <limits>

#include "obs/metrics.hpp"
#include "weft/metrics.hpp"

namespace weft::metrics {
namespace {

using detail::obs::Counter;
using detail::obs::Hist;
using detail::obs::RuntimeTotals;
using detail::obs::Totals;

constexpr double kNsPerSecond = 1e9;

/// Builds the metric list in docs/observability.md's order.
class Builder {
 public:
  explicit Builder(const Totals& t) : t_(t) {}

  void counter(const char* name, const char* unit, const char* help, double value) {
    scalar(name, MetricType::counter, unit, help, value);
  }
  void gauge(const char* name, const char* unit, const char* help, double value) {
    scalar(name, MetricType::gauge, unit, help, value);
  }
  /// A level kept as two counters (obs/metrics.hpp): in - out, never below
  /// zero (a read between an event's two halves on different threads).
  double level(Counter in, Counter out) const {
    return t_[in] > t_[out] ? static_cast<double>(t_[in] - t_[out]) : 0.0;
  }
  double count(Counter c) const { return static_cast<double>(t_[c]); }

  void histogram(const char* name, const char* help, Hist h) {
    Metric m = start(name, MetricType::histogram, "seconds", help);
    Series s;
    const auto hi = static_cast<std::size_t>(h);
    std::uint64_t cumulative = 0;
    s.buckets.reserve(detail::obs::kBuckets);
    for (std::size_t b = 0; b < detail::obs::kBuckets; ++b) {
      cumulative += t_.buckets[hi][b];
      const double bound = b + 1 < detail::obs::kBuckets
                               ? static_cast<double>(detail::obs::bucket_bound_ns(b)) / kNsPerSecond
                               : std::numeric_limits<double>::infinity();
      s.buckets.push_back(Bucket{bound, cumulative});
    }
    s.count = cumulative;
    s.sum = static_cast<double>(t_.sum_ns[hi]) / kNsPerSecond;
    m.series.push_back(std::move(s));
    out.push_back(std::move(m));
  }

  void io_operations() {
    Metric m = start("weft_io_operations_total", MetricType::counter, "",
                     "I/O operations started through the reactor, by operation");
    for (std::size_t i = 0; i < detail::obs::kIoOps; ++i) {
      Series s;
      s.labels.emplace_back("op", detail::obs::kIoOpNames[i]);
      s.value = count(static_cast<Counter>(static_cast<std::size_t>(Counter::io_op_first) + i));
      m.series.push_back(std::move(s));
    }
    out.push_back(std::move(m));
  }

  std::vector<Metric> out;

 private:
  static Metric start(const char* name, MetricType type, const char* unit, const char* help) {
    Metric m;
    m.name = name;
    m.type = type;
    m.unit = unit;
    m.help = help;
    return m;
  }
  void scalar(const char* name, MetricType type, const char* unit, const char* help, double v) {
    Metric m = start(name, type, unit, help);
    Series s;
    s.value = v;
    m.series.push_back(std::move(s));
    out.push_back(std::move(m));
  }

  const Totals& t_;
};

double num(std::uint64_t v) {
  return static_cast<double>(v);
}

void append_number(std::string& out, double v) {
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[64];
  std::to_chars_result r{};
  if (v >= 0 && v < 9007199254740992.0 && v == std::floor(v)) {
    r = std::to_chars(buf, buf + sizeof buf, static_cast<std::uint64_t>(v));
  } else {
    r = std::to_chars(buf, buf + sizeof buf, v);
  }
  out.append(buf, r.ptr);
}

void append_labels(std::string& out, const Series& s, const char* extra_name, double extra) {
  if (s.labels.empty() && extra_name == nullptr) return;
  out += '{';
  bool first = true;
  for (const auto& [k, v] : s.labels) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    for (char c : v) {  // the exposition format's escapes
      if (c == '\\' || c == '"') {
        out += '\\';
        out += c;
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    out += '"';
  }
  if (extra_name != nullptr) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    append_number(out, extra);
    out += '"';
  }
  out += '}';
}

}  // namespace

const char* to_string(MetricType t) noexcept {
  switch (t) {
    case MetricType::counter:
      return "counter";
    case MetricType::gauge:
      return "gauge";
    case MetricType::histogram:
      return "histogram";
  }
  return "untyped";
}

std::vector<Metric> snapshot() {
  Totals t;
  RuntimeTotals rt;
  detail::obs::collect(t, rt);
  Builder b(t);
  // Fibers and the scheduler (seed 001 section 5.1, and what operators need).
  b.counter("weft_fiber_spawned_total", "", "Fibers spawned", num(rt.fibers_spawned));
  b.counter("weft_fiber_completed_total", "",
            "Fibers that ended (returned, threw or were cancelled)", num(rt.fibers_completed));
  b.counter("weft_fiber_cancelled_total", "", "Fibers whose function ended with weft::Cancelled",
            b.count(Counter::fiber_cancelled));
  b.counter("weft_fiber_parks_total", "", "Times a fiber parked (blocked on a weft primitive)",
            num(rt.fiber_parks));
  b.histogram("weft_fiber_execution_duration_seconds",
              "Fiber lifetime from its first run to its end (sampled)", Hist::fiber_execution);
  b.gauge("weft_scheduler_active_fibers", "", "Fibers spawned and not yet ended",
          num(rt.fibers_active));
  b.gauge("weft_scheduler_work_queue_size", "",
          "Runnable fibers queued on workers and in the injector", num(rt.queued));
  b.gauge("weft_scheduler_injector_depth", "", "Fibers in the injector (the global queue)",
          num(rt.injector));
  b.counter("weft_scheduler_work_steal_attempts_total", "",
            "Attempts by an idle worker to steal from another worker", num(rt.steal_attempts));
  b.counter("weft_scheduler_work_steals_total", "", "Steal attempts that took at least one fiber",
            num(rt.steals));
  b.counter("weft_scheduler_stolen_fibers_total", "", "Fibers moved by successful steals",
            num(rt.stolen_fibers));
  b.histogram("weft_scheduler_scheduling_latency_seconds",
              "Time a fiber waited in a worker's run queue before running (sampled)",
              Hist::sched_latency);
  b.histogram("weft_scheduler_run_slice_seconds",
              "Time a fiber ran from switch-in to switch-out (sampled)", Hist::run_slice);
  b.counter("weft_scheduler_stalls_total", "",
            "Fibers reported for running longer than Config::stall_warning without a switch",
            num(rt.stalls));
  b.gauge("weft_scheduler_workers", "", "Worker threads of the live runtimes", num(rt.workers));
  b.counter("weft_worker_busy_seconds_total", "seconds",
            "Time worker threads spent outside their idle park (running fibers, searching)",
            static_cast<double>(rt.busy_ns) / kNsPerSecond);
  b.counter("weft_worker_parks_total", "", "Times a worker thread parked idle in its driver",
            num(rt.worker_parks));
  b.counter("weft_worker_noop_unparks_total", "",
            "Worker wake-ups that found nothing to run before parking again", num(rt.noop_unparks));
  b.gauge("weft_blocking_pool_threads", "", "Threads of the blocking pools",
          num(rt.blocking_threads));
  b.gauge("weft_blocking_pool_queue_depth", "", "spawn_blocking tasks waiting for a thread",
          num(rt.blocking_queued));
  b.counter("weft_blocking_pool_tasks_total", "", "spawn_blocking tasks run",
            num(rt.blocking_tasks));
  // Channels (5.2).
  b.counter("weft_channel_send_total", "", "Values sent on channels (plain sends and select)",
            b.count(Counter::chan_send));
  b.counter("weft_channel_recv_total", "", "Values received from channels (plain and select)",
            b.count(Counter::chan_recv));
  b.gauge("weft_channel_queue_depth", "", "Values buffered in channels, over all channels",
          b.level(Counter::chan_buffered_in, Counter::chan_buffered_out));
  b.histogram("weft_channel_send_blocked_duration_seconds",
              "Time a send waited for room or a receiver (every send that waited)",
              Hist::chan_send_blocked);
  // I/O (5.3).
  b.counter("weft_io_read_bytes_total", "bytes", "Bytes read (read, readv, recv, recvmsg)",
            b.count(Counter::io_read_bytes));
  b.counter("weft_io_write_bytes_total", "bytes", "Bytes written (write, writev, send, sendmsg)",
            b.count(Counter::io_write_bytes));
  b.io_operations();
  b.gauge("weft_io_pending_operations", "", "I/O operations started and not yet finished",
          b.level(Counter::io_started, Counter::io_finished));
  b.histogram("weft_io_operation_duration_seconds",
              "Duration of one I/O operation, waiting included (sampled)", Hist::io_duration);
  // TCP (5.5).
  b.counter("weft_tcp_connections_total", "", "TCP connections established (connect and accept)",
            b.count(Counter::tcp_opened));
  b.gauge("weft_tcp_connections_active", "", "TCP connections established and not yet closed",
          b.level(Counter::tcp_opened, Counter::tcp_closed));
  b.counter("weft_tcp_bytes_sent_total", "bytes", "Bytes sent on TCP streams",
            b.count(Counter::tcp_sent_bytes));
  b.counter("weft_tcp_bytes_received_total", "bytes", "Bytes received on TCP streams",
            b.count(Counter::tcp_received_bytes));
  b.histogram("weft_tcp_connection_duration_seconds",
              "TCP connection lifetime, from establishment to close", Hist::tcp_connection);
  // The runtime's own memory (5.4).
  b.gauge("weft_memory_stack_reserved_bytes", "bytes",
          "Address space reserved by fiber stacks (live and cached, guard pages included)",
          num(rt.stack_reserved_bytes));
  b.gauge("weft_memory_stacks", "", "Fiber stacks mapped (live and cached)", num(rt.stacks_live));
  b.gauge("weft_memory_task_block_bytes", "bytes",
          "Bytes of task blocks in use (a fiber's control block and result)",
          b.level(Counter::task_block_alloc_bytes, Counter::task_block_free_bytes));
  b.gauge("weft_memory_channel_buffer_bytes", "bytes", "Bytes of channel buffer storage allocated",
          b.level(Counter::chan_buffer_alloc_bytes, Counter::chan_buffer_free_bytes));
  // Config::memory_limit (docs/design/memory.md).
  b.gauge("weft_memory_runtime_bytes", "bytes",
          "The runtime's own memory as memory_limit counts it (live fibers' stacks and task "
          "blocks, cached stacks with resident pages)",
          num(rt.memory_used_bytes));
  b.gauge("weft_memory_limit_bytes", "bytes", "memory_limit in force (0 = off)",
          num(rt.memory_limit_bytes));
  b.counter("weft_memory_limit_refusals_total", "", "Spawns refused because of memory_limit",
            num(rt.memory_refusals));
  b.counter("weft_memory_limit_trims_total", "",
            "Cache trims (stack and task-block caches) caused by memory_limit",
            num(rt.memory_trims));
  b.counter("weft_memory_pressure_events_total", "",
            "Upward crossings of memory_pressure_fraction of memory_limit (pressure callbacks "
            "called)",
            num(rt.memory_pressure_events));
  // Traces (Runtime::start_trace; counted when each stops).
  b.counter("weft_trace_events_total", "", "Events written to traces",
            b.count(Counter::trace_events));
  b.counter("weft_trace_dropped_events_total", "",
            "Trace events dropped because a worker's trace buffer was full",
            b.count(Counter::trace_dropped));
  return std::move(b.out);
}

void write_prometheus(std::string& out) {
  const std::vector<Metric> ms = snapshot();
  out.reserve(out.size() + ms.size() * 256);
  for (const Metric& m : ms) {
    out += "# HELP ";
    out += m.name;
    out += ' ';
    out += m.help;
    out += "\n# TYPE ";
    out += m.name;
    out += ' ';
    out += to_string(m.type);
    out += '\n';
    for (const Series& s : m.series) {
      if (m.type != MetricType::histogram) {
        out += m.name;
        append_labels(out, s, nullptr, 0);
        out += ' ';
        append_number(out, s.value);
        out += '\n';
        continue;
      }
      for (const Bucket& b : s.buckets) {
        out += m.name;
        out += "_bucket";
        append_labels(out, s, "le", b.upper_bound);
        out += ' ';
        append_number(out, static_cast<double>(b.cumulative_count));
        out += '\n';
      }
      out += m.name;
      out += "_sum";
      append_labels(out, s, nullptr, 0);
      out += ' ';
      append_number(out, s.sum);
      out += '\n';
      out += m.name;
      out += "_count";
      append_labels(out, s, nullptr, 0);
      out += ' ';
      append_number(out, static_cast<double>(s.count));
      out += '\n';
    }
  }
}

void set_sample_period(std::uint32_t n) noexcept {
  detail::obs::set_sample_period(n);
}

std::uint32_t sample_period() noexcept {
  return detail::obs::Shard::sample_period();
}

}  // namespace weft::metrics
