// Expiry in time (the case files check TTL bookkeeping without waiting):
// lazy expiry (an expired key read is gone, and DBSIZE no longer counts
// it), TTLs counting down, and active expiry (keys never touched again
// disappear by themselves, while keys with long TTLs stay).
//
// Timing: sleeps only ever wait for a TTL to pass (a lower bound that the
// server cannot make flaky); active expiry is polled with the generous
// kPatience deadline and its duration is only reported, never asserted.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <thread>

#include "kv/kv_harness.hpp"

namespace {

using namespace std::chrono_literals;
using kv::itest::Client;
using kv::itest::Reply;
using kv::itest::SharedServerTest;

class Expiry : public SharedServerTest {};

TEST_F(Expiry, LazyExpiryOnRead) {
  Client c(port());
  ASSERT_EQ(c.call({"SET", "keep", "v"}).describe(), "+OK");
  const auto set_at = std::chrono::steady_clock::now();
  ASSERT_EQ(c.call({"SET", "k", "v", "PX", "200"}).describe(), "+OK");
  const std::string before = c.call({"GET", "k"}).describe();
  const std::string dbsize = c.call({"DBSIZE"}).describe();
  // Alive before its TTL, which the client can only be sure of when both
  // replies came within it (a loaded machine may stall it longer).
  if (std::chrono::steady_clock::now() - set_at < 200ms) {
    EXPECT_EQ(before, "\"v\"");
    EXPECT_EQ(dbsize, ":2");
  }
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(c.call({"GET", "k"}).describe(), "(nil)");
  EXPECT_EQ(c.call({"EXISTS", "k"}).describe(), ":0");
  EXPECT_EQ(c.call({"TTL", "k"}).describe(), ":-2");
  EXPECT_EQ(c.call({"DBSIZE"}).describe(), ":1") << "the expired key read is no longer counted";
  EXPECT_EQ(c.call({"GET", "keep"}).describe(), "\"v\"");
}

TEST_F(Expiry, ExpiredKeyIsGoneForEveryCommand) {
  Client c(port());
  ASSERT_EQ(c.call({"MSET", "a", "1", "b", "2", "c", "3", "d", "4"}).describe(), "+OK");
  for (const char* k : {"a", "b", "c", "d"}) {
    ASSERT_EQ(c.call({"PEXPIRE", k, "30"}).describe(), ":1");
  }
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(c.call({"INCR", "a"}).describe(), ":1") << "INCR of an expired key starts from 0";
  EXPECT_EQ(c.call({"APPEND", "b", "x"}).describe(), ":1");
  EXPECT_EQ(c.call({"SET", "c", "new", "NX"}).describe(), "+OK");
  EXPECT_EQ(c.call({"MGET", "d"}).describe(), "[(nil)]");
  EXPECT_EQ(c.call({"TTL", "a"}).describe(), ":-1") << "the new key has no TTL";
}

TEST_F(Expiry, TtlCountsDown) {
  Client c(port());
  // 60 s: the checks below need the key alive and its TTL at least 55 s,
  // a margin of seconds for a stalled client on a loaded machine.
  ASSERT_EQ(c.call({"SET", "k", "v", "PX", "60000"}).describe(), "+OK");
  const Reply first = c.call({"PTTL", "k"});
  ASSERT_EQ(first.type, Reply::Type::integer) << first;
  EXPECT_GT(first.integer, 0);
  EXPECT_LE(first.integer, 60000);
  const Reply ttl = c.call({"TTL", "k"});
  ASSERT_EQ(ttl.type, Reply::Type::integer) << ttl;
  EXPECT_GE(ttl.integer, 55);
  EXPECT_LE(ttl.integer, 60);
  std::this_thread::sleep_for(50ms);
  const Reply later = c.call({"PTTL", "k"});
  ASSERT_EQ(later.type, Reply::Type::integer) << later;
  EXPECT_LE(later.integer, first.integer - 50);
  EXPECT_GT(later.integer, 0);
}

// Keys whose TTL has passed are invisible to every read at once, whether
// or not the server has removed them yet (DBSIZE excepted: Redis counts
// such keys until they are removed).
TEST_F(Expiry, ExpiredKeysAreInvisibleBeforeTheyAreRemoved) {
  Client c(port());
  std::string batch;
  for (int i = 0; i < 500; ++i) {
    batch += kv::itest::encode({"SET", "dying:" + std::to_string(i), "v", "PX", "50"});
  }
  batch += kv::itest::encode({"SET", "living", "v"});
  c.send(batch);
  for (int i = 0; i < 501; ++i) ASSERT_EQ(c.read_reply().describe(), "+OK");
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(c.call({"KEYS", "*"}).describe(), "[\"living\"]");
  std::set<std::string> scanned;
  std::string cursor = "0";
  int calls = 0;
  do {
    const Reply r = c.call({"SCAN", cursor, "COUNT", "1000"});
    ASSERT_EQ(r.elements.size(), 2u) << r;
    cursor = r.elements[0].str;
    for (const auto& k : r.elements[1].elements) scanned.insert(k.str);
  } while (cursor != "0" && ++calls < 100000);
  EXPECT_EQ(scanned, std::set<std::string>{"living"});
  EXPECT_EQ(c.call({"EXISTS", "dying:0", "dying:499"}).describe(), ":0");
  EXPECT_EQ(c.call({"MGET", "dying:1", "living"}).describe(), "[(nil), \"v\"]");
  EXPECT_EQ(c.call({"STRLEN", "dying:2"}).describe(), ":0");
  EXPECT_EQ(c.call({"TYPE", "dying:3"}).describe(), "+none");
}

// A TTL that was removed or replaced must not fire later: a server that
// keeps stale entries in an expiry index would delete these keys.
TEST_F(Expiry, OldTtlsDoNotFireAfterPersistOrOverwrite) {
  Client c(port());
  ASSERT_EQ(c.call({"SET", "persisted", "v", "PX", "1000"}).describe(), "+OK");
  ASSERT_EQ(c.call({"PERSIST", "persisted"}).describe(), ":1");
  ASSERT_EQ(c.call({"SET", "overwritten", "v", "PX", "1000"}).describe(), "+OK");
  ASSERT_EQ(c.call({"SET", "overwritten", "w"}).describe(), "+OK");
  ASSERT_EQ(c.call({"SET", "extended", "v", "PX", "1000"}).describe(), "+OK");
  ASSERT_EQ(c.call({"PEXPIRE", "extended", "600000"}).describe(), ":1");
  ASSERT_EQ(c.call({"SET", "getset", "v", "PX", "1000"}).describe(), "+OK");
  ASSERT_EQ(c.call({"GETSET", "getset", "w"}).describe(), "\"v\"");
  ASSERT_EQ(c.call({"SET", "recreated", "v", "PX", "1000"}).describe(), "+OK");
  ASSERT_EQ(c.call({"DEL", "recreated"}).describe(), ":1");
  ASSERT_EQ(c.call({"SET", "recreated", "w"}).describe(), "+OK");
  // INCR keeps the TTL: this one must go.
  ASSERT_EQ(c.call({"SET", "counted", "1", "PX", "1000"}).describe(), "+OK");
  ASSERT_EQ(c.call({"INCR", "counted"}).describe(), ":2");
  // Past the 1 s TTLs and long enough for several active-expiry cycles
  // (Redis: 10 per second). (1 s: each key's second command must come
  // within its TTL, generous even for a stalled client.)
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(c.call({"EXISTS", "counted"}).describe(), ":0");
  // With "counted" gone (by now, or by the read just made), the rest stay.
  EXPECT_EQ(c.call({"DBSIZE"}).describe(), ":5");
  for (const char* k : {"persisted", "overwritten", "getset", "recreated"}) {
    EXPECT_EQ(c.call({"TTL", k}).describe(), ":-1") << k;
  }
  EXPECT_EQ(c.call({"GET", "extended"}).describe(), "\"v\"");
}

// 10,000 keys with a 100 ms TTL, never touched again: the server removes
// them by itself. DBSIZE counts keys without touching them (Redis counts
// expired keys it has not removed yet), so it reaching the number of
// long-lived keys shows active expiry at work; keys with a 10-minute TTL and
// keys without one must stay.
TEST_F(Expiry, ActiveExpiryRemovesUntouchedKeys) {
  Client c(port());
  constexpr int kShort = 10000;
  constexpr int kLong = 20;
  std::string batch;
  for (int i = 0; i < kLong / 2; ++i) {
    batch += kv::itest::encode({"SET", "persistent:" + std::to_string(i), "v"});
    batch += kv::itest::encode({"SET", "long:" + std::to_string(i), "v", "PX", "600000"});
  }
  c.send(batch);
  for (int i = 0; i < kLong; ++i) ASSERT_EQ(c.read_reply().describe(), "+OK");
  for (int sent = 0; sent < kShort; sent += 1000) {
    batch.clear();
    for (int i = sent; i < sent + 1000; ++i) {
      batch += kv::itest::encode({"SET", "short:" + std::to_string(i), "v", "PX", "100"});
    }
    c.send(batch);
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(c.read_reply().describe(), "+OK");
  }
  const auto start = std::chrono::steady_clock::now();
  std::int64_t dbsize = -1;
  const bool drained = weft::test::eventually(
      [&] {
        dbsize = c.call({"DBSIZE"}).integer;
        if (dbsize == kLong) return true;
        std::this_thread::sleep_for(50ms);
        return false;
      },
      kv::itest::kPatience);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  EXPECT_TRUE(drained) << "DBSIZE is still " << dbsize << " after " << took.count() << " ms; want "
                       << kLong;
  RecordProperty("active_expiry_ms", static_cast<int>(took.count()));
  std::printf("active expiry: %d keys gone after %lld ms\n", kShort,
              static_cast<long long>(took.count()));
  for (int i = 0; i < kLong / 2; ++i) {
    EXPECT_EQ(c.call({"EXISTS", "persistent:" + std::to_string(i), "long:" + std::to_string(i)})
                  .describe(),
              ":2");
  }
  // Not one short key is left, by any means of looking, and the server
  // counted them as expired.
  EXPECT_EQ(c.call({"KEYS", "short:*"}).describe(), "[]");
  EXPECT_GE(kv::itest::info(c, "stats").integer("expired_keys"), kShort);
}

}  // namespace
