// A reference model of weft-kv's lists and sorted sets, and a generator
// of random list and sorted-set commands, for the randomised tests
// (model_itest.cpp: replies against the model; aof_types_itest.cpp: a mixed
// workload to replay). The model predicts each reply as
// kv::itest::Reply::describe() prints it.
//
// Scores are multiples of 0.5 and ZUNIONSTORE's weights 0.5, 1, 2 or 3, so
// every sum is exact and the replies' %.17g text is the model's.
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace kv::itest::model {

inline const std::string kWrongType =
    "-WRONGTYPE Operation against a key holding the wrong kind of value";

inline std::string bulk(const std::string& s) {
  return "\"" + s + "\"";
}
inline std::string integer(long long n) {
  return ":" + std::to_string(n);
}
inline std::string array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
  return out + "]";
}
inline std::string score_text(double s) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", s);
  return buf;
}

// A sorted set: members ordered by (score, member), and each member's score.
struct ZModel {
  std::set<std::pair<double, std::string>> order;
  std::map<std::string, double> score;
  void add(const std::string& m, double s) {
    if (auto it = score.find(m); it != score.end()) order.erase({it->second, m});
    score[m] = s;
    order.insert({s, m});
  }
  // By value: callers pass members that live in `order` itself.
  void remove(std::string m) {
    order.erase({score.at(m), m});
    score.erase(m);
  }
  std::vector<std::pair<double, std::string>> items() const { return {order.begin(), order.end()}; }
};

using List = std::deque<std::string>;

// Redis's index sanitising for ranges ([start, end] over len).
inline bool clip(long long& start, long long& end, long long len) {
  if (start < 0) start += len;
  if (end < 0) end += len;
  if (start < 0) start = 0;
  if (start > end || start >= len) return false;
  if (end >= len) end = len - 1;
  return true;
}

