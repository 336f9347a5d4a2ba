// weft-kv: command-line options (options.hpp).
#include "options.hpp"

#include <cctype>
#include <charconv>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <vector>

#include "notify.hpp"
#include "rdb_save.hpp"
#include "weft/net.hpp"

namespace kv {

// --- options ----------------------------------------------------------------

const char* const kUsage =
    "usage: weft-kv [options]\n"
    "  --bind ADDR             IP address to listen on (default 127.0.0.1)\n"
    "  --port N                TCP port, 1..65535 (default 6380)\n"
    "  --workers N             worker threads (default: one per core)\n"
    "  --io auto|io_uring|epoll  I/O backend (default auto)\n"
    "  --appendonly yes|no     keep an append-only file (default no)\n"
    "  --appendfsync always|everysec|no  when to fsync it (default everysec)\n"
    "  --dir PATH              directory of appendonly.aof and the RDB file (default .)\n"
    "  --dbfilename NAME       the RDB file's name in --dir (default dump.rdb)\n"
    "  --save 'SECS CHANGES ...'  BGSAVE after CHANGES writes and SECS seconds\n"
    "                          (pairs; default '': no automatic saves)\n"
    "  --maxclients N          connections served at once (default 10000)\n"
    "  --maxmemory BYTES       evict or refuse writes above this much data; 0 = no limit\n"
    "  --maxmemory-policy P    noeviction (default), allkeys-lru, volatile-lru, allkeys-lfu,\n"
    "                          volatile-lfu, allkeys-random, volatile-random, volatile-ttl\n"
    "  --maxmemory-samples N   keys sampled per eviction (default 5)\n"
    "  --lfu-log-factor N      LFU counter growth (default 10)\n"
    "  --lfu-decay-time MIN    LFU counter decay period, minutes (default 1)\n"
    "                          (suffixes k, kb, m, mb, g, gb as in redis.conf)\n"
    "  --timeout S             close clients idle for S seconds, or whose reply write\n"
    "                          makes no progress for S seconds; 0 = never (default)\n"
    "  --client-output-buffer-limit 'CLASS HARD SOFT SECONDS ...'\n"
    "                          close a client whose pending replies exceed HARD bytes,\n"
    "                          or SOFT bytes for SECONDS (Redis's syntax; 0 = no limit;\n"
    "                          CLASS normal or pubsub; default\n"
    "                          'normal 0 0 0 pubsub 32mb 8mb 60')\n"
    "  --write-timeout S       reply writes without progress for S seconds close the\n"
    "                          client (default: --timeout's value)\n"
    "  --metrics-port N        serve /metrics (Prometheus) and /debug/fibers over HTTP\n"
    "                          on N (0 = a free port, logged); default: off\n"
    "  --slowlog-log-slower-than US  log commands that take at least US microseconds\n"
    "                          in the SLOWLOG (-1 = none, 0 = all; default 10000)\n"
    "  --slowlog-max-len N     SLOWLOG entries kept (default 128)\n"
    "  --requirepass PASS      clients must AUTH with PASS first (default: none)\n"
    "  --notify-keyspace-events CLASSES  keyspace notifications, Redis's letters\n"
    "                          (e.g. KEA; default: none)\n"
    "  --help                  this text\n"
    "Without options it serves an in-memory keyspace on 127.0.0.1:6380.\n";

namespace {

std::uint64_t parse_uint(std::string_view flag, std::string_view v, std::uint64_t lo,
                         std::uint64_t hi) {
  std::uint64_t x = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || p != v.data() + v.size() || v.empty() || x < lo || x > hi) {
    throw std::invalid_argument(std::string(flag) + " wants an integer in " + std::to_string(lo) +
                                ".." + std::to_string(hi) + ", got '" + std::string(v) + "'");
  }
  return x;
}

// redis.conf memory units: k=1000, kb=1024, m, mb, g, gb (case-insensitive).
std::uint64_t parse_memory(std::string_view flag, std::string_view v) {
  std::size_t digits = 0;
  while (digits < v.size() && v[digits] >= '0' && v[digits] <= '9') ++digits;
  std::string unit(v.substr(digits));
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::uint64_t mul = 1;
  if (unit.empty() || unit == "b")
    mul = 1;
  else if (unit == "k")
    mul = 1000;
  else if (unit == "kb")
    mul = 1024;
  else if (unit == "m")
    mul = 1000 * 1000;
  else if (unit == "mb")
    mul = 1024 * 1024;
  else if (unit == "g")
    mul = 1000 * 1000 * 1000;
  else if (unit == "gb")
    mul = 1024ull * 1024 * 1024;
  else
    throw std::invalid_argument(std::string(flag) + ": unknown unit '" + unit +
                                "' (use k, kb, m, mb, g or gb)");
  const std::uint64_t n = parse_uint(flag, v.substr(0, digits), 0, UINT64_MAX / mul);
  return n * mul;
}

bool parse_yes_no(std::string_view flag, std::string_view v) {
  if (v == "yes") return true;
  if (v == "no") return false;
  throw std::invalid_argument(std::string(flag) + " wants yes or no, got '" + std::string(v) + "'");
}

}  // namespace

