// Eviction under maxmemory against the real server (weft-kv, or
// redis-server 7.0.15 in reference mode, the same test): under a write
// load past maxmemory with allkeys-lru a hot set read often survives, and
// volatile-ttl evicts the keys nearest their expiry and never a key
// without a TTL.
//
// The hot-set survival rate is recorded (RecordProperty "hot_survival")
// in both modes: the figure to compare is the rate, not a key count, since
// Redis's used_memory counts ~1 MB of its own overhead and more per key.
// The LRU clock has 1 s steps (Redis's LRU_CLOCK_RESOLUTION), so keys
// written in the same second as the hot set was read tie with it: the
// load starts in the second after the fill and runs at a rate that leaves older
// keys to evict, which is what a cache under LRU relies on. About 3 s of
// wall time per run.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "kv/kv_harness.hpp"

namespace {

using kv::itest::Client;
using kv::itest::Reply;
using kv::itest::Server;
using kv::itest::ServerConfig;

// Sends argvs pipelined and reads every reply; the errors, in order.
std::vector<std::string> pipeline(Client& c, const std::vector<std::vector<std::string>>& cmds) {
  std::string bytes;
  for (const auto& argv : cmds) bytes += kv::itest::encode(argv);
  c.send(bytes);
  std::vector<std::string> errors;
  for (std::size_t i = 0; i < cmds.size(); ++i) {
    const Reply r = c.read_reply();
    if (r.is_error()) errors.push_back(r.describe());
  }
  return errors;
}

TEST(Eviction, AllkeysLruKeepsAHotSetUnderWriteLoad) {
  KV_REQUIRE_SERVER();
  constexpr int kHot = 200;
  constexpr std::size_t kValue = 1000;
  ServerConfig config{{{"maxmemory", "4mb"}, {"maxmemory-policy", "allkeys-lru"}}, {}};
  Server server(config);
  Client c(server.port());
  const std::string value(kValue, 'v');

  std::vector<std::vector<std::string>> batch;
  for (int i = 0; i < kHot; ++i) batch.push_back({"SET", "hot:" + std::to_string(i), value});
  ASSERT_EQ(pipeline(c, batch), std::vector<std::string>{});
  // The hot set is read 25 keys a round trip: replies waiting in an
  // output buffer count as used memory (in both servers), and a large
  // pipelined read would itself force evictions.
  std::vector<std::vector<std::vector<std::string>>> reads(kHot / 25);
  for (int i = 0; i < kHot; ++i) reads[i / 25].push_back({"GET", "hot:" + std::to_string(i)});

  // Phase 1: fill past the limit (the first evictions), reading the hot
  // set between batches.
  int cold = 0;
  const auto write_batch = [&](int n) {
    std::vector<std::vector<std::string>> sets;
    for (int i = 0; i < n; ++i) sets.push_back({"SET", "cold:" + std::to_string(cold++), value});
    ASSERT_EQ(pipeline(c, sets), std::vector<std::string>{});
    for (const auto& r : reads) ASSERT_EQ(pipeline(c, r), std::vector<std::string>{});
  };
  while (kv::itest::info(c, "stats").integer("evicted_keys") == 0 && cold < 20000) write_batch(25);
  ASSERT_GT(kv::itest::info(c, "stats").integer("evicted_keys"), 0) << "4 MB never filled";
  const int fill = cold;

  // The fill ran in the same LRU second(s) as the hot set's reads, which
  // ties them: start the load in the next second (the clock is Unix
  // seconds in both servers; Redis refreshes its copy 10 times a second).
  const auto unix_now = std::chrono::system_clock::now();
  std::this_thread::sleep_until(std::chrono::ceil<std::chrono::seconds>(unix_now) +
                                std::chrono::milliseconds(150));
  for (const auto& r : reads) ASSERT_EQ(pipeline(c, r), std::vector<std::string>{});

  // Phase 2: ~1,000 writes a second for 1.6 s (a fraction of what fits
  // in 4 MB each second), the hot set read after every 25.
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::steady_clock::now() - start; };
  int batches = 0;
  while (elapsed() < std::chrono::milliseconds(1600)) {
    write_batch(25);
    ++batches;
    std::this_thread::sleep_until(start + batches * std::chrono::milliseconds(25));
  }

