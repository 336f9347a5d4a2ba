// weft::this_fiber queries and operations, inside and outside fibers.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::Runtime;
namespace tf = weft::this_fiber;

class ThisFiber : public weft::test::WorkersTest {};
WEFT_INSTANTIATE_WORKERS(ThisFiber);

TEST(ThisFiberOutsideAFiber, QueriesReportNoFiber) {
  EXPECT_FALSE(tf::in_fiber());
  EXPECT_EQ(tf::id(), 0u);
  EXPECT_TRUE(tf::name().empty());
  EXPECT_EQ(tf::priority(), weft::Priority::normal);
  EXPECT_EQ(tf::worker_index(), -1);
  tf::yield();       // std::this_thread::yield()
  tf::checkpoint();  // no-op
  // Also on a thread while a runtime exists.
  Runtime rt(weft::test::workers_config(1));
  EXPECT_FALSE(tf::in_fiber());
  EXPECT_EQ(tf::worker_index(), -1);
}

TEST(ThisFiberOutsideAFiber, SleepBlocksTheThread) {
  auto start = weft::Clock::now();
  tf::sleep_for(20ms);
  EXPECT_GE(weft::Clock::now() - start, 20ms);
  auto deadline = weft::Clock::now() + 15ms;
  tf::sleep_until(deadline);
  EXPECT_GE(weft::Clock::now(), deadline);
  // Non-positive and past: return.
  tf::sleep_for(0ms);
  tf::sleep_for(-5ms);
  tf::sleep_until(weft::Clock::now() - 1s);
}

TEST_P(ThisFiber, QueriesInsideAFiber) {
  Runtime rt(config());
  const int n = static_cast<int>(workers());
  struct Seen {
    bool in_fiber;
    weft::FiberId id;
    std::string name;
    weft::Priority priority;
    int worker;
  };
  auto h = rt.spawn(weft::FiberOptions{.name = "inspector", .priority = weft::Priority::high}, [] {
    return Seen{tf::in_fiber(), tf::id(), std::string(tf::name()), tf::priority(),
                tf::worker_index()};
  });
  const weft::FiberId id = h.id();
  Seen s = h.join();
  EXPECT_TRUE(s.in_fiber);
  EXPECT_EQ(s.id, id);
  EXPECT_EQ(s.name, "inspector");
  EXPECT_EQ(s.priority, weft::Priority::high);
  EXPECT_GE(s.worker, 0);
  EXPECT_LT(s.worker, n);

  // Unnamed, default priority; id stays the same across yields and sleeps.
  bool stable = rt.block_on([] {
    auto h2 = weft::spawn([] {
      const weft::FiberId before = tf::id();
      bool ok = tf::name().empty() && tf::priority() == weft::Priority::normal;
      for (int i = 0; i < 20; ++i) {
        tf::yield();
        if (i % 5 == 0) tf::sleep_for(1ms);
        ok = ok && tf::id() == before && tf::in_fiber();
      }
      return ok;
    });
    return h2.join();
  });
  EXPECT_TRUE(stable);
}

TEST_P(ThisFiber, NameOutlivesTheOptionsObject) {
  Runtime rt(config());
  auto h = [&] {
    std::string temp = "temporary-name-long-enough-to-allocate-on-the-heap";
    weft::FiberOptions opts{.name = temp};
    auto handle = rt.spawn(opts, [] {
      tf::sleep_for(5ms);  // the options are gone by now
      return std::string(tf::name());
    });
    temp.assign(temp.size(), 'x');
    opts.name.assign(opts.name.size(), 'y');
    return handle;
  }();
  EXPECT_EQ(h.join(), "temporary-name-long-enough-to-allocate-on-the-heap");
}

TEST_P(ThisFiber, SpawnBlockingThreadIsNotAFiber) {
  Runtime rt(config());
  auto r = rt.block_on([] {
    auto h = weft::spawn_blocking([] {
      return std::tuple{tf::in_fiber(), tf::id(), tf::worker_index()};
    });
    EXPECT_EQ(h.id(), 0u) << "spawn_blocking handles have id 0";
    return h.join();
  });
  EXPECT_FALSE(std::get<0>(r));
  EXPECT_EQ(std::get<1>(r), 0u);
  EXPECT_EQ(std::get<2>(r), -1);
}

// "A deadline in the past returns at once after a yield-free check": with
// one worker, a sibling queued behind the sleeper must not run before the
// sleeper's past-deadline sleeps have all returned.
TEST(ThisFiberOneWorker, SleepPastDeadlinesReturnWithoutYielding) {
  Runtime rt(weft::test::workers_config(1));
  rt.block_on([] {
    std::atomic<bool> sibling_ran{false};
    auto sibling = weft::spawn([&] { sibling_ran.store(true); });
    auto start = weft::Clock::now();
    for (int i = 0; i < 100; ++i) {
      tf::sleep_until(start - 1h);
      tf::sleep_until(start);
      tf::sleep_for(0ns);
      tf::sleep_for(-1s);
      tf::sleep_until(weft::Clock::time_point::min());
      tf::sleep_until(weft::Deadline::after(-1s));
    }
    EXPECT_FALSE(sibling_ran.load()) << "a sleep with a past deadline yielded";
    sibling.join();
    EXPECT_TRUE(sibling_ran.load());
  });
}

}  // namespace