Options parse_options(std::span<char* const> args, bool* help) {
  Options o;
  *help = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--help" || a == "-h") {
      *help = true;
      return o;
    }
    if (i + 1 >= args.size()) throw std::invalid_argument("missing value after " + std::string(a));
    const std::string_view v = args[++i];
    if (a == "--bind") {
      if (!weft::net::Address::try_parse(std::string(v) + ":0") &&
          !weft::net::Address::try_parse("[" + std::string(v) + "]:0"))
        throw std::invalid_argument("--bind wants an IP address, got '" + std::string(v) + "'");
      o.bind = v;
    } else if (a == "--port") {
      o.port = static_cast<std::uint16_t>(parse_uint(a, v, 1, 65535));
    } else if (a == "--workers") {
      o.workers = parse_uint(a, v, 1, 1024);
    } else if (a == "--io") {
      if (v == "auto")
        o.io = weft::IoBackend::auto_detect;
      else if (v == "io_uring")
        o.io = weft::IoBackend::io_uring;
      else if (v == "epoll")
        o.io = weft::IoBackend::epoll;
      else
        throw std::invalid_argument("--io wants auto, io_uring or epoll, got '" + std::string(v) +
                                    "'");
    } else if (a == "--appendonly") {
      o.appendonly = parse_yes_no(a, v);
    } else if (a == "--appendfsync") {
      if (v == "always")
        o.appendfsync = FsyncPolicy::always;
      else if (v == "everysec")
        o.appendfsync = FsyncPolicy::everysec;
      else if (v == "no")
        o.appendfsync = FsyncPolicy::no;
      else
        throw std::invalid_argument("--appendfsync wants always, everysec or no, got '" +
                                    std::string(v) + "'");
    } else if (a == "--dir") {
      std::error_code ec;
      if (v.empty() || !std::filesystem::is_directory(v, ec))
        throw std::invalid_argument("--dir: '" + std::string(v) + "' is not a directory");
      o.dir = v;
    } else if (a == "--dbfilename") {
      if (v.empty() || v.find('/') != std::string_view::npos)
        throw std::invalid_argument("--dbfilename: '" + std::string(v) +
                                    "' is not a file name (no '/', not empty)");
      o.dbfilename = v;
    } else if (a == "--save") {
      parse_save_schedule(v);  // throws for a malformed schedule
      o.save = v;
    } else if (a == "--maxclients") {
      o.maxclients = parse_uint(a, v, 1, 1000000);
    } else if (a == "--maxmemory") {
      o.maxmemory = parse_memory(a, v);
    } else if (a == "--maxmemory-policy") {
      const auto p = parse_policy(v);
      if (!p)
        throw std::invalid_argument(
            "--maxmemory-policy wants volatile-lru, volatile-lfu, volatile-random, volatile-ttl, "
            "allkeys-lru, allkeys-lfu, allkeys-random or noeviction, got '" +
            std::string(v) + "'");
      o.maxmemory_policy = *p;
    } else if (a == "--maxmemory-samples") {
      o.maxmemory_samples = static_cast<std::int64_t>(parse_uint(a, v, 1, INT32_MAX));
    } else if (a == "--lfu-log-factor") {
      o.lfu_log_factor = static_cast<std::int64_t>(parse_uint(a, v, 0, INT32_MAX));
    } else if (a == "--lfu-decay-time") {
      o.lfu_decay_time = static_cast<std::int64_t>(parse_uint(a, v, 0, INT32_MAX));
    } else if (a == "--timeout") {
      o.timeout_s = parse_uint(a, v, 0, 100LL * 365 * 24 * 3600);
    } else if (a == "--write-timeout") {
      o.write_timeout_s = parse_uint(a, v, 0, 100LL * 365 * 24 * 3600);
    } else if (a == "--metrics-port") {
      o.metrics_port = static_cast<int>(parse_uint(a, v, 0, 65535));
    } else if (a == "--slowlog-log-slower-than") {
      if (v == "-1")
        o.slowlog_log_slower_than = -1;
      else
        o.slowlog_log_slower_than = static_cast<std::int64_t>(parse_uint(a, v, 0, INT64_MAX));
    } else if (a == "--requirepass") {
      o.requirepass = std::string(v);
    } else if (a == "--notify-keyspace-events") {
      const auto flags = parse_notify_flags(v);
      if (!flags)
        throw std::invalid_argument("--notify-keyspace-events: " + std::string(kNotifyFlagsError));
      o.notify_keyspace_events = *flags;
    } else if (a == "--slowlog-max-len") {
      o.slowlog_max_len = static_cast<std::int64_t>(parse_uint(a, v, 0, INT64_MAX));
    } else if (a == "--client-output-buffer-limit") {
      // "<class> <hard> <soft> <seconds>", one or more groups, sizes with
      // redis.conf units; the classes weft-kv has are normal and pubsub.
      std::vector<std::string_view> w;
      for (std::size_t i = 0; i < v.size();) {
        const std::size_t j = std::min(v.find(' ', i), v.size());
        if (j > i) w.push_back(v.substr(i, j - i));
        i = j + 1;
      }
      if (w.empty() || w.size() % 4 != 0)
        throw std::invalid_argument(
            "--client-output-buffer-limit wants 'normal|pubsub HARD SOFT SECONDS ...', got '" +
            std::string(v) + "'");
      for (std::size_t g = 0; g < w.size(); g += 4) {
        if (w[g] != "normal" && w[g] != "pubsub")
          throw std::invalid_argument("--client-output-buffer-limit: unknown class '" +
                                      std::string(w[g]) + "' (normal or pubsub)");
        Options::OutputLimit& lim = w[g] == "normal" ? o.output_limit : o.pubsub_limit;
        lim.hard = parse_memory(a, w[g + 1]);
        lim.soft = parse_memory(a, w[g + 2]);
        lim.soft_seconds = parse_uint(a, w[g + 3], 0, 100LL * 365 * 24 * 3600);
      }
    } else {
      throw std::invalid_argument("unknown option " + std::string(a) + " (see --help)");
    }
  }
  return o;
}

const char* fsync_policy_name(FsyncPolicy p) noexcept {
  switch (p) {
    case FsyncPolicy::always:
      return "always";
    case FsyncPolicy::everysec:
      return "everysec";
    case FsyncPolicy::no:
      return "no";
  }
  return "everysec";
}

}  // namespace kv
