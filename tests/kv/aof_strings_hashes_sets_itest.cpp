// AOF replay of a mixed-type workload: strings (with the commands whose
// result must be logged in a deterministic form: INCRBYFLOAT, GETEX,
// SETRANGE, SETBIT, BITOP, BITFIELD, MSETNX), hashes (HINCRBYFLOAT,
// HINCRBY, HDEL emptying a key), sets (SPOP, the *STORE commands, SMOVE),
// keys (RENAME, COPY, EXPIRE, PERSIST) — thousands of random writes with
// --appendfsync always, then kill -9 and a restart. Every key must read
// back the same: TYPE, GET, HGETALL, SMEMBERS (sorted), and the absolute
// expiry time (PEXPIRETIME), which replay must restore to the millisecond.
// Runs against redis-server too (the reference twin).
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kv/kv_harness.hpp"
#include "weft/weft.hpp"

namespace {

using kv::itest::Client;
using kv::itest::Reply;
using kv::itest::Server;
using kv::itest::ServerConfig;
using Args = std::vector<std::string>;

// What every key holds, as reads see it: key -> "type|value|pexpiretime".
std::map<std::string, std::string> snapshot(Client& c) {
  std::map<std::string, std::string> out;
  const Reply keys = c.call({"KEYS", "*"});
  for (const Reply& k : keys.elements) {
    const std::string type = c.call({"TYPE", k.str}).str;
    std::string value;
    if (type == "string") {
      value = c.call({"GET", k.str}).describe();
    } else if (type == "hash") {
      const Reply all = c.call({"HGETALL", k.str});
      std::map<std::string, std::string> fields;
      for (std::size_t i = 0; i + 1 < all.elements.size(); i += 2)
        fields[all.elements[i].str] = all.elements[i + 1].str;
      for (const auto& [f, v] : fields) value += f + "=" + v + ";";
    } else if (type == "set") {
      std::vector<std::string> members;
      for (const Reply& m : c.call({"SMEMBERS", k.str}).elements) members.push_back(m.str);
      std::sort(members.begin(), members.end());
      for (const auto& m : members) value += m + ";";
    } else {
      value = "?";
    }
    out[k.str] = type + "|" + value + "|" + c.call({"PEXPIRETIME", k.str}).describe();
  }
  return out;
}

Args random_write(std::mt19937_64& rng) {
  static const std::vector<std::string> kKeys = {"s1", "s2", "s3", "h1", "h2",
                                                 "h3", "t1", "t2", "t3", "x"};
  static const std::vector<std::string> kItems = {"1", "2", "3",  "17", "-4",
                                                  "a", "b", "cc", "dd", "0.5"};
  auto pick = [&](const std::vector<std::string>& p) { return p[rng() % p.size()]; };
  const std::string k = pick(kKeys), k2 = pick(kKeys), k3 = pick(kKeys);
  const std::string i1 = pick(kItems), i2 = pick(kItems);
  const std::string n = std::to_string(static_cast<int>(rng() % 9) - 3);
  switch (rng() % 30) {
    case 0:
      return {"SET", k, i1};
    case 1:
      return {"APPEND", k, i1};
    case 2:
      return {"INCRBYFLOAT", k, "0." + std::to_string(rng() % 1000)};
    case 3:
      return {"SETRANGE", k, std::to_string(rng() % 6), i1};
    case 4:
      return {"SETBIT", k, std::to_string(rng() % 30), std::to_string(rng() % 2)};
    case 5:
      return {"BITOP", rng() % 2 ? "XOR" : "OR", k, k2, k3};
    case 6:
      return {"BITFIELD", k, "OVERFLOW", rng() % 2 ? "SAT" : "WRAP", "INCRBY", "i8", "#1", n};
    case 7:
      return {"MSETNX", k, i1, k2, i2};
    case 8:
      return {"GETEX", k, "EX", std::to_string(1000 + rng() % 1000)};
    case 9:
      return {"GETEX", k, "PERSIST"};
    case 10:
      return {"HSET", k, i1, i2};
    case 11:
      return {"HINCRBY", k, i1, n};
    case 12:
      return {"HINCRBYFLOAT", k, i2, "1.25"};
    case 13:
      return {"HDEL", k, i1, i2};
    case 14:
      return {"HSETNX", k, i2, i1};
    case 15:
      return {"SADD", k, i1, i2};
    case 16:
      return {"SREM", k, i1};
    case 17:
      return {"SPOP", k};
    case 18:
      return {"SPOP", k, std::to_string(rng() % 3)};
    case 19:
      return {"SMOVE", k, k2, i1};
    case 20:
      return {"SINTERSTORE", k, k2, k3};
    case 21:
      return {"SUNIONSTORE", k, k2, k3};
    case 22:
      return {"SDIFFSTORE", k, k2, k3};
    case 23:
      return {"RENAME", k, k2};
    case 24:
      return {"COPY", k, k2, "REPLACE"};
    case 25:
      return {"EXPIRE", k, std::to_string(1000 + rng() % 1000)};
    case 26:
      return {"PERSIST", k};
    case 27:
      return {"DEL", k};
    case 28:
      return {"HINCRBY", k, i2, "1000000"};
    default:
      return {"SETBIT", k, std::to_string(rng() % 100), "1"};
  }
}

TEST(AofStringsHashesSets, MixedWorkloadReplaysExactly) {
  KV_REQUIRE_SERVER();
  weft::test::TempDir data;
  Server server(ServerConfig{{{"appendonly", "yes"}, {"appendfsync", "always"}}, data.path()});
  std::map<std::string, std::string> before;
  std::size_t errors = 0, writes = 0;
  {
    Client c(server.port());
    // Small thresholds, so the encodings change under the workload too.
    ASSERT_EQ(
        c.call({"CONFIG", "SET", "hash-max-listpack-entries", "3", "set-max-intset-entries", "3"})
            .describe(),
        "+OK");
    std::mt19937_64 rng(42);
    for (int i = 0; i < 4000; ++i) {
      const Reply r = c.call(random_write(rng));
      if (r.is_error()) ++errors;  // WRONGTYPE and friends: part of the mix
      ++writes;
    }
    before = snapshot(c);
  }
  ASSERT_GT(before.size(), 3u);
  ASSERT_LT(errors, writes / 2) << "the workload should mostly succeed";
  server.kill(SIGKILL);
  ASSERT_TRUE(server.wait_exit().has_value());
  server.restart();
  Client c(server.port());
  const auto after = snapshot(c);
  EXPECT_EQ(after.size(), before.size());
  for (const auto& [k, v] : before) {
    auto it = after.find(k);
    ASSERT_NE(it, after.end()) << "lost key " << k;
    EXPECT_EQ(it->second, v) << "key " << k;
  }
}

}  // namespace
