// Priorities and yield order on one worker (deterministic there: the root
// fiber keeps running while it spawns, so children start only when it parks).
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <random>
#include <vector>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using weft::JoinHandle;
using weft::Priority;
using weft::Runtime;
using weft::test::with_priority;

/// One worker, either strategy.
class OneWorker : public ::testing::TestWithParam<weft::Strategy> {
 protected:
  weft::Config config() const {
    weft::Config c = weft::test::workers_config(1);
    c.strategy = GetParam();
    return c;
  }
};
WEFT_INSTANTIATE_STRATEGIES(OneWorker);

TEST_P(OneWorker, RunnableFibersRunInPriorityOrder) {
  Runtime rt(config());
  std::mutex mu;
  std::vector<Priority> order;
  rt.block_on([&] {
    std::vector<JoinHandle<void>> hs;
    for (Priority p : {Priority::low, Priority::normal, Priority::high, Priority::critical}) {
      hs.push_back(weft::spawn(with_priority(p), [&mu, &order, p] {
        EXPECT_EQ(weft::this_fiber::priority(), p);
        std::lock_guard lock(mu);
        order.push_back(p);
      }));
    }
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(order, (std::vector<Priority>{Priority::critical, Priority::high, Priority::normal,
                                          Priority::low}));
}

TEST_P(OneWorker, ManyFibersOfMixedPrioritiesRunHighestFirst) {
  Runtime rt(config());
  std::vector<Priority> spawn_order;
  for (int i = 0; i < 8; ++i) {
    for (Priority p : {Priority::low, Priority::normal, Priority::high, Priority::critical}) {
      spawn_order.push_back(p);
    }
  }
  std::shuffle(spawn_order.begin(), spawn_order.end(), std::mt19937(12345));
  std::mutex mu;
  std::vector<Priority> order;
  rt.block_on([&] {
    std::vector<JoinHandle<void>> hs;
    for (Priority p : spawn_order) {
      hs.push_back(weft::spawn(with_priority(p), [&mu, &order, p] {
        std::lock_guard lock(mu);
        order.push_back(p);
      }));
    }
    for (auto& h : hs) h.join();
  });
  ASSERT_EQ(order.size(), spawn_order.size());
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end(), [](Priority a, Priority b) {
    return a > b;
  })) << "a lower-priority fiber ran while a higher one was runnable";
}

TEST_P(OneWorker, YieldDoesNotLetLowerPrioritiesRun) {
  Runtime rt(config());
  std::vector<char> trace;  // one worker: only one fiber runs at a time
  rt.block_on([&] {
    auto low = weft::spawn(with_priority(Priority::low), [&] { trace.push_back('L'); });
    auto high = weft::spawn(with_priority(Priority::high), [&] {
      for (int i = 0; i < 100; ++i) {
        trace.push_back('H');
        weft::this_fiber::yield();  // only same-or-higher priority may run
      }
    });
    low.join();
    high.join();
  });
  ASSERT_EQ(trace.size(), 101u);
  EXPECT_EQ(trace.back(), 'L') << "the low fiber ran before the high one finished";
}

TEST_P(OneWorker, YieldLetsAHigherPriorityFiberRunFirst) {
  Runtime rt(config());
  bool critical_ran_before_yield_returned = rt.block_on([] {
    auto low = weft::spawn(with_priority(Priority::low), [] {
      bool ran = false;
      auto c = weft::spawn(with_priority(Priority::critical), [&ran] { ran = true; });
      const bool before = ran;
      weft::this_fiber::yield();
      const bool after = ran;
      c.join();
      return !before && after;
    });
    return low.join();
  });
  EXPECT_TRUE(critical_ran_before_yield_returned);
}

TEST_P(OneWorker, YieldAlternatesBetweenTwoFibers) {
  Runtime rt(config());
  std::vector<int> trace;
  constexpr int kRounds = 500;
  rt.block_on([&] {
    auto body = [&trace](int who) {
      return [&trace, who] {
        for (int i = 0; i < kRounds; ++i) {
          trace.push_back(who);
          weft::this_fiber::yield();
        }
      };
    };
    auto a = weft::spawn(body(0));
    auto b = weft::spawn(body(1));
    a.join();
    b.join();
  });
  ASSERT_EQ(trace.size(), 2u * kRounds);
  int repeats = 0;
  for (std::size_t i = 1; i < trace.size(); ++i) repeats += trace[i] == trace[i - 1];
  EXPECT_EQ(repeats, 0) << "yield returned without letting the other runnable fiber run";
}

TEST_P(OneWorker, YieldIsFifoAmongEqualPriorities) {
  Runtime rt(config());
  std::vector<int> trace;
  constexpr int kFibers = 5;
  constexpr int kRounds = 60;
  rt.block_on([&] {
    std::vector<JoinHandle<void>> hs;
    for (int f = 0; f < kFibers; ++f) {
      hs.push_back(weft::spawn([&trace, f] {
        for (int i = 0; i < kRounds; ++i) {
          trace.push_back(f);
          weft::this_fiber::yield();
        }
      }));
    }
    for (auto& h : hs) h.join();
  });
  ASSERT_EQ(trace.size(), static_cast<std::size_t>(kFibers * kRounds));
  // Round robin: after the first round the order repeats with period kFibers.
  std::vector<int> first_round(trace.begin(), trace.begin() + kFibers);
  std::sort(first_round.begin(), first_round.end());
  EXPECT_EQ(std::unique(first_round.begin(), first_round.end()), first_round.end())
      << "a fiber ran twice before another had run once";
  int breaks = 0;
  for (std::size_t i = kFibers; i < trace.size(); ++i) breaks += trace[i] != trace[i - kFibers];
  EXPECT_EQ(breaks, 0) << "yields were not served first-in first-out";
}

}  // namespace
