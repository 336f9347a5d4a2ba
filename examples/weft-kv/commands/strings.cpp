// weft-kv commands: strings, as Redis 7.0's src/t_string.c. The AOF gets
// them in a deterministic form (relative expiries become PXAT; INCR*
// becomes SET ... KEEPTTL), as Redis propagates them.
#include <climits>
#include <string>
#include <string_view>
#include <vector>

#include "commands/groups.hpp"
#include "commands/util.hpp"

namespace kv::cmd {
namespace {

void cmd_get(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  const Entry* e = k.find(c.now);
  if (e == nullptr) {
    ++c.misses;
    return Reply::null_bulk(c.out);
  }
  ++c.hits;
  if (e->type() != Type::string) return err(c, kWrongType);
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
  Locked k(c.host.keyspace(), a[1]);
  Entry* e = k.find(c.now);
  if ((flags & GET) && e != nullptr && e->type() != Type::string) return err(c, kWrongType);
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
    c.host.propagate(c, log);
  } else if (flags & KEEPTTL) {
    const std::string_view log[] = {"SET", a[1], a[2], "KEEPTTL"};
    c.host.propagate(c, log);
  } else {
    const std::string_view log[] = {"SET", a[1], a[2]};
    c.host.propagate(c, log);
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
  Locked k(c.host.keyspace(), key);
  Entry* e = store(k.shard, k.key, k.h, value, c.now, false);
  k.shard.set_expire(e, v);
  const std::string ms = ll_to_string(v);
  const std::string_view log[] = {"SET", key, value, "PXAT", ms};
  c.host.propagate(c, log);
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
  Reply::integer(c.out, 1);
}

void cmd_getset(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.find(c.now);
  if (e != nullptr && e->type() != Type::string) return err(c, kWrongType);
  if (e == nullptr)
    Reply::null_bulk(c.out);
  else
    Reply::bulk(c.out, e->value);
  store(k.shard, k.key, k.h, c.argv[2], c.now, false);
  const std::string_view log[] = {"SET", c.argv[1], c.argv[2]};
  c.host.propagate(c, log);
}

void cmd_getdel(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.find(c.now);
  if (e == nullptr) return Reply::null_bulk(c.out);
  if (e->type() != Type::string) return err(c, kWrongType);
  Reply::bulk(c.out, e->value);
  k.shard.erase(e);
  const std::string_view log[] = {"DEL", c.argv[1]};
  c.host.propagate(c, log);
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
  Reply::integer(c.out, static_cast<std::int64_t>(e->value.size()));
}

void cmd_strlen(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  const Entry* e = k.find(c.now);
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
    if (e == nullptr || e->type() != Type::string) {  // MGET: nil for another type
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
  Keyspace& ks = c.host.keyspace();
  const auto pairs = c.argv.subspan(1);
  MultiLock lock(ks, pairs, 2);
  for (std::size_t i = 0; i < pairs.size(); i += 2) {
    const std::uint64_t h = Keyspace::hash(pairs[i]);
    store(ks.shard_of(h), pairs[i], h, pairs[i + 1], c.now, false);
  }
  c.host.propagate(c, c.argv);
  ok(c);
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
  };
  return kTable;
}

}  // namespace kv::cmd
