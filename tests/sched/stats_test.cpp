// Runtime::stats() counters.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::JoinHandle;
using weft::Runtime;
using weft::test::eventually;

class Stats : public weft::test::WorkersTest {};
WEFT_INSTANTIATE_WORKERS(Stats);

TEST_P(Stats, CountsSpawnedAndCompletedFibers) {
  Runtime rt(config());
  {
    auto s0 = rt.stats();
    EXPECT_EQ(s0.workers.size(), workers());
    EXPECT_EQ(s0.fibers_spawned, 0u);
    EXPECT_EQ(s0.fibers_completed, 0u);
    EXPECT_EQ(s0.fibers_alive, 0u);
  }
  constexpr std::uint64_t kN = 1000;
  rt.block_on([] {
    std::vector<JoinHandle<void>> hs;
    for (std::uint64_t i = 0; i < kN; ++i) {
      hs.push_back(weft::spawn([i] {
        if (i % 3 == 0) weft::this_fiber::yield();
        if (i % 100 == 0) weft::this_fiber::sleep_for(1ms);
      }));
    }
    for (auto& h : hs) h.join();
  });
  auto s = rt.stats();
  EXPECT_EQ(s.workers.size(), workers());
  EXPECT_GE(s.fibers_spawned, kN);
  // The last child's completion may be counted just after its joiner woke.
  EXPECT_TRUE(eventually([&] { return rt.stats().fibers_completed >= kN + 1; }))
      << "fibers_completed = " << rt.stats().fibers_completed << ", want >= " << kN + 1
      << " (children + root)";
  EXPECT_TRUE(eventually([&] { return rt.stats().fibers_alive == 0; }));
  s = rt.stats();
  EXPECT_GE(s.fibers_spawned, s.fibers_completed);
  // Per-worker counters add up to the totals once the runtime is quiet.
  std::uint64_t completed_by_workers = 0, switches = 0;
  for (const auto& w : s.workers) {
    completed_by_workers += w.fibers_completed;
    switches += w.switches;
  }
  EXPECT_EQ(completed_by_workers, s.fibers_completed);
  EXPECT_GE(switches, kN) << "every fiber was switched into at least once";
  EXPECT_GT(s.fiber_parks, 0u) << "the root parked in join and sleepers parked";
  EXPECT_EQ(s.fibers_runnable, 0u);
  EXPECT_EQ(s.fibers_parked, 0u);
  EXPECT_EQ(s.injector_depth, 0u);
}

TEST_P(Stats, CountsFibersSpawnedFromOutside) {
  Runtime rt(config());
  std::vector<JoinHandle<int>> hs;
  for (int i = 0; i < 50; ++i) hs.push_back(rt.spawn([i] { return i; }));
  int sum = 0;
  for (auto& h : hs) sum += h.join();
  EXPECT_EQ(sum, 49 * 50 / 2);
  EXPECT_GE(rt.stats().fibers_spawned, 50u);
  EXPECT_TRUE(eventually([&] { return rt.stats().fibers_completed >= 50; }));
}

TEST_P(Stats, ParkedFibersAreCounted) {
  Runtime rt(config());
  std::atomic<bool> release{false};
  std::atomic<int> parked_now{0};
  std::vector<JoinHandle<void>> hs;
  for (int i = 0; i < 10; ++i) {
    hs.push_back(rt.spawn([&] {
      ++parked_now;
      while (!release.load()) weft::this_fiber::sleep_for(2ms);
    }));
  }
  ASSERT_TRUE(eventually([&] { return parked_now.load() == 10; }));
  EXPECT_TRUE(eventually([&] { return rt.stats().fibers_alive == 10; }))
      << "fibers_alive = " << rt.stats().fibers_alive;
  EXPECT_TRUE(eventually([&] { return rt.stats().fibers_parked > 0; }));
  release = true;
  for (auto& h : hs) h.join();
  EXPECT_TRUE(eventually([&] { return rt.stats().fibers_alive == 0; }));
}

}  // namespace
