// Strategy::single_threaded: one worker runs every fiber.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::JoinHandle;
using weft::Runtime;

weft::Config single_threaded() {
  weft::Config c = weft::test::workers_config(1);
  c.strategy = weft::Strategy::single_threaded;
  return c;
}

TEST(SingleThreaded, EveryFiberRunsOnWorkerZero) {
  Runtime rt(single_threaded());
  EXPECT_EQ(rt.workers(), 1u);
  EXPECT_EQ(rt.stats().workers.size(), 1u);
  struct Seen {
    std::set<int> workers;
    std::set<std::thread::id> threads;
  };
  auto seen = rt.block_on([] {
    std::vector<JoinHandle<Seen>> hs;
    for (int f = 0; f < 100; ++f) {
      hs.push_back(weft::spawn([f] {
        Seen s;
        for (int i = 0; i < 20; ++i) {
          s.workers.insert(weft::this_fiber::worker_index());
          s.threads.insert(weft::test::current_thread_id());
          if ((i + f) % 5 == 0) {
            weft::this_fiber::sleep_for(1ms);
          } else {
            weft::this_fiber::yield();
          }
        }
        return s;
      }));
    }
    Seen all;
    all.workers.insert(weft::this_fiber::worker_index());
    all.threads.insert(weft::test::current_thread_id());
    for (auto& h : hs) {
      Seen s = h.join();
      all.workers.insert(s.workers.begin(), s.workers.end());
      all.threads.insert(s.threads.begin(), s.threads.end());
    }
    return all;
  });
  EXPECT_EQ(seen.workers, (std::set<int>{0}));
  EXPECT_EQ(seen.threads.size(), 1u);
  EXPECT_EQ(seen.threads.count(std::this_thread::get_id()), 0u)
      << "fibers ran on the caller's thread";
}

TEST(SingleThreaded, SpawnsFromOtherThreadsAndBlockingTasksWork) {
  Runtime rt(single_threaded());
  std::vector<std::thread> threads;
  std::atomic<long> sum{0};
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      std::vector<JoinHandle<int>> hs;
      for (int i = 0; i < 100; ++i) {
        hs.push_back(rt.spawn([t, i] {
          weft::this_fiber::yield();
          return weft::this_fiber::worker_index() == 0 ? t * 1000 + i : -1000000;
        }));
      }
      for (auto& h : hs) sum += h.join();
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(sum.load(), 100L * (0 + 1000 + 2000) + 3L * (99 * 100 / 2));
  EXPECT_EQ(rt.block_on([] { return weft::spawn_blocking([] { return 5; }).join(); }), 5);
}

}  // namespace
