// Randomised model tests of strings, hashes, sets and the key commands: a
// reference model in the test (std::map of std::string / std::map /
// std::set values) predicts every reply of a random command sequence, and
// the server must give it. The sequences draw from few keys, fields and
// members, mixing integers and text, with encoding thresholds lowered
// (hash-max-listpack-entries 4, -value 8, set-max-intset-entries 4), so
// type errors, empty-key deletion and encoding conversions happen all the
// time. Unordered replies (HGETALL, SMEMBERS, SUNION, ...) are compared as
// multisets; random ones (SPOP, SRANDMEMBER, HRANDFIELD) are checked
// against the model, which SPOP then updates.
//
// Single client: one long sequence. 50 concurrent clients: each runs its
// own sequence on keys of its own (so each model stays exact) while all of
// them also hammer shared keys with commutative writes (HINCRBY, SADD) and
// with SMOVE between two shared sets, whose totals must come out exact —
// nothing lost, nothing duplicated, SMOVE atomic across shards.
//
// Every test also runs against redis-server (the reference twin), which
// keeps the model honest.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "kv/kv_harness.hpp"
#include "weft/weft.hpp"

namespace {

using kv::itest::Client;
using kv::itest::Reply;
using kv::itest::SharedServerTest;
using weft::test::Checker;
using Args = std::vector<std::string>;

constexpr const char* kWrongType =
    "WRONGTYPE Operation against a key holding the wrong kind of value";

Reply make(Reply::Type t, std::string s = {}, std::int64_t n = 0) {
  Reply r;
  r.type = t;
  r.str = std::move(s);
  r.integer = n;
  return r;
}
std::string bulk(const std::string& s) {
  return make(Reply::Type::bulk, s).describe();
}
std::string integer(std::int64_t n) {
  return make(Reply::Type::integer, {}, n).describe();
}
std::string error(const std::string& e) {
  return make(Reply::Type::error, e).describe();
}
const std::string kNil = "(nil)";
const std::string kOk = "+OK";

// Checks a reply; returns "" when right, else what is wrong. May update the
// model (SPOP).
using Check = std::function<std::string(const Reply&)>;

Check exact(std::string want) {
  return [want = std::move(want)](const Reply& r) {
    return r.describe() == want ? std::string() : "want " + want;
  };
}

// An array whose elements, described, are `want` in any order.
Check unordered(std::vector<std::string> want) {
  std::sort(want.begin(), want.end());
  return [want = std::move(want)](const Reply& r) -> std::string {
    if (r.type != Reply::Type::array) return "want an array";
    std::vector<std::string> got;
    for (const Reply& e : r.elements) got.push_back(e.describe());
    std::sort(got.begin(), got.end());
    if (got == want) return {};
    std::string w;
    for (const auto& s : want) w += s + " ";
    return "want (any order) " + w;
  };
}

class Model {
 public:
  struct Value {
    enum Kind { string, hash, set } kind = string;
    std::string str;
    std::map<std::string, std::string> hash_fields;
    std::set<std::string> members;
    bool empty() const {
      return (kind == hash && hash_fields.empty()) || (kind == set && members.empty());
    }
  };

  // The expected reply of argv, applied to the model (for a write).
  Check apply(const Args& a);

  std::map<std::string, Value> db;

