// weft-kv commands: the keyspace (DEL, EXISTS, TYPE, expiry, KEYS, SCAN,
// DBSIZE, FLUSHALL, RENAME, COPY, RANDOMKEY, TOUCH, OBJECT), as Redis 7.0's
// src/db.c, src/expire.c and src/object.c.
#include <algorithm>
#include <charconv>
#include <climits>
#include <string>
#include <string_view>
#include <vector>

#include "commands/groups.hpp"
#include "commands/util.hpp"
#include "evict.hpp"
#include "notify.hpp"

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
      notify(c, kNotifyGeneric, "del", key);
    }
  }
  if (n != 0) {
    std::vector<std::string_view> log(c.argv.begin(), c.argv.end());
    log[0] = "DEL";
    c.host.propagate(c, log);
  }
  Reply::integer(c.out, n);
}

// EXISTS and TOUCH: how many of the keys exist (a key named twice counts
// twice); TOUCH counts as an access, EXISTS does not.
void count_existing(Context& c, bool touch) {
  Keyspace& ks = c.host.keyspace();
  std::int64_t n = 0;
  for (std::string_view key : c.argv.subspan(1)) {
    const std::uint64_t h = Keyspace::hash(key);
    Shard& sh = ks.shard_of(h);
    std::lock_guard lk(sh.mu);
    if (sh.find(key, h, c.now, touch) != nullptr)
      ++n;
    else
      key_miss(c, key);
  }
  Reply::integer(c.out, n);
}

void cmd_exists(Context& c) {
  count_existing(c, false);
}

void cmd_type(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  const Entry* e = k.read_peek(c);
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
    notify(c, kNotifyGeneric, "del", c.argv[1]);
    Reply::integer(c.out, 1);
  } else {
    k.shard.set_expire(e, when < 0 ? 0 : when);
    const std::string ms = ll_to_string(when < 0 ? 0 : when);
    const std::string_view log[] = {"PEXPIREAT", c.argv[1], ms};
    c.host.propagate(c, log);
    // Redis replies before it announces a new TTL (expireGenericCommand):
    // a RESP3 client subscribed to its own keys sees that order.
    Reply::integer(c.out, 1);
    notify(c, kNotifyGeneric, "expire", c.argv[1]);
  }
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

// TTL, PTTL, EXPIRETIME, PEXPIRETIME (Redis's ttlGenericCommand): -2 for
// a missing key, -1 without a TTL; seconds are rounded to the nearest.
void ttl_generic(Context& c, bool ms, bool absolute) {
  Locked k(c.host.keyspace(), c.argv[1]);
  const Entry* e = k.read_peek(c);
  if (e == nullptr) return Reply::integer(c.out, -2);
  if (e->expire_at < 0) return Reply::integer(c.out, -1);
  std::int64_t ttl = absolute ? e->expire_at : e->expire_at - c.now;
  if (ttl < 0) ttl = 0;
  Reply::integer(c.out, ms ? ttl : (ttl + 500) / 1000);
}

void cmd_ttl(Context& c) {
  ttl_generic(c, false, false);
}
void cmd_pttl(Context& c) {
  ttl_generic(c, true, false);
}
void cmd_expiretime(Context& c) {
  ttl_generic(c, false, true);
}
void cmd_pexpiretime(Context& c) {
  ttl_generic(c, true, true);
}

