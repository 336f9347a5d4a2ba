// RDB snapshots (examples/weft-kv/rdb.hpp, rdb_save.hpp): a dataset of
// every type, in small and large encodings, with TTLs, integers of every
// width, binary and compressible strings, goes from weft-kv to a real
// redis-server 7.0.15 and from redis-server to weft-kv through dump.rdb,
// and arrives whole (every key, type, value and PEXPIRETIME equal);
// redis-check-rdb accepts weft-kv's file; a truncated or corrupt file, a
// database other than 0 and a newer version stop weft-kv at start with a
// reason; a BGSAVE taken while clients write is one instant of the
// keyspace. Against the reference (WEFT_KV_REFERENCE=1) the round trips
// run redis-server to redis-server.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/io_util.hpp"
#include "kv/kv_harness.hpp"
#include "weft/weft.hpp"

namespace {

using kv::itest::Client;
using kv::itest::Reply;
using kv::itest::Server;
using kv::itest::ServerConfig;
using weft::test::Checker;

std::string redis_server() {
  return kv::itest::tool_path("WEFT_KV_REDIS_SERVER", "redis-server");
}
std::string redis_check_rdb() {
  return kv::itest::tool_path("WEFT_KV_REDIS_CHECK_RDB", "redis-check-rdb");
}

#define REQUIRE_REDIS()                                                          \
  do {                                                                           \
    KV_REQUIRE_SERVER();                                                         \
    if (redis_server().empty()) GTEST_SKIP() << "redis-server is not installed"; \
  } while (0)

void ok(Client& c, const std::vector<std::string>& argv) {
  const Reply r = c.call(argv);
  ASSERT_FALSE(r.is_error()) << argv[0] << ": " << r.str;
}

// Every type, in each encoding Redis 7.0.15 would pick for it, with TTLs.
void fill(Client& c) {
  ok(c, {"SET", "s:int", "12345"});
  ok(c, {"SET", "s:neg", "-7"});
  ok(c, {"SET", "s:wide", "123456789012345"});
  ok(c, {"SET", "s:text", "hello"});
  ok(c, {"SET", "s:bin", std::string("a\0b\xff\r\n", 6)});
  ok(c, {"SET", "s:empty", ""});
  std::string lz;
  for (int i = 0; i < 500; ++i) lz += "abcabc" + std::to_string(i % 7);
  ok(c, {"SET", "s:lzf", lz});  // Redis stores it LZF-compressed
  ok(c, {"SET", "s:ttl", "v", "PX", "100000000"});

  std::vector<std::string> ints = {"RPUSH", "l:ints"};
  for (const char* v :
       {"0", "127", "-1", "4095", "-4096", "32767", "-32768", "8388607", "-8388608", "2147483647",
        "-2147483648", "9223372036854775807", "-9223372036854775808", "12a", "-0", "007"})
    ints.push_back(v);
  ok(c, ints);
  std::vector<std::string> big = {"RPUSH", "l:big"};
  for (int i = 0; i < 2000; ++i)
    big.push_back(i % 3 == 0 ? std::to_string(i) : "e" + std::to_string(i));
  big.push_back(std::string(5000, 'x'));
  ok(c, big);
  ok(c, {"PEXPIRE", "l:big", "50000000"});

  std::vector<std::string> intset = {"SADD", "set:ints"};
  for (int i = -50; i < 50; ++i) intset.push_back(std::to_string(i * 1000003));
  ok(c, intset);
  std::vector<std::string> bigset = {"SADD", "set:big"};
  for (int i = 0; i < 700; ++i) bigset.push_back(std::to_string(i));
  ok(c, bigset);
  ok(c, {"SADD", "set:str", "a", "b", "", "long member of a set"});

  ok(c, {"ZADD", "z:small", "1.5", "a", "-2", "b", "inf", "c", "-inf", "d", "0", "e",
         "3.14159265358979", "f", "100", "g"});
  std::vector<std::string> bigz = {"ZADD", "z:big"};
  for (int i = 0; i < 300; ++i) {
    bigz.push_back(std::to_string(i) + ".25");
    bigz.push_back("member" + std::to_string(i));
  }
  ok(c, bigz);
  ok(c, {"PEXPIRE", "z:big", "70000000"});

  ok(c, {"HSET", "h:small", "a", "1", "b", "-7000", "c", "70000", "d", "5000000000", "e", "text",
         "", "empty field"});
  std::vector<std::string> bigh = {"HSET", "h:big"};
  for (int i = 0; i < 700; ++i) {
    bigh.push_back("f" + std::to_string(i));
    bigh.push_back(i % 2 == 0 ? std::to_string(i) : std::string(70, 'v'));
  }
  ok(c, bigh);
  ok(c, {"PEXPIRE", "h:big", "90000000"});
}

// Waits until no BGSAVE runs; returns INFO's rdb_last_bgsave_status.
std::string wait_bgsave(Client& c) {
  const weft::Deadline give_up(weft::test::kPatience);
  for (;;) {
    const auto info = kv::itest::info(c, "persistence");
    if (info.integer("rdb_bgsave_in_progress") == 0)
      return info.fields.at("rdb_last_bgsave_status");
    if (give_up.expired()) return "timeout";
    weft::this_fiber::sleep_for(std::chrono::milliseconds(5));
  }
}

TEST(Rdb, WeftKvFileLoadsInRedisWithTheSameData) {
  REQUIRE_REDIS();
  Server src;
  Client c(src.port());
  fill(c);
  const auto want = kv::itest::keyspace_dump(c, /*with_ttl=*/true);
  ASSERT_EQ(c.call({"BGSAVE"}).describe(), "+Background saving started");
  ASSERT_EQ(wait_bgsave(c), "ok");
  EXPECT_EQ(kv::itest::info(c, "persistence").integer("rdb_changes_since_last_save"), 0);

  if (!redis_check_rdb().empty()) {
    const auto check = kv::itest::run_tool(redis_check_rdb(), {(src.dir() / "dump.rdb").string()});
    EXPECT_TRUE(check.status.success()) << check.out << check.err;
    EXPECT_NE(check.out.find("RDB looks OK"), std::string::npos) << check.out;
  }
  ServerConfig rc;
  rc.dir = src.dir();
  rc.binary = redis_server();
  Server dst(rc);
  Client d(dst.port());
  EXPECT_EQ(kv::itest::keyspace_dump(d, true), want);
}

TEST(Rdb, RedisFileLoadsInWeftKvWithTheSameData) {
  REQUIRE_REDIS();
  ServerConfig rc;
  rc.binary = redis_server();
  Server src(rc);
  Client c(src.port());
  fill(c);
  const auto want = kv::itest::keyspace_dump(c, /*with_ttl=*/true);
  ASSERT_EQ(c.call({"SAVE"}).describe(), "+OK");

  ServerConfig wc;
  wc.dir = src.dir();
  Server dst(wc);
  Client d(dst.port());
  EXPECT_EQ(kv::itest::keyspace_dump(d, true), want);
  // And back: weft-kv's SAVE of what it loaded is what redis-server had.
  ASSERT_EQ(d.call({"SAVE"}).describe(), "+OK");
  EXPECT_GE(d.call({"LASTSAVE"}).integer, c.call({"LASTSAVE"}).integer);
  src.restart();
  Client again(src.port());
  EXPECT_EQ(kv::itest::keyspace_dump(again, true), want);
}

// Starts the server under test on `dir` and expects it to refuse to start
// with a reason containing `reason`.
void expect_refused(const std::filesystem::path& dir, const std::string& reason) {
  const auto r = kv::itest::run_tool(
      kv::itest::target().binary,
      {"--port", std::to_string(kv::itest::free_port()), "--dir", dir.string()});
  EXPECT_EQ(r.status.shell_code(), 1) << r.out << r.err;
  EXPECT_NE(r.err.find(reason), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("ready to accept"), std::string::npos) << r.out;
}

void write_file(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

TEST(Rdb, BadFilesStopTheStartWithAReason) {
  KV_REQUIRE_SERVER();
  KV_WEFT_KV_ONLY("the reasons are weft-kv's texts");
  Server src;
  Client c(src.port());
  fill(c);
  ASSERT_EQ(c.call({"SAVE"}).describe(), "+OK");
  std::string good;
  {
    std::ifstream in(src.dir() / "dump.rdb", std::ios::binary);
    good.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GT(good.size(), 1000u);
  weft::test::TempDir dir;
  const auto file = dir.path() / "dump.rdb";

  write_file(file, good.substr(0, good.size() / 2));
  expect_refused(dir.path(), "truncated at offset");
  write_file(file, good.substr(0, good.size() - 3));  // the CRC cut short
  expect_refused(dir.path(), "truncated at offset");

  std::string flipped = good;
  flipped[good.size() / 2] = static_cast<char>(flipped[good.size() / 2] ^ 0x01);
  write_file(file, flipped);
  expect_refused(dir.path(), "cannot be loaded");

  std::string crc = good;
  crc[crc.size() - 1] = static_cast<char>(crc[crc.size() - 1] ^ 0x40);
  write_file(file, crc);
  expect_refused(dir.path(), "checksum mismatch");

  write_file(file, "REDIS0011" + good.substr(9));
  expect_refused(dir.path(), "can't handle RDB format version 11");

  // SELECTDB 1, "k" = "v", EOF, a zero CRC (not checked, as Redis's).
  write_file(file, std::string("REDIS0010\xfe\x01\x00\x01k\x01v\xff", 15) + std::string(8, '\0'));
  expect_refused(dir.path(), "database 1 (weft-kv has only database 0)");

  write_file(file, "not an rdb file");
  expect_refused(dir.path(), "not an RDB file");

  // The same good file loads.
  write_file(file, good);
  ServerConfig wc;
  wc.dir = dir.path();
  Server ok_server(wc);
  Client d(ok_server.port());
  EXPECT_EQ(kv::itest::keyspace_dump(d, true), kv::itest::keyspace_dump(c, true));
}

// While 4 clients write MSETs of key pairs that hash to different shards
// (pair i: both keys hold the same sequence number) and INCR a counter,
// BGSAVE's file holds one instant: every pair equal, the counter between
// the last value acknowledged before BGSAVE was sent and the first value
// acknowledged after it finished, and every key written before it.
TEST(Rdb, BgsaveUnderWritesIsOneInstant) {
  KV_REQUIRE_SERVER();
  Server src;
  {
    Client c(src.port());
    for (int b = 0; b < 20; ++b) {
      std::vector<std::string> mset = {"MSET"};
      for (int i = 0; i < 1000; ++i) {
        mset.push_back("pre:" + std::to_string(b * 1000 + i));
        mset.push_back(std::string(20, 'p'));
      }
      ok(c, mset);
    }
  }
  constexpr int kWriters = 4;
  std::atomic<bool> stop{false};
  std::atomic<long long> counter_before{-1}, counter_after{-1};
  std::atomic<long long> acked{0};  // the counter's highest acknowledged value
  Checker check;
  kv::itest::run_clients(src.port(), kWriters + 1, check, [&](Client& c, int id) {
    if (id == kWriters) {
      // The controller: let the writers run, then BGSAVE among them.
      while (acked.load() < 200) weft::this_fiber::sleep_for(std::chrono::milliseconds(1));
      counter_before = acked.load();
      check.equal(c.call({"BGSAVE"}).describe(), std::string("+Background saving started"),
                  "BGSAVE");
      check.equal(wait_bgsave(c), std::string("ok"), "bgsave status");
      counter_after = std::stoll(c.call({"GET", "counter"}).str);
      while (acked.load() < counter_after.load() + 50)
        weft::this_fiber::sleep_for(std::chrono::milliseconds(1));
      stop = true;
      return;
    }
    for (long long seq = 0; !stop.load(); ++seq) {
      const std::string i = std::to_string(id * 1000 + seq % 500), v = std::to_string(seq);
      check.check(c.call({"MSET", "pa:" + i, v, "pb:" + i, v}).str == "OK", "MSET");
      if (id == 0) {
        const long long n = c.call({"INCR", "counter"}).integer;
        acked = n;
      }
    }
  });
  ASSERT_EQ(check.failures(), 0) << check.report();

  ServerConfig wc;
  wc.dir = src.dir();
  Server loaded(wc);
  Client d(loaded.port());
  std::vector<std::string> exists = {"EXISTS"};
  for (int i = 0; i < 20000; ++i) exists.push_back("pre:" + std::to_string(i));
  EXPECT_EQ(d.call(exists).integer, 20000);
  std::vector<std::string> mget = {"MGET"};
  for (int id = 0; id < kWriters; ++id) {
    for (int i = 0; i < 500; ++i) {
      mget.push_back("pa:" + std::to_string(id * 1000 + i));
      mget.push_back("pb:" + std::to_string(id * 1000 + i));
    }
  }
  const Reply values = d.call(mget);
  ASSERT_EQ(values.elements.size(), mget.size() - 1);
  int pairs = 0;
  for (std::size_t k = 0; k + 1 < values.elements.size(); k += 2) {
    EXPECT_EQ(values.elements[k].describe(), values.elements[k + 1].describe()) << mget[k + 1];
    if (values.elements[k].type != Reply::Type::nil) ++pairs;
  }
  EXPECT_GT(pairs, 0);
  const long long saved = std::stoll(d.call({"GET", "counter"}).str);
  EXPECT_GE(saved, counter_before.load());
  EXPECT_LE(saved, counter_after.load());
}

}  // namespace