 private:
  Value* find(const std::string& k) {
    auto it = db.find(k);
    return it == db.end() ? nullptr : &it->second;
  }
  void drop_if_empty(const std::string& k) {
    auto it = db.find(k);
    if (it != db.end() && it->second.empty()) db.erase(it);
  }
  static bool parse_int(const std::string& s, long long& v) {
    // Redis's string2ll, as the server's: canonical decimal only.
    if (s.empty() || s.size() > 20) return false;
    if (s == "0") return v = 0, true;
    std::size_t i = s[0] == '-' ? 1 : 0;
    if (i >= s.size() || s[i] < '1' || s[i] > '9') return false;
    for (std::size_t j = i; j < s.size(); ++j)
      if (s[j] < '0' || s[j] > '9') return false;
    try {
      std::size_t pos = 0;
      v = std::stoll(s, &pos);
      return pos == s.size();
    } catch (...) {
      return false;
    }
  }
  std::vector<std::string> set_algebra(const Args& keys, char op, std::string* err);
};

std::vector<std::string> Model::set_algebra(const Args& keys, char op, std::string* err) {
  std::vector<const std::set<std::string>*> sets;
  static const std::set<std::string> kEmpty;
  for (const auto& k : keys) {
    const Value* v = find(k);
    if (v != nullptr && v->kind != Value::set) {
      *err = kWrongType;
      return {};
    }
    sets.push_back(v != nullptr ? &v->members : &kEmpty);
  }
  std::set<std::string> out;
  if (op == 'u') {
    for (auto* s : sets) out.insert(s->begin(), s->end());
  } else if (op == 'i') {
    out = *sets[0];
    for (std::size_t i = 1; i < sets.size(); ++i) {
      std::set<std::string> next;
      for (const auto& m : out)
        if (sets[i]->count(m)) next.insert(m);
      out = std::move(next);
    }
  } else {
    out = *sets[0];
    for (std::size_t i = 1; i < sets.size(); ++i)
      for (const auto& m : *sets[i]) out.erase(m);
  }
  return {out.begin(), out.end()};
}

Check Model::apply(const Args& a) {
  const std::string& cmd = a[0];
  const std::string& key = a.size() > 1 ? a[1] : cmd;
  Value* v = find(key);
  auto wrong = [&](Value::Kind k) { return v != nullptr && v->kind != k; };

  // --- strings ---
  if (cmd == "SET") {
    db[key] = Value{Value::string, a[2], {}, {}};
    return exact(kOk);
  }
  if (cmd == "GET") {
    if (v == nullptr) return exact(kNil);
    if (wrong(Value::string)) return exact(error(kWrongType));
    return exact(bulk(v->str));
  }
  if (cmd == "APPEND") {
    if (wrong(Value::string)) return exact(error(kWrongType));
    if (v == nullptr) v = &(db[key] = Value{});
    v->str += a[2];
    return exact(integer(static_cast<std::int64_t>(v->str.size())));
  }
  if (cmd == "STRLEN") {
    if (wrong(Value::string)) return exact(error(kWrongType));
    return exact(integer(v == nullptr ? 0 : static_cast<std::int64_t>(v->str.size())));
  }
  if (cmd == "INCRBY") {
    if (wrong(Value::string)) return exact(error(kWrongType));
    long long cur = 0;
    if (v != nullptr && !parse_int(v->str, cur))
      return exact(error("ERR value is not an integer or out of range"));
    const long long by = std::stoll(a[2]);
    cur += by;  // the generator keeps values far from overflow
    if (v == nullptr) v = &(db[key] = Value{});
    v->str = std::to_string(cur);
    return exact(integer(cur));
  }
  if (cmd == "GETRANGE") {
    if (wrong(Value::string)) return exact(error(kWrongType));
    const std::string s = v == nullptr ? "" : v->str;
    long long start = std::stoll(a[2]), end = std::stoll(a[3]);
    const auto len = static_cast<long long>(s.size());
    if (start < 0 && end < 0 && start > end) return exact(bulk(""));
    if (start < 0) start += len;
    if (end < 0) end += len;
    start = std::max(start, 0LL);
    end = std::max(end, 0LL);
    end = std::min(end, len - 1);
    if (start > end || len == 0) return exact(bulk(""));
    return exact(
        bulk(s.substr(static_cast<std::size_t>(start), static_cast<std::size_t>(end - start + 1))));
  }
  if (cmd == "SETRANGE") {
    if (wrong(Value::string)) return exact(error(kWrongType));
    const auto off = static_cast<std::size_t>(std::stoll(a[2]));
    if (a[3].empty())
      return exact(integer(v == nullptr ? 0 : static_cast<std::int64_t>(v->str.size())));
    if (v == nullptr) v = &(db[key] = Value{});
    if (v->str.size() < off + a[3].size()) v->str.resize(off + a[3].size(), '\0');
    v->str.replace(off, a[3].size(), a[3]);
    return exact(integer(static_cast<std::int64_t>(v->str.size())));
  }
  if (cmd == "GETDEL") {
    if (v == nullptr) return exact(kNil);
    if (wrong(Value::string)) return exact(error(kWrongType));
    const std::string s = v->str;
    db.erase(key);
    return exact(bulk(s));
  }
  if (cmd == "SETBIT") {
    if (wrong(Value::string)) return exact(error(kWrongType));
    const auto bit = static_cast<std::size_t>(std::stoll(a[2]));
    const bool on = a[3] == "1";
    if (v == nullptr) v = &(db[key] = Value{});
    if (v->str.size() < bit / 8 + 1) v->str.resize(bit / 8 + 1, '\0');
    auto& byte = reinterpret_cast<unsigned char&>(v->str[bit / 8]);
    const unsigned mask = 1u << (7 - bit % 8);
    const bool old = (byte & mask) != 0;
    byte = static_cast<unsigned char>(on ? (byte | mask) : (byte & ~mask));
    return exact(integer(old ? 1 : 0));
  }
  if (cmd == "BITCOUNT") {
    if (wrong(Value::string)) return exact(error(kWrongType));
    std::int64_t n = 0;
    if (v != nullptr)
      for (unsigned char ch : v->str) n += __builtin_popcount(ch);
    return exact(integer(n));
  }
  if (cmd == "MSETNX") {
    for (std::size_t i = 1; i < a.size(); i += 2)
      if (db.count(a[i])) return exact(integer(0));
    for (std::size_t i = 1; i < a.size(); i += 2) db[a[i]] = Value{Value::string, a[i + 1], {}, {}};
    return exact(integer(1));
  }

  // --- hashes ---
  if (cmd == "HSET") {
    if (wrong(Value::hash)) return exact(error(kWrongType));
    if (v == nullptr) v = &(db[key] = Value{Value::hash, {}, {}, {}});
    std::int64_t created = 0;
    for (std::size_t i = 2; i + 1 < a.size(); i += 2)
      created += v->hash_fields.insert_or_assign(a[i], a[i + 1]).second ? 1 : 0;
    return exact(integer(created));
  }
  if (cmd == "HSETNX") {
    if (wrong(Value::hash)) return exact(error(kWrongType));
    if (v == nullptr) v = &(db[key] = Value{Value::hash, {}, {}, {}});
    return exact(integer(v->hash_fields.emplace(a[2], a[3]).second ? 1 : 0));
  }
  if (cmd == "HGET" || cmd == "HSTRLEN" || cmd == "HEXISTS") {
    if (wrong(Value::hash)) return exact(error(kWrongType));
    const std::string* f = nullptr;
    if (v != nullptr) {
      auto it = v->hash_fields.find(a[2]);
      if (it != v->hash_fields.end()) f = &it->second;
    }
    if (cmd == "HGET") return exact(f == nullptr ? kNil : bulk(*f));
    if (cmd == "HSTRLEN")
      return exact(integer(f == nullptr ? 0 : static_cast<std::int64_t>(f->size())));
    return exact(integer(f != nullptr ? 1 : 0));
  }
  if (cmd == "HMGET") {
    if (wrong(Value::hash)) return exact(error(kWrongType));
    std::string want = "[";
    for (std::size_t i = 2; i < a.size(); ++i) {
      if (i > 2) want += ", ";
      const std::string* f = nullptr;
      if (v != nullptr) {
        auto it = v->hash_fields.find(a[i]);
        if (it != v->hash_fields.end()) f = &it->second;
      }
      want += f == nullptr ? kNil : bulk(*f);
    }
    return exact(want + "]");
  }
  if (cmd == "HDEL") {
    if (wrong(Value::hash)) return exact(error(kWrongType));
    std::int64_t n = 0;
    if (v != nullptr)
      for (std::size_t i = 2; i < a.size(); ++i)
        n += static_cast<std::int64_t>(v->hash_fields.erase(a[i]));
    drop_if_empty(key);
    return exact(integer(n));
  }
  if (cmd == "HLEN") {
    if (wrong(Value::hash)) return exact(error(kWrongType));
    return exact(integer(v == nullptr ? 0 : static_cast<std::int64_t>(v->hash_fields.size())));
  }
  if (cmd == "HINCRBY") {
    if (wrong(Value::hash)) return exact(error(kWrongType));
    long long cur = 0;
    if (v != nullptr) {
      auto it = v->hash_fields.find(a[2]);
      if (it != v->hash_fields.end() && !parse_int(it->second, cur))
        return exact(error("ERR hash value is not an integer"));
    }
    if (v == nullptr) v = &(db[key] = Value{Value::hash, {}, {}, {}});
    cur += std::stoll(a[3]);
    v->hash_fields[a[2]] = std::to_string(cur);
    return exact(integer(cur));
  }
  if (cmd == "HGETALL" || cmd == "HKEYS" || cmd == "HVALS") {
    if (wrong(Value::hash)) return exact(error(kWrongType));
    if (v == nullptr) return exact("[]");
    if (cmd != "HGETALL") {
      std::vector<std::string> want;
      for (const auto& [f, x] : v->hash_fields) want.push_back(bulk(cmd == "HKEYS" ? f : x));
      return unordered(std::move(want));
    }
    // HGETALL: pairs must stay together — checked pairwise.
    auto fields = v->hash_fields;
    return [fields](const Reply& r) -> std::string {
      if (r.type != Reply::Type::array || r.elements.size() != fields.size() * 2)
        return "want " + std::to_string(fields.size()) + " pairs";
      std::map<std::string, std::string> got;
      for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2)
        got[r.elements[i].str] = r.elements[i + 1].str;
      return got == fields ? std::string() : "HGETALL pairs differ from the model";
    };
  }
  if (cmd == "HRANDFIELD") {
    if (wrong(Value::hash)) return exact(error(kWrongType));
    if (v == nullptr) return exact(kNil);
    auto fields = v->hash_fields;
    return [fields](const Reply& r) -> std::string {
      return r.type == Reply::Type::bulk && fields.count(r.str) ? "" : "want one of the fields";
    };
  }

