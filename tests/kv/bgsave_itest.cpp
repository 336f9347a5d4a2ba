// weft-kv integration tests: what SAVE, BGSAVE [SCHEDULE] and BGREWRITEAOF
// answer while a background save or rewrite runs, and inside EXEC, byte
// for byte as redis-server 7.0.15 (the reference twin runs these tests
// against it).
//
// Holding a job in progress, deterministically. Both servers honour
// `rdb-key-save-delay` (Redis's testing aid: microseconds slept per key
// written by a background save or rewrite). With a delay of 60 s per key
// the job is certainly still running while the test looks at it, however
// slow the machine; the test then ends it at once: weft-kv stops a sleep
// under way when the delay is set to 0 (rdb_save.cpp sleeps in 10 ms
// slices), redis-server's child read the delay when it forked, so the test
// ends the child with SIGUSR1, which Redis treats as a clean stop (it does
// not mark the save as failed). No timing is assumed anywhere.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kv/kv_harness.hpp"

namespace {

using kv::itest::Client;
using kv::itest::Server;
using kv::itest::ServerConfig;
using namespace std::chrono_literals;

ServerConfig aof_config() {
  ServerConfig cfg;
  cfg.options = {{"appendonly", "yes"}, {"appendfsync", "everysec"}};
  return cfg;
}

// A server with two keys and a per-key delay of 60 s for background jobs.
void prepare(Client& c) {
  ASSERT_EQ(c.call({"MSET", "a", "1", "b", "2"}).describe(), "+OK");
  ASSERT_EQ(c.call({"CONFIG", "SET", "rdb-key-save-delay", "60000000"}).describe(), "+OK");
}

std::int64_t persistence(Client& c, const std::string& field) {
  return kv::itest::info(c, "persistence").integer(field);
}

// Ends the background job under way (see the file comment) with the delay
// off for the jobs after it, and waits until nothing runs or is scheduled.
void finish_jobs(Server& s, Client& c) {
  ASSERT_EQ(c.call({"CONFIG", "SET", "rdb-key-save-delay", "0"}).describe(), "+OK");
  if (kv::itest::reference_mode()) {
    // redis-server's fork child (at most one at a time).
    std::ifstream children("/proc/" + std::to_string(s.pid()) + "/task/" + std::to_string(s.pid()) +
                           "/children");
    pid_t child = 0;
    while (children >> child) ::kill(child, SIGUSR1);
  }
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < give_up) {
    const auto info = kv::itest::info(c, "persistence");
    if (info.integer("rdb_bgsave_in_progress") == 0 &&
        info.integer("aof_rewrite_in_progress") == 0 && info.integer("aof_rewrite_scheduled") == 0)
      return;
    std::this_thread::sleep_for(20ms);
  }
  FAIL() << "the background jobs did not end";
}

TEST(BackgroundSaveStates, WhileASaveRuns) {
  KV_REQUIRE_SERVER();
  Server s(aof_config());
  Client c(s.port());
  prepare(c);
  EXPECT_EQ(c.call({"BGSAVE"}).describe(), "+Background saving started");
  EXPECT_EQ(persistence(c, "rdb_bgsave_in_progress"), 1);
  EXPECT_EQ(c.call({"BGSAVE"}).describe(), "-ERR Background save already in progress");
  // SCHEDULE schedules behind a rewrite, never behind a save.
  EXPECT_EQ(c.call({"BGSAVE", "SCHEDULE"}).describe(), "-ERR Background save already in progress");
  EXPECT_EQ(c.call({"SAVE"}).describe(), "-ERR Background save already in progress");
  EXPECT_EQ(c.call({"BGSAVE", "x"}).describe(), "-ERR syntax error");
  EXPECT_EQ(c.call({"BGSAVE", "SCHEDULE", "x"}).describe(), "-ERR syntax error");
  // Inside EXEC the save in progress still refuses.
  c.send(kv::itest::encode({"MULTI"}) + kv::itest::encode({"BGSAVE"}) +
         kv::itest::encode({"EXEC"}));
  EXPECT_EQ(c.read_reply().describe(), "+OK");
  EXPECT_EQ(c.read_reply().describe(), "+QUEUED");
  EXPECT_EQ(c.read_reply().describe(), "[-ERR Background save already in progress]");
  // A rewrite waits for the save.
  EXPECT_EQ(c.call({"BGREWRITEAOF"}).describe(),
            "+Background append only file rewriting scheduled");
  EXPECT_EQ(persistence(c, "aof_rewrite_scheduled"), 1);
  EXPECT_EQ(persistence(c, "aof_rewrite_in_progress"), 0);
  finish_jobs(s, c);
  EXPECT_EQ(persistence(c, "aof_rewrites"), 1);
}

