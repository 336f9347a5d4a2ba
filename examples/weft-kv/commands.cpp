// weft-kv commands: the command table and every handler. Replies, integer
// parsing and error texts follow Redis 7.0 (src/t_string.c, src/expire.c,
// src/db.c, src/server.c, src/util.c string2ll); the AOF gets commands in
// a deterministic form (relative expiries become PXAT/PEXPIREAT; INCR*
// becomes SET ... KEEPTTL), as Redis propagates them.
#include <algorithm>
#include <array>
#include <charconv>
#include <climits>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>

#include "server.hpp"

namespace kv {
namespace {

// --- helpers ----------------------------------------------------------------

bool eq_ci(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
  }
  return true;
}

// Redis's string2ll: no spaces, no '+', no leading zeros, no "-0", at most
// 20 characters, no overflow.
bool parse_ll(std::string_view s, long long& out) noexcept {
  if (s.empty() || s.size() > 20) return false;
  if (s.size() == 1 && s[0] == '0') {
    out = 0;
    return true;
  }
  std::size_t i = 0;
  const bool neg = s[0] == '-';
  if (neg) ++i;
  if (i >= s.size() || s[i] < '1' || s[i] > '9') return false;
  unsigned long long v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    const unsigned d = static_cast<unsigned>(s[i] - '0');
    if (v > (ULLONG_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  if (neg) {
    if (v > static_cast<unsigned long long>(LLONG_MAX) + 1) return false;
    out = v == static_cast<unsigned long long>(LLONG_MAX) + 1 ? LLONG_MIN
                                                              : -static_cast<long long>(v);
  } else {
    if (v > static_cast<unsigned long long>(LLONG_MAX)) return false;
    out = static_cast<long long>(v);
  }
  return true;
}

std::string ll_to_string(long long v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

constexpr std::string_view kOk = "+OK\r\n";
constexpr std::string_view kNotInt = "ERR value is not an integer or out of range";
constexpr std::string_view kSyntax = "ERR syntax error";
constexpr std::string_view kOverflow = "ERR increment or decrement would overflow";
constexpr std::string_view kOom = "OOM command not allowed when used memory > 'maxmemory'.";
constexpr std::size_t kMaxString = std::size_t{512} << 20;  // proto-max-bulk-len

void ok(Context& c) {
  c.out += kOk;
}
void err(Context& c, std::string_view e) {
  Reply::error(c.out, e);
}
void arity_error(Context& c, std::string_view name) {
  err(c, "ERR wrong number of arguments for '" + std::string(name) + "' command");
}
void expire_error(Context& c, const char* cmd) {
  err(c, std::string("ERR invalid expire time in '") + cmd + "' command");
}

// Locks the shards of several keys in index order (no deadlock between two
// multi-key commands); unlocks on destruction.
class MultiLock {
 public:
  MultiLock(Keyspace& ks, std::span<const std::string_view> keys, std::size_t step = 1) {
    for (std::size_t i = 0; i < keys.size(); i += step)
      want_[Keyspace::shard_index(Keyspace::hash(keys[i]))] = true;
    lock(ks);
  }
  explicit MultiLock(Keyspace& ks) {  // every shard
    want_.fill(true);
    lock(ks);
  }
  ~MultiLock() {
    for (std::size_t i = n_; i-- > 0;) held_[i]->unlock();
  }
  MultiLock(const MultiLock&) = delete;
  MultiLock& operator=(const MultiLock&) = delete;

 private:
  void lock(Keyspace& ks) {
    for (std::size_t i = 0; i < Keyspace::kShards; ++i) {
      if (!want_[i]) continue;
      weft::Mutex& m = ks.shard(i).mu;
      m.lock();  // may throw Cancelled: the destructor releases the others
      held_[n_++] = &m;
    }
  }
  std::array<bool, Keyspace::kShards> want_{};
  std::array<weft::Mutex*, Keyspace::kShards> held_{};
  std::size_t n_ = 0;
};

// One key, its hash and its locked shard.
struct Locked {
  Locked(Keyspace& ks, std::string_view k)
      : key(k), h(Keyspace::hash(k)), shard(ks.shard_of(h)), lock(shard.mu) {}
  std::string_view key;
  std::uint64_t h;
  Shard& shard;
  std::lock_guard<weft::Mutex> lock;
};

// Sets key to value, dropping any TTL unless keep_ttl. The shard is locked.
Entry* store(Shard& sh, std::string_view key, std::uint64_t h, std::string_view value,
             std::int64_t now, bool keep_ttl) {
  Entry* e = sh.find(key, h, now);
  if (e == nullptr) {
    e = sh.insert(key, h);
  } else if (!keep_ttl && e->expire_at >= 0) {
    sh.set_expire(e, -1);
  }
  sh.assign(e, value);
  return e;
}

// --- connection -------------------------------------------------------------

void cmd_ping(Context& c) {
  if (c.argv.size() > 2) return arity_error(c, "ping");
  if (c.argv.size() == 2) return Reply::bulk(c.out, c.argv[1]);
  c.out += "+PONG\r\n";
}

void cmd_echo(Context& c) {
  Reply::bulk(c.out, c.argv[1]);
}

void cmd_quit(Context& c) {
  ok(c);
  c.close = true;
}

void cmd_select(Context& c) {
  long long db = 0;
  if (!parse_ll(c.argv[1], db)) return err(c, kNotInt);
  if (db != 0) return err(c, "ERR DB index is out of range");
  ok(c);
}

// --- strings ----------------------------------------------------------------

void cmd_get(Context& c) {
  Locked k(c.server.keyspace(), c.argv[1]);
  const Entry* e = k.shard.find(k.key, k.h, c.now);
  if (e == nullptr) {
    ++c.misses;
    return Reply::null_bulk(c.out);
  }
  ++c.hits;
  Reply::bulk(c.out, e->value);
}

void cmd_set(Context& c) {
  enum : unsigned { NX = 1, XX = 2, GET = 4, KEEPTTL = 8, EX = 16, PX = 32, EXAT = 64, PXAT = 128 };
  unsigned flags = 0;
  std::string_view expire_arg;
  const auto& a = c.argv;
  for (std::size_t j = 3; j < a.size(); ++j) {
    const std::string_view opt = a[j];
    const bool has_next = j + 1 < a.size();
    const unsigned timed = EX | PX | EXAT | PXAT;
    if (eq_ci(opt, "nx") && !(flags & XX)) {
      flags |= NX;
    } else if (eq_ci(opt, "xx") && !(flags & NX)) {
      flags |= XX;
    } else if (eq_ci(opt, "get")) {
      flags |= GET;
    } else if (eq_ci(opt, "keepttl") && !(flags & timed)) {
      flags |= KEEPTTL;
    } else if (eq_ci(opt, "ex") && !(flags & (KEEPTTL | PX | EXAT | PXAT)) && has_next) {
      flags |= EX;
      expire_arg = a[++j];
    } else if (eq_ci(opt, "px") && !(flags & (KEEPTTL | EX | EXAT | PXAT)) && has_next) {
      flags |= PX;
      expire_arg = a[++j];
    } else if (eq_ci(opt, "exat") && !(flags & (KEEPTTL | EX | PX | PXAT)) && has_next) {
      flags |= EXAT;
      expire_arg = a[++j];
    } else if (eq_ci(opt, "pxat") && !(flags & (KEEPTTL | EX | PX | EXAT)) && has_next) {
      flags |= PXAT;
      expire_arg = a[++j];
    } else {
      return err(c, kSyntax);
    }
  }
  std::int64_t at = -1;
  if (flags & (EX | PX | EXAT | PXAT)) {
    long long v = 0;
    if (!parse_ll(expire_arg, v)) return err(c, kNotInt);
    const bool seconds = flags & (EX | EXAT);
    if (v <= 0 || (seconds && v > LLONG_MAX / 1000)) return expire_error(c, "set");
    if (seconds) v *= 1000;
    if (flags & (EX | PX)) {
      if (v > LLONG_MAX - c.now) return expire_error(c, "set");
      v += c.now;
    }
    at = v;
  }
  Locked k(c.server.keyspace(), a[1]);
  Entry* e = k.shard.find(k.key, k.h, c.now);
  if (flags & GET) {
    if (e == nullptr)
      Reply::null_bulk(c.out);
    else
      Reply::bulk(c.out, e->value);
  }
  if (((flags & NX) && e != nullptr) || ((flags & XX) && e == nullptr)) {
    if (!(flags & GET)) Reply::null_bulk(c.out);
    return;
  }
  e = store(k.shard, k.key, k.h, a[2], c.now, (flags & KEEPTTL) != 0);
  if (at >= 0) k.shard.set_expire(e, at);
  if (at >= 0) {
    const std::string ms = ll_to_string(at);
    const std::string_view log[] = {"SET", a[1], a[2], "PXAT", ms};
    c.server.propagate(c, log);
  } else if (flags & KEEPTTL) {
    const std::string_view log[] = {"SET", a[1], a[2], "KEEPTTL"};
    c.server.propagate(c, log);
  } else {
    const std::string_view log[] = {"SET", a[1], a[2]};
    c.server.propagate(c, log);
  }
  if (!(flags & GET)) ok(c);
}

void set_with_ttl(Context& c, std::string_view key, std::string_view ttl, std::string_view value,
                  bool seconds, const char* name) {
  long long v = 0;
  if (!parse_ll(ttl, v)) return err(c, kNotInt);
  if (v <= 0 || (seconds && v > LLONG_MAX / 1000)) return expire_error(c, name);
  if (seconds) v *= 1000;
  if (v > LLONG_MAX - c.now) return expire_error(c, name);
  v += c.now;
  Locked k(c.server.keyspace(), key);
  Entry* e = store(k.shard, k.key, k.h, value, c.now, false);
  k.shard.set_expire(e, v);
  const std::string ms = ll_to_string(v);
  const std::string_view log[] = {"SET", key, value, "PXAT", ms};
  c.server.propagate(c, log);
  ok(c);
}

void cmd_setex(Context& c) {
  set_with_ttl(c, c.argv[1], c.argv[2], c.argv[3], true, "setex");
}
void cmd_psetex(Context& c) {
  set_with_ttl(c, c.argv[1], c.argv[2], c.argv[3], false, "psetex");
}

void cmd_setnx(Context& c) {
  Locked k(c.server.keyspace(), c.argv[1]);
  if (k.shard.find(k.key, k.h, c.now) != nullptr) return Reply::integer(c.out, 0);
  store(k.shard, k.key, k.h, c.argv[2], c.now, false);
  const std::string_view log[] = {"SET", c.argv[1], c.argv[2]};
  c.server.propagate(c, log);
  Reply::integer(c.out, 1);
}

void cmd_getset(Context& c) {
  Locked k(c.server.keyspace(), c.argv[1]);
  Entry* e = k.shard.find(k.key, k.h, c.now);
  if (e == nullptr)
    Reply::null_bulk(c.out);
  else
    Reply::bulk(c.out, e->value);
  store(k.shard, k.key, k.h, c.argv[2], c.now, false);
  const std::string_view log[] = {"SET", c.argv[1], c.argv[2]};
  c.server.propagate(c, log);
}

void cmd_getdel(Context& c) {
  Locked k(c.server.keyspace(), c.argv[1]);
  Entry* e = k.shard.find(k.key, k.h, c.now);
  if (e == nullptr) return Reply::null_bulk(c.out);
  Reply::bulk(c.out, e->value);
  k.shard.erase(e);
  const std::string_view log[] = {"DEL", c.argv[1]};
  c.server.propagate(c, log);
}

void incr_by(Context& c, std::string_view key, long long by) {
  Locked k(c.server.keyspace(), key);
  Entry* e = k.shard.find(k.key, k.h, c.now);
  long long cur = 0;
  if (e != nullptr && !parse_ll(e->value, cur)) return err(c, kNotInt);
  if ((by < 0 && cur < 0 && by < LLONG_MIN - cur) || (by > 0 && cur > 0 && by > LLONG_MAX - cur))
    return err(c, kOverflow);
  cur += by;
  const std::string v = ll_to_string(cur);
  store(k.shard, k.key, k.h, v, c.now, true);
  const std::string_view log[] = {"SET", key, v, "KEEPTTL"};
  c.server.propagate(c, log);
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
  Locked k(c.server.keyspace(), c.argv[1]);
  Entry* e = k.shard.find(k.key, k.h, c.now);
  if (e == nullptr) {
    e = k.shard.insert(k.key, k.h);
    k.shard.assign(e, c.argv[2]);
  } else {
    if (e->value.size() + c.argv[2].size() > kMaxString)
      return err(c, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    k.shard.append(e, c.argv[2]);
  }
  const std::string_view log[] = {"APPEND", c.argv[1], c.argv[2]};
  c.server.propagate(c, log);
  Reply::integer(c.out, static_cast<std::int64_t>(e->value.size()));
}

void cmd_strlen(Context& c) {
  Locked k(c.server.keyspace(), c.argv[1]);
  const Entry* e = k.shard.find(k.key, k.h, c.now);
  Reply::integer(c.out, e == nullptr ? 0 : static_cast<std::int64_t>(e->value.size()));
}

void cmd_mget(Context& c) {
  Keyspace& ks = c.server.keyspace();
  const auto keys = c.argv.subspan(1);
  MultiLock lock(ks, keys);
  Reply::array_header(c.out, keys.size());
  for (std::string_view key : keys) {
    const std::uint64_t h = Keyspace::hash(key);
    const Entry* e = ks.shard_of(h).find(key, h, c.now);
    if (e == nullptr) {
      ++c.misses;
      Reply::null_bulk(c.out);
    } else {
      ++c.hits;
      Reply::bulk(c.out, e->value);
    }
  }
}

void cmd_mset(Context& c) {
  if (c.argv.size() % 2 == 0) return arity_error(c, "mset");
  Keyspace& ks = c.server.keyspace();
  const auto pairs = c.argv.subspan(1);
  MultiLock lock(ks, pairs, 2);
  for (std::size_t i = 0; i < pairs.size(); i += 2) {
    const std::uint64_t h = Keyspace::hash(pairs[i]);
    store(ks.shard_of(h), pairs[i], h, pairs[i + 1], c.now, false);
  }
  c.server.propagate(c, c.argv);
  ok(c);
}

// --- keys -------------------------------------------------------------------

void cmd_del(Context& c) {
  Keyspace& ks = c.server.keyspace();
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
    c.server.propagate(c, log);
  }
  Reply::integer(c.out, n);
}

void cmd_exists(Context& c) {
  Keyspace& ks = c.server.keyspace();
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
  Locked k(c.server.keyspace(), c.argv[1]);
  c.out += k.shard.find(k.key, k.h, c.now) != nullptr ? "+string\r\n" : "+none\r\n";
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
  Locked k(c.server.keyspace(), c.argv[1]);
  Entry* e = k.shard.find(k.key, k.h, c.now);
  if (e == nullptr) return Reply::integer(c.out, 0);
  if (flags) {
    const std::int64_t cur = e->expire_at;
    if ((flags & NX) && cur != -1) return Reply::integer(c.out, 0);
    if ((flags & XX) && cur == -1) return Reply::integer(c.out, 0);
    if ((flags & GT) && (when <= cur || cur == -1)) return Reply::integer(c.out, 0);
    if ((flags & LT) && (when >= cur && cur != -1)) return Reply::integer(c.out, 0);
  }
  if (when <= c.now && !c.server.loading()) {
    k.shard.erase(e);
    const std::string_view log[] = {"DEL", c.argv[1]};
    c.server.propagate(c, log);
  } else {
    k.shard.set_expire(e, when < 0 ? 0 : when);
    const std::string ms = ll_to_string(when < 0 ? 0 : when);
    const std::string_view log[] = {"PEXPIREAT", c.argv[1], ms};
    c.server.propagate(c, log);
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
  Locked k(c.server.keyspace(), c.argv[1]);
  const Entry* e = k.shard.find(k.key, k.h, c.now);
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
  Locked k(c.server.keyspace(), c.argv[1]);
  Entry* e = k.shard.find(k.key, k.h, c.now);
  if (e == nullptr || e->expire_at < 0) return Reply::integer(c.out, 0);
  k.shard.set_expire(e, -1);
  c.server.propagate(c, c.argv);
  Reply::integer(c.out, 1);
}

void cmd_keys(Context& c) {
  Keyspace& ks = c.server.keyspace();
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
  bool only_strings = true;
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
      only_strings = eq_ci(c.argv[i + 1], "string");
    } else {
      return err(c, kSyntax);
    }
  }
  Keyspace& ks = c.server.keyspace();
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
        if (only_strings) found.push_back(e.key);
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
  Reply::integer(c.out, c.server.keyspace().keys());
}

void cmd_flush(Context& c) {
  if (c.argv.size() > 2 ||
      (c.argv.size() == 2 && !eq_ci(c.argv[1], "async") && !eq_ci(c.argv[1], "sync")))
    return err(c, kSyntax);
  Keyspace& ks = c.server.keyspace();
  MultiLock lock(ks);
  for (std::size_t i = 0; i < Keyspace::kShards; ++i) ks.shard(i).clear();
  const std::string_view log[] = {"FLUSHALL"};
  c.server.propagate(c, log);
  ok(c);
}

// --- server -----------------------------------------------------------------

void cmd_info(Context& c) {
  std::string text;
  if (c.argv.size() == 1) {
    text = c.server.info("");
  } else {
    for (std::size_t i = 1; i < c.argv.size(); ++i) {
      std::string section(c.argv[i]);
      for (char& ch : section) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      std::string part = c.server.info(section);
      if (part.empty()) continue;
      if (!text.empty()) text += "\r\n\r\n";
      text += part;
    }
    if (!text.empty()) text += "\r\n";
  }
  if (c.argv.size() == 1) text += "\r\n";
  Reply::bulk(c.out, text);
}

void cmd_client(Context& c) {
  const std::string_view sub = c.argv[1];
  if (eq_ci(sub, "setname")) {
    if (c.argv.size() != 3) return arity_error(c, "client|setname");
    for (char ch : c.argv[2]) {
      if (ch < '!' || ch > '~')
        return err(c, "ERR Client names cannot contain spaces, newlines or special characters.");
    }
    if (c.client != nullptr) {
      std::lock_guard lk(c.client->mu);
      c.client->name = c.argv[2];
    }
    return ok(c);
  }
  if (eq_ci(sub, "getname")) {
    if (c.argv.size() != 2) return arity_error(c, "client|getname");
    std::string name;
    if (c.client != nullptr) {
      std::lock_guard lk(c.client->mu);
      name = c.client->name;
    }
    if (name.empty()) return Reply::null_bulk(c.out);
    return Reply::bulk(c.out, name);
  }
  if (eq_ci(sub, "list")) {
    if (c.argv.size() != 2) return err(c, kSyntax);
    return Reply::bulk(c.out, c.server.client_list());
  }
  if (eq_ci(sub, "id")) {
    if (c.argv.size() != 2) return arity_error(c, "client|id");
    return Reply::integer(c.out, c.client != nullptr ? static_cast<std::int64_t>(c.client->id) : 0);
  }
  if (eq_ci(sub, "setinfo")) return ok(c);  // newer clients send it; accepted, ignored
  err(c, "ERR unknown subcommand '" + std::string(sub).substr(0, 128) + "'. Try CLIENT HELP.");
}

void command_info(std::string& out, const Command& cmd) {
  Reply::array_header(out, 10);
  Reply::bulk(out, cmd.name);
  Reply::integer(out, cmd.arity);
  std::vector<const char*> flags;
  if (cmd.flags & kWrite) flags.push_back("write");
  if (cmd.flags & kReadonly) flags.push_back("readonly");
  if (cmd.flags & kDenyOom) flags.push_back("denyoom");
  if (cmd.flags & kAdmin) flags.push_back("admin");
  if (cmd.flags & kFast) flags.push_back("fast");
  if (cmd.flags & kLoading) flags.push_back("loading");
  if (cmd.flags & kStale) flags.push_back("stale");
  Reply::array_header(out, flags.size());
  for (const char* f : flags) Reply::simple(out, f);
  Reply::integer(out, cmd.first_key);
  Reply::integer(out, cmd.last_key);
  Reply::integer(out, cmd.key_step);
  for (int i = 0; i < 4; ++i) Reply::array_header(out, 0);  // acl, tips, key specs, subcommands
}

void cmd_command(Context& c) {
  const auto table = commands();
  if (c.argv.size() == 1) {
    Reply::array_header(c.out, table.size());
    for (const Command& cmd : table) command_info(c.out, cmd);
    return;
  }
  const std::string_view sub = c.argv[1];
  if (eq_ci(sub, "count")) return Reply::integer(c.out, static_cast<std::int64_t>(table.size()));
  if (eq_ci(sub, "info")) {
    Reply::array_header(c.out, c.argv.size() - 2);
    for (std::size_t i = 2; i < c.argv.size(); ++i) {
      const auto it = std::find_if(table.begin(), table.end(),
                                   [&](const Command& cmd) { return eq_ci(c.argv[i], cmd.name); });
      if (it == table.end())
        Reply::null_array(c.out);
      else
        command_info(c.out, *it);
    }
    return;
  }
  if (eq_ci(sub, "list")) {
    Reply::array_header(c.out, table.size());
    for (const Command& cmd : table) Reply::bulk(c.out, cmd.name);
    return;
  }
  err(c, "ERR unknown subcommand '" + std::string(sub).substr(0, 128) + "'. Try COMMAND HELP.");
}

void cmd_config(Context& c) {
  const std::string_view sub = c.argv[1];
  if (eq_ci(sub, "get")) {
    if (c.argv.size() < 3) return arity_error(c, "config|get");
    const Options& o = c.server.options();
    const std::pair<const char*, std::string> params[] = {
        {"bind", o.bind},
        {"port", std::to_string(o.port)},
        {"save", ""},
        {"appendonly", o.appendonly ? "yes" : "no"},
        {"appendfsync", o.appendfsync == FsyncPolicy::always     ? "always"
                        : o.appendfsync == FsyncPolicy::everysec ? "everysec"
                                                                 : "no"},
        {"dir", std::filesystem::absolute(o.dir).string()},
        {"maxclients", std::to_string(o.maxclients)},
        {"maxmemory", std::to_string(o.maxmemory)},
        {"maxmemory-policy", "noeviction"},
        {"timeout", std::to_string(o.timeout_s)},
        {"databases", "1"},
        {"proto-max-bulk-len", std::to_string(o.limits.max_bulk_len)},
    };
    std::vector<const std::pair<const char*, std::string>*> hits;
    for (const auto& p : params) {
      for (std::size_t i = 2; i < c.argv.size(); ++i) {
        std::string pat(c.argv[i]);
        for (char& ch : pat) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (glob_match(pat, p.first)) {
          hits.push_back(&p);
          break;
        }
      }
    }
    Reply::array_header(c.out, hits.size() * 2);
    for (const auto* p : hits) {
      Reply::bulk(c.out, p->first);
      Reply::bulk(c.out, p->second);
    }
    return;
  }
  if (eq_ci(sub, "set")) {
    if (c.argv.size() < 4) return arity_error(c, "config|set");
    return err(c, "ERR Unknown option or number of arguments for CONFIG SET - '" +
                      std::string(c.argv[2]) + "'");
  }
  if (eq_ci(sub, "resetstat")) {
    auto& s = c.server.stats;
    s.commands = 0;
    s.connections = 0;
    s.rejected = 0;
    s.hits = 0;
    s.misses = 0;
    s.net_in = 0;
    s.net_out = 0;
    return ok(c);
  }
  err(c, "ERR unknown subcommand '" + std::string(sub).substr(0, 128) + "'. Try CONFIG HELP.");
}

void cmd_time(Context& c) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  Reply::array_header(c.out, 2);
  Reply::bulk(c.out, ll_to_string(ts.tv_sec));
  Reply::bulk(c.out, ll_to_string(ts.tv_nsec / 1000));
}

void cmd_shutdown(Context& c) {
  c.server.request_shutdown();
  c.close = true;  // as Redis: no reply, the connection closes
}

// The table. Arity and flags as Redis 7.0's (src/commands.def).
constexpr Command kCommands[] = {
    {"ping", -1, kFast | kStale, 0, 0, 0, cmd_ping},
    {"echo", 2, kFast | kStale, 0, 0, 0, cmd_echo},
    {"quit", -1, kFast | kStale | kLoading, 0, 0, 0, cmd_quit},
    {"select", 2, kFast | kLoading | kStale, 0, 0, 0, cmd_select},
    {"get", 2, kReadonly | kFast, 1, 1, 1, cmd_get},
    {"set", -3, kWrite | kDenyOom, 1, 1, 1, cmd_set},
    {"setnx", 3, kWrite | kDenyOom | kFast, 1, 1, 1, cmd_setnx},
    {"setex", 4, kWrite | kDenyOom, 1, 1, 1, cmd_setex},
    {"psetex", 4, kWrite | kDenyOom, 1, 1, 1, cmd_psetex},
    {"getset", 3, kWrite | kDenyOom | kFast, 1, 1, 1, cmd_getset},
    {"getdel", 2, kWrite | kFast, 1, 1, 1, cmd_getdel},
    {"del", -2, kWrite, 1, -1, 1, cmd_del},
    {"unlink", -2, kWrite | kFast, 1, -1, 1, cmd_del},
    {"exists", -2, kReadonly | kFast, 1, -1, 1, cmd_exists},
    {"type", 2, kReadonly | kFast, 1, 1, 1, cmd_type},
    {"incr", 2, kWrite | kDenyOom | kFast, 1, 1, 1, cmd_incr},
    {"decr", 2, kWrite | kDenyOom | kFast, 1, 1, 1, cmd_decr},
    {"incrby", 3, kWrite | kDenyOom | kFast, 1, 1, 1, cmd_incrby},
    {"decrby", 3, kWrite | kDenyOom | kFast, 1, 1, 1, cmd_decrby},
    {"append", 3, kWrite | kDenyOom, 1, 1, 1, cmd_append},
    {"strlen", 2, kReadonly | kFast, 1, 1, 1, cmd_strlen},
    {"mget", -2, kReadonly | kFast, 1, -1, 1, cmd_mget},
    {"mset", -3, kWrite | kDenyOom, 1, -1, 2, cmd_mset},
    {"expire", -3, kWrite | kFast, 1, 1, 1, cmd_expire},
    {"pexpire", -3, kWrite | kFast, 1, 1, 1, cmd_pexpire},
    {"expireat", -3, kWrite | kFast, 1, 1, 1, cmd_expireat},
    {"pexpireat", -3, kWrite | kFast, 1, 1, 1, cmd_pexpireat},
    {"ttl", 2, kReadonly | kFast, 1, 1, 1, cmd_ttl},
    {"pttl", 2, kReadonly | kFast, 1, 1, 1, cmd_pttl},
    {"persist", 2, kWrite | kFast, 1, 1, 1, cmd_persist},
    {"keys", 2, kReadonly, 0, 0, 0, cmd_keys},
    {"scan", -2, kReadonly, 0, 0, 0, cmd_scan},
    {"dbsize", 1, kReadonly | kFast, 0, 0, 0, cmd_dbsize},
    {"flushdb", -1, kWrite, 0, 0, 0, cmd_flush},
    {"flushall", -1, kWrite, 0, 0, 0, cmd_flush},
    {"info", -1, kLoading | kStale, 0, 0, 0, cmd_info},
    {"client", -2, kLoading | kStale, 0, 0, 0, cmd_client},
    {"command", -1, kLoading | kStale, 0, 0, 0, cmd_command},
    {"config", -2, kAdmin | kLoading | kStale, 0, 0, 0, cmd_config},
    {"time", 1, kFast | kLoading | kStale, 0, 0, 0, cmd_time},
    {"shutdown", -1, kAdmin | kLoading | kStale, 0, 0, 0, cmd_shutdown},
};

// Lookup by lower-cased name.
const std::unordered_map<std::string_view, int>& command_index() {
  static const auto* index = [] {
    auto* m = new std::unordered_map<std::string_view, int>;
    for (std::size_t i = 0; i < std::size(kCommands); ++i)
      m->emplace(kCommands[i].name, static_cast<int>(i));
    return m;
  }();
  return *index;
}

void unknown_command(Context& c) {
  // Redis: "unknown command '%.128s', with args beginning with: " then
  // "'%.*s' " per argument while fewer than 128 characters were added,
  // newlines in the text replaced by spaces.
  std::string args;
  for (std::size_t i = 1; i < c.argv.size() && args.size() < 128; ++i) {
    const std::size_t room = 128 - args.size();
    args += '\'';
    args += c.argv[i].substr(0, room);
    args += "' ";
  }
  std::string msg = "ERR unknown command '" + std::string(c.argv[0].substr(0, 128)) +
                    "', with args beginning with: " + args;
  for (char& ch : msg)
    if (ch == '\r' || ch == '\n') ch = ' ';
  err(c, msg);
}

}  // namespace

std::span<const Command> commands() noexcept {
  return kCommands;
}

void Server::execute(Context& c) {
  const std::string_view name = c.argv[0];
  char lower[24];
  int index = -1;
  if (name.size() < sizeof lower) {
    for (std::size_t i = 0; i < name.size(); ++i)
      lower[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
    const auto& idx = command_index();
    const auto it = idx.find(std::string_view(lower, name.size()));
    if (it != idx.end()) index = it->second;
  }
  if (index < 0) return unknown_command(c);
  const Command& cmd = kCommands[index];
  const auto argc = static_cast<int>(c.argv.size());
  if ((cmd.arity > 0 && argc != cmd.arity) || argc < -cmd.arity) return arity_error(c, cmd.name);
  if (c.client != nullptr) c.client->last_cmd.store(index, std::memory_order_relaxed);
  if ((cmd.flags & kDenyOom) && options_.maxmemory != 0 && !loading_ &&
      static_cast<std::uint64_t>(std::max<std::int64_t>(used_memory(), 0)) > options_.maxmemory)
    return Reply::error(c.out, kOom);
  cmd.run(c);
}

}  // namespace kv