// The model: applies a command and returns the reply's describe() text.
class RefModel {
 public:
  std::string apply(const std::vector<std::string>& a) {
    const std::string& cmd = a[0];
    if (cmd == "DEL") {
      const bool had = lists_.erase(a[1]) + zsets_.erase(a[1]) != 0;
      return integer(had ? 1 : 0);
    }
    if (cmd == "TYPE") return lists_.count(a[1]) ? "+list" : zsets_.count(a[1]) ? "+zset" : "+none";
    if (cmd[0] == 'L' || cmd == "RPUSH" || cmd == "RPUSHX" || cmd == "RPOP" || cmd == "RPOPLPUSH")
      return list_command(a);
    return zset_command(a);
  }

  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    for (const auto& [k, v] : lists_) out.push_back(k);
    for (const auto& [k, v] : zsets_) out.push_back(k);
    return out;
  }

 private:
  std::string list_command(const std::vector<std::string>& a) {
    const std::string& cmd = a[0];
    const std::string& k = a[1];
    const bool is_zset = zsets_.count(k) != 0;
    List* l = lists_.count(k) ? &lists_[k] : nullptr;
    auto settle = [&](const std::string& key) {
      if (lists_.count(key) && lists_[key].empty()) lists_.erase(key);
    };
    if (cmd == "LPUSH" || cmd == "RPUSH" || cmd == "LPUSHX" || cmd == "RPUSHX") {
      if (is_zset) return kWrongType;
      if (l == nullptr && cmd.back() == 'X') return integer(0);
      List& t = lists_[k];
      for (std::size_t i = 2; i < a.size(); ++i) {
        if (cmd[0] == 'L')
          t.push_front(a[i]);
        else
          t.push_back(a[i]);
      }
      return integer(static_cast<long long>(t.size()));
    }
    if (cmd == "LPOP" || cmd == "RPOP") {
      const bool left = cmd[0] == 'L';
      const bool has_count = a.size() == 3;
      if (l == nullptr && !is_zset) return has_count ? "(nil array)" : "(nil)";
      if (is_zset) return kWrongType;
      auto pop = [&] {
        std::string v = left ? l->front() : l->back();
        if (left)
          l->pop_front();
        else
          l->pop_back();
        return v;
      };
      if (!has_count) {
        const std::string v = pop();
        settle(k);
        return bulk(v);
      }
      const long long n = std::stoll(a[2]);
      std::vector<std::string> out;
      for (long long i = 0; i < n && !l->empty(); ++i) out.push_back(bulk(pop()));
      settle(k);
      return array(out);
    }
    if (cmd == "LLEN") {
      if (is_zset) return kWrongType;
      return integer(l ? static_cast<long long>(l->size()) : 0);
    }
    if (cmd == "LRANGE") {
      if (is_zset) return kWrongType;
      if (l == nullptr) return "[]";
      long long s = std::stoll(a[2]), e = std::stoll(a[3]);
      std::vector<std::string> out;
      if (clip(s, e, static_cast<long long>(l->size())))
        for (long long i = s; i <= e; ++i) out.push_back(bulk((*l)[static_cast<std::size_t>(i)]));
      return array(out);
    }
    if (cmd == "LINDEX" || cmd == "LSET") {
      if (l == nullptr && !is_zset) return cmd == "LSET" ? "-ERR no such key" : "(nil)";
      if (is_zset) return kWrongType;
      long long i = std::stoll(a[2]);
      if (i < 0) i += static_cast<long long>(l->size());
      const bool in = i >= 0 && i < static_cast<long long>(l->size());
      if (cmd == "LINDEX") return in ? bulk((*l)[static_cast<std::size_t>(i)]) : "(nil)";
      if (!in) return "-ERR index out of range";
      (*l)[static_cast<std::size_t>(i)] = a[3];
      return "+OK";
    }
    if (cmd == "LINSERT") {
      if (l == nullptr && !is_zset) return integer(0);
      if (is_zset) return kWrongType;
      for (std::size_t i = 0; i < l->size(); ++i) {
        if ((*l)[i] != a[3]) continue;
        l->insert(l->begin() + static_cast<long>(a[2] == "AFTER" ? i + 1 : i), a[4]);
        return integer(static_cast<long long>(l->size()));
      }
      return integer(-1);
    }
    if (cmd == "LREM") {
      if (l == nullptr && !is_zset) return integer(0);
      if (is_zset) return kWrongType;
      const long long count = std::stoll(a[2]);
      long long left = count == 0 ? -1 : std::llabs(count);
      long long removed = 0;
      List kept;
      if (count >= 0) {
        for (const auto& v : *l) {
          if (left != 0 && v == a[3]) {
            --left;
            ++removed;
          } else {
            kept.push_back(v);
          }
        }
      } else {
        for (auto it = l->rbegin(); it != l->rend(); ++it) {
          if (left != 0 && *it == a[3]) {
            --left;
            ++removed;
          } else {
            kept.push_front(*it);
          }
        }
      }
      *l = kept;
      settle(k);
      return integer(removed);
    }
    if (cmd == "LTRIM") {
      if (l == nullptr && !is_zset) return "+OK";
      if (is_zset) return kWrongType;
      long long s = std::stoll(a[2]), e = std::stoll(a[3]);
      List kept;
      if (clip(s, e, static_cast<long long>(l->size())))
        kept.assign(l->begin() + s, l->begin() + e + 1);
      *l = kept;
      settle(k);
      return "+OK";
    }
    if (cmd == "LPOS") {
      long long rank = 1, count = -1;
      for (std::size_t i = 3; i + 1 < a.size(); i += 2) {
        if (a[i] == "RANK") rank = std::stoll(a[i + 1]);
        if (a[i] == "COUNT") count = std::stoll(a[i + 1]);
      }
      if (l == nullptr && !is_zset) return count == -1 ? "(nil)" : "[]";
      if (is_zset) return kWrongType;
      const bool from_tail = rank < 0;
      rank = std::llabs(rank);
      std::vector<std::string> found;
      long long matches = 0;
      const auto len = static_cast<long long>(l->size());
      for (long long i = 0; i < len; ++i) {
        const long long at = from_tail ? len - 1 - i : i;
        if ((*l)[static_cast<std::size_t>(at)] != a[2] || ++matches < rank) continue;
        found.push_back(integer(at));
        if (count == -1 || (count != 0 && matches - rank + 1 >= count)) break;
      }
      if (count == -1) return found.empty() ? "(nil)" : found[0];
      return array(found);
    }
    if (cmd == "LMOVE" || cmd == "RPOPLPUSH") {
      const std::string& d = a[2];
      const bool from_left = cmd == "LMOVE" && a[3] == "LEFT";
      const bool to_left = cmd == "RPOPLPUSH" || a[4] == "LEFT";
      if (l == nullptr && !is_zset) return "(nil)";
      if (is_zset || zsets_.count(d)) return kWrongType;
      std::string v = from_left ? l->front() : l->back();
      if (from_left)
        l->pop_front();
      else
        l->pop_back();
      List& t = lists_[d];  // may be *l itself
      if (to_left)
        t.push_front(v);
      else
        t.push_back(v);
      settle(k);
      return bulk(v);
    }
    if (cmd == "LMPOP") {
      const auto n = static_cast<std::size_t>(std::stoll(a[1]));
      const bool left = a[2 + n] == "LEFT";
      const long long count = std::stoll(a[4 + n]);
      for (std::size_t i = 0; i < n; ++i) {
        const std::string& key = a[2 + i];
        if (zsets_.count(key)) return kWrongType;
        if (!lists_.count(key)) continue;
        List& t = lists_[key];
        std::vector<std::string> out;
        for (long long j = 0; j < count && !t.empty(); ++j) {
          out.push_back(bulk(left ? t.front() : t.back()));
          if (left)
            t.pop_front();
          else
            t.pop_back();
        }
        settle(key);
        return array({bulk(key), array(out)});
      }
      return "(nil array)";
    }
    return "?" + cmd;
  }

  std::string zset_command(const std::vector<std::string>& a) {
    const std::string& cmd = a[0];
    const std::string& k = a[1];
    const bool is_list = lists_.count(k) != 0;
    ZModel* z = zsets_.count(k) ? &zsets_[k] : nullptr;
    auto settle = [&](const std::string& key) {
      if (zsets_.count(key) && zsets_[key].score.empty()) zsets_.erase(key);
    };
    auto pairs = [](const std::vector<std::pair<double, std::string>>& items, bool withscores) {
      std::vector<std::string> out;
      for (const auto& [s, m] : items) {
        out.push_back(bulk(m));
        if (withscores) out.push_back(bulk(score_text(s)));
      }
      return array(out);
    };
    if (cmd == "ZADD" || cmd == "ZINCRBY") {
      bool nx = false, xx = false, gt = false, lt = false, ch = false, incr = cmd == "ZINCRBY";
      std::size_t at = 2;
      for (; at < a.size(); ++at) {
        if (a[at] == "NX")
          nx = true;
        else if (a[at] == "XX")
          xx = true;
        else if (a[at] == "GT")
          gt = true;
        else if (a[at] == "LT")
          lt = true;
        else if (a[at] == "CH")
          ch = true;
        else if (a[at] == "INCR")
          incr = true;
        else
          break;
      }
      if (is_list) return kWrongType;
      long long added = 0, updated = 0, processed = 0;
      double score = 0;
      if (z != nullptr || !xx) {
        ZModel& t = zsets_[k];
        for (std::size_t i = at; i + 1 < a.size(); i += 2) {
          score = std::stod(a[i]);
          const std::string& m = a[i + 1];
          if (auto it = t.score.find(m); it != t.score.end()) {
            if (nx) continue;
            const double cur = it->second;
            if (incr) score += cur;
            if ((lt && score >= cur) || (gt && score <= cur)) continue;
            if (score != cur) {
              t.add(m, score);
              ++updated;
            }
            ++processed;
          } else if (!xx) {
            t.add(m, score);
            ++added;
            ++processed;
          }
        }
        settle(k);
      }
      if (incr) return processed ? bulk(score_text(score)) : "(nil)";
      return integer(ch ? added + updated : added);
    }
    if (is_list && cmd != "ZUNIONSTORE" && cmd != "ZINTERSTORE" && cmd != "ZRANGESTORE" &&
        cmd != "ZMPOP")
      return kWrongType;
    if (cmd == "ZREM") {
      if (z == nullptr) return integer(0);
      long long n = 0;
      for (std::size_t i = 2; i < a.size(); ++i) {
        if (z->score.count(a[i])) {
          z->remove(a[i]);
          ++n;
        }
      }
      settle(k);
      return integer(n);
    }
    if (cmd == "ZCARD") return integer(z ? static_cast<long long>(z->score.size()) : 0);
    if (cmd == "ZSCORE") {
      if (z == nullptr || !z->score.count(a[2])) return "(nil)";
      return bulk(score_text(z->score.at(a[2])));
    }
    if (cmd == "ZMSCORE") {
      std::vector<std::string> out;
      for (std::size_t i = 2; i < a.size(); ++i)
        out.push_back(z && z->score.count(a[i]) ? bulk(score_text(z->score.at(a[i]))) : "(nil)");
      return array(out);
    }
    if (cmd == "ZRANK" || cmd == "ZREVRANK") {
      if (z == nullptr || !z->score.count(a[2])) return "(nil)";
      const auto it = z->order.find({z->score.at(a[2]), a[2]});
      const auto r = static_cast<long long>(std::distance(z->order.begin(), it));
      return integer(cmd == "ZRANK" ? r : static_cast<long long>(z->order.size()) - 1 - r);
    }
    if (cmd == "ZCOUNT") {
      if (z == nullptr) return integer(0);
      long long n = 0;
      for (const auto& [s, m] : z->order) n += in_range(s, a[2], a[3]);
      return integer(n);
    }
    if (cmd == "ZRANGE") {
      bool byscore = false, rev = false, withscores = false;
      long long offset = 0, limit = -1;
      for (std::size_t i = 4; i < a.size(); ++i) {
        if (a[i] == "BYSCORE") byscore = true;
        if (a[i] == "REV") rev = true;
        if (a[i] == "WITHSCORES") withscores = true;
        if (a[i] == "LIMIT") {
          offset = std::stoll(a[i + 1]);
          limit = std::stoll(a[i + 2]);
          i += 2;
        }
      }
      if (z == nullptr) return "[]";
      auto items = z->items();
      if (rev) std::reverse(items.begin(), items.end());
      std::vector<std::pair<double, std::string>> sel;
      if (!byscore) {
        long long s = std::stoll(a[2]), e = std::stoll(a[3]);
        if (clip(s, e, static_cast<long long>(items.size())))
          sel.assign(items.begin() + s, items.begin() + e + 1);
      } else {
        const std::string& min = rev ? a[3] : a[2];
        const std::string& max = rev ? a[2] : a[3];
        for (const auto& it : items) {
          if (!in_range(it.first, min, max)) continue;
          if (offset > 0) {
            --offset;
            continue;
          }
          if (limit == 0) break;
          --limit;
          sel.push_back(it);
        }
      }
      return pairs(sel, withscores);
    }
    if (cmd == "ZREMRANGEBYRANK" || cmd == "ZREMRANGEBYSCORE") {
      if (z == nullptr) return integer(0);
      std::vector<std::string> gone;
      auto items = z->items();
      if (cmd == "ZREMRANGEBYRANK") {
        long long s = std::stoll(a[2]), e = std::stoll(a[3]);
        if (clip(s, e, static_cast<long long>(items.size())))
          for (long long i = s; i <= e; ++i)
            gone.push_back(items[static_cast<std::size_t>(i)].second);
      } else {
        for (const auto& [s, m] : items)
          if (in_range(s, a[2], a[3])) gone.push_back(m);
      }
      for (const auto& m : gone) z->remove(m);
      settle(k);
      return integer(static_cast<long long>(gone.size()));
    }
    if (cmd == "ZPOPMIN" || cmd == "ZPOPMAX") {
      if (z == nullptr) return "[]";
      const long long n = a.size() == 3 ? std::stoll(a[2]) : 1;
      std::vector<std::pair<double, std::string>> out;
      for (long long i = 0; i < n && !z->order.empty(); ++i) {
        const auto it = cmd == "ZPOPMIN" ? z->order.begin() : std::prev(z->order.end());
        out.push_back(*it);
        z->remove(it->second);
      }
      settle(k);
      return pairs(out, true);
    }
    if (cmd == "ZMPOP") {
      const auto n = static_cast<std::size_t>(std::stoll(a[1]));
      const bool min = a[2 + n] == "MIN";
      const long long count = std::stoll(a[4 + n]);
      for (std::size_t i = 0; i < n; ++i) {
        const std::string& key = a[2 + i];
        if (lists_.count(key)) return kWrongType;
        if (!zsets_.count(key)) continue;
        ZModel& t = zsets_[key];
        std::vector<std::string> out;
        for (long long j = 0; j < count && !t.order.empty(); ++j) {
          const auto it = min ? t.order.begin() : std::prev(t.order.end());
          out.push_back(array({bulk(it->second), bulk(score_text(it->first))}));
          t.remove(it->second);
        }
        settle(key);
        return array({bulk(key), array(out)});
      }
      return "(nil array)";
    }
    if (cmd == "ZUNIONSTORE" || cmd == "ZINTERSTORE") {
      // dst numkeys(2) a b [WEIGHTS w1 w2] [AGGREGATE SUM|MIN|MAX]
      const std::string& dst = a[1];
      const std::string src[2] = {a[3], a[4]};
      double w[2] = {1, 1};
      std::string agg = "SUM";
      for (std::size_t i = 5; i < a.size(); ++i) {
        if (a[i] == "WEIGHTS") {
          w[0] = std::stod(a[i + 1]);
          w[1] = std::stod(a[i + 2]);
          i += 2;
        } else if (a[i] == "AGGREGATE") {
          agg = a[++i];
        }
      }
      for (const auto& s : src)
        if (lists_.count(s)) return kWrongType;
      const ZModel empty;
      const ZModel* in[2] = {zsets_.count(src[0]) ? &zsets_[src[0]] : &empty,
                             zsets_.count(src[1]) ? &zsets_[src[1]] : &empty};
      ZModel out;
      auto combine = [&](double x, double y) {
        return agg == "SUM" ? x + y : agg == "MIN" ? std::min(x, y) : std::max(x, y);
      };
      for (int i = 0; i < 2; ++i) {
        for (const auto& [m, s] : in[i]->score) {
          const double v = s * w[i];
          const bool other = in[1 - i]->score.count(m) != 0;
          if (cmd == "ZINTERSTORE" && !other) continue;
          if (out.score.count(m))
            out.add(m, combine(out.score.at(m), v));
          else
            out.add(m, v);
        }
      }
      lists_.erase(dst);
      zsets_.erase(dst);
      if (!out.score.empty()) zsets_[dst] = out;
      return integer(static_cast<long long>(out.score.size()));
    }
    if (cmd == "ZRANGESTORE") {
      // dst src start stop
      const std::string& src = a[2];
      if (lists_.count(src)) return kWrongType;
      ZModel out;
      if (zsets_.count(src)) {
        const auto items = zsets_[src].items();
        long long s = std::stoll(a[3]), e = std::stoll(a[4]);
        if (clip(s, e, static_cast<long long>(items.size())))
          for (long long i = s; i <= e; ++i)
            out.add(items[static_cast<std::size_t>(i)].second,
                    items[static_cast<std::size_t>(i)].first);
      }
      lists_.erase(k);
      zsets_.erase(k);
      if (!out.score.empty()) zsets_[k] = out;
      return integer(static_cast<long long>(out.score.size()));
    }
    return "?" + cmd;
  }

  // s within [min, max] as ZRANGEBYSCORE bounds ("(x" exclusive, +-inf).
  static bool in_range(double s, const std::string& min, const std::string& max) {
    auto bound = [](const std::string& b, bool& ex) {
      ex = b[0] == '(';
      return std::stod(ex ? b.substr(1) : b);
    };
    bool minex = false, maxex = false;
    const double lo = bound(min, minex), hi = bound(max, maxex);
    return (minex ? s > lo : s >= lo) && (maxex ? s < hi : s <= hi);
  }

  std::map<std::string, List> lists_;
  std::map<std::string, ZModel> zsets_;
};

