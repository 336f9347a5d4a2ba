// weft-kv: INFO and CLIENT LIST, the server's introspection texts.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <fstream>

#include "memory.hpp"
#include "metrics_http.hpp"
#include "server.hpp"
#include "weft/metrics.hpp"

namespace kv {

namespace {

std::string human_bytes(std::int64_t n) {
  char buf[32];
  const double d = static_cast<double>(n);
  if (n < 1024)
    std::snprintf(buf, sizeof buf, "%lldB", static_cast<long long>(n));
  else if (n < 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.2fK", d / 1024);
  else if (n < 1024LL * 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.2fM", d / (1024 * 1024));
  else
    std::snprintf(buf, sizeof buf, "%.2fG", d / (1024.0 * 1024 * 1024));
  return buf;
}

// Appends one printf-formatted INFO line and its CRLF (the compiler checks
// the format against the arguments).
__attribute__((format(printf, 2, 3))) void line(std::string& s, const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  const int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0) s.append(buf, static_cast<std::size_t>(std::min<int>(n, sizeof buf - 1)));
  s += "\r\n";
}

}  // namespace

std::string Server::info(std::string_view section) {
  std::string s;
  const bool all = section == "all" || section == "everything";
  const bool dflt = section.empty() || section == "default" || all;
  auto want = [&](std::string_view name) { return dflt || section == name; };
  const std::int64_t now = unix_ms();
  if (want("server")) {
    s += "# Server\r\n";
    line(s, "redis_version:7.0.0");
    line(s, "redis_mode:standalone");
    line(s, "server_name:weft-kv");
    line(s, "weft_kv_version:0.1.0");
    line(s, "os:Linux");
    line(s, "multiplexing_api:%s",
         runtime_.io_backend() == weft::IoBackend::io_uring ? "io_uring" : "epoll");
    line(s, "process_id:%ld", static_cast<long>(::getpid()));
    line(s, "tcp_port:%u", unsigned{bound_port_});
    line(s, "uptime_in_seconds:%lld", static_cast<long long>((now - start_ms_) / 1000));
    line(s, "uptime_in_days:%lld", static_cast<long long>((now - start_ms_) / 86400000));
    line(s, "executable:weft-kv");
    s += "\r\n";
  }
  if (want("clients")) {
    s += "# Clients\r\n";
    line(s, "connected_clients:%zu", static_cast<std::size_t>(active_.count()));
    line(s, "maxclients:%zu", options_.maxclients);
    line(s, "blocked_clients:%lld", static_cast<long long>(keyspace_.blocked_clients()));
    s += "\r\n";
  }
  if (want("memory")) {
    // used_memory is what maxmemory is checked against, as in Redis: the
    // keyspace's allocations as the allocator sizes them
    // (malloc_usable_size; Shard::cost) plus client buffers. The
    // allocator's own total (allocator_allocated, jemalloc's view when
    // linked) also holds the runtime's stacks and caches, which evicting
    // keys cannot free: a limit on it could evict every key and still be
    // over.
    const AllocatorStats a = allocator_stats();
    const std::int64_t used = used_memory();
    const std::int64_t rss = rss_bytes();
    const auto ratio = [](std::int64_t x, std::int64_t y) {
      return y > 0 ? static_cast<double>(x) / static_cast<double>(y) : 0.0;
    };
    s += "# Memory\r\n";
    line(s, "used_memory:%lld", static_cast<long long>(used));
    line(s, "used_memory_human:%s", human_bytes(used).c_str());
    line(s, "used_memory_rss:%lld", static_cast<long long>(rss));
    line(s, "used_memory_rss_human:%s", human_bytes(rss).c_str());
    line(s, "used_memory_dataset:%lld", static_cast<long long>(keyspace_.bytes()));
    line(s, "used_memory_clients:%lld",
         static_cast<long long>(stats_.client_buffers.load(std::memory_order_relaxed)));
    line(s, "allocator_allocated:%lld", static_cast<long long>(a.allocated));
    line(s, "allocator_active:%lld", static_cast<long long>(a.active));
    line(s, "allocator_resident:%lld", static_cast<long long>(a.resident));
    line(s, "allocator_frag_ratio:%.2f", ratio(a.active, a.allocated));
    line(s, "allocator_frag_bytes:%lld", static_cast<long long>(a.active - a.allocated));
    line(s, "allocator_rss_ratio:%.2f", ratio(a.resident, a.active));
    line(s, "allocator_rss_bytes:%lld", static_cast<long long>(a.resident - a.active));
    line(s, "allocator_mapped:%lld", static_cast<long long>(a.mapped));
    line(s, "allocator_retained:%lld", static_cast<long long>(a.retained));
    line(s, "mem_fragmentation_ratio:%.2f", ratio(rss, used));
    line(s, "mem_fragmentation_bytes:%lld", static_cast<long long>(rss - used));
    line(s, "mem_allocator:%s", a.name);
    const std::uint64_t maxmemory = settings_.maxmemory.load(std::memory_order_relaxed);
    line(s, "maxmemory:%llu", static_cast<unsigned long long>(maxmemory));
    line(s, "maxmemory_human:%s", human_bytes(static_cast<std::int64_t>(maxmemory)).c_str());
    line(s, "maxmemory_policy:%s",
         policy_name(settings_.maxmemory_policy.load(std::memory_order_relaxed)));
    s += "\r\n";
  }
  if (want("persistence")) {
    s += "# Persistence\r\n";
    line(s, "loading:%d", loading_ ? 1 : 0);
    rdb_.info(s);
    // Redis 7.0's fields, then weft-kv's count of failed AOF writes and
    // fdatasyncs.
    const AofStatus st = aof_ != nullptr ? aof_->status() : AofStatus{};
    line(s, "aof_enabled:%d", aof_ != nullptr ? 1 : 0);
    aof_rewriter_.info(s);
    line(s, "aof_last_write_status:%s", st.ok ? "ok" : "err");
    if (aof_ != nullptr) {
      line(s, "aof_current_size:%llu", static_cast<unsigned long long>(aof_->size()));
      line(s, "aof_base_size:%llu", static_cast<unsigned long long>(aof_rewriter_.base_size()));
      line(s, "aof_buffer_length:%llu", static_cast<unsigned long long>(st.buffered));
    }
    line(s, "aof_write_errors:%llu", static_cast<unsigned long long>(st.errors));
    s += "\r\n";
  }
  if (want("stats")) {
    s += "# Stats\r\n";
    line(s, "total_connections_received:%llu",
         static_cast<unsigned long long>(stats_.connections.load(std::memory_order_relaxed)));
    line(s, "total_commands_processed:%llu",
         static_cast<unsigned long long>(stats_.commands.load(std::memory_order_relaxed)));
    line(s, "instantaneous_ops_per_sec:%llu",
         static_cast<unsigned long long>(stats_.ops_per_sec.load(std::memory_order_relaxed)));
    line(s, "total_net_input_bytes:%llu",
         static_cast<unsigned long long>(stats_.net_in.load(std::memory_order_relaxed)));
    line(s, "total_net_output_bytes:%llu",
         static_cast<unsigned long long>(stats_.net_out.load(std::memory_order_relaxed)));
    line(s, "rejected_connections:%llu",
         static_cast<unsigned long long>(stats_.rejected.load(std::memory_order_relaxed)));
    line(s, "expired_keys:%llu", static_cast<unsigned long long>(keyspace_.expired()));
    line(s, "evicted_keys:%llu", static_cast<unsigned long long>(evictor_.evicted()));
    line(s, "keyspace_hits:%llu",
         static_cast<unsigned long long>(stats_.hits.load(std::memory_order_relaxed)));
    line(s, "keyspace_misses:%llu",
         static_cast<unsigned long long>(stats_.misses.load(std::memory_order_relaxed)));
    line(s, "pubsub_channels:%zu", pubsub_.channel_count());
    line(s, "pubsub_patterns:%zu", pubsub_.pattern_count());
    line(s, "client_output_buffer_limit_disconnections:%llu",
         static_cast<unsigned long long>(
             stats_.output_limit_closed.load(std::memory_order_relaxed)));
    line(s, "client_write_timeout_disconnections:%llu",
         static_cast<unsigned long long>(
             stats_.write_timeout_closed.load(std::memory_order_relaxed)));
    s += "\r\n";
  }
  if (want("keyspace")) {
    s += "# Keyspace\r\n";
    const std::int64_t keys = keyspace_.keys();
    if (keys > 0) {
      line(s, "db0:keys=%lld,expires=%lld,avg_ttl=0", static_cast<long long>(keys),
           static_cast<long long>(keyspace_.expires()));
    }
    s += "\r\n";
  }
  if (all || section == "weft") {
    // The runtime's registry (weft::metrics), one line per series, named
    // as /metrics names its samples: counters and gauges as
    // `name{labels}:value`, histograms as their `_count` and `_sum`.
    s += "# Weft\r\n";
    line(s, "weft_workers:%zu", runtime_.workers());
    line(s, "weft_io_backend:%s",
         runtime_.io_backend() == weft::IoBackend::io_uring ? "io_uring" : "epoll");
    for (const weft::metrics::Metric& m : weft::metrics::snapshot()) {
      for (const weft::metrics::Series& ser : m.series) {
        std::string name = m.name;
        std::string labels;
        for (const auto& [k, v] : ser.labels)
          labels += (labels.empty() ? "{" : ",") + k + "=\"" + v + "\"";
        if (!labels.empty()) labels += "}";
        if (m.type == weft::metrics::MetricType::histogram) {
          s += name + "_count" + labels + ":" + std::to_string(ser.count) + "\r\n";
          s += name + "_sum" + labels + ":" + prometheus_number(ser.sum) + "\r\n";
        } else {
          s += name + labels + ":" + prometheus_number(ser.value) + "\r\n";
        }
      }
    }
    s += "\r\n";
  }
  if (s.size() >= 2) s.resize(s.size() - 2);  // no blank line after the last section
  return s;
}

std::string Server::client_list(const Client* self) {
  (void)self;
  std::string s;
  const std::int64_t now = unix_ms();
  std::lock_guard lk(connections_mu_);
  for (Connection* conn : connections_) {
    Client* c = &conn->client;
    std::string name;
    {
      std::lock_guard nl(c->mu);
      name = c->name;
    }
    const char* cmd = c->last_cmd.load(std::memory_order_relaxed);
    // The caller's is CLIENT LIST or CLIENT INFO itself (note_subcommand
    // recorded it), so `self` needs nothing of its own.
    const std::string cmdname = cmd != nullptr ? cmd : "NULL";
    // The name may be long: only the fixed-width parts go through snprintf.
    char head[128];
    std::snprintf(head, sizeof head, "id=%llu addr=", static_cast<unsigned long long>(c->id));
    s += head;
    s += c->addr;
    s += " laddr=";
    s += c->laddr;
    std::snprintf(head, sizeof head, " fd=%d name=", c->fd);
    s += head;
    s += name;
    char tail[512];
    std::snprintf(tail, sizeof tail,
                  " age=%lld idle=%lld flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=%llu "
                  "qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=%llu tot-mem=0 "
                  "events=r cmd=%s user=default redir=-1 resp=%d\n",
                  static_cast<long long>((now - c->created_ms) / 1000),
                  static_cast<long long>((now - c->last_ms.load(std::memory_order_relaxed)) / 1000),
                  static_cast<unsigned long long>(c->qbuf.load(std::memory_order_relaxed)),
                  static_cast<unsigned long long>(c->omem.load(std::memory_order_relaxed)),
                  cmdname.c_str(), c->resp.load(std::memory_order_relaxed));
    s += tail;
  }
  return s;
}

namespace {

/// A counter or gauge sample: `name{labels} value`.
void sample(std::string& out, std::string_view name, std::string_view labels, double v) {
  out += name;
  out += labels;
  out += ' ';
  out += prometheus_number(v);
  out += '\n';
}

/// A label set `{key="value"}` with Prometheus's escapes in the value.
std::string label(std::string_view key, std::string_view value) {
  std::string s = "{";
  s += key;
  s += "=\"";
  for (const char c : value) {
    if (c == '\\' || c == '"') s += '\\';
    if (c == '\n') {
      s += "\\n";
      continue;
    }
    s += c;
  }
  s += "\"}";
  return s;
}

}  // namespace

std::string Server::metrics_text() {
  std::string out;
  weft::metrics::write_prometheus(out);
  const auto relaxed = [](const std::atomic<std::uint64_t>& a) {
    return static_cast<double>(a.load(std::memory_order_relaxed));
  };
  // Commands by name, as INFO commandstats (a subcommand as "config|get"),
  // those run at least once, in the table's order.
  std::vector<std::pair<const Command*, const CommandStat*>> ran;
  const auto add_ran = [&](const Command& c) {
    const auto it = command_stats_.find(&c);
    if (it != command_stats_.end() && it->second.calls.load(std::memory_order_relaxed) != 0)
      ran.emplace_back(&c, &it->second);
  };
  for (const Command& c : command_table()) {
    add_ran(c);
    for (const Command& sub : c.subcommands) add_ran(sub);
  }
  append_prometheus_header(out, "weft_kv_commands_total", "counter",
                           "Commands run, by name (INFO commandstats' calls).");
  for (const auto& [c, st] : ran)
    sample(out, "weft_kv_commands_total", label("cmd", c->name), relaxed(st->calls));
  append_prometheus_header(out, "weft_kv_commands_duration_seconds_total", "counter",
                           "Time spent running commands, by name (INFO commandstats' usec; a "
                           "blocking command's wait excluded).");
  for (const auto& [c, st] : ran)
    sample(out, "weft_kv_commands_duration_seconds_total", label("cmd", c->name),
           relaxed(st->usec) / 1e6);
  const AofStatus st = aof_ != nullptr ? aof_->status() : AofStatus{};
  const struct {
    const char* name;
    const char* type;
    const char* help;
    double value;
  } scalars[] = {
      {"weft_kv_commands_processed_total", "counter",
       "Commands processed (INFO total_commands_processed).", relaxed(stats_.commands)},
      {"weft_kv_keyspace_hits_total", "counter", "Key lookups that found the key.",
       relaxed(stats_.hits)},
      {"weft_kv_keyspace_misses_total", "counter", "Key lookups that found no key.",
       relaxed(stats_.misses)},
      {"weft_kv_connected_clients", "gauge", "Client connections open.",
       static_cast<double>(active_.count())},
      {"weft_kv_connections_received_total", "counter", "Client connections accepted.",
       relaxed(stats_.connections)},
      {"weft_kv_rejected_connections_total", "counter",
       "Client connections refused for maxclients.", relaxed(stats_.rejected)},
      {"weft_kv_blocked_clients", "gauge", "Clients waiting in a blocking command.",
       static_cast<double>(keyspace_.blocked_clients())},
      {"weft_kv_keys", "gauge", "Keys in the keyspace.", static_cast<double>(keyspace_.keys())},
      {"weft_kv_expired_keys_total", "counter", "Keys deleted because their TTL passed.",
       static_cast<double>(keyspace_.expired())},
      {"weft_kv_evicted_keys_total", "counter",
       "Keys evicted for maxmemory by maxmemory-policy (INFO's evicted_keys).",
       static_cast<double>(evictor_.evicted())},
      {"weft_kv_pubsub_channels", "gauge", "Channels with at least one subscriber.",
       static_cast<double>(pubsub_.channel_count())},
      {"weft_kv_pubsub_patterns", "gauge", "Pattern subscriptions.",
       static_cast<double>(pubsub_.pattern_count())},
      {"weft_kv_net_input_bytes_total", "counter", "Bytes read from clients.",
       relaxed(stats_.net_in)},
      {"weft_kv_net_output_bytes_total", "counter", "Bytes written to clients.",
       relaxed(stats_.net_out)},
      {"weft_kv_slowlog_entries", "gauge", "Entries in the SLOWLOG.",
       static_cast<double>(slowlog_.size())},
      {"weft_kv_aof_enabled", "gauge", "1 when the append-only file is on.",
       aof_ != nullptr ? 1.0 : 0.0},
      {"weft_kv_aof_writes_total", "counter",
       "Writes of buffered records to the AOF (one per group-commit round).",
       static_cast<double>(st.writes)},
      {"weft_kv_aof_write_errors_total", "counter", "Failed AOF writes and fdatasyncs.",
       static_cast<double>(st.errors)},
  };
  for (const auto& m : scalars) {
    append_prometheus_header(out, m.name, m.type, m.help);
    sample(out, m.name, "", m.value);
  }
  append_prometheus_header(out, "weft_kv_connections_by_worker_total", "counter",
                           "Client connections served, by the runtime worker their fiber "
                           "started on.");
  for (std::size_t i = 0; i < runtime_.workers(); ++i)
    sample(out, "weft_kv_connections_by_worker_total", label("worker", std::to_string(i)),
           relaxed(served_by_worker_[i]));
  const LatencyHistogram::Snapshot fs =
      aof_ != nullptr ? aof_->fsync_latency() : LatencyHistogram::Snapshot{};
  append_prometheus_header(out, "weft_kv_aof_fsync_duration_seconds", "histogram",
                           "Time of each successful fdatasync of the AOF.");
  for (std::size_t i = 0; i <= LatencyHistogram::kBounds; ++i) {
    const std::string le =
        i < LatencyHistogram::kBounds ? prometheus_number(LatencyHistogram::bound(i)) : "+Inf";
    sample(out, "weft_kv_aof_fsync_duration_seconds_bucket", label("le", le),
           static_cast<double>(fs.cumulative[i]));
  }
  sample(out, "weft_kv_aof_fsync_duration_seconds_sum", "", fs.sum_seconds);
  sample(out, "weft_kv_aof_fsync_duration_seconds_count", "", static_cast<double>(fs.count));
  return out;
}

void Server::serve_metrics(weft::net::TcpListener& listener, weft::Scope& scope) {
  MetricsPages pages;
  pages.metrics = [this] { return metrics_text(); };
  pages.fibers = [this](weft::DumpFormat f) {
    // Off the workers: a dump reads /proc/self/maps and symbols for a while.
    return weft::spawn_blocking([this, f] { return runtime_.dump(f); }).join();
  };
  serve_metrics_http(listener, scope, pages);
}

}  // namespace kv