  // --- sets ---
  if (cmd == "SADD") {
    if (wrong(Value::set)) return exact(error(kWrongType));
    if (v == nullptr) v = &(db[key] = Value{Value::set, {}, {}, {}});
    std::int64_t n = 0;
    for (std::size_t i = 2; i < a.size(); ++i) n += v->members.insert(a[i]).second ? 1 : 0;
    return exact(integer(n));
  }
  if (cmd == "SREM") {
    if (wrong(Value::set)) return exact(error(kWrongType));
    std::int64_t n = 0;
    if (v != nullptr)
      for (std::size_t i = 2; i < a.size(); ++i)
        n += static_cast<std::int64_t>(v->members.erase(a[i]));
    drop_if_empty(key);
    return exact(integer(n));
  }
  if (cmd == "SCARD") {
    if (wrong(Value::set)) return exact(error(kWrongType));
    return exact(integer(v == nullptr ? 0 : static_cast<std::int64_t>(v->members.size())));
  }
  if (cmd == "SISMEMBER") {
    if (wrong(Value::set)) return exact(error(kWrongType));
    return exact(integer(v != nullptr && v->members.count(a[2]) ? 1 : 0));
  }
  if (cmd == "SMISMEMBER") {
    if (wrong(Value::set)) return exact(error(kWrongType));
    std::string want = "[";
    for (std::size_t i = 2; i < a.size(); ++i)
      want += (i > 2 ? ", " : "") + integer(v != nullptr && v->members.count(a[i]) ? 1 : 0);
    return exact(want + "]");
  }
  if (cmd == "SMEMBERS") {
    if (wrong(Value::set)) return exact(error(kWrongType));
    std::vector<std::string> want;
    if (v != nullptr)
      for (const auto& m : v->members) want.push_back(bulk(m));
    return unordered(std::move(want));
  }
  if (cmd == "SRANDMEMBER") {
    if (wrong(Value::set)) return exact(error(kWrongType));
    if (v == nullptr) return exact(kNil);
    auto members = v->members;
    return [members](const Reply& r) -> std::string {
      return r.type == Reply::Type::bulk && members.count(r.str) ? "" : "want a member";
    };
  }
  if (cmd == "SPOP") {
    if (wrong(Value::set)) return exact(error(kWrongType));
    if (v == nullptr) return exact(kNil);
    return [this, key](const Reply& r) -> std::string {
      Value& s = db[key];
      if (r.type != Reply::Type::bulk || s.members.erase(r.str) != 1) return "want a member";
      drop_if_empty(key);
      return {};
    };
  }
  if (cmd == "SMOVE") {
    Value* dst = find(a[2]);
    if (v == nullptr) return exact(integer(0));
    if (wrong(Value::set) || (dst != nullptr && dst->kind != Value::set))
      return exact(error(kWrongType));
    if (v == dst) return exact(integer(v->members.count(a[3]) ? 1 : 0));
    if (v->members.erase(a[3]) == 0) return exact(integer(0));
    drop_if_empty(key);
    db.try_emplace(a[2], Value{Value::set, {}, {}, {}}).first->second.members.insert(a[3]);
    return exact(integer(1));
  }
  if (cmd == "SINTER" || cmd == "SUNION" || cmd == "SDIFF") {
    std::string err;
    const auto out = set_algebra(Args(a.begin() + 1, a.end()),
                                 cmd[1] == 'I'   ? 'i'
                                 : cmd[1] == 'U' ? 'u'
                                                 : 'd',
                                 &err);
    if (!err.empty()) return exact(error(err));
    std::vector<std::string> want;
    for (const auto& m : out) want.push_back(bulk(m));
    return unordered(std::move(want));
  }
  if (cmd == "SINTERSTORE" || cmd == "SUNIONSTORE" || cmd == "SDIFFSTORE") {
    std::string err;
    const auto out = set_algebra(Args(a.begin() + 2, a.end()),
                                 cmd[1] == 'I'   ? 'i'
                                 : cmd[1] == 'U' ? 'u'
                                                 : 'd',
                                 &err);
    if (!err.empty()) return exact(error(err));
    db.erase(a[1]);
    if (!out.empty()) db[a[1]] = Value{Value::set, {}, {}, {out.begin(), out.end()}};
    return exact(integer(static_cast<std::int64_t>(out.size())));
  }
  if (cmd == "SINTERCARD") {
    std::string err;
    const auto n = static_cast<std::size_t>(std::stoll(a[1]));
    const auto out =
        set_algebra(Args(a.begin() + 2, a.begin() + 2 + static_cast<long>(n)), 'i', &err);
    if (!err.empty()) return exact(error(err));
    return exact(integer(static_cast<std::int64_t>(out.size())));
  }

