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
#include <cctype>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
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

// What replay must rebuild besides plain SETs: deletes, FLUSHALL, TTLs
// (still counting from when they were set: a short one has passed by the
// restart), PERSIST, INCR keeping a TTL, and the other write commands.
TEST(Aof, ReplayRestoresDeletesFlushesAndTtls) {
  KV_REQUIRE_SERVER();
  weft::test::TempDir data;
  Server server(aof_config(data.path()));
  {
    Client c(server.port());
    const std::vector<std::vector<std::string>> writes = {
        {"SET", "flushed", "1"},
        {"FLUSHALL"},
        {"MSET", "gone", "1", "keep", "1", "m", "2"},
        {"DEL", "gone"},
        {"APPEND", "keep", "23"},
        {"SET", "ttl_long", "v", "EX", "1000"},
        {"SET", "ttl_short", "v", "PX", "300"},
        {"SET", "persisted", "v", "EX", "1000"},
        {"PERSIST", "persisted"},
        {"SET", "counter", "5", "EX", "1000"},
        {"INCR", "counter"},
        {"INCRBY", "plain", "-7"},
        {"GETSET", "keep2", "x"},
        {"EXPIRE", "keep2", "1000"},
        {"SET", "nx", "first", "NX"},
        {"SET", "nx", "second", "NX"},
        {"SETEX", "setex", "1000", "v"},
        {"GETDEL", "m"},
        {"UNLINK", "keep2"},
        {"SET", "binary", std::string("a\0\r\n*1\r\n$3\r\nb", 13)},
    };
    for (const auto& w : writes) {
      const Reply r = c.call(w);
      ASSERT_FALSE(r.is_error()) << w[0] << ": " << r;
    }
  }
  server.kill(SIGKILL);
  ASSERT_TRUE(server.wait_exit().has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // ttl_short's time passes
  server.restart();

  Client c(server.port());
  for (const char* k : {"flushed", "gone", "m", "keep2", "ttl_short"}) {
    EXPECT_EQ(c.call({"EXISTS", k}).describe(), ":0") << k;
  }
  EXPECT_EQ(c.call({"GET", "keep"}).describe(), "\"123\"");
  EXPECT_EQ(c.call({"GET", "counter"}).describe(), "\"6\"");
  EXPECT_EQ(c.call({"GET", "plain"}).describe(), "\"-7\"");
  EXPECT_EQ(c.call({"GET", "nx"}).describe(), "\"first\"");
  EXPECT_EQ(c.call({"GET", "binary"}).describe(), "\"a\\x00\\r\\n*1\\r\\n$3\\r\\nb\"");
  EXPECT_EQ(c.call({"TTL", "persisted"}).describe(), ":-1");
  EXPECT_EQ(c.call({"TTL", "plain"}).describe(), ":-1");
  for (const char* k : {"ttl_long", "counter", "setex"}) {
    const Reply ttl = c.call({"TTL", k});
    EXPECT_TRUE(ttl.type == Reply::Type::integer && ttl.integer > 900 && ttl.integer <= 1000)
        << k << ": TTL " << ttl;
  }
  EXPECT_EQ(c.call({"DBSIZE"}).describe(), ":8");
}

// appendfsync everysec: nothing is promised across kill -9, but a clean
// shutdown (SIGTERM) writes and syncs everything acknowledged.
TEST(Aof, CleanShutdownKeepsEverysecWrites) {
  KV_SKIP_EXTERNAL_SIGNALS_UNDER_TSAN();
  KV_REQUIRE_SERVER();
  weft::test::TempDir data;
  Server server(ServerConfig{{{"appendonly", "yes"}, {"appendfsync", "everysec"}}, data.path()});
  constexpr int kKeys = 5000;
  {
    Client c(server.port());
    std::string batch;
    for (int i = 0; i < kKeys; ++i) {
      batch += kv::itest::encode({"SET", "k:" + std::to_string(i), std::to_string(i)});
    }
    c.send(batch);
    for (int i = 0; i < kKeys; ++i) ASSERT_EQ(c.read_reply().describe(), "+OK") << i;
  }
  server.kill(SIGTERM);
  const auto status = server.wait_exit();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->success()) << status->to_string() << server.log();
  server.restart();
  Client c(server.port());
  EXPECT_EQ(c.call({"DBSIZE"}).describe(), ":" + std::to_string(kKeys));
  EXPECT_EQ(c.call({"GET", "k:4999"}).describe(), "\"4999\"");
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
  std::string lower = log;
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  EXPECT_TRUE(lower.find("warn") != std::string::npos ||
              lower.find("truncat") != std::string::npos || lower.find("torn") != std::string::npos)
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
