// weft-kv commands: lists, as Redis 7.0's src/t_list.c, with the blocking
// pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) on commands/blocking.hpp.
// Replies, error texts and the order of the checks are Redis's. The AOF
// gets each write as Redis propagates it: the command itself, except LMPOP
// (logged as LPOP/RPOP key count) and the blocking pops, logged as the
// non-blocking pop they performed. A list that loses its last element is
// deleted; a push notes its key for the clients blocked on it.
#include <algorithm>
#include <climits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "commands/blocking.hpp"
#include "commands/groups.hpp"
#include "commands/util.hpp"
#include "notify.hpp"
#include "types/list.hpp"

namespace kv::cmd {
namespace {

List& list_of(Entry* e) noexcept {
  return *static_cast<List*>(e->object.get());
}

// A key and its shard; the shard must be locked by the caller.
struct Key {
  Key(Keyspace& ks, std::string_view k) : name(k), h(Keyspace::hash(k)), shard(ks.shard_of(h)) {}
  std::string_view name;
  std::uint64_t h;
  Shard& shard;
  Entry* find(std::int64_t now) const noexcept { return shard.find(name, h, now); }
};

// After a list changed in place: deletes the key when the list is empty
// (Redis never keeps an empty list), else recharges its bytes. True when
// it deleted the key.
bool settle(Shard& sh, Entry* e) noexcept {
  if (list_of(e).empty()) {
    sh.erase(e);
    return true;
  }
  sh.recharge(e);
  return false;
}

// The keyspace events of a pop from `key`: "lpop"/"rpop", then "del" when
// the list went (Redis's order).
void notify_pop(Context& c, std::string_view key, bool left, bool deleted) noexcept {
  notify(c, kNotifyList, left ? "lpop" : "rpop", key);
  if (deleted) notify(c, kNotifyGeneric, "del", key);
}

// The list at k, created when missing. @throws std::bad_alloc.
Entry* list_for_push(const Key& k, Entry* e) {
  if (e != nullptr) return e;
  e = k.shard.insert(k.name, k.h);
  k.shard.assign(e, std::make_unique<List>());
  return e;
}

// Pops and replies with up to n elements (at least one present), RPOP's
// reply in pop order.
void pop_reply(Context& c, List& l, bool left, std::size_t n) {
  Reply::array_header(c.out, n);
  for (std::size_t i = 0; i < n; ++i) Reply::bulk(c.out, l.pop(left));
}

const char* side(bool left) noexcept {
  return left ? "LEFT" : "RIGHT";
}

// Redis's getListPositionFromObjectOrReply: LEFT or RIGHT, any case.
bool parse_side(Context& c, std::string_view arg, bool& left) {
  if (eq_ci(arg, "left")) {
    left = true;
  } else if (eq_ci(arg, "right")) {
    left = false;
  } else {
    err(c, kSyntax);
    return false;
  }
  return true;
}

// --- pushes ------------------------------------------------------------------------

void push_generic(Context& c, bool left, bool only_existing) {
  Keyspace& ks = c.host.keyspace();
  MultiLock locks(ks, c.argv.subspan(1, 1));
  const Key k(ks, c.argv[1]);
  Entry* e = k.find(c.now);
  if (e != nullptr && e->type() != Type::list) return err(c, kWrongType);
  if (e == nullptr && only_existing) return Reply::integer(c.out, 0);
  e = list_for_push(k, e);
  List& l = list_of(e);
  try {
    for (std::string_view v : c.argv.subspan(2)) l.push(left, v);
  } catch (...) {
    settle(k.shard, e);
    throw;
  }
  k.shard.recharge(e);
  Reply::integer(c.out, static_cast<std::int64_t>(l.size()));
  c.host.propagate(c, c.argv);
  notify(c, kNotifyList, left ? "lpush" : "rpush", k.name);
  blocking::signal_ready(c, k.shard, k.name);
  blocking::serve_ready(c, locks);
}

void cmd_lpush(Context& c) {
  push_generic(c, true, false);
}
void cmd_rpush(Context& c) {
  push_generic(c, false, false);
}
void cmd_lpushx(Context& c) {
  push_generic(c, true, true);
}
void cmd_rpushx(Context& c) {
  push_generic(c, false, true);
}

// --- pops ----------------------------------------------------------------------------

void pop_generic(Context& c, bool left) {
  if (c.argv.size() > 3) return arity_error(c, left ? "lpop" : "rpop");
  const bool has_count = c.argv.size() == 3;
  long long count = 0;
  if (has_count &&
      !parse_range(c, c.argv[2], 0, LLONG_MAX, "value is out of range, must be positive", count))
    return;
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.find(c.now);
  if (e == nullptr) return has_count ? null_array(c) : null_bulk(c);
  if (e->type() != Type::list) return err(c, kWrongType);
  if (has_count && count == 0) return Reply::array_header(c.out, 0);
  List& l = list_of(e);
  if (!has_count)
    Reply::bulk(c.out, l.pop(left));
  else
    pop_reply(c, l, left, std::min<std::size_t>(static_cast<std::size_t>(count), l.size()));
  const bool deleted = settle(k.shard, e);
  c.host.propagate(c, c.argv);
  notify_pop(c, c.argv[1], left, deleted);
}

void cmd_lpop(Context& c) {
  pop_generic(c, true);
}
void cmd_rpop(Context& c) {
  pop_generic(c, false);
}

// LMPOP and BLMPOP's reply [key, [elements]] and their log, LPOP/RPOP key n.
void mpop_serve(Context& c, std::string_view key, Shard& sh, Entry* e, bool left, long long count) {
  List& l = list_of(e);
  const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(count), l.size());
  Reply::array_header(c.out, 2);
  Reply::bulk(c.out, key);
  pop_reply(c, l, left, n);
  const bool deleted = settle(sh, e);
  const std::string count_text = ll_to_string(static_cast<long long>(n));
  const std::string_view log[] = {left ? "LPOP" : "RPOP", key, count_text};
  c.host.propagate(c, log);
  notify_pop(c, key, left, deleted);
}

// BLPOP and BRPOP's reply [key, element] and their log, LPOP/RPOP key.
void pop_one_serve(Context& c, std::string_view key, Shard& sh, Entry* e, bool left) {
  Reply::array_header(c.out, 2);
  Reply::bulk(c.out, key);
  Reply::bulk(c.out, list_of(e).pop(left));
  const bool deleted = settle(sh, e);
  const std::string_view log[] = {left ? "LPOP" : "RPOP", key};
  c.host.propagate(c, log);
  notify_pop(c, key, left, deleted);
}

// blocking::Op::serve for BLPOP, BRPOP and BLMPOP.
void serve_pop(Context& c, const blocking::Op& op, std::string_view key, Shard& sh, Entry* e) {
  if (op.count < 0)
    pop_one_serve(c, key, sh, e, op.left);
  else
    mpop_serve(c, key, sh, e, op.left, op.count);
}

constexpr const char* kSides[2] = {"left", "right"};

void cmd_lmpop(Context& c) {
  std::span<const std::string_view> keys;
  bool left = true;
  long long count = 1;
  if (!blocking::parse_multi_pop(c, 1, kSides, keys, left, count)) return;
  MultiLock locks(c.host.keyspace(), keys);
  Entry* e = nullptr;
  std::string_view key;
  if (!blocking::first_existing(c, keys, Type::list, e, key)) return;
  if (e == nullptr) return null_array(c);
  mpop_serve(c, key, c.host.keyspace().shard_of(Keyspace::hash(key)), e, left, count);
}

// BLPOP, BRPOP (count -1) and BLMPOP.
void blocking_pop(Context& c, std::span<const std::string_view> keys, bool left, long long count,
                  std::string_view timeout) {
  blocking::Op op;
  op.type = Type::list;
  op.left = left;
  op.count = count;
  op.serve = serve_pop;
  blocking::pop_or_block(c, keys, op, timeout);
}

void cmd_blpop(Context& c) {
  blocking_pop(c, c.argv.subspan(1, c.argv.size() - 2), true, -1, c.argv.back());
}
void cmd_brpop(Context& c) {
  blocking_pop(c, c.argv.subspan(1, c.argv.size() - 2), false, -1, c.argv.back());
}

void cmd_blmpop(Context& c) {
  std::span<const std::string_view> keys;
  bool left = true;
  long long count = 1;
  if (!blocking::parse_multi_pop(c, 2, kSides, keys, left, count)) return;
  blocking_pop(c, keys, left, count, c.argv[1]);
}

// --- moves ---------------------------------------------------------------------------

// Pops from the list at `src` (entry `se`, non-empty) and pushes to `dst`
// (entry `de`, a list or missing), both shards held by `locks`; replies
// with the element. Returns false (after WRONGTYPE) if dst holds another
// type, nothing moved.
bool move_element(Context& c, const Key& src, Entry* se, const Key& dst, Entry* de, bool from_left,
                  bool to_left) {
  if (de != nullptr && de->type() != Type::list) {
    err(c, kWrongType);
    return false;
  }
  std::string v = list_of(se).pop(from_left);
  try {
    de = list_for_push(dst, de);
    list_of(de).push(to_left, v);
  } catch (...) {
    list_of(se).push(from_left, v);  // put it back: nothing moved
    throw;
  }
  dst.shard.recharge(de);
  // The source goes only now: with src == dst the element is back already.
  const bool deleted = settle(src.shard, se);
  // Redis's lmoveHandlePush (the push's event, the reply), then the pop's.
  notify(c, kNotifyList, to_left ? "lpush" : "rpush", dst.name);
  Reply::bulk(c.out, v);
  notify_pop(c, src.name, from_left, deleted);
  return true;
}

// blocking::Op::serve for BLMOVE and BRPOPLPUSH: logged as LMOVE (the sides
// as "LEFT"/"RIGHT") or RPOPLPUSH.
void serve_move(Context& c, const blocking::Op& op, std::string_view key, Shard& sh, Entry* e) {
  Keyspace& ks = c.host.keyspace();
  const Key src(ks, key);
  const Key dst(ks, op.dst);
  (void)sh;
  if (!move_element(c, src, e, dst, dst.find(c.now), op.left, op.to_left)) return;
  if (op.rpoplpush) {
    const std::string_view log[] = {"RPOPLPUSH", key, op.dst};
    c.host.propagate(c, log);
  } else {
    const std::string_view log[] = {"LMOVE", key, op.dst, side(op.left), side(op.to_left)};
    c.host.propagate(c, log);
  }
  blocking::signal_ready(c, dst.shard, dst.name);
}

// LMOVE, RPOPLPUSH, BLMOVE and BRPOPLPUSH. `log` is what the AOF gets when
// an element moves; `deadline` is set for the blocking forms.
void move_generic(Context& c, bool from_left, bool to_left, std::span<const std::string_view> log,
                  const weft::Deadline* deadline, bool rpoplpush) {
  Keyspace& ks = c.host.keyspace();
  MultiLock locks(ks, c.argv.subspan(1, 2));
  const Key src(ks, c.argv[1]);
  const Key dst(ks, c.argv[2]);
  Entry* se = src.find(c.now);
  if (se != nullptr && se->type() != Type::list) return err(c, kWrongType);
  if (se == nullptr) {
    if (deadline == nullptr) return null_bulk(c);
    blocking::Op op;
    op.type = Type::list;
    op.left = from_left;
    op.to_left = to_left;
    op.rpoplpush = rpoplpush;
    op.dst = dst.name;
    op.null_bulk_when_denied = true;
    op.serve = serve_move;
    return blocking::block(c, locks, c.argv.subspan(1, 1), op, *deadline);
  }
  if (!move_element(c, src, se, dst, dst.find(c.now), from_left, to_left)) return;
  c.host.propagate(c, log);
  blocking::signal_ready(c, dst.shard, dst.name);
  blocking::serve_ready(c, locks);
}

void cmd_lmove(Context& c) {
  bool from_left = true, to_left = true;
  if (!parse_side(c, c.argv[3], from_left) || !parse_side(c, c.argv[4], to_left)) return;
  move_generic(c, from_left, to_left, c.argv, nullptr, false);
}

void cmd_rpoplpush(Context& c) {
  move_generic(c, false, true, c.argv, nullptr, true);
}

void cmd_blmove(Context& c) {
  bool from_left = true, to_left = true;
  if (!parse_side(c, c.argv[3], from_left) || !parse_side(c, c.argv[4], to_left)) return;
  weft::Deadline deadline;
  if (!blocking::parse_timeout(c, c.argv[5], deadline)) return;
  const std::string_view log[] = {"LMOVE", c.argv[1], c.argv[2], c.argv[3], c.argv[4]};
  move_generic(c, from_left, to_left, log, &deadline, false);
}

void cmd_brpoplpush(Context& c) {
  weft::Deadline deadline;
  if (!blocking::parse_timeout(c, c.argv[3], deadline)) return;
  const std::string_view log[] = {"RPOPLPUSH", c.argv[1], c.argv[2]};
  move_generic(c, false, true, log, &deadline, true);
}

// --- reads and in-place edits -------------------------------------------------------

void cmd_llen(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.read(c);
  if (e == nullptr) return Reply::integer(c.out, 0);
  if (e->type() != Type::list) return err(c, kWrongType);
  Reply::integer(c.out, static_cast<std::int64_t>(list_of(e).size()));
}

void cmd_lrange(Context& c) {
  long long start = 0, end = 0;
  if (!parse_ll(c.argv[2], start) || !parse_ll(c.argv[3], end)) return err(c, kNotInt);
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.read(c);
  if (e == nullptr) return Reply::array_header(c.out, 0);
  if (e->type() != Type::list) return err(c, kWrongType);
  const List& l = list_of(e);
  if (!clip_range(start, end, static_cast<long long>(l.size())))
    return Reply::array_header(c.out, 0);
  Reply::array_header(c.out, static_cast<std::size_t>(end - start + 1));
  for (long long i = start; i <= end; ++i) Reply::bulk(c.out, l.at(static_cast<std::size_t>(i)));
}

// An index as LINDEX and LSET read it (negative: from the tail); false
// when out of range.
bool element_index(long long index, std::size_t size, std::size_t& at) noexcept {
  const auto len = static_cast<long long>(size);
  if (index < 0) index += len;
  if (index < 0 || index >= len) return false;
  at = static_cast<std::size_t>(index);
  return true;
}

void cmd_lindex(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.read(c);
  if (e == nullptr) return null_bulk(c);
  if (e->type() != Type::list) return err(c, kWrongType);
  long long index = 0;
  if (!parse_ll(c.argv[2], index)) return err(c, kNotInt);
  const List& l = list_of(e);
  std::size_t at = 0;
  if (!element_index(index, l.size(), at)) return null_bulk(c);
  Reply::bulk(c.out, l.at(at));
}

void cmd_lset(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.find(c.now);
  if (e == nullptr) return err(c, "ERR no such key");
  if (e->type() != Type::list) return err(c, kWrongType);
  long long index = 0;
  if (!parse_ll(c.argv[2], index)) return err(c, kNotInt);
  List& l = list_of(e);
  std::size_t at = 0;
  if (!element_index(index, l.size(), at)) return err(c, "ERR index out of range");
  l.set(at, c.argv[3]);
  k.shard.recharge(e);
  c.host.propagate(c, c.argv);
  ok(c);  // before the event, as Redis's lsetCommand
  notify(c, kNotifyList, "lset", c.argv[1]);
}

void cmd_linsert(Context& c) {
  bool after = false;
  if (eq_ci(c.argv[2], "after")) {
    after = true;
  } else if (!eq_ci(c.argv[2], "before")) {
    return err(c, kSyntax);
  }
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.find(c.now);
  if (e == nullptr) return Reply::integer(c.out, 0);
  if (e->type() != Type::list) return err(c, kWrongType);
  List& l = list_of(e);
  for (std::size_t i = 0; i < l.size(); ++i) {
    if (l.at(i) != c.argv[3]) continue;
    l.insert(after ? i + 1 : i, c.argv[4]);
    k.shard.recharge(e);
    c.host.propagate(c, c.argv);
    notify(c, kNotifyList, "linsert", c.argv[1]);
    return Reply::integer(c.out, static_cast<std::int64_t>(l.size()));
  }
  Reply::integer(c.out, -1);
}

void cmd_lrem(Context& c) {
  long long count = 0;
  if (!parse_ll(c.argv[2], count)) return err(c, kNotInt);
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.find(c.now);
  if (e == nullptr) return Reply::integer(c.out, 0);
  if (e->type() != Type::list) return err(c, kWrongType);
  const std::size_t removed = list_of(e).remove(c.argv[3], count);
  if (removed != 0) {
    const bool deleted = settle(k.shard, e);
    c.host.propagate(c, c.argv);
    notify(c, kNotifyList, "lrem", c.argv[1]);
    if (deleted) notify(c, kNotifyGeneric, "del", c.argv[1]);
  }
  Reply::integer(c.out, static_cast<std::int64_t>(removed));
}

void cmd_ltrim(Context& c) {
  long long start = 0, end = 0;
  if (!parse_ll(c.argv[2], start) || !parse_ll(c.argv[3], end)) return err(c, kNotInt);
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.find(c.now);
  if (e == nullptr) return ok(c);
  if (e->type() != Type::list) return err(c, kWrongType);
  List& l = list_of(e);
  const auto len = static_cast<long long>(l.size());
  long long head = len, tail = 0;  // an empty range empties the list
  if (clip_range(start, end, len)) {
    head = start;
    tail = len - end - 1;
  }
  bool deleted = false;
  if (head + tail != 0) {
    l.trim(static_cast<std::size_t>(head), static_cast<std::size_t>(tail));
    deleted = settle(k.shard, e);
    c.host.propagate(c, c.argv);
  }
  // Redis's ltrimCommand announces every LTRIM of a list, trimmed or not.
  notify(c, kNotifyList, "ltrim", c.argv[1]);
  if (deleted) notify(c, kNotifyGeneric, "del", c.argv[1]);
  ok(c);
}

void cmd_lpos(Context& c) {
  long long rank = 1, count = -1, maxlen = 0;
  for (std::size_t j = 3; j < c.argv.size(); ++j) {
    const std::string_view opt = c.argv[j];
    const bool more = j + 1 < c.argv.size();
    if (eq_ci(opt, "rank") && more) {
      if (!parse_ll(c.argv[++j], rank)) return err(c, kNotInt);
      if (rank == 0)
        return err(c,
                   "ERR RANK can't be zero: use 1 to start from the first match, 2 from the "
                   "second ... or use negative to start from the end of the list");
    } else if (eq_ci(opt, "count") && more) {
      if (!parse_range(c, c.argv[++j], 0, LLONG_MAX, "COUNT can't be negative", count)) return;
    } else if (eq_ci(opt, "maxlen") && more) {
      if (!parse_range(c, c.argv[++j], 0, LLONG_MAX, "MAXLEN can't be negative", maxlen)) return;
    } else {
      return err(c, kSyntax);
    }
  }
  // A negative rank counts matches from the tail. Redis negates it as a
  // long: LONG_MIN stays negative, so every match then qualifies.
  const bool from_tail = rank < 0;
  if (from_tail) rank = static_cast<long long>(0ull - static_cast<unsigned long long>(rank));
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.read(c);
  if (e == nullptr) return count != -1 ? Reply::array_header(c.out, 0) : null_bulk(c);
  if (e->type() != Type::list) return err(c, kWrongType);
  const List& l = list_of(e);
  const long long len = static_cast<long long>(l.size());
  std::vector<long long> found;
  long long matches = 0;
  for (long long i = 0; i < len && (maxlen == 0 || i < maxlen); ++i) {
    const long long at = from_tail ? len - 1 - i : i;
    if (l.at(static_cast<std::size_t>(at)) != c.argv[2]) continue;
    ++matches;
    if (matches < rank) continue;
    found.push_back(at);
    // matches - rank + 1 wraps for rank LONG_MIN in Redis too.
    const auto past = static_cast<long long>(static_cast<unsigned long long>(matches) -
                                             static_cast<unsigned long long>(rank) + 1);
    if (count == -1 || (count != 0 && past >= count)) break;
  }
  if (count == -1) {
    if (found.empty()) return null_bulk(c);
    return Reply::integer(c.out, found[0]);
  }
  Reply::array_header(c.out, found.size());
  for (const long long at : found) Reply::integer(c.out, at);
}

}  // namespace

