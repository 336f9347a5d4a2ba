// weft-kv commands: CONFIG GET/SET/RESETSTAT/REWRITE/HELP and the table of
// parameters, as Redis 7.0's src/config.c.
//
// Every parameter CONFIG GET reports is a row of kParams: its Redis name
// (an alias such as hash-max-ziplist-entries is a row of its own, as in
// Redis, sharing the storage of the name it stands for), how its value is
// parsed and printed, and whether CONFIG SET may change it. The settable
// ones are those of Settings (settings.hpp); the others report the
// start-up Options and refuse CONFIG SET with Redis's text for an
// immutable parameter. A name not in the table is unknown, as it would be
// to a Redis that lacks it.
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "commands/groups.hpp"
#include "commands/util.hpp"
#include "notify.hpp"

namespace kv::cmd {
namespace {

/// How a parameter's value is written (Redis's config types and flags).
enum class Kind : std::uint8_t {
  integer,   ///< string2ll, then the bounds
  memory,    ///< memtoull (k, kb, m, mb, g, gb), then the bounds
  fsync,     ///< the enum everysec | always | no
  policy,    ///< the enum maxmemory-policy (policy.hpp)
  save,      ///< "" only at run time: the schedule is set at start (--save)
  password,  ///< any string: requirepass (Settings::requirepass)
  notify,    ///< notify-keyspace-events' letters (notify.hpp)
  fixed,     ///< reported, not settable (immutable in weft-kv)
};

using Field = std::atomic<std::int64_t> Settings::*;

struct Param {
  const char* name;
  Kind kind;
  /// Bounds, checked as Redis's numericBoundaryCheck: unsigned comparison
  /// for its unsigned types, signed otherwise.
  bool is_unsigned;
  long long lo, hi;
  /// Where an integer or memory parameter of Settings lives (nullptr for
  /// maxmemory and timeout, kept as unsigned fields, and the others).
  Field field;
};

constexpr long long kLongMax = LONG_MAX;

constexpr Param kParams[] = {
    {"maxmemory", Kind::memory, true, 0, -1 /* ULLONG_MAX */, nullptr},
    {"timeout", Kind::integer, false, 0, INT_MAX, nullptr},
    {"appendfsync", Kind::fsync, false, 0, 0, nullptr},
    {"save", Kind::save, false, 0, 0, nullptr},
    {"requirepass", Kind::password, false, 0, 0, nullptr},
    {"notify-keyspace-events", Kind::notify, false, 0, 0, nullptr},
    {"hash-max-listpack-entries", Kind::integer, true, 0, kLongMax,
     &Settings::hash_max_listpack_entries},
    {"hash-max-ziplist-entries", Kind::integer, true, 0, kLongMax,
     &Settings::hash_max_listpack_entries},
    {"hash-max-listpack-value", Kind::memory, true, 0, kLongMax,
     &Settings::hash_max_listpack_value},
    {"hash-max-ziplist-value", Kind::memory, true, 0, kLongMax, &Settings::hash_max_listpack_value},
    {"set-max-intset-entries", Kind::integer, true, 0, kLongMax, &Settings::set_max_intset_entries},
    {"zset-max-listpack-entries", Kind::integer, true, 0, kLongMax,
     &Settings::zset_max_listpack_entries},
    {"zset-max-ziplist-entries", Kind::integer, true, 0, kLongMax,
     &Settings::zset_max_listpack_entries},
    {"zset-max-listpack-value", Kind::memory, true, 0, kLongMax,
     &Settings::zset_max_listpack_value},
    {"zset-max-ziplist-value", Kind::memory, true, 0, kLongMax, &Settings::zset_max_listpack_value},
    {"list-max-listpack-size", Kind::integer, false, INT_MIN, INT_MAX,
     &Settings::list_max_listpack_size},
    {"list-max-ziplist-size", Kind::integer, false, INT_MIN, INT_MAX,
     &Settings::list_max_listpack_size},
    {"list-compress-depth", Kind::integer, false, 0, INT_MAX, &Settings::list_compress_depth},
    {"slowlog-log-slower-than", Kind::integer, false, -1, LLONG_MAX,
     &Settings::slowlog_log_slower_than},
    {"slowlog-max-len", Kind::integer, true, 0, kLongMax, &Settings::slowlog_max_len},
    {"maxmemory-policy", Kind::policy, false, 0, 0, nullptr},
    {"maxmemory-samples", Kind::integer, false, 1, INT_MAX, &Settings::maxmemory_samples},
    {"lfu-log-factor", Kind::integer, false, 0, INT_MAX, &Settings::lfu_log_factor},
    {"lfu-decay-time", Kind::integer, false, 0, INT_MAX, &Settings::lfu_decay_time},
    {"auto-aof-rewrite-percentage", Kind::integer, false, 0, INT_MAX,
     &Settings::auto_aof_rewrite_percentage},
    {"auto-aof-rewrite-min-size", Kind::memory, false, 0, LLONG_MAX,
     &Settings::auto_aof_rewrite_min_size},
    {"rdb-key-save-delay", Kind::integer, false, INT_MIN, INT_MAX, &Settings::rdb_key_save_delay},
    {"bind", Kind::fixed, false, 0, 0, nullptr},
    {"port", Kind::fixed, false, 0, 0, nullptr},
    {"appendonly", Kind::fixed, false, 0, 0, nullptr},
    {"dir", Kind::fixed, false, 0, 0, nullptr},
    {"maxclients", Kind::fixed, false, 0, 0, nullptr},
    {"databases", Kind::fixed, false, 0, 0, nullptr},
    {"proto-max-bulk-len", Kind::fixed, false, 0, 0, nullptr},
    {"client-output-buffer-limit", Kind::fixed, false, 0, 0, nullptr},
};

const Param* find_param(std::string_view name) {
  for (const Param& p : kParams)
    if (eq_ci(name, p.name)) return &p;
  return nullptr;
}

std::string value_of(Host& host, const Param& p) {
  Settings& s = host.settings();
  const Options& o = host.options();
  const std::string_view name = p.name;
  switch (p.kind) {
    case Kind::integer:
    case Kind::memory:
      if (p.field != nullptr) return ll_to_string((s.*p.field).load(std::memory_order_relaxed));
      if (name == "maxmemory") return std::to_string(s.maxmemory.load(std::memory_order_relaxed));
      return std::to_string(s.timeout_s.load(std::memory_order_relaxed));
    case Kind::fsync:
      return fsync_policy_name(s.appendfsync.load(std::memory_order_relaxed));
    case Kind::policy:
      return policy_name(s.maxmemory_policy.load(std::memory_order_relaxed));
    case Kind::save:
      return o.save;
    case Kind::password:
      return s.requirepass.get();
    case Kind::notify:
      return notify_flags_string(s.notify_keyspace_events.load(std::memory_order_relaxed));
    case Kind::fixed:
      break;
  }
  if (name == "bind") return o.bind;
  if (name == "port") return std::to_string(o.port);
  if (name == "appendonly") return o.appendonly ? "yes" : "no";
  if (name == "dir") return std::filesystem::absolute(o.dir).string();
  if (name == "maxclients") return std::to_string(o.maxclients);
  if (name == "databases") return "1";
  if (name == "client-output-buffer-limit")
    return "normal " + std::to_string(o.output_limit.hard) + " " +
           std::to_string(o.output_limit.soft) + " " + std::to_string(o.output_limit.soft_seconds) +
           " slave 268435456 67108864 60 pubsub " + std::to_string(o.pubsub_limit.hard) + " " +
           std::to_string(o.pubsub_limit.soft) + " " + std::to_string(o.pubsub_limit.soft_seconds);
  return std::to_string(o.limits.max_bulk_len);  // proto-max-bulk-len
}

// Redis's memtoull (src/util.c): digits (strtoull, so "" is 0 and an
// overflow saturates) and an optional unit; no sign.
bool parse_memory(std::string_view v, unsigned long long& out) {
  if (!v.empty() && v[0] == '-') return false;
  std::size_t digits = 0;
  while (digits < v.size() && v[digits] >= '0' && v[digits] <= '9') ++digits;
  const std::string_view unit = v.substr(digits);
  unsigned long long mul = 1;
  if (unit.empty() || eq_ci(unit, "b"))
    mul = 1;
  else if (eq_ci(unit, "k"))
    mul = 1000;
  else if (eq_ci(unit, "kb"))
    mul = 1024;
  else if (eq_ci(unit, "m"))
    mul = 1000 * 1000;
  else if (eq_ci(unit, "mb"))
    mul = 1024 * 1024;
  else if (eq_ci(unit, "g"))
    mul = 1000ull * 1000 * 1000;
  else if (eq_ci(unit, "gb"))
    mul = 1024ull * 1024 * 1024;
  else
    return false;
  if (digits >= 128) return false;
  const std::string buf(v.substr(0, digits));
  errno = 0;
  const unsigned long long val = std::strtoull(buf.c_str(), nullptr, 10);
  out = val * mul;  // wraps on overflow, as Redis
  return true;
}

// A new value for `p`, checked as Redis's numericConfigSet / enumConfigSet;
// false with `error` set when it is refused.
struct Parsed {
  long long n = 0;
  FsyncPolicy fsync = FsyncPolicy::everysec;
  MaxmemoryPolicy policy = MaxmemoryPolicy::noeviction;
};

bool parse_value(const Param& p, std::string_view v, Parsed& out, std::string& error) {
  switch (p.kind) {
    case Kind::fsync:
      if (eq_ci(v, "everysec"))
        out.fsync = FsyncPolicy::everysec;
      else if (eq_ci(v, "always"))
        out.fsync = FsyncPolicy::always;
      else if (eq_ci(v, "no"))
        out.fsync = FsyncPolicy::no;
      else
        return error = "argument(s) must be one of the following: everysec, always, no", false;
      return true;
    case Kind::policy: {
      const auto p = parse_policy(v);
      if (!p) {
        error = "argument(s) must be one of the following: ";
        for (const MaxmemoryPolicy q : kMaxmemoryPolicies) {
          if (q != kMaxmemoryPolicies[0]) error += ", ";
          error += policy_name(q);
        }
        return false;
      }
      out.policy = *p;
      return true;
    }
    case Kind::save:
      if (!v.empty())
        return error =
                   "weft-kv sets the save schedule at start (--save): CONFIG SET save accepts \"\" "
                   "only",
               false;
      return true;
    case Kind::password:
      return true;
    case Kind::notify: {
      const auto flags = parse_notify_flags(v);
      if (!flags) return error = kNotifyFlagsError, false;
      out.n = *flags;
      return true;
    }
    case Kind::fixed:
      return error = "can't set immutable config", false;
    case Kind::integer:
    case Kind::memory:
      break;
  }
  if (p.kind == Kind::memory) {
    unsigned long long m = 0;
    if (!parse_memory(v, m)) return error = "argument must be a memory value", false;
    out.n = static_cast<long long>(m);
  } else if (!parse_ll(v, out.n)) {
    return error = "argument couldn't be parsed into an integer", false;
  }
  if (p.is_unsigned) {
    const auto u = static_cast<unsigned long long>(out.n);
    const auto lo = static_cast<unsigned long long>(p.lo);
    const auto hi = static_cast<unsigned long long>(p.hi);
    if (u > hi || u < lo) {
      error = "argument must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
              " inclusive";
      return false;
    }
  } else if (out.n > p.hi || out.n < p.lo) {
    error = "argument must be between " + std::to_string(p.lo) + " and " + std::to_string(p.hi) +
            " inclusive";
    return false;
  }
  return true;
}

void store(Host& host, const Param& p, const Parsed& v, std::string_view text) {
  Settings& s = host.settings();
  const std::string_view name = p.name;
  if (p.kind == Kind::fsync) {
    s.appendfsync.store(v.fsync, std::memory_order_relaxed);
  } else if (p.kind == Kind::password) {
    s.requirepass.set(text);
  } else if (p.kind == Kind::notify) {
    s.notify_keyspace_events.store(static_cast<unsigned>(v.n), std::memory_order_relaxed);
  } else if (p.kind == Kind::policy) {
    s.maxmemory_policy.store(v.policy, std::memory_order_relaxed);
  } else if (p.field != nullptr) {
    (s.*p.field).store(v.n, std::memory_order_relaxed);
  } else if (name == "maxmemory") {
    s.maxmemory.store(static_cast<std::uint64_t>(v.n), std::memory_order_relaxed);
  } else if (name == "timeout") {
    s.timeout_s.store(static_cast<std::uint64_t>(v.n), std::memory_order_relaxed);
  }
  host.settings_changed(name);
}

// CONFIG GET pattern [pattern ...] (Redis 7.0's configGetCommand): a name
// without glob characters is looked up (any case) and reported as typed;
// a pattern matches names ignoring case. Each parameter once.
void cmd_config_get(Context& c) {
  std::vector<std::pair<std::string, const Param*>> hits;
  auto seen = [&](const Param* p) {
    for (const auto& h : hits)
      if (h.second == p) return true;
    return false;
  };
  for (std::size_t i = 2; i < c.argv.size(); ++i) {
    const std::string_view pattern = c.argv[i];
    if (pattern.find_first_of("[*?") == std::string_view::npos) {
      const Param* p = find_param(pattern);
      if (p != nullptr && !seen(p)) hits.emplace_back(std::string(pattern), p);
      continue;
    }
    for (const Param& p : kParams)
      if (!seen(&p) && glob_match(pattern, p.name, /*nocase=*/true)) hits.emplace_back(p.name, &p);
  }
  map_header(c, hits.size());
  for (const auto& [name, p] : hits) {
    Reply::bulk(c.out, name);
    Reply::bulk(c.out, value_of(c.host, *p));
  }
}

// CONFIG SET name value [name value ...] (Redis 7.0's configSetCommand):
// all or nothing — every name is looked up and every value checked before
// any is stored.
void cmd_config_set(Context& c) {
  if (c.argv.size() % 2 != 0) return err(c, kSyntax);
  auto failed = [&](std::string_view arg, std::string_view why) {
    err(c, "ERR CONFIG SET failed (possibly related to argument '" + std::string(arg) + "') - " +
               std::string(why));
  };
  // The first bad name decides the error, as in Redis's single pass.
  std::vector<std::pair<const Param*, Parsed>> set;
  for (std::size_t i = 2; i < c.argv.size(); i += 2) {
    const Param* p = find_param(c.argv[i]);
    if (p == nullptr)
      return err(c, "ERR Unknown option or number of arguments for CONFIG SET - '" +
                        std::string(c.argv[i]) + "'");
    if (p->kind == Kind::fixed) return failed(c.argv[i], "can't set immutable config");
    for (const auto& s : set)
      if (s.first == p) return failed(c.argv[i], "duplicate parameter");
    set.emplace_back(p, Parsed{});
  }
  std::string error;
  for (std::size_t k = 0; k < set.size(); ++k) {
    if (!parse_value(*set[k].first, c.argv[3 + 2 * k], set[k].second, error))
      return failed(set[k].first->name, error);
  }
  for (std::size_t k = 0; k < set.size(); ++k)
    store(c.host, *set[k].first, set[k].second, c.argv[3 + 2 * k]);
  ok(c);
}

void cmd_config_resetstat(Context& c) {
  c.host.reset_stats();
  ok(c);
}

void cmd_config_rewrite(Context& c) {
  err(c, "ERR The server is running without a config file");
}

void cmd_config_help(Context& c) {
  static constexpr std::string_view kLines[] = {
      "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "GET <pattern>",
      "    Return parameters matching the glob-like <pattern> and their values.",
      "SET <directive> <value>",
      "    Set the configuration <directive> to <value>.",
      "RESETSTAT",
      "    Reset statistics reported by the INFO command.",
      "REWRITE",
      "    Rewrite the configuration file.",
      "HELP",
      "    Prints this help.",
  };
  help_reply(c, kLines);
}

}  // namespace

std::span<const Command> config_commands() noexcept {
  static constexpr unsigned kAdminFlags = kAdmin | kNoScript | kLoading | kStale;
  static constexpr const char* kAdminAcl = "@admin @slow @dangerous";
  static constexpr Command kConfig[] = {
      {"config|get", -3, kAdminFlags, kAdminAcl, "", {}, cmd_config_get},
      {"config|set",
       -4,
       kAdminFlags,
       kAdminAcl,
       "request_policy:all_nodes response_policy:all_succeeded",
       {},
       cmd_config_set},
      {"config|resetstat", 2, kAdminFlags, kAdminAcl, "", {}, cmd_config_resetstat},
      {"config|rewrite", 2, kAdminFlags, kAdminAcl, "", {}, cmd_config_rewrite},
      {"config|help", 2, kLoading | kStale, "@slow", "", {}, cmd_config_help},
  };
  static constexpr Command kTable[] = {
      {"config", -2, 0, "@slow", "", {}, nullptr, {}, kConfig},
  };
  return kTable;
}

}  // namespace kv::cmd
