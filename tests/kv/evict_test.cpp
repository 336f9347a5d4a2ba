// Unit tests of weft-kv's eviction (evict.hpp): the LRU clock, the LFU
// counter's increment and decay against values from Redis's formulas
// (src/evict.c), the eviction pool's order, and the Evictor's choice of
// victims under each policy, on a FakeHost.
#include "evict.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "fake_host.hpp"
#include "weft/weft.hpp"

namespace {

using kv_test::FakeHost;
using kv_test::run;

template <class F>
void on_runtime(F&& f) {
  weft::Runtime rt(weft::Config{.workers = 1});
  rt.block_on(std::forward<F>(f));
}

// Stores `key` with a value of `len` bytes, an expiry (-1: none) and an
// access clock, directly in the keyspace.
void put(kv::Keyspace& ks, const std::string& key, std::size_t len, std::int64_t expire_at,
         std::uint32_t clock) {
  const std::uint64_t h = kv::Keyspace::hash(key);
  kv::Shard& sh = ks.shard_of(h);
  std::lock_guard lk(sh.mu);
  kv::Entry* e = sh.insert(key, h);
  sh.assign(e, std::string(len, 'x'));
  if (expire_at >= 0) sh.set_expire(e, expire_at);
  e->access_clock = clock & 0xFFFFFFu;
}

bool exists(kv::Keyspace& ks, const std::string& key) {
  const std::uint64_t h = kv::Keyspace::hash(key);
  kv::Shard& sh = ks.shard_of(h);
  std::lock_guard lk(sh.mu);
  return sh.find_raw(key, h) != nullptr;
}

// Makes h evict with `ev` under `policy`, sampling 100 keys per choice:
// every key of these small keyspaces, so the choice is exact.
void use_evictor(FakeHost& h, kv::Evictor& ev, kv::MaxmemoryPolicy policy) {
  h.evictor_ = &ev;
  h.settings_.maxmemory_policy = policy;
  h.settings_.maxmemory_samples = 100;
}

// Runs body(host, evictor) on a runtime, the host evicting under `policy`.
template <class F>
void with_evictor(kv::MaxmemoryPolicy policy, F&& body) {
  on_runtime([&] {
    FakeHost h;
    kv::Evictor ev;
    use_evictor(h, ev, policy);
    body(h, ev);
  });
}

// Evicts until used memory is `excess` bytes lower (Redis frees at least
// the excess; one key here, as every key is larger than 1 byte).
bool evict(FakeHost& h, kv::Evictor& ev, std::int64_t excess = 1) {
  std::string out;
  const std::vector<std::string_view> argv = {"SET", "x", "y"};
  kv::Context ctx{h, nullptr, argv, out, kv::unix_ms()};
  return ev.out_of_memory(ctx, static_cast<std::uint64_t>(h.ks.bytes() - excess));
}

// --- formulas -------------------------------------------------------------------

TEST(KvEvictClock, LruClockIsSecondsIn24Bits) {
  const std::int64_t ms = 1'700'000'123'456;
  EXPECT_EQ(kv::lru_clock(ms), static_cast<std::uint32_t>(1'700'000'123 & 0xFFFFFF));
  // estimateObjectIdleTime: (now - then) s in ms; across a wrap,
  // now + (LRU_CLOCK_MAX - then).
  EXPECT_EQ(kv::lru_idle_ms(100, 105), 5000u);
  EXPECT_EQ(kv::lru_idle_ms(105, 105), 0u);
  EXPECT_EQ(kv::lru_idle_ms(0xFFFFF0, 5), (5u + (0xFFFFFFu - 0xFFFFF0u)) * 1000u);
}

TEST(KvEvictLfu, LogIncrementHasRedisProbability) {
  // p = 1 / ((counter - LFU_INIT_VAL) * lfu_log_factor + 1), base >= 0.
  EXPECT_EQ(kv::lfu_log_incr(255, 10, 0.0), 255);
  for (std::uint8_t c = 0; c <= kv::kLfuInitVal; ++c)
    EXPECT_EQ(kv::lfu_log_incr(c, 10, 0.999), c + 1) << "p is 1 at or below LFU_INIT_VAL";
  const double p15 = 1.0 / ((15 - 5) * 10 + 1);  // 1/101
  EXPECT_EQ(kv::lfu_log_incr(15, 10, p15 * 0.999), 16);
  EXPECT_EQ(kv::lfu_log_incr(15, 10, p15), 15) << "r < p, strictly";
  EXPECT_EQ(kv::lfu_log_incr(200, 0, 0.999), 201) << "factor 0: every hit counts";
  const double p7f100 = 1.0 / ((7 - 5) * 100 + 1);
  EXPECT_EQ(kv::lfu_log_incr(7, 100, p7f100 * 1.001), 7);
  EXPECT_EQ(kv::lfu_log_incr(7, 100, p7f100 * 0.999), 8);
}

TEST(KvEvictLfu, CounterGrowsAsRedisConfTable) {
  // redis.conf's table for lfu-log-factor 10: 1000 hits -> 18, 100K hits
  // -> 142 (one run each, from counter 0). The expected counter from the
  // formula: after the first 5 free hits, n more increments take
  // sum(10 j + 1, j < n) hits, so ~19 and ~146. The mean of 20 seeded runs
  // lands near them.
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  double at_1k = 0, at_100k = 0;
  constexpr int kRuns = 20;
  for (int trial = 0; trial < kRuns; ++trial) {
    std::uint8_t c = 0;
    for (int i = 0; i < 100000; ++i) {
      c = kv::lfu_log_incr(c, 10, u(rng));
      if (i == 999) at_1k += c;
    }
    at_100k += c;
  }
  at_1k /= kRuns;
  at_100k /= kRuns;
  EXPECT_GE(at_1k, 16.0);
  EXPECT_LE(at_1k, 21.0);
  EXPECT_GE(at_100k, 138.0);
  EXPECT_LE(at_100k, 150.0);
}

TEST(KvEvictLfu, DecayIsOnePerDecayTimeMinutes) {
  const std::uint32_t clock = kv::lfu_clock(100, 20);
  EXPECT_EQ(clock, (100u << 8) | 20u);
  EXPECT_EQ(kv::lfu_decr_and_return(clock, 100, 1), 20);
  EXPECT_EQ(kv::lfu_decr_and_return(clock, 103, 1), 17);
  EXPECT_EQ(kv::lfu_decr_and_return(clock, 103, 2), 19);  // 3 / 2 = 1 period
  EXPECT_EQ(kv::lfu_decr_and_return(clock, 103, 0), 20);  // 0: no decay
  EXPECT_EQ(kv::lfu_decr_and_return(clock, 130, 1), 0);   // 30 periods > 20
  // LFUTimeElapsed across the 16-bit wrap: 65535 - ldt + now.
  EXPECT_EQ(kv::lfu_elapsed(65530, 4), 9u);
  EXPECT_EQ(kv::lfu_decr_and_return(kv::lfu_clock(65530, 20), 4, 1), 11);
  EXPECT_EQ(kv::lfu_minutes(120'000), 2u);
  EXPECT_EQ(kv::lfu_minutes(65536LL * 60'000 + 60'000), 1u);
}

// --- the pool -------------------------------------------------------------------

std::vector<std::uint64_t> scores(const kv::EvictionPool& pool) {
  std::vector<std::uint64_t> v;
  for (std::size_t i = 0; i < pool.size(); ++i) v.push_back(pool[i].score);
  return v;
}

TEST(KvEvictionPool, KeepsTheHighestScoresSortedAscending) {
  kv::EvictionPool pool;
  for (const std::uint64_t s : {5, 1, 9, 3, 7}) pool.insert(s, "k" + std::to_string(s), 0);
  EXPECT_EQ(scores(pool), (std::vector<std::uint64_t>{1, 3, 5, 7, 9}));
  std::vector<std::uint64_t> more;
  for (std::uint64_t s = 10; s < 30; ++s) more.push_back(s);
  std::shuffle(more.begin(), more.end(), std::mt19937(7));
  for (const std::uint64_t s : more) pool.insert(s, "k" + std::to_string(s), 1);
  std::vector<std::uint64_t> top;
  for (std::uint64_t s = 14; s < 30; ++s) top.push_back(s);
  EXPECT_EQ(scores(pool), top) << "full: the 16 highest, ascending";
  pool.insert(0, "low", 2);
  EXPECT_EQ(scores(pool), top) << "below every entry of a full pool: dropped";
  pool.insert(99, "k29", 1);
  EXPECT_EQ(scores(pool), top) << "a key already pooled is not added twice";
  EXPECT_EQ(pool[kv::EvictionPool::kSize - 1].key, "k29");
  pool.remove(3);
  top.erase(top.begin() + 3);
  EXPECT_EQ(scores(pool), top);
  pool.insert(15, "again", 3);  // room on the right: inserted in order
  top.insert(top.begin() + 1, 15);
  EXPECT_EQ(scores(pool), top);
  EXPECT_EQ(pool[1].key, "again") << "placed before an equal score";
  pool.clear();
  EXPECT_EQ(pool.size(), 0u);
}

// --- the evictor ----------------------------------------------------------------

TEST(KvEvictor, AllkeysLruEvictsTheLongestIdleFirst) {
  with_evictor(kv::MaxmemoryPolicy::allkeys_lru, [](FakeHost& h, kv::Evictor& ev) {
    const std::uint32_t now = kv::lru_clock(kv::unix_ms());
    for (int i = 0; i < 40; ++i) put(h.ks, "k" + std::to_string(i), 100, -1, now - i);
    for (int i = 39; i >= 36; --i) {
      EXPECT_FALSE(evict(h, ev));
      EXPECT_FALSE(exists(h.ks, "k" + std::to_string(i))) << "idle " << i << " s";
      EXPECT_EQ(h.ks.keys(), i);
    }
    EXPECT_EQ(ev.evicted(), 4u);
    const auto log = h.take_log();
    ASSERT_EQ(log.size(), 4u);
    EXPECT_EQ(log[0], (kv_test::Args{"DEL", "k39"})) << "evictions propagate as DEL";
  });
}

TEST(KvEvictor, AllkeysLfuEvictsTheLeastFrequentFirst) {
  with_evictor(kv::MaxmemoryPolicy::allkeys_lfu, [](FakeHost& h, kv::Evictor& ev) {
    h.ks.access_clock().lfu = true;
    const std::uint32_t minutes = kv::lfu_minutes(kv::unix_ms());
    for (int i = 0; i < 40; ++i)
      put(h.ks, "k" + std::to_string(i), 100, -1,
          kv::lfu_clock(minutes, static_cast<std::uint8_t>(10 + i)));
    for (int i = 0; i < 4; ++i) {
      EXPECT_FALSE(evict(h, ev));
      EXPECT_FALSE(exists(h.ks, "k" + std::to_string(i))) << "counter " << 10 + i;
    }
    EXPECT_TRUE(exists(h.ks, "k4"));
  });
}

TEST(KvEvictor, LfuDecayMakesAnOldFrequentKeyEvictable) {
  with_evictor(kv::MaxmemoryPolicy::allkeys_lfu, [](FakeHost& h, kv::Evictor& ev) {
    h.settings_.lfu_decay_time = 1;
    const std::uint32_t minutes = kv::lfu_minutes(kv::unix_ms());
    // "old" had 50 hits' worth 45 minutes ago: decayed to 5, below "new"'s 8.
    put(h.ks, "old", 100, -1, kv::lfu_clock((minutes - 45) & 0xFFFF, 50));
    put(h.ks, "new", 100, -1, kv::lfu_clock(minutes, 8));
    EXPECT_FALSE(evict(h, ev));
    EXPECT_FALSE(exists(h.ks, "old"));
    EXPECT_TRUE(exists(h.ks, "new"));
  });
}

TEST(KvEvictor, VolatileTtlEvictsTheNearestExpiryFirst) {
  with_evictor(kv::MaxmemoryPolicy::volatile_ttl, [](FakeHost& h, kv::Evictor& ev) {
    const std::int64_t now = kv::unix_ms();
    for (int i = 0; i < 20; ++i) put(h.ks, "p" + std::to_string(i), 100, -1, 0);
    for (int i = 0; i < 10; ++i)
      put(h.ks, "t" + std::to_string(i), 100, now + (10 - i) * 100'000, 0);
    for (int i = 9; i >= 6; --i) {
      EXPECT_FALSE(evict(h, ev));
      EXPECT_FALSE(exists(h.ks, "t" + std::to_string(i))) << "expires in " << 10 - i << "00 s";
    }
    EXPECT_EQ(h.ks.keys(), 26);
  });
}

TEST(KvEvictor, VolatilePoliciesNeverEvictKeysWithoutTtl) {
  for (const auto policy :
       {kv::MaxmemoryPolicy::volatile_lru, kv::MaxmemoryPolicy::volatile_lfu,
        kv::MaxmemoryPolicy::volatile_random, kv::MaxmemoryPolicy::volatile_ttl}) {
    on_runtime([policy] {
      FakeHost h;
      kv::Evictor ev;
      h.evictor_ = &ev;
      h.settings_.maxmemory_policy = policy;
      const std::int64_t now = kv::unix_ms();
      for (int i = 0; i < 30; ++i) put(h.ks, "p" + std::to_string(i), 100, -1, 0);
      for (int i = 0; i < 5; ++i) put(h.ks, "t" + std::to_string(i), 100, now + 1'000'000, 0);
      // Far over the limit: every volatile key goes, then OOM.
      EXPECT_TRUE(evict(h, ev, h.ks.bytes() - 1)) << kv::policy_name(policy);
      EXPECT_EQ(h.ks.keys(), 30) << kv::policy_name(policy);
      EXPECT_EQ(h.ks.expires(), 0);
      EXPECT_EQ(ev.evicted(), 5u);
      for (int i = 0; i < 30; ++i) EXPECT_TRUE(exists(h.ks, "p" + std::to_string(i)));
    });
  }
}

TEST(KvEvictor, DispatcherEvictsBeforeWritesOrRefusesUnderNoeviction) {
  on_runtime([] {
    FakeHost h;
    kv::Evictor ev;
    h.evictor_ = &ev;
    h.settings_.maxmemory = 50'000;
    for (const auto policy :
         {kv::MaxmemoryPolicy::allkeys_lru, kv::MaxmemoryPolicy::allkeys_random}) {
      h.settings_.maxmemory_policy = policy;
      for (int i = 0; i < 300; ++i) {
        ASSERT_EQ(run(h, {"SET", "k" + std::to_string(i), std::string(1000, 'v')}), "+OK\r\n");
        // Evicted before each command: over by at most the last key.
        EXPECT_LE(h.ks.bytes(), 50'000 + 2'000) << i;
      }
      EXPECT_GT(ev.evicted(), 200u) << kv::policy_name(policy);
      EXPECT_GT(h.ks.keys(), 20);
      run(h, {"FLUSHALL"});
      ev.reset_stats();
    }
    h.settings_.maxmemory_policy = kv::MaxmemoryPolicy::noeviction;
    for (int i = 0; i < 100; ++i) run(h, {"SET", "k" + std::to_string(i), std::string(1000, 'v')});
    EXPECT_EQ(run(h, {"SET", "more", "v"}),
              "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    EXPECT_EQ(run(h, {"GET", "more"}), "$-1\r\n") << "reads are not refused";
    EXPECT_EQ(ev.evicted(), 0u);
  });
}

TEST(KvEvictor, ObjectFreqAndIdletimeFollowThePolicy) {
  on_runtime([] {
    FakeHost h;
    EXPECT_EQ(run(h, {"SET", "k", "v"}), "+OK\r\n");
    EXPECT_EQ(run(h, {"OBJECT", "IDLETIME", "k"}), ":0\r\n");
    EXPECT_TRUE(run(h, {"OBJECT", "FREQ", "k"})
                    .starts_with("-ERR An LFU maxmemory policy is not selected"));
    h.settings_.maxmemory_policy = kv::MaxmemoryPolicy::allkeys_lfu;
    h.ks.access_clock().lfu = true;
    EXPECT_EQ(run(h, {"SET", "f", "v"}), "+OK\r\n");
    EXPECT_EQ(run(h, {"OBJECT", "FREQ", "f"}), ":5\r\n") << "LFU_INIT_VAL";
    EXPECT_EQ(run(h, {"GET", "f"}), "$1\r\nv\r\n");
    EXPECT_EQ(run(h, {"OBJECT", "FREQ", "f"}), ":6\r\n") << "p = 1 at LFU_INIT_VAL";
    EXPECT_TRUE(run(h, {"OBJECT", "IDLETIME", "f"})
                    .starts_with("-ERR An LFU maxmemory policy is selected, idle time"));
  });
}

}  // namespace