  // --- keys ---
  if (cmd == "DEL") {
    std::int64_t n = 0;
    for (std::size_t i = 1; i < a.size(); ++i) n += static_cast<std::int64_t>(db.erase(a[i]));
    return exact(integer(n));
  }
  if (cmd == "EXISTS") {
    std::int64_t n = 0;
    for (std::size_t i = 1; i < a.size(); ++i) n += static_cast<std::int64_t>(db.count(a[i]));
    return exact(integer(n));
  }
  if (cmd == "TYPE") {
    static const char* kNames[] = {"+string", "+hash", "+set"};
    return exact(v == nullptr ? "+none" : kNames[v->kind]);
  }
  if (cmd == "RENAME") {
    if (v == nullptr) return exact(error("ERR no such key"));
    if (a[1] != a[2]) {
      Value moved = *v;
      db.erase(a[1]);
      db[a[2]] = std::move(moved);
    }
    return exact(kOk);
  }
  if (cmd == "COPY") {
    if (a[1] == a[2]) return exact(error("ERR source and destination objects are the same"));
    if (v == nullptr) return exact(integer(0));
    const bool replace = a.size() > 3;
    if (db.count(a[2]) && !replace) return exact(integer(0));
    db[a[2]] = *v;
    return exact(integer(1));
  }
  ADD_FAILURE() << "model: no rule for " << cmd;
  return exact("?");
}

