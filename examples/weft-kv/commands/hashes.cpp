// weft-kv commands: hashes, as Redis 7.0's src/t_hash.c. The value type
// is types/hash.hpp (listpack / hashtable encodings). Writes go to the AOF
// as HSET and HDEL, in the form of their final values (HINCRBY and
// HINCRBYFLOAT become HSET with the new value, as Redis does for the
// float one), so a replay never re-does arithmetic.
#include <algorithm>
#include <climits>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "commands/groups.hpp"
#include "commands/util.hpp"
#include "notify.hpp"
#include "types/hash.hpp"

namespace kv::cmd {
namespace {

HashObject::Limits limits(Context& c) {
  const Settings& s = c.host.settings();
  return {s.hash_max_listpack_entries.load(std::memory_order_relaxed),
          s.hash_max_listpack_value.load(std::memory_order_relaxed)};
}

// The hash at `e` (nullptr when e is), or nullptr after replying WRONGTYPE
// (`wrong` set).
HashObject* as_hash(Context& c, Entry* e, bool& wrong) {
  wrong = false;
  if (e == nullptr) return nullptr;
  if (e->type() != Type::hash) {
    wrong = true;
    err(c, kWrongType);
    return nullptr;
  }
  return static_cast<HashObject*>(e->object.get());
}

// Redis's hashTypeLookupWriteOrCreate: the hash at the locked key, created
// empty (listpack) when missing; nullptr after a WRONGTYPE reply.
HashObject* hash_for_write(Context& c, Locked& k, Entry*& e) {
  e = k.find(c.now);
  if (e == nullptr) {
    e = k.shard.insert(k.key, k.h);
    k.shard.assign(e, std::make_unique<HashObject>());
  } else if (e->type() != Type::hash) {
    err(c, kWrongType);
    return nullptr;
  }
  return static_cast<HashObject*>(e->object.get());
}

// A write left `e`'s hash empty only if it created it and failed: drop it
// then (Redis never keeps an empty hash), else charge the new size.
void settle(Locked& k, Entry* e, const HashObject* h) {
  if (h->size() == 0)
    k.shard.erase(e);
  else
    k.shard.recharge(e);
}

// HSET key field value [field value ...] / HMSET (the same, replying OK).
void hset_generic(Context& c, bool hmset) {
  if (c.argv.size() % 2 == 1) return arity_error(c, hmset ? "hmset" : "hset");
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = nullptr;
  HashObject* h = hash_for_write(c, k, e);
  if (h == nullptr) return;
  const HashObject::Limits lim = limits(c);
  std::int64_t created = 0;
  try {
    h->prepare(c.argv.subspan(2), lim);
    for (std::size_t i = 2; i < c.argv.size(); i += 2)
      created += h->set(c.argv[i], c.argv[i + 1], lim) ? 1 : 0;
  } catch (...) {
    settle(k, e, h);
    throw;
  }
  k.shard.recharge(e);
  std::vector<std::string_view> log(c.argv.begin(), c.argv.end());
  log[0] = "HSET";
  c.host.propagate(c, log);
  // Redis's hsetCommand replies, then announces.
  if (hmset)
    ok(c);
  else
    Reply::integer(c.out, created);
  notify(c, kNotifyHash, "hset", c.argv[1]);
}

void cmd_hset(Context& c) {
  hset_generic(c, false);
}
void cmd_hmset(Context& c) {
  hset_generic(c, true);
}

void cmd_hsetnx(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = nullptr;
  HashObject* h = hash_for_write(c, k, e);
  if (h == nullptr) return;
  if (h->get(c.argv[2]) != nullptr) return Reply::integer(c.out, 0);
  const HashObject::Limits lim = limits(c);
  try {
    h->prepare(c.argv.subspan(2, 2), lim);
    h->set(c.argv[2], c.argv[3], lim);
  } catch (...) {
    settle(k, e, h);
    throw;
  }
  k.shard.recharge(e);
  const std::string_view log[] = {"HSET", c.argv[1], c.argv[2], c.argv[3]};
  c.host.propagate(c, log);
  Reply::integer(c.out, 1);
  notify(c, kNotifyHash, "hset", c.argv[1]);
}

void cmd_hget(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  bool wrong = false;
  const HashObject* h = as_hash(c, k.read(c), wrong);
  if (wrong) return;
  const std::string* v = h != nullptr ? h->get(c.argv[2]) : nullptr;
  if (v == nullptr) return null_bulk(c);
  Reply::bulk(c.out, *v);
}

void cmd_hmget(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  bool wrong = false;
  const HashObject* h = as_hash(c, k.read(c), wrong);
  if (wrong) return;
  Reply::array_header(c.out, c.argv.size() - 2);
  for (std::size_t i = 2; i < c.argv.size(); ++i) {
    const std::string* v = h != nullptr ? h->get(c.argv[i]) : nullptr;
    if (v == nullptr)
      null_bulk(c);
    else
      Reply::bulk(c.out, *v);
  }
}

void cmd_hdel(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.find(c.now);
  bool wrong = false;
  HashObject* h = as_hash(c, e, wrong);
  if (wrong) return;
  if (h == nullptr) return Reply::integer(c.out, 0);
  std::int64_t deleted = 0;
  for (std::size_t i = 2; i < c.argv.size(); ++i) {
    if (h->erase(c.argv[i])) {
      ++deleted;
      if (h->size() == 0) break;
    }
  }
  if (deleted != 0) {
    const bool gone = h->size() == 0;  // settle() deletes the key then
    settle(k, e, h);
    c.host.propagate(c, c.argv);
    notify(c, kNotifyHash, "hdel", c.argv[1]);
    if (gone) notify(c, kNotifyGeneric, "del", c.argv[1]);
  }
  Reply::integer(c.out, deleted);
}

void cmd_hlen(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  bool wrong = false;
  const HashObject* h = as_hash(c, k.read(c), wrong);
  if (wrong) return;
  Reply::integer(c.out, h != nullptr ? static_cast<std::int64_t>(h->size()) : 0);
}

void cmd_hstrlen(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  bool wrong = false;
  const HashObject* h = as_hash(c, k.read(c), wrong);
  if (wrong) return;
  const std::string* v = h != nullptr ? h->get(c.argv[2]) : nullptr;
  Reply::integer(c.out, v != nullptr ? static_cast<std::int64_t>(v->size()) : 0);
}

void cmd_hexists(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  bool wrong = false;
  const HashObject* h = as_hash(c, k.read(c), wrong);
  if (wrong) return;
  Reply::integer(c.out, h != nullptr && h->get(c.argv[2]) != nullptr ? 1 : 0);
}

// HKEYS, HVALS, HGETALL (Redis's genericHgetallCommand).
void hgetall_generic(Context& c, bool keys, bool values) {
  Locked k(c.host.keyspace(), c.argv[1]);
  bool wrong = false;
  const HashObject* h = as_hash(c, k.read(c), wrong);
  if (wrong) return;
  // HGETALL is a map in RESP3 (an empty one for a missing key); HKEYS and
  // HVALS stay arrays.
  const bool map = keys && values;
  if (map) {
    map_header(c, h == nullptr ? 0 : h->size());
    if (h == nullptr) return;
  } else {
    if (h == nullptr) return Reply::array_header(c.out, 0);
    Reply::array_header(c.out, h->size());
  }
  h->for_each([&](std::string_view f, std::string_view v) {
    if (keys) Reply::bulk(c.out, f);
    if (values) Reply::bulk(c.out, v);
  });
}

void cmd_hkeys(Context& c) {
  hgetall_generic(c, true, false);
}
void cmd_hvals(Context& c) {
  hgetall_generic(c, false, true);
}
void cmd_hgetall(Context& c) {
  hgetall_generic(c, true, true);
}

// Sets field to the result of an increment and logs it as HSET (HINCRBY,
// HINCRBYFLOAT).
void store_result(Context& c, Locked& k, Entry* e, HashObject* h, std::string_view text) {
  try {
    h->set(c.argv[2], text, limits(c));
  } catch (...) {
    settle(k, e, h);
    throw;
  }
  k.shard.recharge(e);
  const std::string_view log[] = {"HSET", c.argv[1], c.argv[2], text};
  c.host.propagate(c, log);
}

// HINCRBY key field increment: a missing field counts as 0; propagated as
// HSET with the result.
void cmd_hincrby(Context& c) {
  long long incr = 0;
  if (!parse_ll(c.argv[3], incr)) return err(c, kNotInt);
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = nullptr;
  HashObject* h = hash_for_write(c, k, e);
  if (h == nullptr) return;
  long long value = 0;
  if (const std::string* old = h->get(c.argv[2]); old != nullptr && !parse_ll(*old, value))
    return err(c, "ERR hash value is not an integer");
  if ((incr < 0 && value < 0 && incr < LLONG_MIN - value) ||
      (incr > 0 && value > 0 && incr > LLONG_MAX - value)) {
    settle(k, e, h);
    return err(c, kOverflow);
  }
  value += incr;
  store_result(c, k, e, h, ll_to_string(value));
  Reply::integer(c.out, value);
  notify(c, kNotifyHash, "hincrby", c.argv[1]);
}

// HINCRBYFLOAT key field increment: long double arithmetic, printed as
// ld2string's human form; propagated as HSET with the result.
void cmd_hincrbyfloat(Context& c) {
  long double incr = 0;
  if (!parse_ld(c.argv[3], incr)) return err(c, kNotFloat);
  if (std::isnan(incr) || std::isinf(incr)) return err(c, "ERR value is NaN or Infinity");
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = nullptr;
  HashObject* h = hash_for_write(c, k, e);
  if (h == nullptr) return;
  long double value = 0;
  if (const std::string* old = h->get(c.argv[2]); old != nullptr && !parse_ld(*old, value))
    return err(c, "ERR hash value is not a float");
  value += incr;
  if (std::isnan(value) || std::isinf(value)) {
    settle(k, e, h);
    return err(c, "ERR increment would produce NaN or Infinity");
  }
  const std::string text = ld_to_string_human(value);
  store_result(c, k, e, h, text);
  Reply::bulk(c.out, text);
  notify(c, kNotifyHash, "hincrbyfloat", c.argv[1]);
}

// Largest |count| HRANDFIELD and SRANDMEMBER serve with repetitions: a
// bigger one would build a reply of gigabytes (Redis builds it; weft-kv
// refuses it, see README "Differences").
constexpr long long kMaxRandomReply = 1LL << 24;

// HRANDFIELD key [count [WITHVALUES]] (Redis's hrandfieldCommand).
void cmd_hrandfield(Context& c) {
  auto& rng = random_engine();
  if (c.argv.size() == 2) {
    Locked k(c.host.keyspace(), c.argv[1]);
    bool wrong = false;
    const HashObject* h = as_hash(c, k.read(c), wrong);
    if (wrong) return;
    if (h == nullptr) return null_bulk(c);
    return Reply::bulk(c.out, h->random(rng).first);
  }
  long long l = 0;
  if (!parse_range(c, c.argv[2], -LONG_MAX, LONG_MAX, nullptr, l)) return;
  bool withvalues = false;
  if (c.argv.size() > 4 || (c.argv.size() == 4 && !eq_ci(c.argv[3], "withvalues")))
    return err(c, kSyntax);
  if (c.argv.size() == 4) {
    withvalues = true;
    if (l < -LONG_MAX / 2 || l > LONG_MAX / 2) return err(c, "ERR value is out of range");
  }
  Locked k(c.host.keyspace(), c.argv[1]);
  bool wrong = false;
  const HashObject* h = as_hash(c, k.read(c), wrong);
  if (wrong) return;
  if (h == nullptr || l == 0) return Reply::array_header(c.out, 0);
  // WITHVALUES: RESP2 one flat array, RESP3 [field, value] pairs.
  const bool pairs = withvalues && proto(c) == 3;
  const std::size_t per = withvalues && !pairs ? 2 : 1;
  auto emit = [&](std::string_view f, std::string_view v) {
    if (pairs) Reply::array_header(c.out, 2);
    Reply::bulk(c.out, f);
    if (withvalues) Reply::bulk(c.out, v);
  };
  const std::size_t size = h->size();
  if (l < 0 || l == 1) {  // with repetitions
    const unsigned long long count = l < 0 ? static_cast<unsigned long long>(-l) : 1;
    if (count > static_cast<unsigned long long>(kMaxRandomReply))
      return err(c, "ERR value is out of range");
    Reply::array_header(c.out, count * per);
    for (unsigned long long i = 0; i < count; ++i) {
      const auto [f, v] = h->random(rng);
      emit(f, v);
    }
    return;
  }
  const auto count = static_cast<unsigned long long>(l);
  if (count >= size) {  // the whole hash, in its order
    Reply::array_header(c.out, size * per);
    h->for_each(emit);
    return;
  }
  using Pair = std::pair<std::string_view, std::string_view>;
  const std::vector<Pair> picked = pick_distinct<Pair>(
      size, static_cast<std::size_t>(count), [&] { return h->random(rng); },
      [&](auto fn) {
        h->for_each([&](std::string_view f, std::string_view v) { fn(Pair(f, v)); });
      },
      [](const Pair& p) { return p.first; });
  Reply::array_header(c.out, picked.size() * per);
  for (const Pair& p : picked) emit(p.first, p.second);
}

// HSCAN key cursor [MATCH pattern] [COUNT count] (Redis's scanGenericCommand
// on a hash): a listpack is returned whole; a hashtable a few buckets at a
// time, with MATCH applied to the fields.
void cmd_hscan(Context& c) {
  ScanArgs args;
  if (!parse_scan_cursor(c, c.argv[2], args.cursor)) return;
  Locked k(c.host.keyspace(), c.argv[1]);
  bool wrong = false;
  const HashObject* h = as_hash(c, k.read(c), wrong);
  if (wrong) return;
  if (h == nullptr) return scan_reply(c, 0, {});
  if (!parse_scan_options(c, 3, /*allow_type=*/false, args)) return;
  std::vector<std::string> items;
  auto add = [&](std::string_view f, std::string_view v) {
    if (args.use_pattern && !glob_match(args.pattern, f)) return;
    items.emplace_back(f);
    items.emplace_back(v);
  };
  std::uint64_t cursor = args.cursor;
  if (h->listpack()) {
    cursor = h->scan(cursor, add);
  } else {
    // Redis counts what the buckets held, before MATCH, against COUNT * 2.
    const auto want = static_cast<std::uint64_t>(std::min<long long>(args.count, 1LL << 32)) * 2;
    std::uint64_t seen = 0;
    long long iterations = std::min<long long>(args.count, 1LL << 32) * 10;
    do {
      cursor = h->scan(cursor, [&](std::string_view f, std::string_view v) {
        seen += 2;
        add(f, v);
      });
    } while (cursor != 0 && iterations-- > 0 && seen < want);
  }
  scan_reply(c, cursor, items);
}

}  // namespace

std::span<const Command> hash_commands() noexcept {
  static constexpr unsigned kWriteFast = kWrite | kDenyOom | kFast;
  static constexpr const char* kWriteAcl = "@write @hash @fast";
  static constexpr Command kTable[] = {
      {"hset", -4, kWriteFast, kWriteAcl, "", {"RW update", 1, 0}, cmd_hset},
      {"hsetnx", 4, kWriteFast, kWriteAcl, "", {"RW insert", 1, 0}, cmd_hsetnx},
      {"hget", 3, kReadonly | kFast, "@read @hash @fast", "", {"RO access", 1, 0}, cmd_hget},
      {"hmget", -3, kReadonly | kFast, "@read @hash @fast", "", {"RO access", 1, 0}, cmd_hmget},
      {"hmset", -4, kWriteFast, kWriteAcl, "", {"RW update", 1, 0}, cmd_hmset},
      {"hdel", -3, kWrite | kFast, kWriteAcl, "", {"RW delete", 1, 0}, cmd_hdel},
      {"hlen", 2, kReadonly | kFast, "@read @hash @fast", "", {"RO", 1, 0}, cmd_hlen},
      {"hstrlen", 3, kReadonly | kFast, "@read @hash @fast", "", {"RO", 1, 0}, cmd_hstrlen},
      {"hexists", 3, kReadonly | kFast, "@read @hash @fast", "", {"RO", 1, 0}, cmd_hexists},
      {"hkeys",
       2,
       kReadonly,
       "@read @hash @slow",
       "nondeterministic_output_order",
       {"RO access", 1, 0},
       cmd_hkeys},
      {"hvals",
       2,
       kReadonly,
       "@read @hash @slow",
       "nondeterministic_output_order",
       {"RO access", 1, 0},
       cmd_hvals},
      {"hgetall",
       2,
       kReadonly,
       "@read @hash @slow",
       "nondeterministic_output_order",
       {"RO access", 1, 0},
       cmd_hgetall},
      {"hincrby", 4, kWriteFast, kWriteAcl, "", {"RW access update", 1, 0}, cmd_hincrby},
      {"hincrbyfloat", 4, kWriteFast, kWriteAcl, "", {"RW access update", 1, 0}, cmd_hincrbyfloat},
      {"hrandfield",
       -2,
       kReadonly,
       "@read @hash @slow",
       "nondeterministic_output",
       {"RO access", 1, 0},
       cmd_hrandfield},
      {"hscan",
       -3,
       kReadonly,
       "@read @hash @slow",
       "nondeterministic_output",
       {"RO access", 1, 0},
       cmd_hscan},
  };
  return kTable;
}

}  // namespace kv::cmd
