// AOF rewrite and crash trials (examples/weft-kv/aof_rewrite.hpp): a
// BGREWRITEAOF compacts the file and keeps every key of every type, with
// its TTL, across a restart; writes that arrive while it runs are in the
// new file; the replies and INFO fields are Redis's; redis-check-aof
// accepts the rewritten file and redis-server 7.0.15 loads it with the
// same data; the automatic rewrite starts on growth.
// Crash trials: kill -9 at random points during BGREWRITEAOF and during
// BGSAVE while a client writes, under appendfsync always: the server
// restarts every time and every acknowledged write is there.
//
// A separate binary (weft_test_kv_persist), not weft_test_kv_server: the
// trials restart servers some forty times and would lengthen that suite,
// the longest under TSan. The rewrite is slowed with rdb-key-save-delay
// (Redis's testing aid, per key) so that it runs long enough to write
// during it and to be killed in the middle. WEFT_KV_CRASH_TRIALS changes
// the number of trials (default 20, 5 under TSan).
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
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

void ok(Client& c, const std::vector<std::string>& argv) {
  const Reply r = c.call(argv);
  ASSERT_FALSE(r.is_error()) << argv[0] << ": " << r.str;
}

ServerConfig aof_always() {
  ServerConfig cfg;
  cfg.options = {{"appendonly", "yes"}, {"appendfsync", "always"}};
  return cfg;
}