// A random command over `keys`, with fields, members and values drawn from
// small pools (integers and text, a long value now and then).
Args random_command(std::mt19937_64& rng, const std::vector<std::string>& keys) {
  auto pick = [&](const std::vector<std::string>& pool) { return pool[rng() % pool.size()]; };
  static const std::vector<std::string> kMembers = {"1",   "2", "3", "10", "-7",  "0",
                                                    "007", "a", "b", "c",  "xyz", ""};
  static const std::vector<std::string> kValues = {
      "1", "42", "-3", "v", "hello", "", "0123456789abcdef-long", "9"};
  const std::string k = pick(keys), k2 = pick(keys), k3 = pick(keys);
  auto member = [&] { return pick(kMembers); };
  auto value = [&] { return rng() % 50 == 0 ? std::string(70, 'L') : pick(kValues); };
  auto small_int = [&] { return std::to_string(static_cast<long long>(rng() % 21) - 10); };
  switch (rng() % 46) {
    case 0:
      return {"SET", k, value()};
    case 1:
      return {"GET", k};
    case 2:
      return {"APPEND", k, value()};
    case 3:
      return {"STRLEN", k};
    case 4:
      return {"INCRBY", k, small_int()};
    case 5:
      return {"GETRANGE", k, small_int(), small_int()};
    case 6:
      return {"SETRANGE", k, std::to_string(rng() % 12), pick(kValues)};
    case 7:
      return {"GETDEL", k};
    case 8:
      return {"SETBIT", k, std::to_string(rng() % 40), std::to_string(rng() % 2)};
    case 9:
      return {"BITCOUNT", k};
    case 10:
      return {"MSETNX", k, value(), k2, value()};
    case 11:
      return {"HSET", k, member(), value()};
    case 12:
      return {"HSET", k, member(), value(), member(), value()};
    case 13:
      return {"HSETNX", k, member(), value()};
    case 14:
      return {"HGET", k, member()};
    case 15:
      return {"HMGET", k, member(), member()};
    case 16:
      return {"HDEL", k, member(), member()};
    case 17:
      return {"HLEN", k};
    case 18:
      return {"HEXISTS", k, member()};
    case 19:
      return {"HSTRLEN", k, member()};
    case 20:
      return {"HINCRBY", k, member(), small_int()};
    case 21:
      return {"HGETALL", k};
    case 22:
      return {"HKEYS", k};
    case 23:
      return {"HVALS", k};
    case 24:
      return {"HRANDFIELD", k};
    case 25:
      return {"SADD", k, member()};
    case 26:
      return {"SADD", k, member(), member(), member()};
    case 27:
      return {"SREM", k, member(), member()};
    case 28:
      return {"SCARD", k};
    case 29:
      return {"SISMEMBER", k, member()};
    case 30:
      return {"SMISMEMBER", k, member(), member()};
    case 31:
      return {"SMEMBERS", k};
    case 32:
      return {"SRANDMEMBER", k};
    case 33:
      return {"SPOP", k};
    case 34:
      return {"SMOVE", k, k2, member()};
    case 35:
      return {"SINTER", k, k2};
    case 36:
      return {"SUNION", k, k2, k3};
    case 37:
      return {"SDIFF", k, k2};
    case 38:
      return {"SINTERSTORE", k, k2, k3};
    case 39:
      return {"SUNIONSTORE", k, k2, k3};
    case 40:
      return {"SDIFFSTORE", k, k2, k3};
    case 41:
      return {"SINTERCARD", "2", k, k2};
    case 42:
      return {"DEL", k};
    case 43:
      return {"RENAME", k, k2};
    case 44:
      return rng() % 2 ? Args{"COPY", k, k2} : Args{"COPY", k, k2, "REPLACE"};
    default:
      return rng() % 2 ? Args{"TYPE", k} : Args{"EXISTS", k, k2};
  }
}

