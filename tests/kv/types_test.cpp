// weft-kv's list and sorted-set values and the blocking mechanism, below
// the network: the skip list against an ordered model (order, ranks,
// ranges, the hash index, encodings), ZSCAN's guarantee across resizes,
// byte accounting, MultiLock under cancellation, and blocked clients run
// against a fake Host — what a served pop writes to the AOF, FIFO order,
// a client that may not block, one whose connection ends.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "command.hpp"
#include "commands/util.hpp"
#include "common/test_util.hpp"
#include "fake_host.hpp"
#include "resp.hpp"
#include "types/list.hpp"
#include "types/zset.hpp"
#include "weft/weft.hpp"

namespace {

using kv_test::Args;
using kv_test::FakeHost;
using kv_test::run;

// --- the sorted set ----------------------------------------------------------------

// The skip list's view of itself, checked against a std::set model.
void expect_matches(const kv::ZSet& z, const std::set<std::pair<double, std::string>>& model) {
  ASSERT_EQ(z.size(), model.size());
  std::size_t i = 0;
  const kv::ZSet::Node* prev = nullptr;
  for (const auto& [score, member] : model) {
    const kv::ZSet::Node* n = z.at_rank(i);
    ASSERT_NE(n, nullptr) << "rank " << i;
    ASSERT_EQ(n->member(), member) << "rank " << i;
    ASSERT_EQ(n->score(), score);
    ASSERT_EQ(z.rank(n), i);
    ASSERT_EQ(z.find(member), n);
    ASSERT_EQ(n->prev(), prev);
    if (prev != nullptr) {
      ASSERT_EQ(prev->next(), n);
    }
    prev = n;
    ++i;
  }
  ASSERT_EQ(z.last(), prev);
}

TEST(ZSet, MatchesAnOrderedModelUnderRandomUpdates) {
  kv::ZSet z(kv::ZSet::Limits{}, 0, true);
  std::set<std::pair<double, std::string>> model;
  std::map<std::string, double> scores;
  std::mt19937_64 rng(7);
  for (int round = 0; round < 40; ++round) {
    for (int op = 0; op < 200; ++op) {
      const std::string m = "m" + std::to_string(rng() % 400);
      const double s = static_cast<double>(rng() % 50) / 2;  // many ties
      const auto it = scores.find(m);
      if (it == scores.end()) {
        z.insert(m, s);
        model.insert({s, m});
        scores[m] = s;
      } else if (rng() % 3 == 0) {
        z.erase(z.find(m));
        model.erase({it->second, m});
        scores.erase(it);
      } else {
        z.update(z.find(m), s);
        model.erase({it->second, m});
        model.insert({s, m});
        it->second = s;
      }
    }
    expect_matches(z, model);
    // Score ranges: first and last within, against a scan of the model.
    for (int q = 0; q < 20; ++q) {
      kv::ScoreRange r{static_cast<double>(rng() % 30) - 2, static_cast<double>(rng() % 30),
                       rng() % 2 == 0, rng() % 2 == 0};
      const std::pair<double, std::string>* first = nullptr;
      const std::pair<double, std::string>* last = nullptr;
      for (const auto& e : model) {
        if (!r.above_min(e.first) || !r.below_max(e.first)) continue;
        if (first == nullptr) first = &e;
        last = &e;
      }
      const kv::ZSet::Node* f = z.first_in(r);
      const kv::ZSet::Node* l = z.last_in(r);
      ASSERT_EQ(f == nullptr, first == nullptr);
      if (first != nullptr) {
        EXPECT_EQ(f->member(), first->second);
        EXPECT_EQ(l->member(), last->second);
      }
    }
  }
}

TEST(ZSet, ReportsTheEncodingRedisWouldUseAndKeepsItsScoreText) {
  kv::ZSet z(kv::ZSet::Limits{});
  z.insert("neg", -0.0);
  EXPECT_STREQ(z.encoding(), "listpack");
  // A listpack stores an integral score as an integer: -0 becomes 0.
  EXPECT_EQ(kv::format_score(z.find("neg")->score()), "0");
  z.insert("big", 1e17);
  EXPECT_EQ(z.scan_text(1e17), "100000000000000000");
  EXPECT_EQ(kv::format_score(1e17), "1e+17");
  for (int i = 0; i < 126; ++i) z.insert("m" + std::to_string(i), i);
  EXPECT_EQ(z.size(), 128u);
  EXPECT_STREQ(z.encoding(), "listpack");
  z.insert("one more", 1);  // the 129th member
  EXPECT_STREQ(z.encoding(), "skiplist");
  z.insert("neg2", -0.0);
  EXPECT_EQ(kv::format_score(z.find("neg2")->score()), "-0");
  EXPECT_EQ(z.scan_text(1e17), "1e+17");
  // Shrinking back only happens for a STORE result that fits.
  while (z.size() > 10) z.erase(z.last());
  EXPECT_STREQ(z.encoding(), "skiplist");
  z.shrink_encoding();
  EXPECT_STREQ(z.encoding(), "listpack");
  EXPECT_EQ(kv::format_score(z.find("neg2")->score()), "0");

  kv::ZSet longer(kv::ZSet::Limits{}, 65);  // a first member over 64 bytes
  EXPECT_STREQ(longer.encoding(), "skiplist");
  kv::ZSet grows(kv::ZSet::Limits{});
  grows.insert("short", 1);
  grows.insert(std::string(65, 'x'), 2);
  EXPECT_STREQ(grows.encoding(), "skiplist");
  EXPECT_EQ(kv::format_score(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(kv::format_score(-std::numeric_limits<double>::infinity()), "-inf");
  EXPECT_EQ(kv::format_score(0.1), "0.10000000000000001");
}

TEST(ZSet, ClonesKeepContentsScoresAndEncoding) {
  kv::ZSet small(kv::ZSet::Limits{});
  small.insert("a", 1.5);
  small.insert("b", -1);
  const auto copy = small.clone();
  const auto& z = static_cast<const kv::ZSet&>(*copy);
  EXPECT_STREQ(z.encoding(), "listpack");
  ASSERT_EQ(z.size(), 2u);
  EXPECT_EQ(z.first()->member(), "b");
  EXPECT_EQ(z.find("a")->score(), 1.5);
  kv::ZSet big(kv::ZSet::Limits{}, 0, true);
  big.insert("n", -0.0);  // a skip list keeps -0
  const auto big_copy = big.clone();
  EXPECT_STREQ(big_copy->encoding(), "skiplist");
  EXPECT_EQ(kv::format_score(static_cast<const kv::ZSet&>(*big_copy).find("n")->score()), "-0");
  small.erase(small.find("a"));
  EXPECT_EQ(z.size(), 2u);  // deep
}

// Redis's SCAN guarantee: a member present from the first call to the last
// is returned at least once, however the index grows or shrinks between.
TEST(ZSet, ScanReturnsEveryMemberPresentThroughoutAcrossResizes) {
  kv::ZSet z(kv::ZSet::Limits{}, 0, true);
  for (int i = 0; i < 100; ++i) z.insert("stay" + std::to_string(i), i);
  std::set<std::string> seen;
  std::uint64_t cursor = 0;
  int step = 0;
  do {
    cursor = z.scan(cursor, [&](const kv::ZSet::Node& n) { seen.insert(n.member()); });
    // Grow a lot, then shrink below the start, while scanning.
    if (step < 10) {
      for (int i = 0; i < 200; ++i)
        z.insert("tmp" + std::to_string(step) + ":" + std::to_string(i), 0);
    } else if (step == 10) {
      while (z.size() > 100) {
        const kv::ZSet::Node* n = z.first();
        while (n != nullptr && n->member().rfind("tmp", 0) != 0) n = n->next();
        z.erase(n);
      }
    }
    ++step;
  } while (cursor != 0);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(seen.count("stay" + std::to_string(i))) << i;
}

// --- the list ------------------------------------------------------------------------

TEST(List, RemoveMatchesLremFromBothEnds) {
  auto make = [] {
    kv::List l;
    for (const char* v : {"a", "b", "a", "c", "a", "b", "a"}) l.push(false, v);
    return l;
  };
  auto contents = [](const kv::List& l) {
    std::string s;
    for (std::size_t i = 0; i < l.size(); ++i) s += l.at(i);
    return s;
  };
  kv::List l = make();
  EXPECT_EQ(l.remove("a", 2), 2u);
  EXPECT_EQ(contents(l), "bcaba");
  l = make();
  EXPECT_EQ(l.remove("a", -3), 3u);
  EXPECT_EQ(contents(l), "abcb");
  l = make();
  EXPECT_EQ(l.remove("b", 0), 2u);
  EXPECT_EQ(contents(l), "aacaa");
  EXPECT_EQ(l.remove("zz", 0), 0u);
}

TEST(List, ClonesAreDeep) {
  kv::List l;
  l.push(false, "a");
  l.push(false, "b");
  const auto copy = l.clone();
  l.pop(true);
  const auto& c = static_cast<const kv::List&>(*copy);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c.at(0), "a");
  EXPECT_STREQ(c.encoding(), "quicklist");
}

TEST(List, BytesFollowTheElementsAndReturnToTheEmptySize) {
  kv::List l;
  const std::int64_t empty = l.bytes();
  l.push(true, std::string(100, 'x'));
  l.push(false, "short");
  EXPECT_GT(l.bytes(), empty + 100);
  l.set(0, "tiny");
  EXPECT_LT(l.bytes(), empty + 100);
  l.pop(true);
  l.pop(false);
  EXPECT_EQ(l.bytes(), empty);
}

// --- commands on a fake host -----------------------------------------------------------

// A Host without a server; propagate may be called from several fibers
// (a served pop is logged by the pusher's fiber).
// A connection for blocked commands: parks on the Event; `ended` makes the
// next park report the connection gone.
class FakeWatch final : public kv::BlockWatch {
 public:
  bool park(std::uint64_t& aof_seq, weft::Event& wake, weft::Deadline deadline) override {
    aof_seq = 0;
    if (ended) return false;
    wake.wait_until(deadline);
    return true;
  }
  bool ended = false;
};

template <class F>
void on_runtime(F&& f) {
  weft::Runtime rt(weft::Config{.workers = 2});
  rt.block_on(std::forward<F>(f));
}

// Runs a blocking command on its own fiber, as a client with a watch, and
// returns once it is registered.
weft::JoinHandle<std::string> block(FakeHost& h, const Args& args, std::int64_t blocked_after) {
  auto f = weft::spawn([&h, args] {
    FakeWatch watch;
    kv::Client client;
    client.watch = &watch;
    return run(h, args, &client);
  });
  EXPECT_TRUE(weft::test::eventually([&] { return h.ks.blocked_clients() == blocked_after; }));
  return f;
}

TEST(Blocking, ServedPopsAreLoggedAsTheNonBlockingPopsTheyPerformed) {
  on_runtime([] {
    FakeHost h;
    auto blpop = block(h, {"BLPOP", "a", "q", "0"}, 1);
    auto blmove = block(h, {"BLMOVE", "q", "dst", "right", "left", "0"}, 2);
    auto brpoplpush = block(h, {"BRPOPLPUSH", "q", "dst", "0"}, 3);
    auto blmpop = block(h, {"BLMPOP", "0", "1", "q", "LEFT", "COUNT", "5"}, 4);
    EXPECT_EQ(run(h, {"RPUSH", "q", "1", "2", "3", "4", "5"}), ":5\r\n");
    EXPECT_EQ(blpop.join(), "*2\r\n$1\r\nq\r\n$1\r\n1\r\n");
    EXPECT_EQ(blmove.join(), "$1\r\n5\r\n");
    EXPECT_EQ(brpoplpush.join(), "$1\r\n4\r\n");
    EXPECT_EQ(blmpop.join(), "*2\r\n$1\r\nq\r\n*2\r\n$1\r\n2\r\n$1\r\n3\r\n");
    const std::vector<Args> want = {{"RPUSH", "q", "1", "2", "3", "4", "5"},
                                    {"LPOP", "q"},
                                    {"LMOVE", "q", "dst", "RIGHT", "LEFT"},
                                    {"RPOPLPUSH", "q", "dst"},
                                    {"LPOP", "q", "2"}};
    EXPECT_EQ(h.take_log(), want);

    auto bzpopmin = block(h, {"BZPOPMIN", "z", "0"}, 1);
    auto bzmpop = block(h, {"BZMPOP", "0", "1", "z", "MAX", "COUNT", "9"}, 2);
    EXPECT_EQ(run(h, {"ZADD", "z", "1", "a", "2", "b", "3", "c"}), ":3\r\n");
    EXPECT_EQ(bzpopmin.join(), "*3\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\n1\r\n");
    EXPECT_EQ(bzmpop.join(),
              "*2\r\n$1\r\nz\r\n*2\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n");
    const std::vector<Args> zwant = {
        {"ZADD", "z", "1", "a", "2", "b", "3", "c"}, {"ZPOPMIN", "z"}, {"ZPOPMAX", "z", "2"}};
    EXPECT_EQ(h.take_log(), zwant);
    EXPECT_EQ(h.ks.keys(), 1);  // dst
    EXPECT_EQ(h.ks.blocked_clients(), 0);
  });
}

TEST(Blocking, PopsThatNeedNotBlockAreLoggedAsPops) {
  on_runtime([] {
    FakeHost h;
    run(h, {"RPUSH", "q", "a", "b", "c", "d"});
    run(h, {"ZADD", "z", "1", "a", "2", "b"});
    h.take_log();
    EXPECT_EQ(run(h, {"BRPOP", "q", "0"}), "*2\r\n$1\r\nq\r\n$1\r\nd\r\n");
    EXPECT_EQ(run(h, {"BLMOVE", "q", "q", "left", "right", "0"}), "$1\r\na\r\n");
    EXPECT_EQ(run(h, {"LMPOP", "1", "q", "RIGHT", "COUNT", "9"}),
              "*2\r\n$1\r\nq\r\n*3\r\n$1\r\na\r\n$1\r\nc\r\n$1\r\nb\r\n");
    EXPECT_EQ(run(h, {"BZMPOP", "0", "1", "z", "MIN"}),
              "*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n");
    EXPECT_EQ(run(h, {"ZMPOP", "1", "z", "MIN", "COUNT", "5"}),
              "*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n");
    const std::vector<Args> want = {{"RPOP", "q"},
                                    {"LMOVE", "q", "q", "left", "right"},
                                    {"RPOP", "q", "3"},
                                    {"ZPOPMIN", "z", "1"},
                                    {"ZPOPMIN", "z", "1"}};
    EXPECT_EQ(h.take_log(), want);
    EXPECT_EQ(h.ks.keys(), 0);
  });
}

TEST(Blocking, AClientThatMayNotBlockGetsTheTimeoutReplyAtOnce) {
  on_runtime([] {
    FakeHost h;
    EXPECT_EQ(run(h, {"BLPOP", "q", "0"}), "*-1\r\n");
    EXPECT_EQ(run(h, {"BZPOPMAX", "q", "0"}), "*-1\r\n");
    EXPECT_EQ(run(h, {"BLMOVE", "q", "d", "LEFT", "LEFT", "0"}), "$-1\r\n");  // Redis: addReplyNull
    EXPECT_EQ(run(h, {"BRPOPLPUSH", "q", "d", "0"}), "$-1\r\n");
    EXPECT_EQ(h.ks.blocked_clients(), 0);
    EXPECT_TRUE(h.take_log().empty());
  });
}

TEST(Blocking, AClientWhoseConnectionEndsLeavesNoWaiterAndTakesNothing) {
  on_runtime([] {
    FakeHost h;
    FakeWatch watch;
    watch.ended = true;
    kv::Client client;
    client.watch = &watch;
    std::vector<std::string_view> argv = {"BLPOP", "q", "r", "0"};
    std::string out;
    kv::Context ctx{h, &client, argv, out, kv::unix_ms()};
    kv::execute(ctx);
    EXPECT_EQ(out, "");
    EXPECT_TRUE(ctx.close);
    EXPECT_EQ(h.ks.blocked_clients(), 0);
    EXPECT_EQ(run(h, {"RPUSH", "q", "x"}), ":1\r\n");
    EXPECT_EQ(run(h, {"RPUSH", "r", "y"}), ":1\r\n");
    EXPECT_EQ(run(h, {"LLEN", "q"}), ":1\r\n");
    EXPECT_EQ(run(h, {"LLEN", "r"}), ":1\r\n");
  });
}

// A waiter served just before its deadline but woken after it (a wake-up
// that loses the race with the timer) still replies with what it was
// served: the serving claimed it first, so the element is its, not lost.
// The watch parks until the deadline has passed whatever wakes it.
class LateWatch final : public kv::BlockWatch {
 public:
  bool park(std::uint64_t& aof_seq, weft::Event& wake, weft::Deadline deadline) override {
    aof_seq = 0;
    parked.set();
    wake.wait_until(deadline);
    while (!deadline.expired()) weft::this_fiber::sleep_for(std::chrono::milliseconds(1));
    return true;
  }
  weft::Event parked;
};

TEST(Blocking, AWaiterServedBeforeItsDeadlineButWokenAfterItKeepsWhatItWasServed) {
  on_runtime([] {
    FakeHost h;
    LateWatch watch;
    auto waiter = weft::spawn([&] {
      kv::Client client;
      client.watch = &watch;
      return run(h, {"BLPOP", "q", "0.2"}, &client);
    });
    watch.parked.wait();
    EXPECT_EQ(run(h, {"RPUSH", "q", "x"}), ":1\r\n");  // well before the deadline
    EXPECT_EQ(waiter.join(), "*2\r\n$1\r\nq\r\n$1\r\nx\r\n");
    EXPECT_EQ(run(h, {"EXISTS", "q"}), ":0\r\n");
    EXPECT_EQ(h.ks.blocked_clients(), 0);
  });
}

TEST(Blocking, TimeoutsParseAsRedisDoes) {
  on_runtime([] {
    FakeHost h;
    FakeWatch watch;
    kv::Client client;
    client.watch = &watch;
    const std::string negative = "-ERR timeout is negative\r\n";
    const std::string not_float = "-ERR timeout is not a float or out of range\r\n";
    for (const char* t : {"-1", "-0.5", "inf", "1e300", "9223372036854775807"})
      EXPECT_EQ(run(h, {"BLPOP", "q", t}, &client), negative) << t;
    for (const char* t : {"x", "", " 1", "1 ", "nan", "1e99999", "0x"})
      EXPECT_EQ(run(h, {"BLPOP", "q", t}, &client), not_float) << t;
    // Milliseconds round up: 0.0001 s is 1 ms, not forever.
    EXPECT_EQ(run(h, {"BLPOP", "q", "0.0001"}, &client), "*-1\r\n");
    EXPECT_EQ(run(h, {"BLPOP", "q", "1e-300"}, &client), "*-1\r\n");
    EXPECT_EQ(run(h, {"BZPOPMIN", "q", "0x0.01p0"}, &client), "*-1\r\n");  // hex, as strtold
    EXPECT_EQ(h.ks.blocked_clients(), 0);
  });
}

TEST(Blocking, ListAndSortedSetBytesReturnToZeroWithTheirKeys) {
  on_runtime([] {
    FakeHost h;
    run(h, {"RPUSH", "l", std::string(200, 'x'), "b", "c"});
    run(h, {"ZADD", "z", "1", std::string(300, 'y'), "2", "b"});
    const std::int64_t both = h.ks.bytes();
    EXPECT_GT(both, 500);
    run(h, {"LPOP", "l"});
    run(h, {"ZREM", "z", std::string(300, 'y')});
    EXPECT_LT(h.ks.bytes(), both - 400);
    run(h, {"DEL", "l"});
    run(h, {"ZPOPMIN", "z"});
    EXPECT_EQ(h.ks.keys(), 0);
    EXPECT_EQ(h.ks.bytes(), 0);
  });
}

// --- MultiLock --------------------------------------------------------------------------

// Two keys whose shards are a < b.
std::pair<std::string, std::string> keys_in_two_shards(std::size_t& a, std::size_t& b) {
  const std::string k1 = "key1";
  a = kv::Keyspace::shard_index(kv::Keyspace::hash(k1));
  for (int i = 2;; ++i) {
    const std::string k2 = "key" + std::to_string(i);
    b = kv::Keyspace::shard_index(kv::Keyspace::hash(k2));
    if (b > a) return {k1, k2};
    if (b < a) {
      std::swap(a, b);
      return {k2, k1};
    }
  }
}

TEST(MultiLock, CancelledWhileWaitingReleasesTheShardsItTook) {
  on_runtime([] {
    kv::Keyspace ks;
    std::size_t a = 0, b = 0;
    const auto [ka, kb] = keys_in_two_shards(a, b);
    ks.shard(b).mu.lock();  // the second shard is taken
    std::atomic<bool> took_first{false};
    auto waiter = weft::spawn([&, ka = ka, kb = kb] {
      const std::string_view keys[] = {ka, kb};
      took_first.store(true);
      kv::cmd::MultiLock lock(ks, keys);  // takes shard a, waits for b
      ADD_FAILURE() << "acquired a held shard";
    });
    EXPECT_TRUE(weft::test::eventually([&] {
      if (!took_first.load() || ks.shard(a).mu.try_lock() == false) return took_first.load();
      ks.shard(a).mu.unlock();  // not taken yet: retry
      return false;
    }));
    waiter.cancel();
    EXPECT_THROW(waiter.join(), weft::Cancelled);
    // Shard a must be free again.
    EXPECT_TRUE(ks.shard(a).mu.try_lock());
    ks.shard(a).mu.unlock();
    ks.shard(b).mu.unlock();
  });
}

TEST(MultiLock, ExtendKeepsTheLockOrder) {
  on_runtime([] {
    kv::Keyspace ks;
    kv::cmd::MultiLock lock(ks, std::uint64_t{1} << 10);
    EXPECT_TRUE(lock.extend(20));  // after every held shard: waits if needed
    EXPECT_TRUE(lock.extend(10));  // held already
    ks.shard(5).mu.lock();         // before a held one and busy: refused
    EXPECT_FALSE(lock.extend(5));
    ks.shard(5).mu.unlock();
    EXPECT_TRUE(lock.extend(5));  // free now: taken
    EXPECT_EQ(lock.held(),
              (std::uint64_t{1} << 5) | (std::uint64_t{1} << 10) | (std::uint64_t{1} << 20));
    lock.unlock();
    EXPECT_EQ(lock.held(), 0u);
    EXPECT_TRUE(ks.shard(20).mu.try_lock());
    ks.shard(20).mu.unlock();
  });
}

}  // namespace