void cmd_persist(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.find(c.now);
  if (e == nullptr || e->expire_at < 0) return Reply::integer(c.out, 0);
  k.shard.set_expire(e, -1);
  c.host.propagate(c, c.argv);
  notify(c, kNotifyGeneric, "persist", c.argv[1]);
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
  ScanArgs args;
  if (!parse_scan_cursor(c, c.argv[1], args.cursor) ||
      !parse_scan_options(c, 2, /*allow_type=*/true, args))
    return;
  const std::uint64_t cursor = args.cursor;
  const long long count = args.count;
  const std::string_view pattern = args.pattern;
  const bool match = args.use_pattern;
  const std::string_view type_filter = args.type;
  const bool filter_type = args.has_type;
  Keyspace& ks = c.host.keyspace();
  std::size_t shard = cursor & (Keyspace::kShards - 1);
  std::uint64_t v = cursor >> Keyspace::kShardBits;
  std::vector<std::string> found;
  const auto want = static_cast<std::size_t>(std::min<long long>(count, 1LL << 32));
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
  scan_reply(c, done ? 0 : (v << Keyspace::kShardBits) | shard, found);
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

// RENAME / RENAMENX (Redis's renameGenericCommand): the value moves with
// its TTL; an existing destination is replaced (RENAME) or kept
// (RENAMENX: 0). Atomic across the two shards.
void rename_generic(Context& c, bool nx) {
  Keyspace& ks = c.host.keyspace();
  MultiLock lock(ks, c.argv.subspan(1, 2));
  const std::string_view from = c.argv[1], to = c.argv[2];
  const std::uint64_t hf = Keyspace::hash(from), ht = Keyspace::hash(to);
  Shard& sf = ks.shard_of(hf);
  Shard& st = ks.shard_of(ht);
  Entry* src = sf.find(from, hf, c.now);
  if (src == nullptr) return err(c, "ERR no such key");
  if (from == to) return nx ? Reply::integer(c.out, 0) : ok(c);
  if (Entry* dst = st.find(to, ht, c.now)) {
    if (nx) return Reply::integer(c.out, 0);
    st.erase(dst);
  }
  Entry* dst = st.insert(to, ht);
  if (src->object)
    st.assign(dst, std::move(src->object));
  else
    st.assign(dst, std::move(src->value), src->form());
  dst->access_clock = src->access_clock;
  if (src->expire_at >= 0) st.set_expire(dst, src->expire_at);
  sf.erase(src);
  c.host.propagate(c, c.argv);
  notify(c, kNotifyGeneric, "rename_from", from);
  notify(c, kNotifyGeneric, "rename_to", to);
  if (nx) return Reply::integer(c.out, 1);
  ok(c);
}

void cmd_rename(Context& c) {
  rename_generic(c, false);
}
void cmd_renamenx(Context& c) {
  rename_generic(c, true);
}

// COPY source destination [DB db] [REPLACE] (Redis's copyCommand): a deep
// copy with the TTL; one database, so DB must name it.
void cmd_copy(Context& c) {
  bool replace = false;
  for (std::size_t j = 3; j < c.argv.size(); ++j) {
    if (eq_ci(c.argv[j], "replace")) {
      replace = true;
    } else if (eq_ci(c.argv[j], "db") && j + 1 < c.argv.size()) {
      int db = 0;
      if (!parse_int(c, c.argv[++j], db)) return;
      if (db != 0) return err(c, "ERR DB index is out of range");
    } else {
      return err(c, kSyntax);
    }
  }
  const std::string_view from = c.argv[1], to = c.argv[2];
  if (from == to) return err(c, "ERR source and destination objects are the same");
  Keyspace& ks = c.host.keyspace();
  MultiLock lock(ks, c.argv.subspan(1, 2));
  const std::uint64_t hf = Keyspace::hash(from), ht = Keyspace::hash(to);
  Shard& sf = ks.shard_of(hf);
  Shard& st = ks.shard_of(ht);
  const Entry* src = sf.find(from, hf, c.now);
  if (src == nullptr) key_miss(c, from);
  if (src == nullptr) return Reply::integer(c.out, 0);
  Entry* dst = st.find(to, ht, c.now);
  if (dst != nullptr && !replace) return Reply::integer(c.out, 0);
  // The copy is made before anything changes (it may throw bad_alloc).
  std::unique_ptr<Object> object = src->object ? src->object->clone() : nullptr;
  std::string value = src->object ? std::string() : src->value;
  StringForm form = src->form();
  if (form == StringForm::encoded && string_encoding(*src) == std::string_view("int"))
    form = StringForm::unshared_int;  // dupStringObject: a fresh, unshared object
  if (dst != nullptr) st.erase(dst);
  dst = st.insert(to, ht);
  if (object)
    st.assign(dst, std::move(object));
  else
    st.assign(dst, value, form);
  if (src->expire_at >= 0) st.set_expire(dst, src->expire_at);
  c.host.propagate(c, c.argv);
  notify(c, kNotifyGeneric, "copy_to", to);
  Reply::integer(c.out, 1);
}

// MOVE key db: there is one database, so it is either the same one or out
// of range (Redis's texts for both).
void cmd_move(Context& c) {
  int db = 0;
  if (!parse_int(c, c.argv[2], db)) return;
  if (db != 0) return err(c, "ERR DB index is out of range");
  err(c, "ERR source and destination objects are the same");
}

// RANDOMKEY: a shard chosen in proportion to its keys, then a random
// entry of it; an expired one found is deleted and another drawn.
void cmd_randomkey(Context& c) {
  Keyspace& ks = c.host.keyspace();
  auto& rng = random_engine();
  for (int tries = 0; tries < 1000; ++tries) {
    const std::int64_t total = ks.keys();
    if (total <= 0) break;
    auto pick = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(total));
    std::size_t i = 0;
    for (; i + 1 < Keyspace::kShards; ++i) {
      pick -= ks.shard(i).counters().keys.load(std::memory_order_relaxed);
      if (pick < 0) break;
    }
    Shard& sh = ks.shard(i);
    std::lock_guard lk(sh.mu);
    Entry* e = sh.table().random(rng);
    if (e == nullptr) continue;  // emptied meanwhile
    if (e->expire_at >= 0 && e->expire_at <= c.now) {
      // Lazy expiry, as Redis's dbRandomKey: find() deletes it, counts it
      // and reports it (the `expired` event).
      (void)sh.find(e->key, e->hash, c.now);
      continue;
    }
    return Reply::bulk(c.out, e->key);
  }
  null_bulk(c);
}

