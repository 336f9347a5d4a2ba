// weft-kv unit tests: the pubsub outbox's limits and order, the registry's
// fan-out, the fiber-reentrant shard lock EXEC relies on, and the shards'
// WATCH signals (pubsub.hpp, keyspace.hpp).
#include "pubsub.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "keyspace.hpp"
#include "weft/weft.hpp"

namespace {

using kv::Outbox;
using Limit = kv::Options::OutputLimit;

TEST(KvOutbox, KeepsOrderAndHandsOutEverything) {
  Outbox box(Limit{0, 0, 0}, nullptr);
  ASSERT_TRUE(box.push("a", 1));
  ASSERT_TRUE(box.push("bc", 1));
  std::string got;
  ASSERT_TRUE(box.take(got));
  EXPECT_EQ(got, "abc");
  EXPECT_EQ(box.pending(), 3u) << "taken bytes count until written";
  box.wrote(2);
  EXPECT_EQ(box.pending(), 1u);
  box.wrote(1);
  ASSERT_TRUE(box.push("d", 1));
  box.close(/*drain=*/true);
  EXPECT_FALSE(box.push("e", 1)) << "a closing outbox takes nothing more";
  ASSERT_TRUE(box.take(got));
  EXPECT_EQ(got, "d");
  EXPECT_FALSE(box.take(got));
}

TEST(KvOutbox, HardLimitClosesOnceAndDropsThePending) {
  int calls = 0;
  Outbox box(Limit{10, 0, 0}, [&] { ++calls; });
  ASSERT_TRUE(box.push("12345", 0));
  std::string got;
  ASSERT_TRUE(box.take(got));        // 5 in flight, as if the socket were full
  ASSERT_TRUE(box.push("1234", 0));  // 9 pending
  EXPECT_FALSE(box.push("1", 0));    // 10 >= hard limit (Redis's >=)
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(box.over_limit());
  EXPECT_TRUE(box.closed());
  EXPECT_FALSE(box.push("1", 0));
  EXPECT_EQ(calls, 1) << "closed once";
  EXPECT_FALSE(box.take(got));
}

TEST(KvOutbox, SoftLimitNeedsItsSecondsContinuously) {
  int calls = 0;
  Outbox box(Limit{0, 10, 2}, [&] { ++calls; });
  ASSERT_TRUE(box.push(std::string(10, 'x'), 1000));  // over soft: the clock starts
  ASSERT_TRUE(box.push("x", 2500));
  ASSERT_TRUE(box.push("x", 3000)) << "2 s exactly is not more than 2 s";
  std::string got;
  ASSERT_TRUE(box.take(got));
  box.wrote(got.size());  // drained: under the soft limit again, the clock stops
  ASSERT_TRUE(box.push(std::string(10, 'x'), 4000));  // over again: the clock restarts
  ASSERT_TRUE(box.push("x", 5500));
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(box.push("x", 6001)) << "over the soft limit for more than 2 s";
  EXPECT_EQ(calls, 1);
}

TEST(KvPubSub, FanOutCountsAndPatterns) {
  kv::PubSub ps;
  Outbox b1(Limit{}, nullptr), b2(Limit{}, nullptr);
  kv::Subscriber s1, s2;
  s1.box = &b1;
  s2.box = &b2;
  {
    std::lock_guard lk(ps.mu);
    EXPECT_TRUE(ps.subscribe(s1, "news"));
    EXPECT_FALSE(ps.subscribe(s1, "news"));
    EXPECT_TRUE(ps.subscribe(s2, "news"));
    EXPECT_TRUE(ps.psubscribe(s2, "n*"));
  }
  EXPECT_EQ(ps.publish("news", "hi", 0), 3u);
  EXPECT_EQ(ps.publish("nope", "x", 0), 1u);
  EXPECT_EQ(ps.numsub("news"), 2u);
  EXPECT_EQ(ps.numpat(), 1u);
  std::string got;
  ASSERT_TRUE(b1.take(got));
  EXPECT_EQ(got, kv::encode_message("news", "hi"));
  ASSERT_TRUE(b2.take(got));
  EXPECT_EQ(got, kv::encode_message("news", "hi") + kv::encode_pmessage("n*", "news", "hi") +
                     kv::encode_pmessage("n*", "nope", "x"));
  ps.remove_all(s2);
  EXPECT_EQ(ps.publish("news", "again", 0), 1u);
  EXPECT_EQ(ps.numpat(), 0u);
  EXPECT_EQ(ps.channel_count(), 1u);
  EXPECT_EQ(s2.count(), 0u);
}

TEST(KvShardMutex, TheHoldingFiberReentersOthersWait) {
  weft::Runtime rt(weft::Config{});
  rt.block_on([] {
    kv::ShardMutex m;
    m.lock();
    m.lock();  // EXEC's fiber, then a queued command: no deadlock
    EXPECT_TRUE(m.try_lock());
    std::atomic<bool> got{false};
    auto other = weft::spawn([&] {
      EXPECT_FALSE(m.try_lock()) << "another fiber does not reenter";
      m.lock();
      got.store(true);
      m.unlock();
    });
    m.unlock();
    m.unlock();
    weft::this_fiber::sleep_for(std::chrono::milliseconds(5));
    EXPECT_FALSE(got.load()) << "released only by the last unlock";
    m.unlock();
    other.join();
    EXPECT_TRUE(got.load());
  });
}

TEST(KvWatch, ShardSignalsChangesOfWatchedKeysOnly) {
  kv::Shard sh;
  std::atomic<bool> dirty{false};
  const auto h = [](std::string_view k) { return kv::Keyspace::hash(k); };
  kv::Entry* e = sh.insert("k", h("k"));
  sh.watch("k", &dirty);
  kv::Entry* other = sh.insert("other", h("other"));
  sh.assign(other, "v");
  EXPECT_FALSE(dirty.load());
  sh.set_expire(e, 10);
  EXPECT_TRUE(dirty.exchange(false));
  sh.assign(e, "v");
  EXPECT_TRUE(dirty.exchange(false));
  EXPECT_EQ(sh.find("k", h("k"), 20), nullptr) << "expired";
  EXPECT_TRUE(dirty.exchange(false)) << "lazy expiry is a change";
  sh.clear();
  EXPECT_FALSE(dirty.load()) << "FLUSHALL of a key that does not exist";
  e = sh.insert("k", h("k"));
  EXPECT_TRUE(dirty.exchange(false)) << "created";
  sh.clear();
  EXPECT_TRUE(dirty.exchange(false)) << "FLUSHALL of a key that exists";
  sh.unwatch("k", &dirty);
  sh.insert("k", h("k"));
  EXPECT_FALSE(dirty.load());
}

}  // namespace