class StringsHashesSetsModel : public SharedServerTest {
 protected:
  void SetUp() override {
    SharedServerTest::SetUp();
    Client c(port());
    ASSERT_EQ(c.call({"CONFIG", "SET", "hash-max-listpack-entries", "4", "hash-max-listpack-value",
                      "8", "set-max-intset-entries", "4"})
                  .describe(),
              "+OK");
  }
  void TearDown() override {
    Client c(port());
    c.call({"CONFIG", "SET", "hash-max-listpack-entries", "512", "hash-max-listpack-value", "64",
            "set-max-intset-entries", "512"});
  }

  // Runs `n` commands over `keys` on `c` against `model`; records the
  // first few mismatches (command, reply, what was wanted).
  void run_sequence(Client& c, Model& model, const std::vector<std::string>& keys,
                    std::uint64_t seed, int n, Checker& check) {
    std::mt19937_64 rng(seed);
    int failures = 0;
    for (int i = 0; i < n && failures < 5; ++i) {
      const Args a = random_command(rng, keys);
      const Check want = model.apply(a);
      const Reply r = c.call(a);
      const std::string why = want(r);
      if (!why.empty()) {
        std::string line;
        for (const auto& s : a) line += s + " ";
        check.check(false, "seed " + std::to_string(seed) + " step " + std::to_string(i) + ": " +
                               line + "-> " + r.describe() + "; " + why);
        ++failures;
      }
    }
  }
};