void cmd_touch(Context& c) {
  count_existing(c, true);
}

// --- OBJECT (Redis's objectCommand; lookups do not count as accesses) --------

void cmd_object_encoding(Context& c) {
  Locked k(c.host.keyspace(), c.argv[2]);
  const Entry* e = k.peek(c.now);
  if (e == nullptr) return null_bulk(c);
  Reply::bulk(c.out, e->object ? e->object->encoding() : string_encoding(*e));
}

void cmd_object_refcount(Context& c) {
  Locked k(c.host.keyspace(), c.argv[2]);
  const Entry* e = k.peek(c.now);
  if (e == nullptr) return null_bulk(c);
  Reply::integer(c.out, string_shared(*e) ? INT_MAX : 1);
}

void cmd_object_idletime(Context& c) {
  Locked k(c.host.keyspace(), c.argv[2]);
  const Entry* e = k.peek(c.now);
  if (e == nullptr) return null_bulk(c);
  if (policy_is_lfu(c.host.settings().maxmemory_policy.load(std::memory_order_relaxed)))
    return err(c,
               "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that "
               "when switching between policies at runtime LRU and LFU data will take some time "
               "to adjust.");
  // Redis's estimateObjectIdleTime, in seconds.
  Reply::integer(c.out,
                 static_cast<std::int64_t>(lru_idle_ms(e->access_clock, lru_clock(c.now)) / 1000));
}

