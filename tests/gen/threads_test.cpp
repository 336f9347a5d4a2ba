// Generators on plain threads, no Runtime: handed from thread to thread (never
// resumed concurrently), destroyed on another thread, and many independent
// generators on many threads at once.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "common/test_util.hpp"
#include "gen/gen_util.hpp"
#include "weft/generator.hpp"

namespace {

using weft::Generator;
using weft::Yield;
using weft::test::current_thread_id;
using weft::test::scaled;
using weft::test::Tracker;

TEST(GeneratorThreads, CreatedOnOneThreadResumedOnAnother) {
  std::vector<std::thread::id> body_threads;
  Generator<int> g([&](Yield<int>& yield) {
    for (int i = 0; i < 6; ++i) {
      body_threads.push_back(current_thread_id());
      yield(i);
    }
  });
  std::vector<int> got;
  got.push_back(*g.next());
  std::thread::id other;
  std::thread t([&] {
    other = current_thread_id();
    for (int i = 0; i < 3; ++i) got.push_back(*g.next());
  });
  t.join();
  while (auto v = g.next()) got.push_back(*v);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4, 5}));
  ASSERT_EQ(body_threads.size(), 6u);
  const auto main_id = current_thread_id();
  EXPECT_EQ(body_threads[0], main_id);
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(body_threads[i], other) << "step " << i;
  for (int i = 4; i < 6; ++i) EXPECT_EQ(body_threads[i], main_id) << "step " << i;
}

TEST(GeneratorThreads, PassedAroundARingOfThreads) {
  constexpr int kThreads = 4;
  const long steps = scaled(20000, 200);
  Generator<long> g([](Yield<long>& yield) {
    long local_sum = 0;  // lives on the generator's stack across threads
    for (long i = 0;; ++i) {
      local_sum += i;
      yield(local_sum);
    }
  });
  std::mutex mu;
  std::condition_variable cv;
  long turn = 0;
  long last = -1;
  bool ok = true;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (;;) {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return turn >= steps || turn % kThreads == t; });
        if (turn >= steps) return;
        const long v = *g.next();  // resumed under the lock: never concurrently
        if (v != turn * (turn + 1) / 2) ok = false;
        last = v;
        ++turn;
        cv.notify_all();
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_TRUE(ok);
  EXPECT_EQ(last, (steps - 1) * steps / 2);
}

TEST(GeneratorThreads, DestroyedOnAnotherThreadThanItLastRanOn) {
  std::atomic<int> dtors{0};
  auto g = std::make_unique<Generator<int>>([&](Yield<int>& yield) {
    Tracker t(dtors);
    for (int i = 0;; ++i) yield(i);
  });
  std::thread([&] { EXPECT_EQ(g->next(), 0); }).join();
  std::thread([&] { g.reset(); }).join();
  EXPECT_EQ(dtors.load(), 1);
}

TEST(GeneratorThreads, ManyThreadsEachWithTheirOwnGenerators) {
  constexpr int kThreads = 8;
  const int per_thread = static_cast<int>(scaled(300, 20));
  std::atomic<long> total{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int k = 0; k < per_thread; ++k) {
        const int n = 1 + (t + k) % 17;
        Generator<int> g([n](Yield<int>& yield) {
          for (int i = 0; i < n; ++i) yield(i);
        });
        long sum = 0;
        for (int v : g) sum += v;
        if (sum != n * (n - 1) / 2) failures.fetch_add(1);
        total.fetch_add(sum);
        // Half of them destroyed early, suspended.
        Generator<int> early([](Yield<int>& yield) {
          for (int i = 0;; ++i) yield(i);
        });
        if (k % 2 == 0) (void)early.next();
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(total.load(), 0);
}

TEST(GeneratorThreads, ASuspendedGeneratorOutlivesTheThreadThatStartedIt) {
  Generator<int> g;
  std::thread([&] {
    g = Generator<int>([](Yield<int>& yield) {
      for (int i = 0; i < 3; ++i) yield(i);
    });
    EXPECT_EQ(g.next(), 0);
  }).join();  // the thread, and its stack cache, are gone
  EXPECT_EQ(g.next(), 1);
  EXPECT_EQ(g.next(), 2);
  EXPECT_EQ(g.next(), std::nullopt);
}

}  // namespace
