// The AOF of lists and sorted sets: a mixed workload from several clients —
// every list and sorted-set write of typed_model.hpp's generator on one
// shared key space, plus blocking pops (BLPOP, BRPOP, BLMOVE, BLMPOP,
// BZPOPMIN, BZMPOP) that pushes serve, which the AOF must hold as the
// non-blocking pops they performed — is replayed after kill -9 into
// exactly the same keys: TYPE, LRANGE and ZRANGE WITHSCORES of every key
// agree. With --appendfsync always every acknowledged write is in the file
// (and the workload has ended before the kill). Runs against redis-server
// too.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <map>
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

// Every key with its type and contents, in key order.
std::map<std::string, std::string> snapshot(Client& c) {
  std::map<std::string, std::string> out;
  for (const Reply& k : c.call({"KEYS", "*"}).elements) {
    const std::string type = c.call({"TYPE", k.str}).describe();
    std::string contents;
    if (type == "+list")
      contents = c.call({"LRANGE", k.str, "0", "-1"}).describe();
    else if (type == "+zset")
      contents = c.call({"ZRANGE", k.str, "0", "-1", "WITHSCORES"}).describe();
    out[k.str] = type + " " + contents;
  }
  return out;
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
      for (auto& w : writers) w.join();
      done.store(true);
      for (auto& f : fibers) f.join();
    });
  }
  WEFT_EXPECT_NO_FAILURES(check);
  EXPECT_GT(served.load(), 0) << "no blocking pop was served: the test lost its point";

  Client before_client(server.port());
  const auto before = snapshot(before_client);
  EXPECT_FALSE(before.empty());
  before_client.close();
  server.kill(SIGKILL);
  ASSERT_TRUE(server.wait_exit().has_value());
  server.restart();
  Client after_client(server.port());
  const auto after = snapshot(after_client);
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
