// Config::pin_workers: worker i runs on exactly the i-th CPU of the
// affinity mask the runtime was created with (wrapping), checked with
// sched_getaffinity on each worker's thread; the blocking pool stays on the
// whole mask; off, nothing is pinned.
#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <map>
#include <thread>
#include <utility>
#include <vector>

#include "common/test_util.hpp"
#include "sched/cpu_budget.hpp"
#include "weft/weft.hpp"

namespace {

using weft::JoinHandle;
using weft::Runtime;
using weft::detail::affinity_cpus;

class Pinning : public weft::test::WorkersTest {};
INSTANTIATE_TEST_SUITE_P(Workers, Pinning, ::testing::Values(1, 2, 3), weft::test::workers_name);

// The affinity mask of every worker, by worker index: n fibers that each
// occupy their worker until all n have started can only finish on n
// different workers; each reads its own thread's mask.
std::map<int, std::vector<int>> worker_masks(Runtime& rt) {
  const int n = static_cast<int>(rt.workers());
  std::atomic<int> started{0};
  std::vector<JoinHandle<std::pair<int, std::vector<int>>>> hs;
  for (int i = 0; i < n; ++i) {
    hs.push_back(rt.spawn([&] {
      ++started;
      const auto deadline = std::chrono::steady_clock::now() + weft::test::kPatience;
      while (started.load() < n && std::chrono::steady_clock::now() < deadline) {
        // no yield: this fiber occupies its worker
      }
      return std::make_pair(weft::this_fiber::worker_index(), affinity_cpus());
    }));
  }
  std::map<int, std::vector<int>> masks;
  for (auto& h : hs) {
    auto [index, cpus] = h.join();
    masks[index] = std::move(cpus);
  }
  return masks;
}

TEST_P(Pinning, EachWorkerOnOneCpuOfTheMaskInOrder) {
  const std::vector<int> allowed = affinity_cpus();
  ASSERT_FALSE(allowed.empty());
  weft::Config c = config();
  c.pin_workers = true;
  Runtime rt(c);
  const auto masks = worker_masks(rt);
  ASSERT_EQ(masks.size(), workers()) << "the fibers did not run on every worker";
  for (const auto& [index, cpus] : masks) {
    const int want = allowed[static_cast<std::size_t>(index) % allowed.size()];
    EXPECT_EQ(cpus, std::vector<int>{want}) << "worker " << index;
  }
  // A blocking-pool thread started by a pinned worker is back on the whole
  // mask.
  const std::vector<int> pool =
      rt.block_on([] { return weft::spawn_blocking([] { return affinity_cpus(); }).join(); });
  EXPECT_EQ(pool, allowed);
}

TEST_P(Pinning, OffLeavesEveryWorkerOnTheWholeMask) {
  const std::vector<int> allowed = affinity_cpus();
  Runtime rt(config());
  for (const auto& [index, cpus] : worker_masks(rt)) {
    EXPECT_EQ(cpus, allowed) << "worker " << index;
  }
}

TEST(PinningMask, FollowsTheMaskTheRuntimeStartsWith) {
  // A thread narrowed to its last allowed CPU creates the runtime: both
  // workers go to that CPU, and the blocking pool stays on it too.
  const std::vector<int> allowed = affinity_cpus();
  const int last = allowed.back();
  std::vector<int> pool;
  std::map<int, std::vector<int>> masks;
  std::thread([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(last, &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
    weft::Config c = weft::test::workers_config(2);
    c.pin_workers = true;
    Runtime rt(c);
    masks = worker_masks(rt);
    pool = rt.block_on([] { return weft::spawn_blocking([] { return affinity_cpus(); }).join(); });
  }).join();
  ASSERT_EQ(masks.size(), 2u);
  for (const auto& [index, cpus] : masks) EXPECT_EQ(cpus, std::vector<int>{last}) << index;
  EXPECT_EQ(pool, std::vector<int>{last});
}

}  // namespace
