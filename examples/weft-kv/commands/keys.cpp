// weft-kv commands: the keyspace (DEL, EXISTS, TYPE, expiry, KEYS, SCAN,
// DBSIZE, FLUSHALL), as Redis 7.0's src/db.c and src/expire.c.
#include <charconv>
#include <climits>
#include <string>
#include <string_view>
#include <vector>

#include "commands/groups.hpp"
#include "commands/util.hpp"

namespace kv::cmd {
namespace {

void cmd_del(Context& c) {
  Keyspace& ks = c.host.keyspace();
  const auto keys = c.argv.subspan(1);
  MultiLock lock(ks, keys);
  std::int64_t n = 0;
  for (std::string_view key : keys) {
    const std::uint64_t h = Keyspace::hash(key);
    Shard& sh = ks.shard_of(h);
    if (Entry* e = sh.find(key, h, c.now)) {
      sh.erase(e);
      ++n;
    }
  }
  if (n != 0) {
    std::vector<std::string_view> log(c.argv.begin(), c.argv.end());
    log[0] = "DEL";
    c.host.propagate(c, log);
  }
  Reply::integer(c.out, n);
}

void cmd_exists(Context& c) {
  Keyspace& ks = c.host.keyspace();
  std::int64_t n = 0;
  for (std::string_view key : c.argv.subspan(1)) {
    const std::uint64_t h = Keyspace::hash(key);
    Shard& sh = ks.shard_of(h);
    std::lock_guard lk(sh.mu);
    if (sh.find(key, h, c.now) != nullptr) ++n;
  }
  Reply::integer(c.out, n);
}

void cmd_type(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  const Entry* e = k.find(c.now);
  Reply::simple(c.out, e == nullptr ? "none" : type_name(e->type()));
}

// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (Redis expireGenericCommand).
void expire_generic(Context& c, std::int64_t base, bool seconds, const char* name) {
  enum : unsigned { NX = 1, XX = 2, GT = 4, LT = 8 };
  unsigned flags = 0;
  for (std::size_t j = 3; j < c.argv.size(); ++j) {
    const std::string_view o = c.argv[j];
    if (eq_ci(o, "nx"))
      flags |= NX;
    else if (eq_ci(o, "xx"))
      flags |= XX;
    else if (eq_ci(o, "gt"))
      flags |= GT;
    else if (eq_ci(o, "lt"))
      flags |= LT;
    else
      return err(c, "ERR Unsupported option " + std::string(o));
  }
  if ((flags & NX) && (flags & (XX | GT | LT)))
    return err(c, "ERR NX and XX, GT or LT options at the same time are not compatible");
  if ((flags & GT) && (flags & LT))
    return err(c, "ERR GT and LT options at the same time are not compatible");
  long long when = 0;
  if (!parse_ll(c.argv[2], when)) return err(c, kNotInt);
  if (seconds) {
    if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000) return expire_error(c, name);
    when *= 1000;
  }
  if (when > LLONG_MAX - base) return expire_error(c, name);
  when += base;
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.find(c.now);
  if (e == nullptr) return Reply::integer(c.out, 0);
  if (flags) {
    const std::int64_t cur = e->expire_at;
    if ((flags & NX) && cur != -1) return Reply::integer(c.out, 0);
    if ((flags & XX) && cur == -1) return Reply::integer(c.out, 0);
    if ((flags & GT) && (when <= cur || cur == -1)) return Reply::integer(c.out, 0);
    if ((flags & LT) && (when >= cur && cur != -1)) return Reply::integer(c.out, 0);
  }
  if (when <= c.now && !c.host.loading()) {
    k.shard.erase(e);
    const std::string_view log[] = {"DEL", c.argv[1]};
    c.host.propagate(c, log);
  } else {
    k.shard.set_expire(e, when < 0 ? 0 : when);
    const std::string ms = ll_to_string(when < 0 ? 0 : when);
    const std::string_view log[] = {"PEXPIREAT", c.argv[1], ms};
    c.host.propagate(c, log);
  }
  Reply::integer(c.out, 1);
}

void cmd_expire(Context& c) {
  expire_generic(c, c.now, true, "expire");
}
void cmd_pexpire(Context& c) {
  expire_generic(c, c.now, false, "pexpire");
}
void cmd_expireat(Context& c) {
  expire_generic(c, 0, true, "expireat");
}
void cmd_pexpireat(Context& c) {
  expire_generic(c, 0, false, "pexpireat");
}

void ttl_generic(Context& c, bool ms) {
  Locked k(c.host.keyspace(), c.argv[1]);
  const Entry* e = k.find(c.now);
  if (e == nullptr) return Reply::integer(c.out, -2);
  if (e->expire_at < 0) return Reply::integer(c.out, -1);
  std::int64_t ttl = e->expire_at - c.now;
  if (ttl < 0) ttl = 0;
  Reply::integer(c.out, ms ? ttl : (ttl + 500) / 1000);
}

void cmd_ttl(Context& c) {
  ttl_generic(c, false);
}
void cmd_pttl(Context& c) {
  ttl_generic(c, true);
}

void cmd_persist(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.find(c.now);
  if (e == nullptr || e->expire_at < 0) return Reply::integer(c.out, 0);
  k.shard.set_expire(e, -1);
  c.host.propagate(c, c.argv);
  Reply::integer(c.out, 1);
}

void cmd_keys(Context& c) {
  Keyspace& ks = c.host.keyspace();
  const std::string_view pattern = c.argv[1];
  const bool all = pattern == "*";
  std::vector<std::string> found;
  for (std::size_t i = 0; i < Keyspace::kShards; ++i) {
    Shard& sh = ks.shard(i);
    std::lock_guard lk(sh.mu);
    sh.table().for_each([&](const Entry& e) {
      if (e.expire_at >= 0 && e.expire_at <= c.now) return;
      if (all || glob_match(pattern, e.key)) found.push_back(e.key);
    });
  }
  Reply::array_header(c.out, found.size());
  for (const std::string& k : found) Reply::bulk(c.out, k);
}

void cmd_scan(Context& c) {
  // Cursor: the low kShardBits bits are the shard, the rest that shard's
  // reverse-binary bucket cursor.
  const std::string_view cs = c.argv[1];
  unsigned long long cursor = 0;
  {
    const auto [p, ec] = std::from_chars(cs.data(), cs.data() + cs.size(), cursor);
    if (cs.empty() || ec != std::errc() || p != cs.data() + cs.size())
      return err(c, "ERR invalid cursor");
  }
  long long count = 10;
  std::string_view pattern;
  bool match = false;
  std::string_view type_filter;
  bool filter_type = false;
  for (std::size_t i = 2; i < c.argv.size(); i += 2) {
    const std::string_view o = c.argv[i];
    if (i + 1 >= c.argv.size()) return err(c, kSyntax);
    if (eq_ci(o, "count")) {
      if (!parse_ll(c.argv[i + 1], count)) return err(c, kNotInt);
      if (count < 1) return err(c, kSyntax);
    } else if (eq_ci(o, "match")) {
      pattern = c.argv[i + 1];
      match = !(pattern == "*");
    } else if (eq_ci(o, "type")) {
      type_filter = c.argv[i + 1];
      filter_type = true;
    } else {
      return err(c, kSyntax);
    }
  }
  Keyspace& ks = c.host.keyspace();
  std::size_t shard = cursor & (Keyspace::kShards - 1);
  std::uint64_t v = cursor >> Keyspace::kShardBits;
  std::vector<std::string> found;
  const auto want = static_cast<std::size_t>(count);
  std::size_t iterations = 0;
  const std::size_t max_iterations = want * 10;
  bool done = false;
  while (found.size() < want && iterations < max_iterations) {
    Shard& sh = ks.shard(shard);
    {
      std::lock_guard lk(sh.mu);
      v = sh.table().scan(v, [&](const Entry& e) {
        if (e.expire_at >= 0 && e.expire_at <= c.now) return;
        if (match && !glob_match(pattern, e.key)) return;
        if (!filter_type || eq_ci(type_filter, type_name(e.type()))) found.push_back(e.key);
      });
    }
    ++iterations;
    if (v == 0) {
      if (++shard == Keyspace::kShards) {
        done = true;
        break;
      }
    }
  }
  const std::uint64_t next = done ? 0 : (v << Keyspace::kShardBits) | shard;
  Reply::array_header(c.out, 2);
  Reply::bulk(c.out, ll_to_string(static_cast<long long>(next)));
  Reply::array_header(c.out, found.size());
  for (const std::string& k : found) Reply::bulk(c.out, k);
}

void cmd_dbsize(Context& c) {
  Reply::integer(c.out, c.host.keyspace().keys());
}

void cmd_flush(Context& c) {
  if (c.argv.size() > 2 ||
      (c.argv.size() == 2 && !eq_ci(c.argv[1], "async") && !eq_ci(c.argv[1], "sync")))
    return err(c, kSyntax);
  Keyspace& ks = c.host.keyspace();
  MultiLock lock(ks);
  for (std::size_t i = 0; i < Keyspace::kShards; ++i) ks.shard(i).clear();
  const std::string_view log[] = {"FLUSHALL"};
  c.host.propagate(c, log);
  ok(c);
}

}  // namespace