TEST(BackgroundSaveStates, WhileARewriteRuns) {
  KV_REQUIRE_SERVER();
  Server s(aof_config());
  Client c(s.port());
  prepare(c);
  const std::int64_t saves = persistence(c, "rdb_saves");
  EXPECT_EQ(c.call({"BGREWRITEAOF"}).describe(), "+Background append only file rewriting started");
  EXPECT_EQ(persistence(c, "aof_rewrite_in_progress"), 1);
  EXPECT_EQ(c.call({"BGREWRITEAOF"}).describe(),
            "-ERR Background append only file rewriting already in progress");
  EXPECT_EQ(c.call({"BGSAVE"}).describe(),
            "-ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE "
            "SCHEDULE in order to schedule a BGSAVE whenever possible.");
  // In EXEC a BGSAVE is scheduled rather than refused; the rewrite still is.
  c.send(kv::itest::encode({"MULTI"}) + kv::itest::encode({"BGSAVE"}) +
         kv::itest::encode({"BGREWRITEAOF"}) + kv::itest::encode({"EXEC"}));
  EXPECT_EQ(c.read_reply().describe(), "+OK");
  EXPECT_EQ(c.read_reply().describe(), "+QUEUED");
  EXPECT_EQ(c.read_reply().describe(), "+QUEUED");
  EXPECT_EQ(c.read_reply().describe(),
            "[+Background saving scheduled, -ERR Background append only file rewriting already in "
            "progress]");
  EXPECT_EQ(c.call({"BGSAVE", "SCHEDULE"}).describe(), "+Background saving scheduled");
  EXPECT_EQ(persistence(c, "rdb_bgsave_in_progress"), 0);
  finish_jobs(s, c);
  // The scheduled save ran once the rewrite was over.
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (persistence(c, "rdb_saves") == saves && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(20ms);
  finish_jobs(s, c);
  EXPECT_EQ(persistence(c, "rdb_saves"), saves + 1);
  EXPECT_EQ(kv::itest::info(c, "persistence").fields.at("rdb_last_bgsave_status"), "ok");
}

TEST(BackgroundSaveStates, InsideExecBothAreScheduled) {
  KV_REQUIRE_SERVER();
  Server s(aof_config());
  Client c(s.port());
  ASSERT_EQ(c.call({"SET", "a", "1"}).describe(), "+OK");
  const std::int64_t saves = persistence(c, "rdb_saves");
  const std::int64_t rewrites = persistence(c, "aof_rewrites");
  c.send(kv::itest::encode({"MULTI"}) + kv::itest::encode({"BGSAVE"}) +
         kv::itest::encode({"BGREWRITEAOF"}) + kv::itest::encode({"EXEC"}));
  EXPECT_EQ(c.read_reply().describe(), "+OK");
  EXPECT_EQ(c.read_reply().describe(), "+QUEUED");
  EXPECT_EQ(c.read_reply().describe(), "+QUEUED");
  EXPECT_EQ(c.read_reply().describe(),
            "[+Background saving scheduled, +Background append only file rewriting scheduled]");
  // Both run afterwards, one after the other (the cron starts them).
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while ((persistence(c, "rdb_saves") == saves || persistence(c, "aof_rewrites") == rewrites) &&
         std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(persistence(c, "rdb_saves"), saves + 1);
  EXPECT_EQ(persistence(c, "aof_rewrites"), rewrites + 1);
}

}  // namespace
