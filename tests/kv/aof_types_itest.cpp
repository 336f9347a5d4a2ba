// The AOF of every type: a mixed workload from several clients — every
// list and sorted-set write of typed_model.hpp's generator on one shared
// key space, string, bit, hash, set and key writes on the same keys (so
// types replace each other through RENAME, COPY and the STORE forms), plus
// blocking pops (BLPOP, BRPOP, BLMOVE, BLMPOP, BZPOPMIN, BZMPOP) that
// pushes serve, which the AOF must hold as the non-blocking pops they
// performed — is replayed after kill -9 into exactly the same keys: TYPE,
// GET, LRANGE, HGETALL (sorted), SMEMBERS (sorted) and ZRANGE WITHSCORES of
// every key agree. With --appendfsync always every acknowledged write is in the file
// (and the workload has ended before the kill). Runs against redis-server
// too.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kv/kv_harness.hpp"
#include "kv/typed_model.hpp"
#include "weft/weft.hpp"

namespace {

using kv::itest::Client;
using kv::itest::Reply;
using kv::itest::Server;
using kv::itest::ServerConfig;
using weft::test::Checker;

// String, bit, hash, set and key writes: each type on keys of its own
// (k6, k7 strings; k8, k9 hashes; k10, k11 sets), so that every type is
// still there at the end, and writes that move or store values (RENAME,
// COPY, the STORE forms, SMOVE) between those and the generator's keys
// (k0..k5), so that types replace each other. Each is replayed from the
// AOF in a deterministic form.
std::vector<std::string> other_write(std::mt19937_64& rng) {
  const auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const auto own = [&](int first) { return "k" + std::to_string(first + pick(2)); };
  const auto any = [&] { return "k" + std::to_string(pick(12)); };
  const auto shared = [&] { return "k" + std::to_string(pick(6)); };
  const auto small = [&] { return std::to_string(pick(9)); };
  switch (pick(24)) {
    case 0:
      return {"SET", own(6), "s" + small()};
    case 1:
      return {"APPEND", own(6), "a"};
    case 2:
      return {"INCRBYFLOAT", own(6), "1.5"};
    case 3:
      return {"SETRANGE", own(6), small(), "xy"};
    case 4:
      return {"SETBIT", own(6), small(), "1"};
    case 5:
      return {"BITOP", "OR", own(6), own(6), any()};
    case 6:
    case 7:
      return {"HSET", own(8), "f" + small(), "v" + small()};
    case 8:
      return {"HINCRBY", own(8), "n", "3"};
    case 9:
      return {"HINCRBYFLOAT", own(8), "x", "0.25"};
    case 10:
      return {"HDEL", own(8), "f" + small()};
    case 11:
    case 12:
      return {"SADD", own(10), "m" + small(), std::to_string(pick(100))};
    case 13:
      return {"SREM", own(10), "m" + small()};
    case 14:
      return {"SPOP", own(10)};
    case 15:
      return {"SINTERSTORE", shared(), own(10), any()};
    case 16:
      return {"SUNIONSTORE", shared(), own(10), any()};
    case 17:
      return {"SMOVE", own(10), any(), "m" + small()};
    case 18:
      return {"RENAME", any(), shared()};
    case 19:
      return {"COPY", any(), shared(), "REPLACE"};
    case 20:
      return {"EXPIRE", any(), "1000"};
    case 21:
      return {"GETEX", own(6), "PERSIST"};
    case 22:
      return {"MSETNX", own(6), "m", shared(), "n"};
    default:
      return {"DEL", any()};
  }
}

TEST(TypedAof, AMixedWorkloadWithServedBlockingPopsReplaysExactly) {
  KV_REQUIRE_SERVER();
  weft::test::TempDir data;
  Server server(ServerConfig{{{"appendonly", "yes"}, {"appendfsync", "always"}}, data.path()});
  constexpr int kWriters = 6;
  constexpr int kOps = 1500;
  Checker check;
  std::atomic<long> served{0};
  {
    weft::Runtime rt(weft::test::workers_config(2));
    rt.block_on([&] {
      std::atomic<bool> done{false};
      std::vector<weft::JoinHandle<void>> fibers;
      // Blocked poppers on the writers' keys, served by their pushes.
      const std::vector<std::vector<std::string>> blocking = {
          {"BLPOP", "k0", "k1", "0.05"},
          {"BRPOP", "k2", "0.05"},
          {"BLMOVE", "k3", "k4", "LEFT", "RIGHT", "0.05"},
          {"BLMPOP", "0.05", "2", "k5", "k0", "RIGHT", "COUNT", "2"},
          {"BZPOPMIN", "k1", "k2", "0.05"},
          {"BZMPOP", "0.05", "1", "k3", "MAX", "COUNT", "2"},
      };
      for (const auto& cmd : blocking) {
        fibers.push_back(weft::spawn([&, cmd] {
          try {
            Client c(server.port());
            while (!done.load()) {
              const Reply r = c.call(cmd);
              if (r.type == Reply::Type::array || r.type == Reply::Type::bulk) served.fetch_add(1);
            }
          } catch (const std::exception& e) {
            check.check(false, cmd[0] + ": " + e.what());
          }
        }));
      }
      std::vector<weft::JoinHandle<void>> writers;
      for (int id = 0; id < kWriters; ++id) {
        writers.push_back(weft::spawn([&, id] {
          try {
            Client c(server.port());
            kv::itest::model::Generator gen("k", 77 + static_cast<std::uint64_t>(id));
            for (int i = 0; i < kOps; ++i) c.call(gen.next());
          } catch (const std::exception& e) {
            check.check(false, "writer " + std::to_string(id) + ": " + e.what());
          }
        }));
      }
      for (int id = 0; id < 2; ++id) {
        writers.push_back(weft::spawn([&, id] {
          try {
            Client c(server.port());
            std::mt19937_64 rng(900 + static_cast<std::uint64_t>(id));
            for (int i = 0; i < kOps; ++i) c.call(other_write(rng));
          } catch (const std::exception& e) {
            check.check(false, "other writer " + std::to_string(id) + ": " + e.what());
          }
        }));
      }
      for (auto& w : writers) w.join();
      done.store(true);
      for (auto& f : fibers) f.join();
      // The poppers drained most lists and sorted sets: some more of the
      // generator's writes, so that those types are in the file's end
      // state too.
      Client c(server.port());
      kv::itest::model::Generator gen("k", 7);
      for (int i = 0; i < 300; ++i) c.call(gen.next());
    });
  }
  WEFT_EXPECT_NO_FAILURES(check);
  EXPECT_GT(served.load(), 0) << "no blocking pop was served: the test lost its point";

  Client before_client(server.port());
  const auto before = kv::itest::keyspace_dump(before_client);
  EXPECT_FALSE(before.empty());
  std::map<std::string, int> types;
  for (const auto& [key, value] : before) ++types[value.substr(0, value.find(' '))];
  for (const auto& [type, n] : types) std::printf("[ info ] %d keys of type %s\n", n, type.c_str());
  before_client.close();
  server.kill(SIGKILL);
  ASSERT_TRUE(server.wait_exit().has_value());
  server.restart();
  Client after_client(server.port());
  const auto after = kv::itest::keyspace_dump(after_client);
  EXPECT_EQ(after.size(), before.size());
  for (const auto& [key, value] : before) {
    const auto it = after.find(key);
    if (it == after.end()) {
      ADD_FAILURE() << key << " is gone after the replay (was " << value << ")";
      continue;
    }
    EXPECT_EQ(it->second, value) << "key " << key;
  }
}

}  // namespace
