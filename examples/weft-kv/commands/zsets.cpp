// weft-kv commands: sorted sets, as Redis 7.0's src/t_zset.c, with the
// blocking pops (BZPOPMIN, BZPOPMAX, BZMPOP) on commands/blocking.hpp.
// Replies, error texts, the order of the checks and the score formatting
// (%.17g, "inf") are Redis's. The AOF gets each write as Redis propagates
// it: the command itself, except ZMPOP (logged as ZPOPMIN/ZPOPMAX key
// count) and the blocking pops (the non-blocking pop they performed). A
// sorted set that loses its last member is deleted; a command that adds
// members or stores a result notes the key for clients blocked on it.
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "commands/blocking.hpp"
#include "commands/groups.hpp"
#include "commands/util.hpp"
#include "notify.hpp"
#include "types/zset.hpp"

namespace kv::cmd {
namespace {

constexpr std::string_view kNotFloat = "ERR value is not a valid float";

ZSet& zset_of(Entry* e) noexcept {
  return *static_cast<ZSet*>(e->object.get());
}

// The encoding thresholds (zset-max-listpack-entries and -value). Redis 7's
// defaults; CONFIG SET of them, when it exists, is read here.
ZSet::Limits zset_limits(const Context&) noexcept {
  return {};
}

void reply_score(Context& c, double s) {
  Reply::double_text(c.out, format_score(s), proto(c));
}

// A list of n members, with their scores when `withscores`: RESP2 one
// flat array (member, score, ...), RESP3 an array of [member, score]
// pairs (Redis 7.0's zrangeResultBeginStore / addReplyArrayLen in pairs).
void scored_header(Context& c, std::size_t n, bool withscores) {
  Reply::array_header(c.out, withscores && proto(c) != 3 ? 2 * n : n);
}
// One member of such a list.
void scored_item(Context& c, const ZSet::Node* x, bool withscores) {
  if (withscores && proto(c) == 3) Reply::array_header(c.out, 2);
  Reply::bulk(c.out, x->member());
  if (withscores) reply_score(c, x->score());
}

// After a sorted set changed in place: deletes the key when it is empty,
// else recharges its bytes. True when it deleted the key.
bool settle(Shard& sh, Entry* e) noexcept {
  if (zset_of(e).size() == 0) {
    sh.erase(e);
    return true;
  }
  sh.recharge(e);
  return false;
}

// The keyspace events of a removal from `key` that took `n` members:
// `event`, then "del" when the set went (Redis's order).
void notify_removed(Context& c, std::string_view key, const char* event, std::size_t n,
                    bool deleted) noexcept {
  if (n != 0) notify(c, kNotifyZset, event, key);
  if (deleted) notify(c, kNotifyGeneric, "del", key);
}

// The live entry of `key` in its (locked) shard, for a read (a missing key
// is reported: key_miss).
Entry* lookup(Context& c, std::string_view key) noexcept {
  const std::uint64_t h = Keyspace::hash(key);
  Entry* e = c.host.keyspace().shard_of(h).find(key, h, c.now);
  if (e == nullptr) key_miss(c, key);
  return e;
}

Shard& shard_of(Context& c, std::string_view key) noexcept {
  return c.host.keyspace().shard_of(Keyspace::hash(key));
}

// Replaces the value of `key` (its shard locked) with `z`, dropping any TTL
// (Redis's setKey), or deletes the key when z is empty; announces it as
// `event` or "del". Returns whether the keyspace changed.
bool store_result(Context& c, std::string_view key, std::unique_ptr<ZSet> z, const char* event) {
  const std::uint64_t h = Keyspace::hash(key);
  Shard& sh = c.host.keyspace().shard_of(h);
  Entry* e = sh.find(key, h, c.now);
  if (z->size() == 0) {
    if (e == nullptr) return false;
    sh.erase(e);
    notify(c, kNotifyGeneric, "del", key);
    return true;
  }
  if (e == nullptr) {
    e = sh.insert(key, h);
  } else if (e->expire_at >= 0) {
    sh.set_expire(e, -1);
  }
  sh.assign(e, std::move(z));
  notify(c, kNotifyZset, event, key);
  blocking::signal_ready(c, sh, key);
  return true;
}

// --- argument parsing -----------------------------------------------------------------

// Redis's zslParseRange for one end: strtod after an optional "(", up to a
// NUL (so leading blanks, "" and a tail after an embedded NUL pass), not NaN.
bool parse_score_bound(std::string_view arg, double& v, bool& exclusive) {
  const std::string buf(arg);
  const char* p = buf.c_str();
  exclusive = *p == '(';
  if (exclusive) ++p;
  char* end = nullptr;
  v = std::strtod(p, &end);
  return *end == '\0' && !std::isnan(v);
}

bool parse_score_range(std::string_view min, std::string_view max, ScoreRange& r) {
  return parse_score_bound(min, r.min, r.minex) && parse_score_bound(max, r.max, r.maxex);
}

// Redis's zslParseLexRangeItem: "+", "-", "(member" or "[member".
bool parse_lex_bound(std::string_view arg, LexBound& b) {
  if (arg.empty()) return false;
  switch (arg[0]) {
    case '+':
    case '-':
      if (arg.size() > 1 && arg[1] != '\0') return false;  // Redis reads a C string
      b.kind = arg[0] == '+' ? LexBound::Kind::plus : LexBound::Kind::minus;
      b.exclusive = true;
      return true;
    case '(':
    case '[':
      b.kind = LexBound::Kind::value;
      b.exclusive = arg[0] == '(';
      b.value = arg.substr(1);
      return true;
    default:
      return false;
  }
}

bool parse_lex_range(std::string_view min, std::string_view max, LexRange& r) {
  return parse_lex_bound(min, r.min) && parse_lex_bound(max, r.max);
}

// Redis 7.0's parseScanCursorOrReply: strtoul over the whole argument, no
// leading blank ("-1" is a cursor: strtoul wraps it).
bool parse_cursor(std::string_view arg, unsigned long long& cursor) {
  const std::string buf(arg);
  if (!buf.empty() && std::isspace(static_cast<unsigned char>(buf[0]))) return false;
  char* end = nullptr;
  errno = 0;
  cursor = std::strtoull(buf.c_str(), &end, 10);
  return *end == '\0' && errno != ERANGE;
}

// --- ZADD, ZINCRBY ---------------------------------------------------------------------

// Redis's zaddGenericCommand: options, score-member pairs, and ZINCRBY
// (incr: the same parser, starting at the increment).
void zadd_generic(Context& c, bool incr) {
  bool nx = false, xx = false, gt = false, lt = false, ch = false;
  std::size_t at = 2;
  for (; at < c.argv.size(); ++at) {
    const std::string_view o = c.argv[at];
    if (eq_ci(o, "nx"))
      nx = true;
    else if (eq_ci(o, "xx"))
      xx = true;
    else if (eq_ci(o, "ch"))
      ch = true;
    else if (eq_ci(o, "incr"))
      incr = true;
    else if (eq_ci(o, "gt"))
      gt = true;
    else if (eq_ci(o, "lt"))
      lt = true;
    else
      break;
  }
  const std::size_t elements = c.argv.size() - at;
  if (elements == 0 || elements % 2 != 0) return err(c, kSyntax);
  const std::size_t pairs = elements / 2;
  if (nx && xx) return err(c, "ERR XX and NX options at the same time are not compatible");
  if ((gt && nx) || (lt && nx) || (gt && lt))
    return err(c, "ERR GT, LT, and/or NX options at the same time are not compatible");
  if (incr && pairs > 1) return err(c, "ERR INCR option supports a single increment-element pair");
  std::vector<double> scores(pairs);
  for (std::size_t j = 0; j < pairs; ++j) {
    if (!parse_double(c.argv[at + 2 * j], scores[j])) return err(c, kNotFloat);
  }
  MultiLock locks(c.host.keyspace(), c.argv.subspan(1, 1));
  const std::string_view key = c.argv[1];
  const std::uint64_t h = Keyspace::hash(key);
  Shard& sh = c.host.keyspace().shard_of(h);
  Entry* e = sh.find(key, h, c.now);
  if (e != nullptr && e->type() != Type::zset) return err(c, kWrongType);
  std::size_t added = 0, updated = 0, processed = 0;
  double score = 0;
  if (e != nullptr || !xx) {
    if (e == nullptr) {
      e = sh.insert(key, h);
      sh.assign(e, std::make_unique<ZSet>(zset_limits(c), c.argv[at + 1].size()));
    }
    ZSet& z = zset_of(e);
    for (std::size_t j = 0; j < pairs; ++j) {
      score = scores[j];
      const std::string_view member = c.argv[at + 2 * j + 1];
      const ZSet::Node* n = z.find(member);
      if (n != nullptr) {
        if (nx) continue;
        const double cur = n->score();
        if (incr) {
          score += cur;
          if (std::isnan(score)) {
            settle(sh, e);
            return err(c, "ERR resulting score is not a number (NaN)");
          }
        }
        if ((lt && score >= cur) || (gt && score <= cur)) continue;
        if (score != cur) {
          z.update(n, score);
          ++updated;
        }
        ++processed;
      } else if (!xx) {
        z.insert(member, score);
        ++added;
        ++processed;
      }
    }
    settle(sh, e);
  }
  if (incr) {
    if (processed != 0)
      reply_score(c, score);
    else
      null_bulk(c);
  } else {
    Reply::integer(c.out, static_cast<std::int64_t>(ch ? added + updated : added));
  }
  if (added + updated != 0) {
    c.host.propagate(c, c.argv);
    notify(c, kNotifyZset, incr ? "zincr" : "zadd", key);
    blocking::signal_ready(c, sh, key);
    blocking::serve_ready(c, locks);
  }
}

void cmd_zadd(Context& c) {
  zadd_generic(c, false);
}
void cmd_zincrby(Context& c) {
  zadd_generic(c, true);
}

// --- single-key reads and removals -------------------------------------------------------

// The sorted set at argv[1] for a read; replies (`missing` or WRONGTYPE)
// and returns nullptr when there is none.
template <class Missing>
const ZSet* read_zset(Context& c, Locked& k, Missing missing) {
  Entry* e = k.read(c);
  if (e == nullptr) {
    missing();
    return nullptr;
  }
  if (e->type() != Type::zset) {
    err(c, kWrongType);
    return nullptr;
  }
  return &zset_of(e);
}

void cmd_zcard(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  const ZSet* z = read_zset(c, k, [&] { Reply::integer(c.out, 0); });
  if (z != nullptr) Reply::integer(c.out, static_cast<std::int64_t>(z->size()));
}

void cmd_zscore(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  const ZSet* z = read_zset(c, k, [&] { null_bulk(c); });
  if (z == nullptr) return;
  const ZSet::Node* n = z->find(c.argv[2]);
  if (n == nullptr) return null_bulk(c);
  reply_score(c, n->score());
}

void cmd_zmscore(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.read(c);
  if (e != nullptr && e->type() != Type::zset) return err(c, kWrongType);
  Reply::array_header(c.out, c.argv.size() - 2);
  for (std::string_view m : c.argv.subspan(2)) {
    const ZSet::Node* n = e != nullptr ? zset_of(e).find(m) : nullptr;
    if (n == nullptr)
      null_bulk(c);
    else
      reply_score(c, n->score());
  }
}

void rank_generic(Context& c, bool reverse) {
  Locked k(c.host.keyspace(), c.argv[1]);
  const ZSet* z = read_zset(c, k, [&] { null_bulk(c); });
  if (z == nullptr) return;
  const ZSet::Node* n = z->find(c.argv[2]);
  if (n == nullptr) return null_bulk(c);
  const std::size_t r = z->rank(n);
  Reply::integer(c.out, static_cast<std::int64_t>(reverse ? z->size() - 1 - r : r));
}

void cmd_zrank(Context& c) {
  rank_generic(c, false);
}
void cmd_zrevrank(Context& c) {
  rank_generic(c, true);
}

void cmd_zcount(Context& c) {
  ScoreRange r;
  if (!parse_score_range(c.argv[2], c.argv[3], r)) return err(c, "ERR min or max is not a float");
  Locked k(c.host.keyspace(), c.argv[1]);
  const ZSet* z = read_zset(c, k, [&] { Reply::integer(c.out, 0); });
  if (z == nullptr) return;
  const ZSet::Node* first = z->first_in(r);
  if (first == nullptr) return Reply::integer(c.out, 0);
  const ZSet::Node* last = z->last_in(r);
  Reply::integer(c.out, static_cast<std::int64_t>(z->rank(last) - z->rank(first) + 1));
}

void cmd_zlexcount(Context& c) {
  LexRange r;
  if (!parse_lex_range(c.argv[2], c.argv[3], r))
    return err(c, "ERR min or max not valid string range item");
  Locked k(c.host.keyspace(), c.argv[1]);
  const ZSet* z = read_zset(c, k, [&] { Reply::integer(c.out, 0); });
  if (z == nullptr) return;
  const ZSet::Node* first = z->first_in(r);
  std::size_t count = 0;
  if (first != nullptr && z->listpack()) {
    // Redis walks a listpack from the first member in range while the
    // members stay below the maximum.
    for (const ZSet::Node* n = first; n != nullptr && r.below_max(n->member()); n = n->next())
      ++count;
  } else if (first != nullptr) {
    // The skip list: from the ranks of the first and the last in range.
    count = z->size() - z->rank(first);
    if (const ZSet::Node* last = z->last_in(r)) count -= z->size() - z->rank(last) - 1;
  }
  Reply::integer(c.out, static_cast<std::int64_t>(count));
}

void cmd_zrem(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.find(c.now);
  if (e == nullptr) return Reply::integer(c.out, 0);
  if (e->type() != Type::zset) return err(c, kWrongType);
  ZSet& z = zset_of(e);
  std::int64_t deleted = 0;
  for (std::string_view m : c.argv.subspan(2)) {
    if (const ZSet::Node* n = z.find(m)) {
      z.erase(n);
      ++deleted;
      if (z.size() == 0) break;
    }
  }
  const bool gone = settle(k.shard, e);
  if (deleted != 0) c.host.propagate(c, c.argv);
  notify_removed(c, c.argv[1], "zrem", static_cast<std::size_t>(deleted), gone);
  Reply::integer(c.out, deleted);
}

// --- ranges ------------------------------------------------------------------------------

enum class RangeType { automatic, rank, score, lex };
enum class Direction { automatic, forward, reverse };

// The members a ZRANGE-like command selects, in reply order.
using Selection = std::vector<const ZSet::Node*>;

// Rank-based selection: [start, end] after Redis's index sanitising.
Selection select_by_rank(const ZSet& z, long long start, long long end, bool reverse) {
  Selection out;
  const auto len = static_cast<long long>(z.size());
  if (!clip_range(start, end, len)) return out;
  const auto n = static_cast<std::size_t>(end - start + 1);
  out.reserve(n);
  const ZSet::Node* x = z.at_rank(reverse ? static_cast<std::size_t>(len - 1 - start)
                                          : static_cast<std::size_t>(start));
  for (std::size_t i = 0; i < n && x != nullptr; ++i, x = reverse ? x->prev() : x->next())
    out.push_back(x);
  return out;
}

// Score- and lex-based selection with Redis's LIMIT: skip `offset` members
// (a negative offset skips everything), then take `limit` (negative: all)
// while still in range.
template <class Range, class Key>
Selection select_in_range(const ZSet& z, const Range& r, long long offset, long long limit,
                          bool reverse, Key key) {
  Selection out;
  const ZSet::Node* x = reverse ? z.last_in(r) : z.first_in(r);
  for (; x != nullptr && offset != 0; --offset) x = reverse ? x->prev() : x->next();
  if (offset < 0) return out;
  for (; x != nullptr && limit != 0; --limit, x = reverse ? x->prev() : x->next()) {
    if (reverse ? !r.above_min(key(x)) : !r.below_max(key(x))) break;
    out.push_back(x);
  }
  return out;
}

// A new sorted set holding the selection (ZRANGESTORE's destination): a
// listpack unless a rank range already knows it is too long (Redis 7.0's
// zrangeResultBeginStore).
std::unique_ptr<ZSet> zset_from(const Context& c, const Selection& sel, bool known_length) {
  const ZSet::Limits limits = zset_limits(c);
  auto z = std::make_unique<ZSet>(limits, 0, known_length && sel.size() > limits.entries);
  for (const ZSet::Node* n : sel) z->insert(n->member(), n->score());
  return z;
}

// Redis's zrangeGenericCommand: ZRANGE (all its forms), ZRANGESTORE,
// ZREVRANGE, Z[REV]RANGEBYSCORE, Z[REV]RANGEBYLEX. The source key is
// argv[first]; with `store`, argv[1] receives the result.
void zrange_generic(Context& c, std::size_t first, bool store, RangeType type, Direction dir) {
  std::size_t min_at = first + 1, max_at = first + 2;
  bool withscores = false;
  long long offset = 0, limit = -1;
  for (std::size_t j = first + 3; j < c.argv.size(); ++j) {
    const std::size_t left = c.argv.size() - j - 1;
    const std::string_view o = c.argv[j];
    if (!store && eq_ci(o, "withscores")) {
      withscores = true;
    } else if (eq_ci(o, "limit") && left >= 2) {
      if (!parse_ll(c.argv[j + 1], offset) || !parse_ll(c.argv[j + 2], limit))
        return err(c, kNotInt);
      j += 2;
    } else if (dir == Direction::automatic && eq_ci(o, "rev")) {
      dir = Direction::reverse;
    } else if (type == RangeType::automatic && eq_ci(o, "bylex")) {
      type = RangeType::lex;
    } else if (type == RangeType::automatic && eq_ci(o, "byscore")) {
      type = RangeType::score;
    } else {
      return err(c, kSyntax);
    }
  }
  if (dir == Direction::automatic) dir = Direction::forward;
  if (type == RangeType::automatic) type = RangeType::rank;
  if (limit != -1 && type == RangeType::rank)
    return err(c,
               "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or "
               "BYLEX");
  if (withscores && type == RangeType::lex)
    return err(c, "ERR syntax error, WITHSCORES not supported in combination with BYLEX");
  const bool reverse = dir == Direction::reverse;
  if (reverse && type != RangeType::rank) std::swap(min_at, max_at);
  long long start = 0, end = 0;
  ScoreRange scores;
  LexRange lex;
  switch (type) {
    case RangeType::automatic:
    case RangeType::rank:
      if (!parse_ll(c.argv[min_at], start) || !parse_ll(c.argv[max_at], end))
        return err(c, kNotInt);
      break;
    case RangeType::score:
      if (!parse_score_range(c.argv[min_at], c.argv[max_at], scores))
        return err(c, "ERR min or max is not a float");
      break;
    case RangeType::lex:
      if (!parse_lex_range(c.argv[min_at], c.argv[max_at], lex))
        return err(c, "ERR min or max not valid string range item");
      break;
  }
  const std::string_view src = c.argv[first];
  const std::string_view keys[] = {c.argv[1], src};
  MultiLock locks(c.host.keyspace(),
                  std::span<const std::string_view>(keys).subspan(store ? 0 : 1));
  Entry* e = lookup(c, src);
  if (e != nullptr && e->type() != Type::zset) return err(c, kWrongType);
  Selection sel;
  if (e != nullptr) {
    const ZSet& z = zset_of(e);
    if (type == RangeType::rank) {
      sel = select_by_rank(z, start, end, reverse);
    } else if (type == RangeType::score) {
      if (offset <= 0 || offset < static_cast<long long>(z.size()))
        sel = select_in_range(z, scores, offset, limit, reverse,
                              [](const ZSet::Node* n) { return n->score(); });
    } else {
      sel = select_in_range(z, lex, offset, limit, reverse,
                            [](const ZSet::Node* n) { return std::string_view(n->member()); });
    }
  } else if (!store) {
    return Reply::array_header(c.out, 0);
  }
  if (store) {
    const std::int64_t n = static_cast<std::int64_t>(sel.size());
    std::unique_ptr<ZSet> result = zset_from(c, sel, type == RangeType::rank);
    // Replied before the store's event, as Redis's zrangeResultFinalizeStore.
    Reply::integer(c.out, n);
    if (store_result(c, c.argv[1], std::move(result), "zrangestore")) c.host.propagate(c, c.argv);
    return blocking::serve_ready(c, locks);
  }
  scored_header(c, sel.size(), withscores);
  for (const ZSet::Node* n : sel) scored_item(c, n, withscores);
}

void cmd_zrange(Context& c) {
  zrange_generic(c, 1, false, RangeType::automatic, Direction::automatic);
}
void cmd_zrangestore(Context& c) {
  zrange_generic(c, 2, true, RangeType::automatic, Direction::automatic);
}
void cmd_zrevrange(Context& c) {
  zrange_generic(c, 1, false, RangeType::rank, Direction::reverse);
}
void cmd_zrangebyscore(Context& c) {
  zrange_generic(c, 1, false, RangeType::score, Direction::forward);
}
void cmd_zrevrangebyscore(Context& c) {
  zrange_generic(c, 1, false, RangeType::score, Direction::reverse);
}
void cmd_zrangebylex(Context& c) {
  zrange_generic(c, 1, false, RangeType::lex, Direction::forward);
}
void cmd_zrevrangebylex(Context& c) {
  zrange_generic(c, 1, false, RangeType::lex, Direction::reverse);
}

// Redis's zremrangeGenericCommand.
void zremrange_generic(Context& c, RangeType type) {
  long long start = 0, end = 0;
  ScoreRange scores;
  LexRange lex;
  if (type == RangeType::rank) {
    if (!parse_ll(c.argv[2], start) || !parse_ll(c.argv[3], end)) return err(c, kNotInt);
  } else if (type == RangeType::score) {
    if (!parse_score_range(c.argv[2], c.argv[3], scores))
      return err(c, "ERR min or max is not a float");
  } else if (!parse_lex_range(c.argv[2], c.argv[3], lex)) {
    return err(c, "ERR min or max not valid string range item");
  }
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.find(c.now);
  if (e == nullptr) return Reply::integer(c.out, 0);
  if (e->type() != Type::zset) return err(c, kWrongType);
  ZSet& z = zset_of(e);
  Selection sel;
  if (type == RangeType::rank)
    sel = select_by_rank(z, start, end, false);
  else if (type == RangeType::score)
    sel = select_in_range(z, scores, 0, -1, false, [](const ZSet::Node* n) { return n->score(); });
  else
    sel = select_in_range(z, lex, 0, -1, false,
                          [](const ZSet::Node* n) { return std::string_view(n->member()); });
  for (const ZSet::Node* n : sel) z.erase(n);
  const bool gone = settle(k.shard, e);
  if (!sel.empty()) c.host.propagate(c, c.argv);
  static constexpr const char* kEvents[] = {"zremrangebyrank", "zremrangebyscore",
                                            "zremrangebylex"};
  notify_removed(c, c.argv[1],
                 kEvents[type == RangeType::rank    ? 0
                         : type == RangeType::score ? 1
                                                    : 2],
                 sel.size(), gone);
  Reply::integer(c.out, static_cast<std::int64_t>(sel.size()));
}

void cmd_zremrangebyrank(Context& c) {
  zremrange_generic(c, RangeType::rank);
}
void cmd_zremrangebyscore(Context& c) {
  zremrange_generic(c, RangeType::score);
}
void cmd_zremrangebylex(Context& c) {
  zremrange_generic(c, RangeType::lex);
}

// --- ZUNION, ZINTER, ZDIFF, their STORE forms, ZINTERCARD -------------------------------

enum class SetOp { union_, inter, diff };

// One input of a set operation: a sorted set, or a set read as a sorted set
// whose scores are all 1 (materialised, as Redis's zui iterators read it).
struct Source {
  const ZSet* z = nullptr;
  std::unique_ptr<ZSet> from_set;
  double weight = 1;
  std::size_t size() const noexcept { return z == nullptr ? 0 : z->size(); }
};

// Redis's zunionInterAggregate.
enum class Aggregate { sum, min, max };
void aggregate(double& target, double v, Aggregate a) noexcept {
  if (a == Aggregate::sum) {
    target += v;
    if (std::isnan(target)) target = 0;  // inf + -inf
  } else if (a == Aggregate::min) {
    target = v < target ? v : target;
  } else {
    target = v > target ? v : target;
  }
}

// Redis's zunionInterDiffGenericCommand. `dst`: the STORE forms'
// destination (argv[1]); `numkeys_at`: where numkeys is; `name`: the
// command's name for the error text.
void zsetop_generic(Context& c, bool store, std::size_t numkeys_at, SetOp op, bool card_only,
                    const char* name) {
  long long setnum = 0;
  if (!parse_ll(c.argv[numkeys_at], setnum)) return err(c, kNotInt);
  if (setnum < 1)
    return err(c, std::string("ERR at least 1 input key is needed for '") + name + "' command");
  if (static_cast<unsigned long long>(setnum) > c.argv.size() - (numkeys_at + 1))
    return err(c, kSyntax);
  const auto n = static_cast<std::size_t>(setnum);
  const auto inputs = c.argv.subspan(numkeys_at + 1, n);
  std::vector<std::string_view> lock_keys(inputs.begin(), inputs.end());
  if (store) lock_keys.push_back(c.argv[1]);
  MultiLock locks(c.host.keyspace(), lock_keys);
  std::vector<Source> src(n);
  for (std::size_t i = 0; i < n; ++i) {
    Entry* e = lookup(c, inputs[i]);
    if (e == nullptr) continue;
    if (e->type() == Type::zset) {
      src[i].z = &zset_of(e);
    } else if (e->type() == Type::set) {
      src[i].from_set = std::make_unique<ZSet>(zset_limits(c), 0, true);
      e->object->for_each_member([&](std::string_view m) { src[i].from_set->insert(m, 1.0); });
      src[i].z = src[i].from_set.get();
    } else {
      return err(c, kWrongType);
    }
  }
  Aggregate agg = Aggregate::sum;
  bool withscores = false;
  long long limit = 0;
  for (std::size_t j = numkeys_at + 1 + n; j < c.argv.size();) {
    const std::size_t remaining = c.argv.size() - j;
    const std::string_view o = c.argv[j];
    if (op != SetOp::diff && !card_only && remaining >= n + 1 && eq_ci(o, "weights")) {
      ++j;
      for (std::size_t i = 0; i < n; ++i, ++j) {
        if (!parse_double(c.argv[j], src[i].weight))
          return err(c, "ERR weight value is not a float");
      }
    } else if (op != SetOp::diff && !card_only && remaining >= 2 && eq_ci(o, "aggregate")) {
      const std::string_view a = c.argv[j + 1];
      if (eq_ci(a, "sum"))
        agg = Aggregate::sum;
      else if (eq_ci(a, "min"))
        agg = Aggregate::min;
      else if (eq_ci(a, "max"))
        agg = Aggregate::max;
      else
        return err(c, kSyntax);
      j += 2;
    } else if (!store && !card_only && eq_ci(o, "withscores")) {
      withscores = true;
      ++j;
    } else if (card_only && remaining >= 2 && eq_ci(o, "limit")) {
      if (!parse_range(c, c.argv[j + 1], 0, LLONG_MAX, "LIMIT can't be negative", limit)) return;
      j += 2;
    } else {
      return err(c, kSyntax);
    }
  }
  // Smallest input first (Redis sorts them with qsort, which is stable in
  // glibc for this size); the order decides the order of the additions.
  if (op != SetOp::diff) {
    std::stable_sort(src.begin(), src.end(),
                     [](const Source& a, const Source& b) { return a.size() < b.size(); });
  }
  auto result = std::make_unique<ZSet>(zset_limits(c), 0, true);
  std::size_t cardinality = 0;
  if (op == SetOp::inter) {
    if (src[0].size() != 0) {
      // Redis iterates the smallest input from its last member.
      for (const ZSet::Node* x = src[0].z->last(); x != nullptr; x = x->prev()) {
        double score = src[0].weight * x->score();
        if (std::isnan(score)) score = 0;
        std::size_t j = 1;
        for (; j < n; ++j) {
          double v = 0;
          if (src[j].z == src[0].z) {
            v = x->score() * src[j].weight;
          } else if (const ZSet::Node* m =
                         src[j].z != nullptr ? src[j].z->find(x->member()) : nullptr) {
            v = m->score() * src[j].weight;
          } else {
            break;
          }
          aggregate(score, v, agg);
        }
        if (j != n) continue;
        if (card_only) {
          if (++cardinality == static_cast<std::size_t>(limit)) break;  // limit 0: none
        } else {
          result->insert(x->member(), score);
        }
      }
    }
  } else if (op == SetOp::union_) {
    std::unordered_map<std::string_view, double> acc;
    for (const Source& s : src) {
      if (s.size() == 0) continue;
      for (const ZSet::Node* x = s.z->last(); x != nullptr; x = x->prev()) {
        double score = s.weight * x->score();
        if (std::isnan(score)) score = 0;
        const auto [it, fresh] = acc.try_emplace(x->member(), score);
        if (!fresh) aggregate(it->second, score, agg);
      }
    }
    for (const auto& [m, s] : acc) result->insert(m, s);
  } else if (src[0].size() != 0) {
    for (const ZSet::Node* x = src[0].z->first(); x != nullptr; x = x->next()) {
      bool elsewhere = false;
      for (std::size_t j = 1; j < n && !elsewhere; ++j)
        elsewhere = src[j].z != nullptr && src[j].z->find(x->member()) != nullptr;
      if (!elsewhere) result->insert(x->member(), x->score());
    }
  }
  if (card_only) return Reply::integer(c.out, static_cast<std::int64_t>(cardinality));
  if (store) {
    const auto count = static_cast<std::int64_t>(result->size());
    result->shrink_encoding();
    // The event is the command's name (zunionstore, zinterstore, zdiffstore).
    if (store_result(c, c.argv[1], std::move(result), name)) c.host.propagate(c, c.argv);
    Reply::integer(c.out, count);
    return blocking::serve_ready(c, locks);
  }
  scored_header(c, result->size(), withscores);
  for (const ZSet::Node* x = result->first(); x != nullptr; x = x->next())
    scored_item(c, x, withscores);
}

void cmd_zunion(Context& c) {
  zsetop_generic(c, false, 1, SetOp::union_, false, "zunion");
}
void cmd_zinter(Context& c) {
  zsetop_generic(c, false, 1, SetOp::inter, false, "zinter");
}
void cmd_zdiff(Context& c) {
  zsetop_generic(c, false, 1, SetOp::diff, false, "zdiff");
}
void cmd_zunionstore(Context& c) {
  zsetop_generic(c, true, 2, SetOp::union_, false, "zunionstore");
}
void cmd_zinterstore(Context& c) {
  zsetop_generic(c, true, 2, SetOp::inter, false, "zinterstore");
}
void cmd_zdiffstore(Context& c) {
  zsetop_generic(c, true, 2, SetOp::diff, false, "zdiffstore");
}
void cmd_zintercard(Context& c) {
  zsetop_generic(c, false, 1, SetOp::inter, true, "zintercard");
}

// --- pops ----------------------------------------------------------------------------------

// Pops up to `count` members from the minimum (min) or maximum of the
// sorted set at `key` (entry e, non-empty) and replies: flat [member, score]
// pairs, preceded by the key for BZPOPMIN/BZPOPMAX (`with_key`), or
// [key, [[member, score]...]] for ZMPOP and BZMPOP (`nested`). Logs
// ZPOPMIN/ZPOPMAX key [n] when `log` (the forms that are not logged as
// themselves).
void zpop(Context& c, std::string_view key, Shard& sh, Entry* e, bool min, long long count,
          bool with_key, bool nested, bool log) {
  ZSet& z = zset_of(e);
  const std::size_t n =
      std::min<std::size_t>(static_cast<std::size_t>(count < 0 ? 1 : count), z.size());
  // RESP3: ZPOPMIN/ZPOPMAX with a count answer [member, score] pairs too
  // (Redis 7.0's genericZpopCommand, use_nested_array).
  const bool pairs = nested || (proto(c) == 3 && count >= 0 && !with_key);
  if (nested) {
    Reply::array_header(c.out, 2);
    Reply::bulk(c.out, key);
    Reply::array_header(c.out, n);
  } else if (pairs) {
    Reply::array_header(c.out, n);
  } else {
    Reply::array_header(c.out, n * 2 + (with_key ? 1 : 0));
    if (with_key) Reply::bulk(c.out, key);
  }
  for (std::size_t i = 0; i < n; ++i) {
    const ZSet::Node* x = min ? z.first() : z.last();
    if (pairs) Reply::array_header(c.out, 2);
    Reply::bulk(c.out, x->member());
    reply_score(c, x->score());
    z.erase(x);
  }
  notify_removed(c, key, min ? "zpopmin" : "zpopmax", n, settle(sh, e));
  if (!log) return;
  const std::string_view cmd = min ? "ZPOPMIN" : "ZPOPMAX";
  if (count < 0) {
    const std::string_view argv[] = {cmd, key};
    c.host.propagate(c, argv);
  } else {
    const std::string n_text = ll_to_string(static_cast<long long>(n));
    const std::string_view argv[] = {cmd, key, n_text};
    c.host.propagate(c, argv);
  }
}

void zpop_generic(Context& c, bool min) {
  if (c.argv.size() > 3) return err(c, kSyntax);
  long long count = -1;
  if (c.argv.size() == 3 &&
      !parse_range(c, c.argv[2], 0, LLONG_MAX, "value is out of range, must be positive", count))
    return;
  Locked k(c.host.keyspace(), c.argv[1]);
  Entry* e = k.find(c.now);
  if (e == nullptr) return Reply::array_header(c.out, 0);
  if (e->type() != Type::zset) return err(c, kWrongType);
  if (count == 0) return Reply::array_header(c.out, 0);
  zpop(c, k.key, k.shard, e, min, count, false, false, false);
  c.host.propagate(c, c.argv);
}

void cmd_zpopmin(Context& c) {
  zpop_generic(c, true);
}
void cmd_zpopmax(Context& c) {
  zpop_generic(c, false);
}

constexpr const char* kEnds[2] = {"min", "max"};

void cmd_zmpop(Context& c) {
  std::span<const std::string_view> keys;
  bool min = true;
  long long count = 1;
  if (!blocking::parse_multi_pop(c, 1, kEnds, keys, min, count)) return;
  MultiLock locks(c.host.keyspace(), keys);
  Entry* e = nullptr;
  std::string_view key;
  if (!blocking::first_existing(c, keys, Type::zset, e, key)) return;
  if (e == nullptr) return null_array(c);
  zpop(c, key, shard_of(c, key), e, min, count, true, true, true);
}

// blocking::Op::serve for BZPOPMIN, BZPOPMAX (count -1) and BZMPOP.
void serve_zpop(Context& c, const blocking::Op& op, std::string_view key, Shard& sh, Entry* e) {
  zpop(c, key, sh, e, op.left, op.count, true, op.count >= 0, true);
}

// BZPOPMIN, BZPOPMAX (count -1) and BZMPOP.
void blocking_zpop(Context& c, std::span<const std::string_view> keys, bool min, long long count,
                   std::string_view timeout) {
  blocking::Op op;
  op.type = Type::zset;
  op.left = min;
  op.count = count;
  op.serve = serve_zpop;
  blocking::pop_or_block(c, keys, op, timeout);
}

void cmd_bzpopmin(Context& c) {
  blocking_zpop(c, c.argv.subspan(1, c.argv.size() - 2), true, -1, c.argv.back());
}
void cmd_bzpopmax(Context& c) {
  blocking_zpop(c, c.argv.subspan(1, c.argv.size() - 2), false, -1, c.argv.back());
}
void cmd_bzmpop(Context& c) {
  std::span<const std::string_view> keys;
  bool min = true;
  long long count = 1;
  if (!blocking::parse_multi_pop(c, 2, kEnds, keys, min, count)) return;
  blocking_zpop(c, keys, min, count, c.argv[1]);
}

// --- ZRANDMEMBER, ZSCAN -------------------------------------------------------------------

void cmd_zrandmember(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  if (c.argv.size() == 2) {
    const ZSet* z = read_zset(c, k, [&] { null_bulk(c); });
    if (z == nullptr) return;
    thread_local std::minstd_rand rng{std::random_device{}()};
    const ZSet::Node* x = z->at_rank(rng() % z->size());
    return Reply::bulk(c.out, x->member());
  }
  long long l = 0;
  if (!parse_ll(c.argv[2], l)) return err(c, kNotInt);
  if (l == LLONG_MIN)
    return err(c,
               "ERR value is out of range, value must between -9223372036854775807 and "
               "9223372036854775807");
  bool withscores = false;
  if (c.argv.size() > 4 || (c.argv.size() == 4 && !eq_ci(c.argv[3], "withscores")))
    return err(c, kSyntax);
  if (c.argv.size() == 4) {
    withscores = true;
    if (l < -LLONG_MAX / 2 || l > LLONG_MAX / 2) return err(c, "ERR value is out of range");
  }
  const ZSet* z = read_zset(c, k, [&] { Reply::array_header(c.out, 0); });
  if (z == nullptr) return;
  if (l == 0) return Reply::array_header(c.out, 0);
  const std::size_t size = z->size();
  auto reply = [&](const ZSet::Node* x) { scored_item(c, x, withscores); };
  thread_local std::mt19937_64 rng{std::random_device{}()};
  if (l < 0) {  // with repetitions
    const auto count = static_cast<std::size_t>(-l);
    scored_header(c, count, withscores);
    for (std::size_t i = 0; i < count; ++i) reply(z->at_rank(rng() % size));
    return;
  }
  const auto count = static_cast<std::size_t>(l);
  if (count >= size) {  // all of them, from the maximum down (Redis's zui order)
    scored_header(c, size, withscores);
    for (const ZSet::Node* x = z->last(); x != nullptr; x = x->prev()) reply(x);
    return;
  }
  // Distinct members at random ranks: drawn into a set when few are asked
  // for, else a partial Fisher-Yates shuffle of every rank.
  scored_header(c, count, withscores);
  if (count * 4 < size) {
    std::unordered_set<std::size_t> taken;
    while (taken.size() < count) {
      const std::size_t r = rng() % size;
      if (taken.insert(r).second) reply(z->at_rank(r));
    }
    return;
  }
  std::vector<std::size_t> ranks(size);
  for (std::size_t i = 0; i < size; ++i) ranks[i] = i;
  for (std::size_t i = 0; i < count; ++i) {
    std::swap(ranks[i], ranks[i + rng() % (size - i)]);
    reply(z->at_rank(ranks[i]));
  }
}

void cmd_zscan(Context& c) {
  unsigned long long cursor = 0;
  if (!parse_cursor(c.argv[2], cursor)) return err(c, "ERR invalid cursor");
  Locked k(c.host.keyspace(), c.argv[1]);
  const ZSet* z = read_zset(c, k, [&] { c.out += "*2\r\n$1\r\n0\r\n*0\r\n"; });
  if (z == nullptr) return;
  long long count = 10;
  std::string_view pattern;
  bool use_pattern = false;
  for (std::size_t i = 3; i < c.argv.size(); i += 2) {
    const std::string_view o = c.argv[i];
    if (eq_ci(o, "count") && i + 1 < c.argv.size()) {
      if (!parse_ll(c.argv[i + 1], count)) return err(c, kNotInt);
      if (count < 1) return err(c, kSyntax);
    } else if (eq_ci(o, "match") && i + 1 < c.argv.size()) {
      pattern = c.argv[i + 1];
      use_pattern = pattern != "*";
    } else {
      return err(c, kSyntax);
    }
  }
  std::vector<const ZSet::Node*> found;
  if (z->listpack()) {
    // A listpack is returned whole, in order, with cursor 0.
    for (const ZSet::Node* x = z->first(); x != nullptr; x = x->next()) found.push_back(x);
    cursor = 0;
  } else {
    // Redis counts the members and their scores against COUNT.
    long long budget = count * 10;
    do {
      cursor = z->scan(cursor, [&](const ZSet::Node& x) { found.push_back(&x); });
    } while (cursor != 0 && budget-- != 0 &&
             found.size() * 2 < static_cast<unsigned long long>(count));
  }
  std::vector<std::string> out;
  out.reserve(found.size() * 2);
  for (const ZSet::Node* x : found) {
    if (use_pattern && !glob_match(pattern, x->member())) continue;
    out.push_back(x->member());
    out.push_back(z->scan_text(x->score()));
  }
  Reply::array_header(c.out, 2);
  Reply::bulk(c.out, ll_to_string(static_cast<long long>(cursor)));
  Reply::array_header(c.out, out.size());
  for (const std::string& s : out) Reply::bulk(c.out, s);
}

}  // namespace

std::span<const Command> zset_commands() noexcept {
  static constexpr const char* kWriteFast = "@write @sortedset @fast";
  static constexpr const char* kReadFast = "@read @sortedset @fast";
  static constexpr const char* kReadSlow = "@read @sortedset @slow";
  static constexpr const char* kWriteSlow = "@write @sortedset @slow";
  static constexpr KeySpec kRead = {"RO access", 1, 0};
  static constexpr KeySpec kDelete = {"RW delete", 1, 0};
  static constexpr KeySpec kPop = {"RW access delete", 1, 0};
  static constexpr KeySpec kStoreDst = {"OW update", 1, 0};
  static constexpr KeySpec kInputs = {"RO access", 1, 0, 1, 0, nullptr, 0, 1};
  static constexpr KeySpec kStoreInputs = {"RO access", 2, 0, 1, 0, nullptr, 0, 1};
  static constexpr Command kTable[] = {
      {"zadd", -4, kWrite | kDenyOom | kFast, kWriteFast, "", {"RW update", 1, 0}, cmd_zadd},
      {"zincrby",
       4,
       kWrite | kDenyOom | kFast,
       kWriteFast,
       "",
       {"RW access update", 1, 0},
       cmd_zincrby},
      {"zrem", -3, kWrite | kFast, kWriteFast, "", kDelete, cmd_zrem},
      {"zcard", 2, kReadonly | kFast, kReadFast, "", {"RO", 1, 0}, cmd_zcard},
      {"zscore", 3, kReadonly | kFast, kReadFast, "", kRead, cmd_zscore},
      {"zmscore", -3, kReadonly | kFast, kReadFast, "", kRead, cmd_zmscore},
      {"zrank", 3, kReadonly | kFast, kReadFast, "", kRead, cmd_zrank},
      {"zrevrank", 3, kReadonly | kFast, kReadFast, "", kRead, cmd_zrevrank},
      {"zcount", 4, kReadonly | kFast, kReadFast, "", kRead, cmd_zcount},
      {"zlexcount", 4, kReadonly | kFast, kReadFast, "", kRead, cmd_zlexcount},
      {"zrange", -4, kReadonly, kReadSlow, "", kRead, cmd_zrange},
      {"zrangestore",
       -5,
       kWrite | kDenyOom,
       kWriteSlow,
       "",
       kStoreDst,
       cmd_zrangestore,
       {"RO access", 2, 0}},
      {"zrangebyscore", -4, kReadonly, kReadSlow, "", kRead, cmd_zrangebyscore},
      {"zrevrangebyscore", -4, kReadonly, kReadSlow, "", kRead, cmd_zrevrangebyscore},
      {"zrangebylex", -4, kReadonly, kReadSlow, "", kRead, cmd_zrangebylex},
      {"zrevrangebylex", -4, kReadonly, kReadSlow, "", kRead, cmd_zrevrangebylex},
      {"zrevrange", -4, kReadonly, kReadSlow, "", kRead, cmd_zrevrange},
      {"zremrangebyrank", 4, kWrite, kWriteSlow, "", kDelete, cmd_zremrangebyrank},
      {"zremrangebyscore", 4, kWrite, kWriteSlow, "", kDelete, cmd_zremrangebyscore},
      {"zremrangebylex", 4, kWrite, kWriteSlow, "", kDelete, cmd_zremrangebylex},
      {"zunion", -3, kReadonly, kReadSlow, "", kInputs, cmd_zunion},
      {"zinter", -3, kReadonly, kReadSlow, "", kInputs, cmd_zinter},
      {"zdiff", -3, kReadonly, kReadSlow, "", kInputs, cmd_zdiff},
      {"zunionstore", -4, kWrite | kDenyOom, kWriteSlow, "", kStoreDst, cmd_zunionstore,
       kStoreInputs},
      {"zinterstore", -4, kWrite | kDenyOom, kWriteSlow, "", kStoreDst, cmd_zinterstore,
       kStoreInputs},
      {"zdiffstore", -4, kWrite | kDenyOom, kWriteSlow, "", kStoreDst, cmd_zdiffstore,
       kStoreInputs},
      {"zintercard", -3, kReadonly, kReadSlow, "", kInputs, cmd_zintercard},
      {"zpopmin", -2, kWrite | kFast, kWriteFast, "", kPop, cmd_zpopmin},
      {"zpopmax", -2, kWrite | kFast, kWriteFast, "", kPop, cmd_zpopmax},
      {"bzpopmin",
       -3,
       kWrite | kNoScript | kBlocking | kFast,
       "@write @sortedset @fast @blocking",
       "",
       {"RW access delete", 1, -2},
       cmd_bzpopmin},
      {"bzpopmax",
       -3,
       kWrite | kNoScript | kBlocking | kFast,
       "@write @sortedset @fast @blocking",
       "",
       {"RW access delete", 1, -2},
       cmd_bzpopmax},
      {"zmpop",
       -4,
       kWrite,
       kWriteSlow,
       "",
       {"RW access delete", 1, 0, 1, 0, nullptr, 0, 1},
       cmd_zmpop},
      {"bzmpop",
       -5,
       kWrite | kBlocking,
       "@write @sortedset @slow @blocking",
       "",
       {"RW access delete", 2, 0, 1, 0, nullptr, 0, 1},
       cmd_bzmpop},
      {"zrandmember", -2, kReadonly, kReadSlow, "nondeterministic_output", kRead, cmd_zrandmember},
      {"zscan", -3, kReadonly, kReadSlow, "nondeterministic_output", kRead, cmd_zscan},
  };
  return kTable;
}

}  // namespace kv::cmd