std::span<const Command> key_commands() noexcept {
  static constexpr const char* kMultiSum = "request_policy:multi_shard response_policy:agg_sum";
  static constexpr const char* kAllShards =
      "request_policy:all_shards response_policy:all_succeeded";
  static constexpr Command kTable[] = {
      {"del", -2, kWrite, "@keyspace @write @slow", kMultiSum, {"RM delete", 1, -1}, cmd_del},
      {"unlink",
       -2,
       kWrite | kFast,
       "@keyspace @write @fast",
       kMultiSum,
       {"RM delete", 1, -1},
       cmd_del},
      {"exists",
       -2,
       kReadonly | kFast,
       "@keyspace @read @fast",
       kMultiSum,
       {"RO", 1, -1},
       cmd_exists},
      {"type", 2, kReadonly | kFast, "@keyspace @read @fast", "", {"RO", 1, 0}, cmd_type},
      {"expire", -3, kWrite | kFast, "@keyspace @write @fast", "", {"RW update", 1, 0}, cmd_expire},
      {"pexpire",
       -3,
       kWrite | kFast,
       "@keyspace @write @fast",
       "",
       {"RW update", 1, 0},
       cmd_pexpire},
      {"expireat",
       -3,
       kWrite | kFast,
       "@keyspace @write @fast",
       "",
       {"RW update", 1, 0},
       cmd_expireat},
      {"pexpireat",
       -3,
       kWrite | kFast,
       "@keyspace @write @fast",
       "",
       {"RW update", 1, 0},
       cmd_pexpireat},
      {"ttl",
       2,
       kReadonly | kFast,
       "@keyspace @read @fast",
       "nondeterministic_output",
       {"RO access", 1, 0},
       cmd_ttl},
      {"pttl",
       2,
       kReadonly | kFast,
       "@keyspace @read @fast",
       "nondeterministic_output",
       {"RO access", 1, 0},
       cmd_pttl},
      {"persist",
       2,
       kWrite | kFast,
       "@keyspace @write @fast",
       "",
       {"RW update", 1, 0},
       cmd_persist},
      {"keys",
       2,
       kReadonly,
       "@keyspace @read @slow @dangerous",
       "request_policy:all_shards nondeterministic_output_order",
       {},
       cmd_keys},
      {"scan",
       -2,
       kReadonly,
       "@keyspace @read @slow",
       "nondeterministic_output request_policy:special",
       {},
       cmd_scan},
      {"dbsize",
       1,
       kReadonly | kFast,
       "@keyspace @read @fast",
       "request_policy:all_shards response_policy:agg_sum",
       {},
       cmd_dbsize},
      {"flushdb", -1, kWrite, "@keyspace @write @slow @dangerous", kAllShards, {}, cmd_flush},
      {"flushall", -1, kWrite, "@keyspace @write @slow @dangerous", kAllShards, {}, cmd_flush},
  };
  return kTable;
}

}  // namespace kv::cmd