// Waits (bounded by kPatience) until INFO persistence's `field` is `value`.
void wait_info(Client& c, const std::string& field, const std::string& value) {
  const weft::Deadline deadline = kv::itest::kPatience;
  for (;;) {
    const auto info = kv::itest::info(c, "persistence");
    const auto it = info.fields.find(field);
    if (it != info.fields.end() && it->second == value) return;
    ASSERT_FALSE(deadline.expired()) << field << " never became " << value;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void wait_rewrite(Client& c) {
  wait_info(c, "aof_rewrite_in_progress", "0");
  wait_info(c, "aof_rewrite_scheduled", "0");
}

// Every type, overwritten many times (so the rewrite has something to
// compact), with TTLs.
void fill(Client& c) {
  for (int i = 0; i < 200; ++i) ok(c, {"INCR", "counter"});
  for (int i = 0; i < 50; ++i) ok(c, {"SET", "s:over", "v" + std::to_string(i)});
  ok(c, {"SET", "s:bin", std::string("a\0b\xff\r\n", 6)});
  ok(c, {"SET", "s:ttl", "v", "PX", "100000000"});
  for (int i = 0; i < 300; ++i) ok(c, {"RPUSH", "l:big", "e" + std::to_string(i)});
  for (int i = 0; i < 100; ++i) ok(c, {"LPOP", "l:big"});
  ok(c, {"RPUSH", "l:small", "a", "b", "c"});
  for (int i = 0; i < 200; ++i) ok(c, {"SADD", "set:int", std::to_string(i)});
  ok(c, {"SADD", "set:str", "x", "y"});
  for (int i = 0; i < 200; ++i)
    ok(c, {"ZADD", "z", std::to_string(i) + ".5", "m" + std::to_string(i)});
  ok(c, {"ZADD", "z:small", "1", "a"});
  for (int i = 0; i < 100; ++i) ok(c, {"HSET", "h", "f" + std::to_string(i), std::to_string(i)});
  for (int i = 0; i < 100; ++i) ok(c, {"HINCRBY", "h:counter", "f", "1"});
  ok(c, {"PEXPIRE", "h", "50000000"});
  ok(c, {"SET", "gone", "x"});
  ok(c, {"DEL", "gone"});
}

std::uintmax_t aof_size(const Server& s) {
  return std::filesystem::file_size(s.dir() / "appendonly.aof");
}

TEST(AofRewrite, CompactsAndKeepsEveryTypeAcrossARestart) {
  KV_REQUIRE_SERVER();
  KV_WEFT_KV_ONLY("reads appendonly.aof (Redis 7 keeps appendonlydir/)");
  Server s(aof_always());
  Client c(s.port());
  fill(c);
  const auto before = kv::itest::keyspace_dump(c, /*with_ttl=*/true);
  const std::uintmax_t size_before = aof_size(s);
  EXPECT_EQ(c.call({"BGREWRITEAOF"}).describe(), "+Background append only file rewriting started");
  wait_rewrite(c);
  const auto info = kv::itest::info(c, "persistence");
  EXPECT_EQ(info.integer("aof_rewrites"), 1);
  EXPECT_EQ(info.fields.at("aof_last_bgrewrite_status"), "ok");
  EXPECT_EQ(info.integer("aof_current_rewrite_time_sec"), -1);
  EXPECT_GE(info.integer("aof_last_rewrite_time_sec"), 0);
  const std::uintmax_t size_after = aof_size(s);
  EXPECT_LT(size_after * 2, size_before) << size_after << " vs " << size_before;
  EXPECT_EQ(info.integer("aof_current_size"), static_cast<std::int64_t>(size_after));
  EXPECT_EQ(info.integer("aof_base_size"), static_cast<std::int64_t>(size_after));
  // Writes after the switch go to the new file.
  ok(c, {"INCR", "counter"});
  const auto expected = kv::itest::keyspace_dump(c, true);
  EXPECT_NE(expected, before);
  // No temporary file left behind.
  for (const auto& e : std::filesystem::directory_iterator(s.dir()))
    EXPECT_EQ(e.path().filename().string().find("temp-"), std::string::npos) << e.path();

  const std::string check = kv::itest::tool_path("WEFT_KV_REDIS_CHECK_AOF", "redis-check-aof");
  if (!check.empty()) {
    const auto r = kv::itest::run_tool(check, {(s.dir() / "appendonly.aof").string()});
    EXPECT_TRUE(r.status.success()) << r.out << r.err;
    EXPECT_NE(r.out.find("is valid"), std::string::npos) << r.out;
  }
  s.kill(SIGKILL);
  s.restart();
  Client d(s.port());
  EXPECT_EQ(kv::itest::keyspace_dump(d, true), expected);

  // redis-server 7.0.15 loads the rewritten file (it upgrades a lone
  // appendonly.aof to its appendonlydir/ layout, so on a copy).
  const std::string redis = kv::itest::tool_path("WEFT_KV_REDIS_SERVER", "redis-server");
  if (redis.empty()) return;
  weft::test::TempDir copy;
  std::filesystem::copy_file(s.dir() / "appendonly.aof", copy.path() / "appendonly.aof");
  ServerConfig rc;
  rc.binary = redis;
  rc.dir = copy.path();
  rc.options = {{"appendonly", "yes"}};
  Server r(rc);
  Client rcl(r.port());
  EXPECT_EQ(kv::itest::keyspace_dump(rcl, true), expected);
}

TEST(AofRewrite, WritesDuringTheRewriteAreInTheNewFile) {
  KV_REQUIRE_SERVER();
  Server s(aof_always());
  Client c(s.port());
  for (int b = 0; b < 4; ++b) {
    std::vector<std::string> mset = {"MSET"};
    for (int i = 0; i < 500; ++i) {
      mset.push_back("pre:" + std::to_string(b * 500 + i));
      mset.push_back("v");
    }
    ok(c, mset);
  }
  // 2,000 keys at 200 us each: the rewrite runs for about 0.4 s.
  ok(c, {"CONFIG", "SET", "rdb-key-save-delay", "200"});
  EXPECT_EQ(c.call({"BGREWRITEAOF"}).describe(), "+Background append only file rewriting started");
  EXPECT_EQ(c.call({"BGREWRITEAOF"}).describe(),
            "-ERR Background append only file rewriting already in progress");
  EXPECT_EQ(kv::itest::info(c, "persistence").integer("aof_rewrite_in_progress"), 1);
  EXPECT_EQ(c.call({"BGSAVE"}).describe(),
            "-ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE "
            "SCHEDULE in order to schedule a BGSAVE whenever possible.");
  // Written while the snapshot is being taken: the tail must carry them.
  int written = 0;
  while (kv::itest::info(c, "persistence").integer("aof_rewrite_in_progress") == 1) {
    ok(c, {"INCR", "during"});
    ok(c, {"SET", "new:" + std::to_string(written), std::to_string(written)});
    ok(c, {"DEL", "pre:" + std::to_string(written)});
    ++written;
  }
  ASSERT_GT(written, 0);
  EXPECT_EQ(kv::itest::info(c, "persistence").integer("aof_rewrites"), 1);
  ok(c, {"CONFIG", "SET", "rdb-key-save-delay", "0"});
  const auto expected = kv::itest::keyspace_dump(c);
  s.kill(SIGKILL);
  s.restart();
  Client d(s.port());
  EXPECT_EQ(d.call({"GET", "during"}).str, std::to_string(written));
  EXPECT_EQ(kv::itest::keyspace_dump(d), expected);
}

TEST(AofRewrite, AFailedRewriteKeepsTheOldFile) {
  KV_REQUIRE_SERVER();
  KV_WEFT_KV_ONLY("injects an fdatasync failure with WEFT_FAULTS");
  // The new file's fdatasync fails (EIO): the rewrite must be abandoned
  // before the rename, leaving the old file, which has every write.
  // everysec: with a rule installed every fdatasync pays the rule's path
  // lookup, which makes `always` slow; a kill -9 keeps what was written.
  ServerConfig cfg;
  cfg.options = {{"appendonly", "yes"}, {"appendfsync", "everysec"}};
  Server s(cfg, {{"WEFT_FAULTS", "op=fsync,path=*temp-rewriteaof-bg-*,errno=EIO"}});
  Client c(s.port());
  fill(c);
  const std::uintmax_t size_before = aof_size(s);
  EXPECT_EQ(c.call({"BGREWRITEAOF"}).describe(), "+Background append only file rewriting started");
  wait_rewrite(c);
  const auto info = kv::itest::info(c, "persistence");
  EXPECT_EQ(info.fields.at("aof_last_bgrewrite_status"), "err");
  EXPECT_EQ(info.integer("aof_rewrites"), 0);
  EXPECT_EQ(info.integer("aof_rewrites_consecutive_failures"), 1);
  EXPECT_EQ(info.fields.at("aof_last_write_status"), "ok");
  EXPECT_EQ(aof_size(s), size_before);
  for (const auto& e : std::filesystem::directory_iterator(s.dir()))
    EXPECT_EQ(e.path().filename().string().find("temp-"), std::string::npos) << e.path();
  ok(c, {"INCR", "counter"});
  const auto expected = kv::itest::keyspace_dump(c, true);
  s.kill(SIGKILL);
  s.env().clear();
  s.restart();
  Client d(s.port());
  EXPECT_EQ(kv::itest::keyspace_dump(d, true), expected);
}

TEST(AofRewrite, ScheduledBehindABgsave) {
  KV_REQUIRE_SERVER();
  Server s(aof_always());
  Client c(s.port());
  std::vector<std::string> mset = {"MSET"};
  for (int i = 0; i < 1000; ++i) {
    mset.push_back("k" + std::to_string(i));
    mset.push_back("v");
  }
  ok(c, mset);
  ok(c, {"CONFIG", "SET", "rdb-key-save-delay", "200"});
  EXPECT_EQ(c.call({"BGSAVE"}).describe(), "+Background saving started");
  EXPECT_EQ(c.call({"BGREWRITEAOF"}).describe(),
            "+Background append only file rewriting scheduled");
  EXPECT_EQ(kv::itest::info(c, "persistence").integer("aof_rewrite_scheduled"), 1);
  ok(c, {"CONFIG", "SET", "rdb-key-save-delay", "0"});
  wait_info(c, "aof_rewrites", "1");
  wait_rewrite(c);
  EXPECT_EQ(kv::itest::info(c, "persistence").fields.at("rdb_last_bgsave_status"), "ok");
}

TEST(AofRewrite, ConfigAndAutomaticRewrite) {
  KV_REQUIRE_SERVER();
  Server s(aof_always());
  Client c(s.port());
  EXPECT_EQ(c.call({"CONFIG", "GET", "auto-aof-rewrite-percentage"}).describe(),
            "[\"auto-aof-rewrite-percentage\", \"100\"]");
  EXPECT_EQ(c.call({"CONFIG", "GET", "auto-aof-rewrite-min-size"}).describe(),
            "[\"auto-aof-rewrite-min-size\", \"67108864\"]");
  EXPECT_EQ(c.call({"CONFIG", "SET", "auto-aof-rewrite-percentage", "-1"}).describe(),
            "-ERR CONFIG SET failed (possibly related to argument 'auto-aof-rewrite-percentage') - "
            "argument must be between 0 and 2147483647 inclusive");
  EXPECT_EQ(c.call({"CONFIG", "SET", "auto-aof-rewrite-min-size", "abc"}).describe(),
            "-ERR CONFIG SET failed (possibly related to argument 'auto-aof-rewrite-min-size') - "
            "argument must be a memory value");
  ok(c, {"CONFIG", "SET", "auto-aof-rewrite-min-size", "4kb"});
  EXPECT_EQ(c.call({"CONFIG", "GET", "auto-aof-rewrite-min-size"}).elements.at(1).str, "4096");
  // Grow the file past 4 KiB and past twice its size at start (0) with
  // the automatic rewrite off, then turn it on: the cron starts one.
  ok(c, {"CONFIG", "SET", "auto-aof-rewrite-percentage", "0"});
  for (int i = 0; i < 200; ++i) ok(c, {"SET", "k", std::string(100, 'x')});
  EXPECT_EQ(kv::itest::info(c, "persistence").integer("aof_rewrites"), 0);
  ok(c, {"CONFIG", "SET", "auto-aof-rewrite-percentage", "100"});
  wait_info(c, "aof_rewrites", "1");
  wait_rewrite(c);
  EXPECT_LT(kv::itest::info(c, "persistence").integer("aof_current_size"), 4096);
  EXPECT_EQ(kv::itest::info(c, "persistence").integer("aof_rewrites"), 1);
}

// --- crash trials -------------------------------------------------------------------

// 20 (the minimum); 5 under TSan, where each restart of the
// instrumented server costs seconds (the plain and ASan runs do the 20).
int trials() {
  const char* env = std::getenv("WEFT_KV_CRASH_TRIALS");
  if (env != nullptr) return std::max(1, std::atoi(env));
  return weft::test::kThreadSanitizer ? 5 : 20;
}

// One trial: a client writes SET w:<n> <n> in order and remembers the
// last acknowledged n; `start` starts the background job; the server is
// killed (SIGKILL) after `delay`; after a restart every acknowledged write
// and every preloaded key must be there.
// With a negative `delay` the job is left to finish first, and the time
// it took is returned (the kill then comes after it).
std::chrono::microseconds crash_trial(Server& s, int trial, const std::string& start,
                                      std::chrono::microseconds delay, int& killed_while_running) {
  Client c(s.port());
  ok(c, {"FLUSHALL"});
  std::vector<std::string> mset = {"MSET"};
  for (int i = 0; i < 1000; ++i) {
    mset.push_back("pre:" + std::to_string(i));
    mset.push_back(std::to_string(i));
  }
  ok(c, mset);
  ok(c, {"CONFIG", "SET", "rdb-key-save-delay", "100"});  // ~0.1 s for 1,000 keys
  std::atomic<long long> acked{-1};
  std::atomic<bool> started{false};
  std::thread writer([&] {
    try {
      Client w(s.port());
      for (long long n = 0;; ++n) {
        const Reply r = w.call({"SET", "w:" + std::to_string(n), std::to_string(n)});
        if (r.is_error()) return;
        acked = n;
        if (n == 20) started = true;
      }
    } catch (...) {
      // The kill: the connection ends.
    }
  });
  while (!started.load()) std::this_thread::sleep_for(std::chrono::microseconds(200));
  const std::string field =
      start == "BGSAVE" ? "rdb_bgsave_in_progress" : "aof_rewrite_in_progress";
  const auto t0 = std::chrono::steady_clock::now();
  const Reply r = c.call({start});
  EXPECT_FALSE(r.is_error()) << start << ": " << r.str;
  std::chrono::microseconds took{0};
  if (delay.count() < 0) {
    wait_info(c, field, "0");
    took = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                 t0);
  } else {
    std::this_thread::sleep_for(delay);
    if (kv::itest::info(c, "persistence").integer(field) == 1) ++killed_while_running;
  }
  s.kill(SIGKILL);
  writer.join();
  const long long last = acked.load();
  s.restart();
  Client d(s.port());
  std::vector<std::string> exists = {"EXISTS"};
  for (int i = 0; i < 1000; ++i) exists.push_back("pre:" + std::to_string(i));
  EXPECT_EQ(d.call(exists).integer, 1000) << "trial " << trial;
  for (long long from = 0; from <= last; from += 1000) {
    std::vector<std::string> mget = {"MGET"};
    for (long long n = from; n <= std::min(last, from + 999); ++n)
      mget.push_back("w:" + std::to_string(n));
    const Reply values = d.call(mget);
    EXPECT_EQ(values.elements.size(), mget.size() - 1);
    for (std::size_t k = 0; k < values.elements.size(); ++k) {
      if (values.elements[k].str == mget[k + 1].substr(2)) continue;
      ADD_FAILURE() << "trial " << trial << ": acknowledged write " << mget[k + 1]
                    << " lost (last acked " << last << ")";
      return took;
    }
  }
  return took;
}

void crash_trials(const std::string& start) {
  Server s(aof_always());
  std::mt19937 rng(std::random_device{}());
  int killed_while_running = 0;
  // Trial 0 lets the job finish (then kills): how long it takes here, now.
  const auto took = crash_trial(s, 0, start, std::chrono::microseconds(-1), killed_while_running);
  if (::testing::Test::HasFailure()) return;
  // Kill points spread uniformly over the job and a fifth of it after.
  std::uniform_int_distribution<long long> delay_us(0, took.count() * 6 / 5);
  const int n = trials();
  for (int t = 1; t < n; ++t) {
    crash_trial(s, t, start, std::chrono::microseconds(delay_us(rng)), killed_while_running);
    if (::testing::Test::HasFailure()) return;
  }
  // Most kill points fall inside the job (not asserted: timing under load).
  std::printf("%s: the job took %lld us; %d of %d kills landed while it ran\n", start.c_str(),
              static_cast<long long>(took.count()), killed_while_running, n);
}

TEST(CrashTrials, KillDuringBgrewriteaofLosesNoAcknowledgedWrite) {
  KV_REQUIRE_SERVER();
  crash_trials("BGREWRITEAOF");
}

TEST(CrashTrials, KillDuringBgsaveLosesNoAcknowledgedWrite) {
  KV_REQUIRE_SERVER();
  crash_trials("BGSAVE");
}

}  // namespace
