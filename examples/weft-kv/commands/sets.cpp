// weft-kv commands: sets, as Redis 7.0's src/t_set.c. The value type is
// types/set.hpp (intset / hashtable encodings). Commands on several keys
// (SMOVE, SINTER*, SUNION*, SDIFF*) lock all their shards, so they are
// atomic across shards. SPOP goes to the AOF as the SREM (or DEL) of what
// it popped; the other writes verbatim (given the same sets, each is
// deterministic).
#include <algorithm>
#include <climits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "commands/groups.hpp"
#include "commands/util.hpp"
#include "notify.hpp"
#include "types/set.hpp"

namespace kv::cmd {
namespace {

std::int64_t max_intset(Context& c) {
  return c.host.settings().set_max_intset_entries.load(std::memory_order_relaxed);
}

// The set at `e` (nullptr when e is), or nullptr after replying WRONGTYPE
// (`wrong` set).
SetObject* as_set(Context& c, Entry* e, bool& wrong) {
  wrong = false;
  if (e == nullptr) return nullptr;
  if (e->type() != Type::set) {
    wrong = true;
    err(c, kWrongType);
    return nullptr;
  }
  return static_cast<SetObject*>(e->object.get());
}

// Adds `members` to the set at the locked key, creating it as Redis's
// setTypeCreate(first member) would; returns how many were new.
std::int64_t add_members(Context& c, Shard& sh, std::string_view key, std::uint64_t h, Entry* e,
                         std::span<const std::string_view> members) {
  if (e == nullptr) {
    e = sh.insert(key, h);
    sh.assign(e, std::make_unique<SetObject>(members[0]));
  }
  auto* s = static_cast<SetObject*>(e->object.get());
  std::int64_t added = 0;
  const std::int64_t limit = max_intset(c);
  try {
    for (std::string_view m : members) added += s->add(m, limit) ? 1 : 0;
  } catch (...) {
    if (s->size() == 0)
      sh.erase(e);
    else
      sh.recharge(e);
    throw;
  }
  sh.recharge(e);
  return added;
}

void cmd_sadd(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.find(c.now);
  bool wrong = false;
  as_set(c, e, wrong);
  if (wrong) return;
  const std::int64_t added = add_members(c, k.shard, k.key, k.h, e, c.argv.subspan(2));
  if (added != 0) {
    c.host.propagate(c, c.argv);
    notify(c, kNotifySet, "sadd", c.argv[1]);
  }
  Reply::integer(c.out, added);
}

void cmd_srem(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.find(c.now);
  bool wrong = false;
  SetObject* s = as_set(c, e, wrong);
  if (wrong) return;
  if (s == nullptr) return Reply::integer(c.out, 0);
  std::int64_t deleted = 0;
  for (std::size_t i = 2; i < c.argv.size(); ++i) {
    if (s->remove(c.argv[i])) {
      ++deleted;
      if (s->size() == 0) break;
    }
  }
  if (deleted != 0) {
    const bool gone = s->size() == 0;
    if (gone)
      k.shard.erase(e);
    else
      k.shard.recharge(e);
    c.host.propagate(c, c.argv);
    notify(c, kNotifySet, "srem", c.argv[1]);
    if (gone) notify(c, kNotifyGeneric, "del", c.argv[1]);
  }
  Reply::integer(c.out, deleted);
}

void cmd_scard(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  bool wrong = false;
  const SetObject* s = as_set(c, k.read(c), wrong);
  if (wrong) return;
  Reply::integer(c.out, s != nullptr ? static_cast<std::int64_t>(s->size()) : 0);
}

void cmd_sismember(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  bool wrong = false;
  const SetObject* s = as_set(c, k.read(c), wrong);
  if (wrong) return;
  Reply::integer(c.out, s != nullptr && s->contains(c.argv[2]) ? 1 : 0);
}

void cmd_smismember(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  bool wrong = false;
  const SetObject* s = as_set(c, k.read(c), wrong);
  if (wrong) return;
  Reply::array_header(c.out, c.argv.size() - 2);
  for (std::size_t i = 2; i < c.argv.size(); ++i)
    Reply::integer(c.out, s != nullptr && s->contains(c.argv[i]) ? 1 : 0);
}

// SMOVE source destination member (Redis's smoveCommand).
void cmd_smove(Context& c) {
  Keyspace& ks = c.host.keyspace();
  MultiLock lock(ks, c.argv.subspan(1, 2));
  const std::string_view from = c.argv[1], to = c.argv[2], member = c.argv[3];
  const std::uint64_t hf = Keyspace::hash(from), ht = Keyspace::hash(to);
  Shard& sf = ks.shard_of(hf);
  Shard& st = ks.shard_of(ht);
  Entry* ef = sf.find(from, hf, c.now);
  Entry* et = st.find(to, ht, c.now);
  if (ef == nullptr) return Reply::integer(c.out, 0);
  bool wrong = false;
  SetObject* src = as_set(c, ef, wrong);
  if (wrong) return;
  as_set(c, et, wrong);
  if (wrong) return;
  if (ef == et) return Reply::integer(c.out, src->contains(member) ? 1 : 0);
  if (!src->remove(member)) return Reply::integer(c.out, 0);
  const bool gone = src->size() == 0;
  if (gone)
    sf.erase(ef);
  else
    sf.recharge(ef);
  const std::string_view one[] = {member};
  const bool added = add_members(c, st, to, ht, et, one) != 0;
  c.host.propagate(c, c.argv);
  notify(c, kNotifySet, "srem", from);
  if (gone) notify(c, kNotifyGeneric, "del", from);
  if (added) notify(c, kNotifySet, "sadd", to);
  Reply::integer(c.out, 1);
}

// The sets at `keys` (nullptr for a missing key), locked by the caller;
// false after a WRONGTYPE reply (Redis checks them in order).
bool load_sets(Context& c, std::span<const std::string_view> keys,
               std::vector<const SetObject*>& sets) {
  Keyspace& ks = c.host.keyspace();
  sets.clear();
  for (std::string_view key : keys) {
    const std::uint64_t h = Keyspace::hash(key);
    bool wrong = false;
    Entry* e = ks.shard_of(h).find(key, h, c.now);
    if (e == nullptr) key_miss(c, key);
    sets.push_back(as_set(c, e, wrong));
    if (wrong) return false;
  }
  return true;
}

// Makes `dest` (locked) hold `result`, or deletes it when the result is
// empty (Redis's setKey / dbDelete in the *STORE commands); replies the
// size and propagates when something changed.
void store_result(Context& c, std::string_view dest, std::unique_ptr<SetObject> result,
                  const char* event) {
  Keyspace& ks = c.host.keyspace();
  const std::uint64_t h = Keyspace::hash(dest);
  Shard& sh = ks.shard_of(h);
  Entry* e = sh.find(dest, h, c.now);
  const auto n = static_cast<std::int64_t>(result->size());
  if (n == 0) {
    if (e != nullptr) {
      sh.erase(e);
      c.host.propagate(c, c.argv);
      notify(c, kNotifyGeneric, "del", dest);
    }
    return Reply::integer(c.out, 0);
  }
  if (e == nullptr) {
    e = sh.insert(dest, h);
  } else if (e->expire_at >= 0) {
    sh.set_expire(e, -1);
  }
  sh.assign(e, std::move(result));
  c.host.propagate(c, c.argv);
  notify(c, kNotifySet, event, dest);
  Reply::integer(c.out, n);
}

// The members of `s`: a set in RESP3 (`as_set`), else an array.
void reply_members(Context& c, const SetObject& s, bool as_set = true) {
  if (as_set)
    set_header(c, s.size());
  else
    Reply::array_header(c.out, s.size());
  s.for_each([&](std::string_view m) { Reply::bulk(c.out, m); });
}

// SINTER, SINTERSTORE, SINTERCARD, SMEMBERS (Redis's sinterGenericCommand):
// the smallest set is walked and each member looked up in the others.
// `card`: reply the count only, stopping at `limit` (0: none).
void sinter_generic(Context& c, std::span<const std::string_view> keys,
                    const std::string_view* dest, bool card, long long limit) {
  std::vector<const SetObject*> sets;
  if (!load_sets(c, keys, sets)) return;
  if (std::find(sets.begin(), sets.end(), nullptr) != sets.end()) {
    if (dest != nullptr)
      return store_result(c, *dest, std::make_unique<SetObject>(), "sinterstore");
    if (card) return Reply::integer(c.out, 0);
    return set_header(c, 0);
  }
  std::stable_sort(sets.begin(), sets.end(),
                   [](const SetObject* a, const SetObject* b) { return a->size() < b->size(); });
  auto in_all = [&](std::string_view m) {
    for (std::size_t j = 1; j < sets.size(); ++j)
      if (sets[j] != sets[0] && !sets[j]->contains(m)) return false;
    return true;
  };
  if (card) {
    long long n = 0;
    // for_each cannot stop early; the count is capped instead.
    sets[0]->for_each([&](std::string_view m) {
      if ((limit == 0 || n < limit) && in_all(m)) ++n;
    });
    return Reply::integer(c.out, n);
  }
  if (dest != nullptr) {
    auto result = std::make_unique<SetObject>();
    const std::int64_t lim = max_intset(c);
    sets[0]->for_each([&](std::string_view m) {
      if (in_all(m)) result->add(m, lim);
    });
    return store_result(c, *dest, std::move(result), "sinterstore");
  }
  // Copied: an intset's for_each formats each member into one buffer.
  std::vector<std::string> out;
  sets[0]->for_each([&](std::string_view m) {
    if (in_all(m)) out.emplace_back(m);
  });
  set_header(c, out.size());
  for (const std::string& m : out) Reply::bulk(c.out, m);
}

// SUNION, SDIFF and their STORE forms (Redis's sunionDiffGenericCommand):
// the result is built as a set of its own, starting as an intset, and
// replied in its order.
std::unique_ptr<SetObject> union_diff(Context& c, const std::vector<const SetObject*>& sets,
                                      bool diff) {
  auto result = std::make_unique<SetObject>();
  const std::int64_t lim = max_intset(c);
  if (!diff) {
    for (const SetObject* s : sets)
      if (s != nullptr) s->for_each([&](std::string_view m) { result->add(m, lim); });
    return result;
  }
  if (sets[0] == nullptr) return result;
  for (std::size_t j = 1; j < sets.size(); ++j)
    if (sets[j] == sets[0]) return result;  // the same key twice: empty
  sets[0]->for_each([&](std::string_view m) {
    for (std::size_t j = 1; j < sets.size(); ++j)
      if (sets[j] != nullptr && sets[j]->contains(m)) return;
    result->add(m, lim);
  });
  return result;
}

void sunion_diff(Context& c, std::span<const std::string_view> keys, const std::string_view* dest,
                 bool diff) {
  std::vector<const SetObject*> sets;
  if (!load_sets(c, keys, sets)) return;
  std::unique_ptr<SetObject> result = union_diff(c, sets, diff);
  if (dest != nullptr)
    return store_result(c, *dest, std::move(result), diff ? "sdiffstore" : "sunionstore");
  reply_members(c, *result);
}

void cmd_sinter(Context& c) {
  MultiLock lock(c.host.keyspace(), c.argv.subspan(1));
  sinter_generic(c, c.argv.subspan(1), nullptr, false, 0);
}
void cmd_smembers(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  sinter_generic(c, c.argv.subspan(1, 1), nullptr, false, 0);
}
void cmd_sinterstore(Context& c) {
  MultiLock lock(c.host.keyspace(), c.argv.subspan(1));
  sinter_generic(c, c.argv.subspan(2), &c.argv[1], false, 0);
}
void cmd_sunion(Context& c) {
  MultiLock lock(c.host.keyspace(), c.argv.subspan(1));
  sunion_diff(c, c.argv.subspan(1), nullptr, false);
}
void cmd_sunionstore(Context& c) {
  MultiLock lock(c.host.keyspace(), c.argv.subspan(1));
  sunion_diff(c, c.argv.subspan(2), &c.argv[1], false);
}
void cmd_sdiff(Context& c) {
  MultiLock lock(c.host.keyspace(), c.argv.subspan(1));
  sunion_diff(c, c.argv.subspan(1), nullptr, true);
}
void cmd_sdiffstore(Context& c) {
  MultiLock lock(c.host.keyspace(), c.argv.subspan(1));
  sunion_diff(c, c.argv.subspan(2), &c.argv[1], true);
}

// SINTERCARD numkeys key [key ...] [LIMIT limit].
void cmd_sintercard(Context& c) {
  long long numkeys = 0;
  if (!parse_range(c, c.argv[1], 1, LONG_MAX, "numkeys should be greater than 0", numkeys)) return;
  if (numkeys > static_cast<long long>(c.argv.size()) - 2)
    return err(c, "ERR Number of keys can't be greater than number of args");
  long long limit = 0;
  for (std::size_t j = 2 + static_cast<std::size_t>(numkeys); j < c.argv.size(); ++j) {
    if (eq_ci(c.argv[j], "limit") && j + 1 < c.argv.size()) {
      if (!parse_range(c, c.argv[++j], 0, LONG_MAX, "LIMIT can't be negative", limit)) return;
    } else {
      return err(c, kSyntax);
    }
  }
  const auto keys = c.argv.subspan(2, static_cast<std::size_t>(numkeys));
  MultiLock lock(c.host.keyspace(), keys);
  sinter_generic(c, keys, nullptr, true, limit);
}

// Largest |count| SRANDMEMBER serves with repetitions (see hashes.cpp).
constexpr long long kMaxRandomReply = 1LL << 24;

// `count` distinct members of `s` (count < size), at random.
std::vector<std::string> pick_members(const SetObject& s, std::size_t count) {
  return pick_distinct<std::string>(
      s.size(), count, [&] { return s.random(random_engine()); },
      [&](auto fn) { s.for_each([&](std::string_view m) { fn(std::string(m)); }); },
      [](const std::string& m) { return std::string_view(m); });
}

// SRANDMEMBER key [count] (Redis's srandmemberCommand and
// srandmemberWithCountCommand).
void cmd_srandmember(Context& c) {
  if (c.argv.size() > 3) return err(c, kSyntax);
  auto& rng = random_engine();
  if (c.argv.size() == 2) {
    Locked k(c.host.keyspace(), c.argv[1]);
    bool wrong = false;
    const SetObject* s = as_set(c, k.read(c), wrong);
    if (wrong) return;
    if (s == nullptr) return null_bulk(c);
    return Reply::bulk(c.out, s->random(rng));
  }
  long long l = 0;
  if (!parse_range(c, c.argv[2], -LONG_MAX, LONG_MAX, nullptr, l)) return;
  Locked k(c.host.keyspace(), c.argv[1]);
  bool wrong = false;
  const SetObject* s = as_set(c, k.read(c), wrong);
  if (wrong) return;
  if (s == nullptr || l == 0) return Reply::array_header(c.out, 0);
  if (l < 0 || l == 1) {
    const unsigned long long count = l < 0 ? static_cast<unsigned long long>(-l) : 1;
    if (count > static_cast<unsigned long long>(kMaxRandomReply))
      return err(c, "ERR value is out of range");
    Reply::array_header(c.out, count);
    for (unsigned long long i = 0; i < count; ++i) Reply::bulk(c.out, s->random(rng));
    return;
  }
  const auto count = static_cast<unsigned long long>(l);
  if (count >= s->size()) return reply_members(c, *s, /*as_set=*/false);
  const std::vector<std::string> picked = pick_members(*s, static_cast<std::size_t>(count));
  Reply::array_header(c.out, picked.size());
  for (const std::string& m : picked) Reply::bulk(c.out, m);
}

// SPOP key [count] (Redis's spopCommand and spopWithCountCommand).
void cmd_spop(Context& c) {
  if (c.argv.size() > 3) return err(c, kSyntax);
  long long count = -1;
  if (c.argv.size() == 3 &&
      !parse_range(c, c.argv[2], 0, LONG_MAX, "value is out of range, must be positive", count))
    return;
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.find(c.now);
  bool wrong = false;
  SetObject* s = as_set(c, e, wrong);
  if (wrong) return;
  if (s == nullptr) return count < 0 ? null_bulk(c) : set_header(c, 0);
  if (count < 0) {  // one member
    const std::string m = s->random(random_engine());
    s->remove(m);
    const bool gone = s->size() == 0;
    if (gone)
      k.shard.erase(e);
    else
      k.shard.recharge(e);
    const std::string_view log[] = {"SREM", c.argv[1], m};
    c.host.propagate(c, log);
    // Redis's spopCommand order: the event, the reply, the deletion's event.
    notify(c, kNotifySet, "spop", c.argv[1]);
    Reply::bulk(c.out, m);
    if (gone) notify(c, kNotifyGeneric, "del", c.argv[1]);
    return;
  }
  if (count == 0) return set_header(c, 0);
  const std::size_t size = s->size();
  if (static_cast<unsigned long long>(count) >= size) {
    // The whole set, replied as SUNION would (a fresh set, so an all-integer
    // hashtable answers in ascending order), then the key goes.
    const std::vector<const SetObject*> one = {s};
    const std::unique_ptr<SetObject> all = union_diff(c, one, false);
    // Redis's spopWithCountCommand announces the pop before its reply.
    notify(c, kNotifySet, "spop", c.argv[1]);
    reply_members(c, *all);
    k.shard.erase(e);
    const std::string_view log[] = {"DEL", c.argv[1]};
    c.host.propagate(c, log);
    notify(c, kNotifyGeneric, "del", c.argv[1]);
    return;
  }
  const std::vector<std::string> popped = pick_members(*s, static_cast<std::size_t>(count));
  for (const std::string& m : popped) s->remove(m);
  const std::size_t remaining = size - popped.size();
  if (remaining * 5 <= static_cast<std::size_t>(count)) {
    // Redis moves the few that remain into a new set (setTypeCreate of the
    // first), which may change the encoding back to intset.
    std::vector<std::string> rest;
    s->for_each([&](std::string_view m) { rest.emplace_back(m); });
    auto fresh = std::make_unique<SetObject>(rest[0]);
    const std::int64_t lim = max_intset(c);
    for (const std::string& m : rest) fresh->add(m, lim);
    k.shard.assign(e, std::move(fresh));
  } else {
    k.shard.recharge(e);
  }
  std::vector<std::string_view> log = {"SREM", c.argv[1]};
  log.insert(log.end(), popped.begin(), popped.end());
  c.host.propagate(c, log);
  notify(c, kNotifySet, "spop", c.argv[1]);
  set_header(c, popped.size());
  for (const std::string& m : popped) Reply::bulk(c.out, m);
}

// SSCAN key cursor [MATCH pattern] [COUNT count].
void cmd_sscan(Context& c) {
  ScanArgs args;
  if (!parse_scan_cursor(c, c.argv[2], args.cursor)) return;
  Locked k(c.host.keyspace(), c.argv[1]);
  bool wrong = false;
  const SetObject* s = as_set(c, k.read(c), wrong);
  if (wrong) return;
  if (s == nullptr) return scan_reply(c, 0, {});
  if (!parse_scan_options(c, 3, /*allow_type=*/false, args)) return;
  std::vector<std::string> items;
  std::uint64_t seen = 0;
  auto add = [&](std::string_view m) {
    ++seen;
    if (!args.use_pattern || glob_match(args.pattern, m)) items.emplace_back(m);
  };
  std::uint64_t cursor = args.cursor;
  if (s->intset()) {
    cursor = s->scan(cursor, add);
  } else {
    const auto want = static_cast<std::uint64_t>(std::min<long long>(args.count, 1LL << 32));
    long long iterations = static_cast<long long>(want) * 10;
    do {
      cursor = s->scan(cursor, add);
    } while (cursor != 0 && iterations-- > 0 && seen < want);
  }
  scan_reply(c, cursor, items);
}

}  // namespace

std::span<const Command> set_commands() noexcept {
  static constexpr Command kTable[] = {
      {"sadd",
       -3,
       kWrite | kDenyOom | kFast,
       "@write @set @fast",
       "",
       {"RW insert", 1, 0},
       cmd_sadd},
      {"srem", -3, kWrite | kFast, "@write @set @fast", "", {"RW delete", 1, 0}, cmd_srem},
      {"scard", 2, kReadonly | kFast, "@read @set @fast", "", {"RO", 1, 0}, cmd_scard},
      {"sismember", 3, kReadonly | kFast, "@read @set @fast", "", {"RO", 1, 0}, cmd_sismember},
      {"smismember",
       -3,
       kReadonly | kFast,
       "@read @set @fast",
       "",
       {"RO access", 1, 0},
       cmd_smismember},
      {"smembers",
       2,
       kReadonly,
       "@read @set @slow",
       "nondeterministic_output_order",
       {"RO access", 1, 0},
       cmd_smembers},
      {"srandmember",
       -2,
       kReadonly,
       "@read @set @slow",
       "nondeterministic_output",
       {"RO access", 1, 0},
       cmd_srandmember},
      {"spop",
       -2,
       kWrite | kFast,
       "@write @set @fast",
       "nondeterministic_output",
       {"RW access delete", 1, 0},
       cmd_spop},
      {"smove",
       4,
       kWrite | kFast,
       "@write @set @fast",
       "",
       {{"RW access delete", 1, 0}, {"RW insert", 2, 0}},
       cmd_smove},
      {"sinter",
       -2,
       kReadonly,
       "@read @set @slow",
       "nondeterministic_output_order",
       {"RO access", 1, -1},
       cmd_sinter},
      {"sintercard",
       -3,
       kReadonly,
       "@read @set @slow",
       "",
       {KeySpec::keynum("RO access", 1, 0, 1, 1)},
       cmd_sintercard},
      {"sinterstore",
       -3,
       kWrite | kDenyOom,
       "@write @set @slow",
       "",
       {{"RW update", 1, 0}, {"RO access", 2, -1}},
       cmd_sinterstore},
      {"sunion",
       -2,
       kReadonly,
       "@read @set @slow",
       "nondeterministic_output_order",
       {"RO access", 1, -1},
       cmd_sunion},
      {"sunionstore",
       -3,
       kWrite | kDenyOom,
       "@write @set @slow",
       "",
       {{"OW update", 1, 0}, {"RO access", 2, -1}},
       cmd_sunionstore},
      {"sdiff",
       -2,
       kReadonly,
       "@read @set @slow",
       "nondeterministic_output_order",
       {"RO access", 1, -1},
       cmd_sdiff},
      {"sdiffstore",
       -3,
       kWrite | kDenyOom,
       "@write @set @slow",
       "",
       {{"OW update", 1, 0}, {"RO access", 2, -1}},
       cmd_sdiffstore},
      {"sscan",
       -3,
       kReadonly,
       "@read @set @slow",
       "nondeterministic_output",
       {"RO access", 1, 0},
       cmd_sscan},
  };
  return kTable;
}

}  // namespace kv::cmd