// Random commands over the keys "<prefix>0".."<prefix>5".
class Generator {
 public:
  Generator(std::string prefix, std::uint64_t seed) : prefix_(std::move(prefix)), rng_(seed) {}

  std::vector<std::string> next() {
    const std::string k = key();
    switch (pick(34)) {
      case 0:
      case 1:
        return push(pick(2) ? "LPUSH" : "RPUSH", k);
      case 2:
        return push(pick(2) ? "LPUSHX" : "RPUSHX", k);
      case 3:
        return pick(2) ? std::vector<std::string>{pick(2) ? "LPOP" : "RPOP", k}
                       : std::vector<std::string>{pick(2) ? "LPOP" : "RPOP", k, num(0, 4)};
      case 4:
        return {"LLEN", k};
      case 5:
        return {"LRANGE", k, num(-8, 8), num(-8, 8)};
      case 6:
        return {"LINDEX", k, num(-8, 8)};
      case 7:
        return {"LSET", k, num(-6, 6), value()};
      case 8:
        return {"LINSERT", k, pick(2) ? "BEFORE" : "AFTER", value(), value()};
      case 9:
        return {"LREM", k, num(-2, 2), value()};
      case 10:
        return {"LTRIM", k, num(-6, 6), num(-6, 6)};
      case 11: {
        std::vector<std::string> c = {"LPOS", k, value()};
        if (pick(2)) c.insert(c.end(), {"RANK", pick(2) ? num(1, 3) : num(-3, -1)});
        if (pick(2)) c.insert(c.end(), {"COUNT", num(0, 3)});
        return c;
      }
      case 12:
        return {"LMOVE", k, key(), pick(2) ? "LEFT" : "RIGHT", pick(2) ? "LEFT" : "RIGHT"};
      case 13:
        return {"RPOPLPUSH", k, key()};
      case 14:
        return {"LMPOP", "2", k, key(), pick(2) ? "LEFT" : "RIGHT", "COUNT", num(1, 3)};
      case 15:
      case 16:
      case 17: {
        std::vector<std::string> c = {"ZADD", k};
        const int flags = pick(8);
        if (flags == 1) c.push_back("NX");
        if (flags == 2) c.push_back("XX");
        if (flags == 3) c.insert(c.end(), {"XX", "GT"});
        if (flags == 4) c.push_back("LT");
        if (flags == 5) c.insert(c.end(), {"GT", "CH"});
        if (flags == 6) {
          c.insert(c.end(), {"INCR", score(), member()});
          return c;
        }
        for (int i = 0, n = 1 + pick(3); i < n; ++i) c.insert(c.end(), {score(), member()});
        return c;
      }
      case 18:
        return {"ZINCRBY", k, score(), member()};
      case 19:
        return {"ZREM", k, member(), member()};
      case 20:
        return {"ZCARD", k};
      case 21:
        return {"ZSCORE", k, member()};
      case 22:
        return {"ZMSCORE", k, member(), member()};
      case 23:
        return {pick(2) ? "ZRANK" : "ZREVRANK", k, member()};
      case 24:
        return {"ZCOUNT", k, bound(), bound()};
      case 25: {
        std::vector<std::string> c = {"ZRANGE", k, num(-6, 6), num(-6, 6)};
        if (pick(2)) c.push_back("REV");
        if (pick(2)) c.push_back("WITHSCORES");
        return c;
      }
      case 26: {
        std::vector<std::string> c = {"ZRANGE", k, bound(), bound(), "BYSCORE"};
        if (pick(2)) c.push_back("REV");
        if (pick(2)) c.insert(c.end(), {"LIMIT", num(0, 3), num(-1, 3)});
        if (pick(2)) c.push_back("WITHSCORES");
        return c;
      }
      case 27:
        return {"ZREMRANGEBYRANK", k, num(-4, 4), num(-4, 4)};
      case 28:
        return {"ZREMRANGEBYSCORE", k, bound(), bound()};
      case 29:
        return pick(2) ? std::vector<std::string>{pick(2) ? "ZPOPMIN" : "ZPOPMAX", k}
                       : std::vector<std::string>{pick(2) ? "ZPOPMIN" : "ZPOPMAX", k, num(0, 3)};
      case 30: {
        std::vector<std::string> c = {pick(2) ? "ZUNIONSTORE" : "ZINTERSTORE", k, "2", key(),
                                      key()};
        if (pick(2)) c.insert(c.end(), {"WEIGHTS", weight(), weight()});
        if (pick(2))
          c.insert(c.end(), {"AGGREGATE", pick(3) == 0 ? "MIN" : pick(2) ? "MAX" : "SUM"});
        return c;
      }
      case 31:
        return {"ZRANGESTORE", k, key(), num(-4, 4), num(-4, 4)};
      case 32:
        return {"ZMPOP", "2", k, key(), pick(2) ? "MIN" : "MAX", "COUNT", num(1, 3)};
      default:
        return {pick(4) == 0 ? "DEL" : "TYPE", k};
    }
  }

  int pick(int n) { return static_cast<int>(rng_() % static_cast<unsigned>(n)); }

 private:
  std::string key() { return prefix_ + std::to_string(pick(6)); }
  std::string value() { return "v" + std::to_string(pick(5)); }
  std::string member() { return "m" + std::to_string(pick(8)); }
  std::string num(int lo, int hi) { return std::to_string(lo + pick(hi - lo + 1)); }
  std::string score() {
    const int half = pick(41) - 20;  // -10 .. 10 by halves
    return score_text(half / 2.0);
  }
  std::string bound() {
    const int r = pick(12);
    if (r == 0) return "-inf";
    if (r == 1) return "+inf";
    return (pick(3) == 0 ? "(" : "") + score_text((pick(21) - 10) / 2.0);
  }
  std::string weight() {
    static const char* kWeights[] = {"0.5", "1", "2", "3"};
    return kWeights[pick(4)];
  }
  std::vector<std::string> push(const char* cmd, const std::string& k) {
    std::vector<std::string> c = {cmd, k};
    for (int i = 0, n = 1 + pick(3); i < n; ++i) c.push_back(value());
    return c;
  }

  std::string prefix_;
  std::mt19937_64 rng_;
};

}  // namespace kv::itest::model