  int survived = 0;
  for (int i = 0; i < kHot; ++i)
    survived += c.call({"EXISTS", "hot:" + std::to_string(i)}).integer == 1 ? 1 : 0;
  const kv::itest::Info stats = kv::itest::info(c, "stats");
  const std::int64_t keys = c.call({"DBSIZE"}).integer;
  const double rate = static_cast<double>(survived) / kHot;
  RecordProperty("hot_survival", std::to_string(rate));
  RecordProperty("cold_writes", cold);
  RecordProperty("evicted_keys", std::to_string(stats.integer("evicted_keys")));
  std::printf(
      "[ eviction ] %s: hot set %d/%d survived (%.3f); %d cold writes (%d to fill), "
      "%lld evicted, %lld keys held\n",
      kv::itest::reference_mode() ? "redis-server" : "weft-kv", survived, kHot, rate, cold, fill,
      static_cast<long long>(stats.integer("evicted_keys")), static_cast<long long>(keys));
  EXPECT_GT(stats.integer("evicted_keys"), cold - fill) << "the load went well past maxmemory";
  // Random eviction would keep about keys_held / (hot + cold) of them.
  EXPECT_GE(rate, 0.9) << "allkeys-lru lost the hot set";
}

TEST(Eviction, VolatileTtlEvictsNearestExpiryAndNeverPersistentKeys) {
  KV_REQUIRE_SERVER();
  constexpr int kKeys = 300;
  ServerConfig config{{{"maxmemory-policy", "volatile-ttl"}}, {}};
  Server server(config);
  Client c(server.port());
  const std::string value(1000, 'v');
  std::vector<std::vector<std::string>> cmds;
  for (int i = 0; i < kKeys; ++i) {
    cmds.push_back({"SET", "p:" + std::to_string(i), value});
    // t:i expires in 1000 + 10 i seconds: t:0 first.
    cmds.push_back({"SET", "t:" + std::to_string(i), value, "EX", std::to_string(1000 + 10 * i)});
  }
  ASSERT_EQ(pipeline(c, cmds), std::vector<std::string>{});
  // A limit ~100 keys below what is used now.
  const std::int64_t used = kv::itest::info(c, "memory").integer("used_memory");
  ASSERT_EQ(c.call({"CONFIG", "SET", "maxmemory", std::to_string(used - 100 * 1100)}).describe(),
            "+OK");
  ASSERT_EQ(c.call({"SET", "trigger", "x"}).describe(), "+OK");
  ASSERT_EQ(c.call({"CONFIG", "SET", "maxmemory", "0"}).describe(), "+OK");

  for (int i = 0; i < kKeys; ++i)
    EXPECT_EQ(c.call({"EXISTS", "p:" + std::to_string(i)}).integer, 1) << "p:" << i;
  double evicted_sum = 0, kept_sum = 0;
  int evicted = 0;
  for (int i = 0; i < kKeys; ++i) {
    if (c.call({"EXISTS", "t:" + std::to_string(i)}).integer == 0) {
      evicted_sum += i;
      ++evicted;
    } else {
      kept_sum += i;
    }
  }
  ASSERT_GE(evicted, 50) << "the limit evicted too few keys";
  ASSERT_LT(evicted, kKeys);
  // Sampled (5 keys and a 16-entry pool), not exact: the evicted keys are
  // the near-expiry end, on average.
  const double evicted_mean = evicted_sum / evicted;
  const double kept_mean = kept_sum / (kKeys - evicted);
  std::printf("[ eviction ] volatile-ttl: %d evicted, mean index %.1f (kept: %.1f)\n", evicted,
              evicted_mean, kept_mean);
  EXPECT_LT(evicted_mean * 2, kept_mean);
}

}  // namespace
