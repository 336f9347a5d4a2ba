// weft-kv commands: strings, as Redis 7.0's src/t_string.c. The AOF gets
// them in a deterministic form (relative expiries become PXAT; INCR*
// becomes SET ... KEEPTTL), as Redis propagates them.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "commands/groups.hpp"
#include "commands/util.hpp"
#include "notify.hpp"

namespace kv::cmd {
namespace {

void cmd_get(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  const Entry* e = k.read(c);
  if (e == nullptr) return null_bulk(c);
  ++c.hits;
  if (e->type() != Type::string) return err(c, kWrongType);
  Reply::bulk(c.out, e->value);
}

// SET's and GETEX's options (Redis's parseExtendedStringArgumentsOrReply):
// NX, XX, GET for SET only, PERSIST for GETEX only, KEEPTTL for SET, and
// one of EX, PX, EXAT, PXAT with its argument. False after a syntax error.
enum ExtFlags : unsigned {
  NX = 1,
  XX = 2,
  GET = 4,
  KEEPTTL = 8,
  PERSIST = 16,
  EX = 32,
  PX = 64,
  EXAT = 128,
  PXAT = 256,
};
constexpr unsigned kTimed = EX | PX | EXAT | PXAT;

bool parse_extended(Context& c, bool set_command, unsigned& flags, std::string_view& expire_arg) {
  const auto& a = c.argv;
  for (std::size_t j = set_command ? 3 : 2; j < a.size(); ++j) {
    const std::string_view opt = a[j];
    const bool has_next = j + 1 < a.size();
    // The expiry forms exclude each other, KEEPTTL and PERSIST.
    auto timed = [&](unsigned self) {
      return !(flags & ((kTimed & ~self) | KEEPTTL | PERSIST)) && has_next;
    };
    if (set_command && eq_ci(opt, "nx") && !(flags & XX)) {
      flags |= NX;
    } else if (set_command && eq_ci(opt, "xx") && !(flags & NX)) {
      flags |= XX;
    } else if (set_command && eq_ci(opt, "get")) {
      flags |= GET;
    } else if (set_command && eq_ci(opt, "keepttl") && !(flags & (kTimed | PERSIST))) {
      flags |= KEEPTTL;
    } else if (!set_command && eq_ci(opt, "persist") && !(flags & (kTimed | KEEPTTL))) {
      flags |= PERSIST;
    } else if (eq_ci(opt, "ex") && timed(EX)) {
      flags |= EX;
      expire_arg = a[++j];
    } else if (eq_ci(opt, "px") && timed(PX)) {
      flags |= PX;
      expire_arg = a[++j];
    } else if (eq_ci(opt, "exat") && timed(EXAT)) {
      flags |= EXAT;
      expire_arg = a[++j];
    } else if (eq_ci(opt, "pxat") && timed(PXAT)) {
      flags |= PXAT;
      expire_arg = a[++j];
    } else {
      return err(c, kSyntax), false;
    }
  }
  return true;
}

void cmd_set(Context& c) {
  unsigned flags = 0;
  std::string_view expire_arg;
  if (!parse_extended(c, /*set_command=*/true, flags, expire_arg)) return;
  const auto& a = c.argv;
  std::int64_t at = -1;
  if ((flags & kTimed) &&
      !parse_expire(c, expire_arg, flags & (EX | EXAT), flags & (EX | PX), "set", at))
    return;
  Locked k(c.host.keyspace(), a[1]);
  Entry* e = k.find(c.now);
  if ((flags & GET) && e == nullptr) key_miss(c, a[1]);  // SET ... GET reads it first
  if ((flags & GET) && e != nullptr && e->type() != Type::string) return err(c, kWrongType);
  if (flags & GET) {
    if (e == nullptr)
      null_bulk(c);
    else
      Reply::bulk(c.out, e->value);
  }
  if (((flags & NX) && e != nullptr) || ((flags & XX) && e == nullptr)) {
    if (!(flags & GET)) null_bulk(c);
    return;
  }
  e = store(k.shard, k.key, k.h, a[2], c.now, (flags & KEEPTTL) != 0);
  if (at >= 0) k.shard.set_expire(e, at);
  if (at >= 0) {
    const std::string ms = ll_to_string(at);
    const std::string_view log[] = {"SET", a[1], a[2], "PXAT", ms};
    c.host.propagate(c, log);
  } else if (flags & KEEPTTL) {
    const std::string_view log[] = {"SET", a[1], a[2], "KEEPTTL"};
    c.host.propagate(c, log);
  } else {
    const std::string_view log[] = {"SET", a[1], a[2]};
    c.host.propagate(c, log);
  }
  notify(c, kNotifyString, "set", a[1]);
  if (at >= 0) notify(c, kNotifyGeneric, "expire", a[1]);
  if (!(flags & GET)) ok(c);
}

void set_with_ttl(Context& c, std::string_view key, std::string_view ttl, std::string_view value,
                  bool seconds, const char* name) {
  std::int64_t v = 0;
  if (!parse_expire(c, ttl, seconds, /*relative=*/true, name, v)) return;
  Locked k(c.host.keyspace(), key);
  Entry* e = store(k.shard, k.key, k.h, value, c.now, false);
  k.shard.set_expire(e, v);
  const std::string ms = ll_to_string(v);
  const std::string_view log[] = {"SET", key, value, "PXAT", ms};
  c.host.propagate(c, log);
  notify(c, kNotifyString, "set", key);
  notify(c, kNotifyGeneric, "expire", key);
  ok(c);
}

void cmd_setex(Context& c) {
  set_with_ttl(c, c.argv[1], c.argv[2], c.argv[3], true, "setex");
}
void cmd_psetex(Context& c) {
  set_with_ttl(c, c.argv[1], c.argv[2], c.argv[3], false, "psetex");
}

void cmd_setnx(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  if (k.find(c.now) != nullptr) return Reply::integer(c.out, 0);
  store(k.shard, k.key, k.h, c.argv[2], c.now, false);
  const std::string_view log[] = {"SET", c.argv[1], c.argv[2]};
  c.host.propagate(c, log);
  notify(c, kNotifyString, "set", c.argv[1]);
  Reply::integer(c.out, 1);
}

void cmd_getset(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.read(c);
  if (e != nullptr && e->type() != Type::string) return err(c, kWrongType);
  if (e == nullptr)
    null_bulk(c);
  else
    Reply::bulk(c.out, e->value);
  store(k.shard, k.key, k.h, c.argv[2], c.now, false);
  const std::string_view log[] = {"SET", c.argv[1], c.argv[2]};
  c.host.propagate(c, log);
  notify(c, kNotifyString, "set", c.argv[1]);
}

void cmd_getdel(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.read(c);
  if (e == nullptr) return null_bulk(c);
  if (e->type() != Type::string) return err(c, kWrongType);
  Reply::bulk(c.out, e->value);
  k.shard.erase(e);
  const std::string_view log[] = {"DEL", c.argv[1]};
  c.host.propagate(c, log);
  notify(c, kNotifyGeneric, "del", c.argv[1]);
}

void incr_by(Context& c, std::string_view key, long long by) {
  Locked k(c.host.keyspace(), key);
  Entry* e = k.find(c.now);
  long long cur = 0;
  if (e != nullptr && e->type() != Type::string) return err(c, kWrongType);
  if (e != nullptr && !parse_ll(e->value, cur)) return err(c, kNotInt);
  if ((by < 0 && cur < 0 && by < LLONG_MIN - cur) || (by > 0 && cur > 0 && by > LLONG_MAX - cur))
    return err(c, kOverflow);
  cur += by;
  const std::string v = ll_to_string(cur);
  store(k.shard, k.key, k.h, v, c.now, true);
  const std::string_view log[] = {"SET", key, v, "KEEPTTL"};
  c.host.propagate(c, log);
  notify(c, kNotifyString, "incrby", key);
  Reply::integer(c.out, cur);
}

void cmd_incr(Context& c) {
  incr_by(c, c.argv[1], 1);
}
void cmd_decr(Context& c) {
  incr_by(c, c.argv[1], -1);
}
void cmd_incrby(Context& c) {
  long long by = 0;
  if (!parse_ll(c.argv[2], by)) return err(c, kNotInt);
  incr_by(c, c.argv[1], by);
}
void cmd_decrby(Context& c) {
  long long by = 0;
  if (!parse_ll(c.argv[2], by)) return err(c, kNotInt);
  if (by == LLONG_MIN) return err(c, "ERR decrement would overflow");
  incr_by(c, c.argv[1], -by);
}

void cmd_append(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.find(c.now);
  if (e == nullptr) {
    e = k.shard.insert(k.key, k.h);
    k.shard.assign(e, c.argv[2]);
  } else {
    if (e->type() != Type::string) return err(c, kWrongType);
    if (e->value.size() + c.argv[2].size() > kMaxString)
      return err(c, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    k.shard.append(e, c.argv[2]);
  }
  const std::string_view log[] = {"APPEND", c.argv[1], c.argv[2]};
  c.host.propagate(c, log);
  notify(c, kNotifyString, "append", c.argv[1]);
  Reply::integer(c.out, static_cast<std::int64_t>(e->value.size()));
}

void cmd_strlen(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  const Entry* e = k.read(c);
  if (e != nullptr && e->type() != Type::string) return err(c, kWrongType);
  Reply::integer(c.out, e == nullptr ? 0 : static_cast<std::int64_t>(e->value.size()));
}

void cmd_mget(Context& c) {
  Keyspace& ks = c.host.keyspace();
  const auto keys = c.argv.subspan(1);
  MultiLock lock(ks, keys);
  Reply::array_header(c.out, keys.size());
  for (std::string_view key : keys) {
    const std::uint64_t h = Keyspace::hash(key);
    const Entry* e = ks.shard_of(h).find(key, h, c.now);
    if (e == nullptr) {
      key_miss(c, key);
      null_bulk(c);
    } else if (e->type() != Type::string) {  // MGET: nil for another type (a hit)
      ++c.hits;
      null_bulk(c);
    } else {
      ++c.hits;
      Reply::bulk(c.out, e->value);
    }
  }
}

// MSET and MSETNX (Redis's msetGenericCommand): atomic across shards.
// MSETNX sets nothing if any key exists; it goes to the AOF as MSET (it
// only ran because no key existed).
void mset_generic(Context& c, bool nx) {
  if (c.argv.size() % 2 == 0) return arity_error(c, nx ? "msetnx" : "mset");
  Keyspace& ks = c.host.keyspace();
  const auto pairs = c.argv.subspan(1);
  MultiLock lock(ks, pairs, 2);
  for (std::size_t i = 0; nx && i < pairs.size(); i += 2) {
    const std::uint64_t h = Keyspace::hash(pairs[i]);
    if (ks.shard_of(h).find(pairs[i], h, c.now) != nullptr) return Reply::integer(c.out, 0);
  }
  for (std::size_t i = 0; i < pairs.size(); i += 2) {
    const std::uint64_t h = Keyspace::hash(pairs[i]);
    store(ks.shard_of(h), pairs[i], h, pairs[i + 1], c.now, false);
  }
  std::vector<std::string_view> log(c.argv.begin(), c.argv.end());
  log[0] = "MSET";
  c.host.propagate(c, log);
  for (std::size_t i = 0; i < pairs.size(); i += 2) notify(c, kNotifyString, "set", pairs[i]);
  if (nx) return Reply::integer(c.out, 1);
  ok(c);
}

void cmd_mset(Context& c) {
  mset_generic(c, false);
}

// GETEX key [EX s | PX ms | EXAT s | PXAT ms | PERSIST] (Redis's
// getexCommand): never propagated as such — as PEXPIREAT, DEL or PERSIST.
void cmd_getex(Context& c) {
  unsigned flags = 0;
  std::string_view expire_arg;
  if (!parse_extended(c, /*set_command=*/false, flags, expire_arg)) return;
  const auto& a = c.argv;
  Locked k(c.host.keyspace(), a[1]);
  Entry* e = k.find(c.now);
  if (e == nullptr) {
    key_miss(c, c.argv[1]);
    return null_bulk(c);
  }
  ++c.hits;
  if (e->type() != Type::string) return err(c, kWrongType);
  std::int64_t at = -1;
  if ((flags & kTimed) &&
      !parse_expire(c, expire_arg, flags & (EX | EXAT), flags & (EX | PX), "getex", at))
    return;
  Reply::bulk(c.out, e->value);
  if ((flags & (EXAT | PXAT)) && at <= c.now && !c.host.loading()) {
    k.shard.erase(e);
    const std::string_view log[] = {"DEL", a[1]};
    c.host.propagate(c, log);
    notify(c, kNotifyGeneric, "del", a[1]);
  } else if (at >= 0) {
    k.shard.set_expire(e, at);
    const std::string ms = ll_to_string(at);
    const std::string_view log[] = {"PEXPIREAT", a[1], ms};
    c.host.propagate(c, log);
    notify(c, kNotifyGeneric, "expire", a[1]);
  } else if ((flags & PERSIST) && e->expire_at >= 0) {
    k.shard.set_expire(e, -1);
    const std::string_view log[] = {"PERSIST", a[1]};
    c.host.propagate(c, log);
    notify(c, kNotifyGeneric, "persist", a[1]);
  }
}

// GETRANGE key start end (and SUBSTR): inclusive byte range, negative
// indexes from the end, clamped; "" for a missing key.
void cmd_getrange(Context& c) {
  long long start = 0, end = 0;
  if (!parse_ll(c.argv[2], start) || !parse_ll(c.argv[3], end)) return err(c, kNotInt);
  Locked k(c.host.keyspace(), c.argv[1]);
  const Entry* e = k.find(c.now);
  if (e == nullptr) {
    key_miss(c, c.argv[1]);
    return Reply::bulk(c.out, "");
  }
  ++c.hits;
  if (e->type() != Type::string) return err(c, kWrongType);
  const auto len = static_cast<long long>(e->value.size());
  if (start < 0 && end < 0 && start > end) return Reply::bulk(c.out, "");
  if (start < 0) start += len;
  if (end < 0) end += len;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= len) end = len - 1;
  if (start > end || len == 0) return Reply::bulk(c.out, "");
  Reply::bulk(c.out, std::string_view(e->value).substr(static_cast<std::size_t>(start),
                                                       static_cast<std::size_t>(end - start + 1)));
}

// Redis's checkStringLength: would a string of offset + len bytes exceed
// proto-max-bulk-len? Replies when it would.
bool too_long(Context& c, std::uint64_t offset, std::uint64_t len) {
  if (c.host.loading()) return false;  // the AOF is obeyed, as Redis's mustObeyClient
  if (offset + len > c.host.options().limits.max_bulk_len) {
    err(c, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    return true;
  }
  return false;
}

// SETRANGE key offset value: overwrite from `offset`, zero-padding.
void cmd_setrange(Context& c) {
  long long offset = 0;
  if (!parse_ll(c.argv[2], offset)) return err(c, kNotInt);
  if (offset < 0) return err(c, "ERR offset is out of range");
  const std::string_view value = c.argv[3];
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.find(c.now);
  if (e != nullptr && e->type() != Type::string) return err(c, kWrongType);
  if (value.empty()) return Reply::integer(c.out, e == nullptr ? 0 : std::int64_t(e->value.size()));
  const auto off = static_cast<std::uint64_t>(offset);
  if (too_long(c, off, value.size())) return;
  const std::size_t need = static_cast<std::size_t>(off) + value.size();
  if (e == nullptr) {
    std::string fresh(need, '\0');
    fresh.replace(static_cast<std::size_t>(off), value.size(), value);
    e = k.shard.insert(k.key, k.h);
    k.shard.assign(e, fresh, StringForm::raw);
  } else {
    if (e->value.size() < need) e->value.resize(need, '\0');
    e->value.replace(static_cast<std::size_t>(off), value.size(), value);
    e->set_form(StringForm::raw);
    k.shard.recharge(e);
  }
  c.host.propagate(c, c.argv);
  notify(c, kNotifyString, "setrange", c.argv[1]);
  Reply::integer(c.out, static_cast<std::int64_t>(e->value.size()));
}

// INCRBYFLOAT key increment: long double arithmetic, the result printed as
// ld2string's human form, propagated as SET ... KEEPTTL.
void cmd_incrbyfloat(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.find(c.now);
  if (e != nullptr && e->type() != Type::string) return err(c, kWrongType);
  long double value = 0, incr = 0;
  if ((e != nullptr && !parse_ld(e->value, value)) || !parse_ld(c.argv[2], incr))
    return err(c, kNotFloat);
  value += incr;
  if (std::isnan(value) || std::isinf(value))
    return err(c, "ERR increment would produce NaN or Infinity");
  const std::string v = ld_to_string_human(value);
  store(k.shard, k.key, k.h, v, c.now, /*keep_ttl=*/true, StringForm::plain);
  const std::string_view log[] = {"SET", c.argv[1], v, "KEEPTTL"};
  c.host.propagate(c, log);
  notify(c, kNotifyString, "incrbyfloat", c.argv[1]);
  Reply::bulk(c.out, v);
}

void cmd_msetnx(Context& c) {
  mset_generic(c, true);
}

// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN] (Redis 7.0's
// lcsCommand): the classic dynamic-programming table, then a walk back
// from its corner that emits the matching ranges from the end. The values
// are copied under the locks; the table is built after they are released.
void cmd_lcs(Context& c) {
  std::string a, b;
  {
    Keyspace& ks = c.host.keyspace();
    MultiLock lock(ks, c.argv.subspan(1, 2));
    const Entry* ea = nullptr;
    const Entry* eb = nullptr;
    for (int i = 1; i <= 2; ++i) {
      const std::uint64_t h = Keyspace::hash(c.argv[i]);
      const Entry* e = ks.shard_of(h).find(c.argv[i], h, c.now);
      if (e == nullptr) key_miss(c, c.argv[i]);
      (i == 1 ? ea : eb) = e;
    }
    if ((ea != nullptr && ea->type() != Type::string) ||
        (eb != nullptr && eb->type() != Type::string))
      return err(c, "ERR The specified keys must contain string values");
    if (ea != nullptr) a = ea->value;
    if (eb != nullptr) b = eb->value;
  }
  bool getlen = false, getidx = false, withmatchlen = false;
  long long minmatchlen = 0;
  for (std::size_t j = 3; j < c.argv.size(); ++j) {
    const std::string_view opt = c.argv[j];
    const bool more = j + 1 < c.argv.size();
    if (eq_ci(opt, "idx")) {
      getidx = true;
    } else if (eq_ci(opt, "len")) {
      getlen = true;
    } else if (eq_ci(opt, "withmatchlen")) {
      withmatchlen = true;
    } else if (eq_ci(opt, "minmatchlen") && more) {
      if (!parse_ll(c.argv[++j], minmatchlen)) return err(c, kNotInt);
      if (minmatchlen < 0) minmatchlen = 0;
    } else {
      return err(c, kSyntax);
    }
  }
  if (getlen && getidx)
    return err(c, "ERR If you want both the length and indexes, please just use IDX.");
  if (a.size() >= UINT32_MAX - 1 || b.size() >= UINT32_MAX - 1)
    return err(c, "ERR String too long for LCS");
  const auto alen = static_cast<std::uint32_t>(a.size());
  const auto blen = static_cast<std::uint32_t>(b.size());
  const std::uint64_t cells = std::uint64_t{alen + 1} * (blen + 1);
  if (cells * sizeof(std::uint32_t) > c.host.options().limits.max_bulk_len)
    return err(c, "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
  std::vector<std::uint32_t> table;
  try {
    table.assign(static_cast<std::size_t>(cells), 0);
  } catch (const std::bad_alloc&) {
    return err(c, "ERR Insufficient memory, failed allocating transient memory for LCS");
  }
  auto at = [&](std::uint32_t i, std::uint32_t j) -> std::uint32_t& {
    return table[std::size_t{j} + std::size_t{i} * (blen + 1)];
  };
  for (std::uint32_t i = 1; i <= alen; ++i)
    for (std::uint32_t j = 1; j <= blen; ++j)
      at(i, j) = a[i - 1] == b[j - 1] ? at(i - 1, j - 1) + 1 : std::max(at(i - 1, j), at(i, j - 1));

  const std::uint32_t total = at(alen, blen);
  if (getlen) return Reply::integer(c.out, total);
  std::string result(total, '\0');
  std::string matches;  // the IDX ranges, encoded
  std::size_t nmatches = 0;
  std::uint32_t idx = total;
  std::uint32_t a_start = alen, a_end = 0, b_start = 0, b_end = 0;  // a_start == alen: no range
  std::uint32_t i = alen, j = blen;
  while (i > 0 && j > 0) {
    bool emit = false;
    if (a[i - 1] == b[j - 1]) {
      result[idx - 1] = a[i - 1];
      if (a_start == alen) {
        a_start = a_end = i - 1;
        b_start = b_end = j - 1;
      } else if (a_start == i && b_start == j) {
        --a_start;  // the range grows backwards
        --b_start;
      } else {
        emit = true;
      }
      if (a_start == 0 || b_start == 0) emit = true;
      --idx;
      --i;
      --j;
    } else {
      if (at(i - 1, j) > at(i, j - 1))
        --i;
      else
        --j;
      if (a_start != alen) emit = true;
    }
    const std::uint32_t match_len = a_end - a_start + 1;
    if (emit) {
      if (getidx && (minmatchlen == 0 || match_len >= minmatchlen)) {
        Reply::array_header(matches, withmatchlen ? 3 : 2);
        Reply::array_header(matches, 2);
        Reply::integer(matches, a_start);
        Reply::integer(matches, a_end);
        Reply::array_header(matches, 2);
        Reply::integer(matches, b_start);
        Reply::integer(matches, b_end);
        if (withmatchlen) Reply::integer(matches, match_len);
        ++nmatches;
      }
      a_start = alen;
    }
  }
  if (!getidx) return Reply::bulk(c.out, result);
  Reply::array_header(c.out, 4);
  Reply::bulk(c.out, "matches");
  Reply::array_header(c.out, nmatches);
  c.out += matches;
  Reply::bulk(c.out, "len");
  Reply::integer(c.out, total);
}

}  // namespace

std::span<const Command> string_commands() noexcept {
  static constexpr Command kTable[] = {
      {"get", 2, kReadonly | kFast, "@read @string @fast", "", {"RO access", 1, 0}, cmd_get},
      {"set",
       -3,
       kWrite | kDenyOom,
       "@write @string @slow",
       "",
       {"RW access update variable_flags", 1, 0, 1, 0,
        "RW and ACCESS due to the optional `GET` argument"},
       cmd_set},
      {"setnx",
       3,
       kWrite | kDenyOom | kFast,
       "@write @string @fast",
       "",
       {"OW insert", 1, 0},
       cmd_setnx},
      {"setex", 4, kWrite | kDenyOom, "@write @string @slow", "", {"OW update", 1, 0}, cmd_setex},
      {"psetex", 4, kWrite | kDenyOom, "@write @string @slow", "", {"OW update", 1, 0}, cmd_psetex},
      {"getset",
       3,
       kWrite | kDenyOom | kFast,
       "@write @string @fast",
       "",
       {"RW access update", 1, 0},
       cmd_getset},
      {"getdel",
       2,
       kWrite | kFast,
       "@write @string @fast",
       "",
       {"RW access delete", 1, 0},
       cmd_getdel},
      {"incr",
       2,
       kWrite | kDenyOom | kFast,
       "@write @string @fast",
       "",
       {"RW access update", 1, 0},
       cmd_incr},
      {"decr",
       2,
       kWrite | kDenyOom | kFast,
       "@write @string @fast",
       "",
       {"RW access update", 1, 0},
       cmd_decr},
      {"incrby",
       3,
       kWrite | kDenyOom | kFast,
       "@write @string @fast",
       "",
       {"RW access update", 1, 0},
       cmd_incrby},
      {"decrby",
       3,
       kWrite | kDenyOom | kFast,
       "@write @string @fast",
       "",
       {"RW access update", 1, 0},
       cmd_decrby},
      {"append",
       3,
       kWrite | kDenyOom | kFast,
       "@write @string @fast",
       "",
       {"RW insert", 1, 0},
       cmd_append},
      {"strlen", 2, kReadonly | kFast, "@read @string @fast", "", {"RO", 1, 0}, cmd_strlen},
      {"mget",
       -2,
       kReadonly | kFast,
       "@read @string @fast",
       "request_policy:multi_shard",
       {"RO access", 1, -1},
       cmd_mget},
      {"mset",
       -3,
       kWrite | kDenyOom,
       "@write @string @slow",
       "request_policy:multi_shard response_policy:all_succeeded",
       {"OW update", 1, -1, 2},
       cmd_mset},
      {"getex",
       -2,
       kWrite | kFast,
       "@write @string @fast",
       "",
       {"RW access update", 1, 0, 1, 0, "RW and UPDATE because it changes the TTL"},
       cmd_getex},
      {"getrange", 4, kReadonly, "@read @string @slow", "", {"RO access", 1, 0}, cmd_getrange},
      {"substr", 4, kReadonly, "@read @string @slow", "", {"RO access", 1, 0}, cmd_getrange},
      {"setrange",
       4,
       kWrite | kDenyOom,
       "@write @string @slow",
       "",
       {"RW update", 1, 0},
       cmd_setrange},
      {"incrbyfloat",
       3,
       kWrite | kDenyOom | kFast,
       "@write @string @fast",
       "",
       {"RW access update", 1, 0},
       cmd_incrbyfloat},
      {"msetnx",
       -3,
       kWrite | kDenyOom,
       "@write @string @slow",
       "request_policy:multi_shard response_policy:agg_min",
       {"OW insert", 1, -1, 2},
       cmd_msetnx},
      {"lcs", -3, kReadonly, "@read @string @slow", "", {"RO access", 1, 1}, cmd_lcs},
  };
  return kTable;
}

}  // namespace kv::cmd