TEST_F(StringsHashesSetsModel, SingleClientFollowsTheModel) {
  Checker check;
  Client c(port());
  Model model;
  const std::vector<std::string> keys = {"{m}a", "{m}b", "{m}c", "{m}d", "e", "f"};
  run_sequence(c, model, keys, 20260101, 20000, check);
  WEFT_EXPECT_NO_FAILURES(check);
  // And the whole keyspace agrees at the end.
  EXPECT_EQ(c.call({"DBSIZE"}).integer, static_cast<std::int64_t>(model.db.size()));
}

TEST_F(StringsHashesSetsModel, FiftyConcurrentClientsEachFollowTheirModelAndSharedTotalsAreExact) {
  constexpr int kClients = 50;
  constexpr int kSteps = 600;
  constexpr int kTokens = 40;
  Checker check;
  {
    Client c(port());
    Args sadd = {"SADD", "shared:left"};
    for (int t = 0; t < kTokens; ++t) sadd.push_back("token" + std::to_string(t));
    ASSERT_EQ(c.call(sadd).integer, kTokens);
  }
  weft::Runtime rt(weft::test::workers_config(2));
  rt.block_on([&] {
    std::vector<weft::JoinHandle<void>> fibers;
    for (int id = 0; id < kClients; ++id) {
      fibers.push_back(weft::spawn([&, id] {
        try {
          Client c(port());
          Model model;
          const std::string p = "c" + std::to_string(id) + ":";
          const std::vector<std::string> keys = {p + "a", p + "b", p + "c", p + "d"};
          std::mt19937_64 rng(static_cast<std::uint64_t>(id) * 7919);
          for (int round = 0; round < kSteps / 50; ++round) {
            run_sequence(c, model, keys, static_cast<std::uint64_t>(id) * 1000 + round, 50, check);
            // Shared keys: commutative writes and token moves.
            c.call({"HINCRBY", "shared:h", "f" + std::to_string(rng() % 3), "1"});
            c.call({"SADD", "shared:s", p + std::to_string(round)});
            const std::string t = "token" + std::to_string(rng() % kTokens);
            const bool left = rng() % 2 == 0;
            const Reply r = c.call({"SMOVE", left ? "shared:left" : "shared:right",
                                    left ? "shared:right" : "shared:left", t});
            check.check(r.type == Reply::Type::integer, "SMOVE: " + r.describe());
          }
        } catch (const std::exception& e) {
          check.check(false, "client " + std::to_string(id) + ": " + e.what());
        }
      }));
    }
    for (auto& f : fibers) f.join();
  });
  WEFT_EXPECT_NO_FAILURES(check);
  Client c(port());
  const int rounds = kSteps / 50;
  std::int64_t sum = 0;
  for (int f = 0; f < 3; ++f) {
    const Reply r = c.call({"HGET", "shared:h", "f" + std::to_string(f)});
    if (r.type == Reply::Type::bulk) sum += std::stoll(r.str);
  }
  EXPECT_EQ(sum, kClients * rounds);
  EXPECT_EQ(c.call({"SCARD", "shared:s"}).integer, kClients * rounds);
  const Reply left = c.call({"SCARD", "shared:left"});
  const Reply right = c.call({"SCARD", "shared:right"});
  EXPECT_EQ(left.integer + right.integer, kTokens);
  EXPECT_EQ(c.call({"SINTERCARD", "2", "shared:left", "shared:right"}).integer, 0);
  EXPECT_EQ(c.call({"SUNION", "shared:left", "shared:right"}).elements.size(),
            static_cast<std::size_t>(kTokens));
}

}  // namespace