std::span<const Command> list_commands() noexcept {
  static constexpr const char* kListFast = "@write @list @fast";
  static constexpr KeySpec kInsert = {"RW insert", 1, 0};
  static constexpr KeySpec kPop = {"RW access delete", 1, 0};
  static constexpr KeySpec kRead = {"RO access", 1, 0};
  static constexpr KeySpec kMpop = {"RW access delete", 1, 0, 1, 0, nullptr, 0, 1};
  static constexpr KeySpec kMoveDst = {"RW insert", 2, 0};
  static constexpr Command kTable[] = {
      {"lpush", -3, kWrite | kDenyOom | kFast, kListFast, "", kInsert, cmd_lpush},
      {"rpush", -3, kWrite | kDenyOom | kFast, kListFast, "", kInsert, cmd_rpush},
      {"lpushx", -3, kWrite | kDenyOom | kFast, kListFast, "", kInsert, cmd_lpushx},
      {"rpushx", -3, kWrite | kDenyOom | kFast, kListFast, "", kInsert, cmd_rpushx},
      {"lpop", -2, kWrite | kFast, kListFast, "", kPop, cmd_lpop},
      {"rpop", -2, kWrite | kFast, kListFast, "", kPop, cmd_rpop},
      {"llen", 2, kReadonly | kFast, "@read @list @fast", "", {"RO", 1, 0}, cmd_llen},
      {"lrange", 4, kReadonly, "@read @list @slow", "", kRead, cmd_lrange},
      {"lindex", 3, kReadonly, "@read @list @slow", "", kRead, cmd_lindex},
      {"lset", 4, kWrite | kDenyOom, "@write @list @slow", "", {"RW update", 1, 0}, cmd_lset},
      {"linsert", 5, kWrite | kDenyOom, "@write @list @slow", "", kInsert, cmd_linsert},
      {"lrem", 4, kWrite, "@write @list @slow", "", {"RW delete", 1, 0}, cmd_lrem},
      {"ltrim", 4, kWrite, "@write @list @slow", "", {"RW delete", 1, 0}, cmd_ltrim},
      {"lpos", -3, kReadonly, "@read @list @slow", "", kRead, cmd_lpos},
      {"lmove", 5, kWrite | kDenyOom, "@write @list @slow", "", kPop, cmd_lmove, kMoveDst},
      {"rpoplpush", 3, kWrite | kDenyOom, "@write @list @slow", "", kPop, cmd_rpoplpush, kMoveDst},
      {"lmpop", -4, kWrite, "@write @list @slow", "", kMpop, cmd_lmpop},
      {"blpop",
       -3,
       kWrite | kNoScript | kBlocking,
       "@write @list @slow @blocking",
       "",
       {"RW access delete", 1, -2},
       cmd_blpop},
      {"brpop",
       -3,
       kWrite | kNoScript | kBlocking,
       "@write @list @slow @blocking",
       "",
       {"RW access delete", 1, -2},
       cmd_brpop},
      {"blmove", 6, kWrite | kDenyOom | kNoScript | kBlocking, "@write @list @slow @blocking", "",
       kPop, cmd_blmove, kMoveDst},
      {"brpoplpush", 4, kWrite | kDenyOom | kNoScript | kBlocking, "@write @list @slow @blocking",
       "", kPop, cmd_brpoplpush, kMoveDst},
      {"blmpop",
       -5,
       kWrite | kBlocking,
       "@write @list @slow @blocking",
       "",
       {"RW access delete", 2, 0, 1, 0, nullptr, 0, 1},
       cmd_blmpop},
  };
  return kTable;
}

}  // namespace kv::cmd
