// Work stealing: with several workers, fibers run on more than one worker and
// move between workers.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <vector>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::JoinHandle;
using weft::Runtime;

class Migration : public weft::test::WorkersTest {};
INSTANTIATE_TEST_SUITE_P(Workers, Migration, ::testing::Values(2, 4), weft::test::workers_name);

void spin_for(std::chrono::microseconds d) {
  auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}

TEST_P(Migration, FibersRunOnSeveralWorkersAndMigrate) {
  Runtime rt(config());
  const int n = static_cast<int>(workers());
  std::set<int> workers_seen;
  bool some_fiber_moved = false;
  bool out_of_range = false;
  int rounds = 0;
  const auto deadline = std::chrono::steady_clock::now() + weft::test::kPatience;
  while (!(workers_seen.size() > 1 && some_fiber_moved) &&
         std::chrono::steady_clock::now() < deadline) {
    ++rounds;
    // Each fiber records the worker it runs on between bits of work, yields
    // and short sleeps; the root spawns them all on its own worker, so the
    // others only get work by stealing it (or, for sleepers, by firing the
    // busy worker's overdue timers, which is not counted as a steal).
    auto traces = rt.block_on([] {
      constexpr int kFibers = 32;
      constexpr int kSteps = 40;
      std::vector<JoinHandle<std::vector<int>>> hs;
      for (int f = 0; f < kFibers; ++f) {
        hs.push_back(weft::spawn([f] {
          std::vector<int> seen;
          for (int s = 0; s < kSteps; ++s) {
            seen.push_back(weft::this_fiber::worker_index());
            spin_for(20us);
            if ((s + f) % 8 == 0) {
              weft::this_fiber::sleep_for(1ms);
            } else {
              weft::this_fiber::yield();
            }
          }
          seen.push_back(weft::this_fiber::worker_index());
          return seen;
        }));
      }
      std::vector<std::vector<int>> out;
      for (auto& h : hs) out.push_back(h.join());
      return out;
    });
    for (const auto& seen : traces) {
      std::set<int> mine(seen.begin(), seen.end());
      for (int w : mine) {
        if (w < 0 || w >= n) out_of_range = true;
        workers_seen.insert(w);
      }
      if (mine.size() > 1) some_fiber_moved = true;
    }
  }
  EXPECT_FALSE(out_of_range) << "worker_index() outside [0, " << n << ")";
  EXPECT_GT(workers_seen.size(), 1u) << "all fibers ran on one worker (" << rounds << " rounds)";
  EXPECT_TRUE(some_fiber_moved) << "no fiber ever moved to another worker (" << rounds
                                << " rounds)";
}

TEST_P(Migration, IdleWorkersPickUpWorkSpawnedFromAPlainThread) {
  Runtime rt(config());
  // Blocking OS-level work in fibers (deliberately, to occupy workers): with
  // n workers, n fibers that each wait for all n to have started can only
  // finish if they run on n different workers at the same time.
  const int n = static_cast<int>(workers());
  std::atomic<int> started{0};
  std::vector<JoinHandle<int>> hs;
  for (int i = 0; i < n; ++i) {
    hs.push_back(rt.spawn([&] {
      ++started;
      auto deadline = std::chrono::steady_clock::now() + weft::test::kPatience;
      while (started.load() < n && std::chrono::steady_clock::now() < deadline) {
        // no yield: this fiber occupies its worker
      }
      return weft::this_fiber::worker_index();
    }));
  }
  std::set<int> ws;
  for (auto& h : hs) ws.insert(h.join());
  EXPECT_EQ(started.load(), n);
  EXPECT_EQ(ws.size(), static_cast<std::size_t>(n)) << "not every worker took one of the fibers";
}

}  // namespace