void cmd_object_freq(Context& c) {
  Locked k(c.host.keyspace(), c.argv[2]);
  const Entry* e = k.peek(c.now);
  if (e == nullptr) return null_bulk(c);
  if (!policy_is_lfu(c.host.settings().maxmemory_policy.load(std::memory_order_relaxed)))
    return err(c,
               "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please "
               "note that when switching between policies at runtime LRU and LFU data will take "
               "some time to adjust.");
  // LFUDecrAndReturn: the counter as decayed now (not stored, as Redis).
  Reply::integer(
      c.out, lfu_decr_and_return(e->access_clock, lfu_minutes(c.now),
                                 c.host.settings().lfu_decay_time.load(std::memory_order_relaxed)));
}

void cmd_object_help(Context& c) {
  static constexpr std::string_view kLines[] = {
      "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "ENCODING <key>",
      "    Return the kind of internal representation used in order to store the value",
      "    associated with a <key>.",
      "FREQ <key>",
      "    Return the access frequency index of the <key>. The returned integer is",
      "    proportional to the logarithm of the recent access frequency of the key.",
      "IDLETIME <key>",
      "    Return the idle time of the <key>, that is the approximated number of",
      "    seconds elapsed since the last access to the key.",
      "REFCOUNT <key>",
      "    Return the number of references of the value associated with the specified",
      "    <key>.",
      "HELP",
      "    Prints this help.",
  };
  help_reply(c, kLines);
}

}  // namespace

std::span<const Command> key_commands() noexcept {
  static constexpr const char* kMultiSum = "request_policy:multi_shard response_policy:agg_sum";
  static constexpr const char* kAllShards =
      "request_policy:all_shards response_policy:all_succeeded";
  static constexpr Command kObject[] = {
      {"object|encoding",
       3,
       kReadonly,
       "@keyspace @read @slow",
       "nondeterministic_output",
       {"RO", 2, 0},
       cmd_object_encoding},
      {"object|freq",
       3,
       kReadonly,
       "@keyspace @read @slow",
       "nondeterministic_output",
       {"RO", 2, 0},
       cmd_object_freq},
      {"object|idletime",
       3,
       kReadonly,
       "@keyspace @read @slow",
       "nondeterministic_output",
       {"RO", 2, 0},
       cmd_object_idletime},
      {"object|refcount",
       3,
       kReadonly,
       "@keyspace @read @slow",
       "nondeterministic_output",
       {"RO", 2, 0},
       cmd_object_refcount},
      {"object|help", 2, kLoading | kStale, "@keyspace @slow", "", {}, cmd_object_help},
  };
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
      {"expiretime",
       2,
       kReadonly | kFast,
       "@keyspace @read @fast",
       "",
       {"RO access", 1, 0},
       cmd_expiretime},
      {"pexpiretime",
       2,
       kReadonly | kFast,
       "@keyspace @read @fast",
       "",
       {"RO access", 1, 0},
       cmd_pexpiretime},
      {"rename",
       3,
       kWrite,
       "@keyspace @write @slow",
       "",
       {{"RW access delete", 1, 0}, {"OW update", 2, 0}},
       cmd_rename},
      {"renamenx",
       3,
       kWrite | kFast,
       "@keyspace @write @fast",
       "",
       {{"RW access delete", 1, 0}, {"OW insert", 2, 0}},
       cmd_renamenx},
      {"copy",
       -3,
       kWrite | kDenyOom,
       "@keyspace @write @slow",
       "",
       {{"RO access", 1, 0}, {"OW update", 2, 0}},
       cmd_copy},
      {"move",
       3,
       kWrite | kFast,
       "@keyspace @write @fast",
       "",
       {"RW access update", 1, 0},
       cmd_move},
      {"randomkey",
       1,
       kReadonly,
       "@keyspace @read @slow",
       "request_policy:all_shards nondeterministic_output",
       {},
       cmd_randomkey},
      {"touch",
       -2,
       kReadonly | kFast,
       "@keyspace @read @fast",
       "request_policy:multi_shard response_policy:agg_sum",
       {"RO", 1, -1},
       cmd_touch},
      {"object", -2, 0, "@slow", "", {}, nullptr, {}, kObject},
  };
  return kTable;
}

}  // namespace kv::cmd
