// Cooperative preemption: a fiber spinning through this_fiber::checkpoint()
// lets the other fibers of its worker run once it has run for longer than
// Config::preemption_interval.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::Runtime;

class Checkpoint : public ::testing::TestWithParam<weft::Strategy> {};
WEFT_INSTANTIATE_STRATEGIES(Checkpoint);

TEST_P(Checkpoint, SpinningFiberLetsAnotherFiberOnItsWorkerRun) {
  weft::Config c = weft::test::workers_config(1);
  c.strategy = GetParam();
  c.preemption_interval = 2ms;
  Runtime rt(c);
  struct Result {
    bool flag_seen;
    long checkpoints;
  };
  Result r = rt.block_on([] {
    auto spinner = weft::spawn([] {
      std::atomic<bool> flag{false};
      // Spawned from the spinner itself, so the setter is queued on this
      // worker and can only run if a checkpoint yields.
      auto setter = weft::spawn([&flag] { flag = true; });
      const auto limit = std::chrono::steady_clock::now() + 20s;
      long checkpoints = 0;
      while (!flag.load()) {
        weft::this_fiber::checkpoint();
        ++checkpoints;
        if (std::chrono::steady_clock::now() > limit) break;
      }
      const bool seen = flag.load();
      setter.join();
      return Result{seen, checkpoints};
    });
    return spinner.join();
  });
  EXPECT_TRUE(r.flag_seen) << "checkpoint() never yielded to the other fiber in 20 s";
  EXPECT_GT(r.checkpoints, 0);
}

TEST(CheckpointUnflagged, ReturnsWhenNothingElseIsRunnable) {
  Runtime rt(weft::test::workers_config(1));
  long n = rt.block_on([] {
    long i = 0;
    for (; i < 1000000; ++i) weft::this_fiber::checkpoint();
    return i;
  });
  EXPECT_EQ(n, 1000000);
}

}  // namespace
