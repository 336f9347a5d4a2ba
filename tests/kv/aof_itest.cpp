// AOF durability: with --appendonly yes --appendfsync always, every write
// the server acknowledged survives kill -9; a torn record at the end of the
// file (a crash in the middle of a write) is cut off at the next start, with
// a warning, and everything before it is intact.
//
// The file: weft-kv writes DIR/appendonly.aof. Redis 7 keeps a multi-part
// AOF in DIR/appendonlydir/ (base, incr files, manifest) and appends to the
// newest incr file; reference mode tears that one, so the same test runs
// against both. The warning is recognised by its words (warn, truncat,
// torn), not its exact text.
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "kv/kv_harness.hpp"
#include "weft/weft.hpp"

namespace {

using kv::itest::Client;
using kv::itest::Reply;
using kv::itest::Server;
using kv::itest::ServerConfig;
using weft::test::Checker;
using weft::test::eventually;

ServerConfig aof_config(const std::filesystem::path& dir) {
  return ServerConfig{{{"appendonly", "yes"}, {"appendfsync", "always"}}, dir};
}

// The file the server appends to.
std::filesystem::path aof_file(const std::filesystem::path& dir) {
  if (!kv::itest::reference_mode()) return dir / "appendonly.aof";
  std::filesystem::path newest;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir / "appendonlydir", ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() > 9 && name.compare(name.size() - 9, 9, ".incr.aof") == 0 &&
        (newest.empty() || name > newest.filename().string())) {
      newest = e.path();
    }
  }
  return newest;
}

struct Acked {
  std::int64_t counter = 0;   // the highest INCR reply seen
  std::vector<int> set_keys;  // i of every acknowledged SET key:<client>:<i>
};

TEST(Aof, AcknowledgedWritesSurviveKill9) {
  KV_REQUIRE_SERVER();
  weft::test::TempDir data;
  Server server(aof_config(data.path()));
  EXPECT_TRUE(std::filesystem::exists(aof_file(data.path())))
      << "no AOF at " << aof_file(data.path());

  constexpr int kClients = 8;
  std::vector<Acked> acked(kClients);
  std::atomic<long> total{0};
  Checker check;
  {
    weft::Runtime rt(weft::test::workers_config(2));
    rt.block_on([&] {
      std::vector<weft::JoinHandle<void>> clients;
      for (int id = 0; id < kClients; ++id) {
        clients.push_back(weft::spawn([&, id] {
          const std::string counter = "counter:" + std::to_string(id);
          try {
            Client c(server.port());
            for (int i = 0;; ++i) {
              const Reply n = c.call({"INCR", counter});
              if (!check.check(n.type == Reply::Type::integer, "INCR replied " + n.describe())) {
                return;
              }
              acked[id].counter = n.integer;
              total.fetch_add(1);
              const std::string key = "key:" + std::to_string(id) + ":" + std::to_string(i);
              const Reply ok = c.call({"SET", key, std::to_string(i)});
              if (!check.equal(ok.describe(), std::string("+OK"), "SET " + key)) return;
              acked[id].set_keys.push_back(i);
              total.fetch_add(1);
            }
          } catch (const std::exception&) {
            // The server was killed under us: the write in flight is not
            // acknowledged and may or may not be in the file.
          }
        }));
      }
      // Kill while every client is mid-stream.
      check.check(eventually([&] { return total.load() >= 1000; }),
                  "1,000 acknowledged writes: only " + std::to_string(total.load()));
      server.kill(SIGKILL);
      for (auto& c : clients) c.join();
    });
  }
  WEFT_EXPECT_NO_FAILURES(check);
  ASSERT_TRUE(server.wait_exit().has_value());
  server.restart();

  Client c(server.port());
  long missing = 0;
  for (int id = 0; id < kClients; ++id) {
    const std::string counter = "counter:" + std::to_string(id);
    const Reply v = c.call({"GET", counter});
    ASSERT_EQ(v.type, Reply::Type::bulk) << counter << " after restart: " << v;
    EXPECT_GE(std::stoll(v.str), acked[id].counter) << counter << ": acknowledged INCRs lost";
    for (const int i : acked[id].set_keys) {
      const std::string key = "key:" + std::to_string(id) + ":" + std::to_string(i);
      const Reply got = c.call({"GET", key});
      if (got.describe() != "\"" + std::to_string(i) + "\"") {
        if (++missing <= 10) {
          ADD_FAILURE() << "acknowledged " << key << " is " << got;
        }
      }
    }
  }
  EXPECT_EQ(missing, 0) << "acknowledged SETs lost";
  RecordProperty("acknowledged_writes", static_cast<int>(total.load()));
}

TEST(Aof, TornRecordIsCutOffAndEarlierDataIsIntact) {
  KV_REQUIRE_SERVER();
  weft::test::TempDir data;
  Server server(aof_config(data.path()));
  {
    Client c(server.port());
    for (int i = 0; i < 100; ++i) {
      ASSERT_EQ(c.call({"SET", "k:" + std::to_string(i), std::to_string(i)}).describe(), "+OK");
    }
    ASSERT_EQ(c.call({"INCRBY", "n", "41"}).describe(), ":41");
    ASSERT_EQ(c.call({"INCR", "n"}).describe(), ":42");
    ASSERT_EQ(c.call({"DEL", "k:99"}).describe(), ":1");
  }
  server.kill(SIGKILL);
  ASSERT_TRUE(server.wait_exit().has_value());

  const auto file = aof_file(data.path());
  ASSERT_FALSE(file.empty());
  const auto intact_size = std::filesystem::file_size(file);
  {
    // A record cut off in the middle of its last bulk string.
    std::ofstream out(file, std::ios::binary | std::ios::app);
    out << "*3\r\n$3\r\nSET\r\n$4\r\ntorn\r\n$10\r\nhalf";
  }
  const std::size_t log_from = server.log_size();
  server.restart();
  const std::string log = server.log(log_from);
  EXPECT_TRUE(std::regex_search(log, std::regex("warn|truncat|torn", std::regex::icase)))
      << "no warning about the torn record; log:\n"
      << log;

  Client c(server.port());
  EXPECT_EQ(c.call({"EXISTS", "torn"}).describe(), ":0");
  EXPECT_EQ(c.call({"GET", "n"}).describe(), "\"42\"");
  EXPECT_EQ(c.call({"EXISTS", "k:99"}).describe(), ":0");
  for (int i = 0; i < 99; ++i) {
    ASSERT_EQ(c.call({"GET", "k:" + std::to_string(i)}).describe(),
              "\"" + std::to_string(i) + "\"");
  }
  EXPECT_EQ(c.call({"DBSIZE"}).describe(), ":100");

  // The torn tail is gone from the file, not merely skipped: what is
  // appended now is read back after another crash.
  ASSERT_EQ(c.call({"SET", "after", "torn"}).describe(), "+OK");
  server.kill(SIGKILL);
  ASSERT_TRUE(server.wait_exit().has_value());
  EXPECT_GE(std::filesystem::file_size(aof_file(data.path())), intact_size);
  server.restart();
  Client again(server.port());
  EXPECT_EQ(again.call({"GET", "after"}).describe(), "\"torn\"");
  EXPECT_EQ(again.call({"GET", "n"}).describe(), "\"42\"");
  EXPECT_EQ(again.call({"DBSIZE"}).describe(), ":101");
}

}  // namespace
