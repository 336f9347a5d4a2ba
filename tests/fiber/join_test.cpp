// Spawning and joining fibers: results, exceptions, move-only and void
// results, JoinHandle states, ids, detach, nesting.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::JoinHandle;
using weft::Runtime;
using weft::test::eventually;
using weft::test::expect_no_live_fibers;

class Join : public weft::test::WorkersTest {};
WEFT_INSTANTIATE_WORKERS(Join);

struct CustomError : std::runtime_error {
  explicit CustomError(int c) : std::runtime_error("custom " + std::to_string(c)), code(c) {}
  int code;
};

TEST_P(Join, ResultFromFiberToFiber) {
  Runtime rt(config());
  int v = rt.block_on([] {
    auto h = weft::spawn([] { return 42; });
    return h.join() + 1;
  });
  EXPECT_EQ(v, 43);
  expect_no_live_fibers(rt);
}

TEST_P(Join, ResultFromFiberToPlainThread) {
  Runtime rt(config());
  auto h = rt.spawn([] {
    weft::this_fiber::sleep_for(5ms);
    return std::string("from a fiber");
  });
  EXPECT_TRUE(h.joinable());
  EXPECT_EQ(h.join(), "from a fiber");
  EXPECT_FALSE(h.joinable());
  expect_no_live_fibers(rt);
}

TEST_P(Join, ManyPlainThreadsSpawnAndJoinConcurrently) {
  Runtime rt(config());
  constexpr int kThreads = 4;
  const int per_thread = static_cast<int>(weft::test::scaled(500, 50));
  std::vector<long> sums(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<JoinHandle<long>> hs;
      for (int i = 0; i < per_thread; ++i) {
        hs.push_back(rt.spawn([t, i] {
          if (i % 7 == 0) weft::this_fiber::yield();
          return static_cast<long>(t) * 100000 + i;
        }));
      }
      for (auto& h : hs) sums[t] += h.join();
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    long want = static_cast<long>(t) * 100000 * per_thread +
                static_cast<long>(per_thread) * (per_thread - 1) / 2;
    EXPECT_EQ(sums[t], want) << "thread " << t;
  }
  expect_no_live_fibers(rt);
}

TEST_P(Join, ExceptionPropagatesToFiberJoiner) {
  Runtime rt(config());
  std::string msg = rt.block_on([] {
    auto h = weft::spawn([]() -> int {
      weft::this_fiber::yield();
      throw std::runtime_error("boom in a fiber");
    });
    try {
      h.join();
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  });
  EXPECT_EQ(msg, "boom in a fiber");
}

TEST_P(Join, ExceptionPropagatesToPlainThreadJoiner) {
  Runtime rt(config());
  auto h = rt.spawn([] { throw std::runtime_error("boom to a thread"); });
  try {
    h.join();
    FAIL() << "join did not rethrow";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "boom to a thread");
  }
  EXPECT_FALSE(h.joinable());
}

TEST_P(Join, ExceptionTypeIsPreserved) {
  Runtime rt(config());
  auto h = rt.spawn([]() -> int { throw CustomError(7); });
  try {
    h.join();
    FAIL() << "join did not rethrow";
  } catch (const CustomError& e) {
    EXPECT_EQ(e.code, 7);
    EXPECT_STREQ(e.what(), "custom 7");
  }
  auto g = rt.spawn([] { throw 17; });
  try {
    g.join();
    FAIL() << "join did not rethrow";
  } catch (int i) {
    EXPECT_EQ(i, 17);
  }
}

TEST_P(Join, BlockOnRethrows) {
  Runtime rt(config());
  try {
    rt.block_on([] { throw std::runtime_error("root failed"); });
    FAIL() << "block_on did not rethrow";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "root failed");
  }
  // The runtime stays usable.
  EXPECT_EQ(rt.block_on([] { return 3; }), 3);
}

TEST_P(Join, MoveOnlyResult) {
  Runtime rt(config());
  auto p = rt.block_on([] {
    auto h = weft::spawn([] { return std::make_unique<int>(7); });
    std::unique_ptr<int> r = h.join();
    *r += 1;
    return r;
  });
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 8);
  auto h = rt.spawn([] { return std::make_unique<std::string>("direct"); });
  EXPECT_EQ(*h.join(), "direct");
}

TEST_P(Join, MoveOnlyClosure) {
  Runtime rt(config());
  auto owned = std::make_unique<int>(5);
  auto h = rt.spawn([p = std::move(owned)] { return *p * 2; });
  EXPECT_EQ(h.join(), 10);
  // An lvalue closure is copied: the original stays usable.
  int calls = 0;
  auto fn = [&calls] { return ++calls; };
  EXPECT_EQ(rt.spawn(fn).join(), 1);
  EXPECT_EQ(rt.spawn(fn).join(), 2);
  EXPECT_EQ(fn(), 3);
}

TEST_P(Join, LargeResultValues) {
  Runtime rt(config());
  auto v = rt.block_on([] {
    auto h = weft::spawn([] {
      std::vector<int> r(10000);
      std::iota(r.begin(), r.end(), 0);
      return r;
    });
    return h.join();
  });
  ASSERT_EQ(v.size(), 10000u);
  EXPECT_EQ(std::accumulate(v.begin(), v.end(), 0L), 10000L * 9999 / 2);
}

TEST_P(Join, VoidFiberSideEffectsVisibleAfterJoin) {
  Runtime rt(config());
  // Plain (non-atomic) data: join must order the fiber's writes before the
  // joiner's reads (TSan checks this).
  std::vector<int> data(100, 0);
  rt.block_on([&] {
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < 100; ++i) {
      hs.push_back(weft::spawn([&data, i] {
        weft::this_fiber::yield();
        data[i] = i + 1;
      }));
    }
    for (auto& h : hs) h.join();
  });
  for (int i = 0; i < 100; ++i) EXPECT_EQ(data[i], i + 1);
  auto h = rt.spawn([&] { data[0] = -1; });
  static_assert(std::is_same_v<decltype(h), JoinHandle<void>>);
  h.join();
  EXPECT_EQ(data[0], -1);
}

TEST_P(Join, IsFinishedTracksCompletion) {
  Runtime rt(config());
  std::atomic<bool> release{false};
  auto h = rt.spawn([&] {
    while (!release.load()) weft::this_fiber::sleep_for(1ms);
    return 9;
  });
  EXPECT_TRUE(h.joinable());
  EXPECT_FALSE(h.is_finished());
  weft::this_fiber::sleep_for(20ms);  // plain thread: blocks this thread
  EXPECT_FALSE(h.is_finished()) << "finished while still waiting for release";
  release = true;
  EXPECT_TRUE(eventually([&] { return h.is_finished(); }));
  EXPECT_TRUE(h.joinable()) << "is_finished must not consume the result";
  EXPECT_EQ(h.join(), 9);
  EXPECT_FALSE(h.is_finished()) << "an empty handle is not finished";
}

TEST_P(Join, EmptyHandle) {
  JoinHandle<int> empty;
  EXPECT_FALSE(empty.joinable());
  EXPECT_FALSE(empty.is_finished());
  EXPECT_EQ(empty.id(), 0u);
  EXPECT_THROW(empty.join(), std::logic_error);
  JoinHandle<void> empty_void;
  EXPECT_THROW(empty_void.join(), std::logic_error);
  empty_void.detach();  // harmless

  Runtime rt(config());
  auto h = rt.spawn([] { return 1; });
  auto moved = std::move(h);
  EXPECT_FALSE(h.joinable());  // NOLINT(bugprone-use-after-move): checking moved-from state
  EXPECT_EQ(h.id(), 0u);
  EXPECT_THROW(h.join(), std::logic_error);
  EXPECT_EQ(moved.join(), 1);
  EXPECT_THROW(moved.join(), std::logic_error) << "joining twice must throw";
}

TEST_P(Join, JoinAfterTheFiberFinished) {
  Runtime rt(config());
  rt.block_on([] {
    auto h = weft::spawn([] { return 11; });
    ASSERT_TRUE(eventually([&] { return h.is_finished(); }));
    EXPECT_EQ(h.join(), 11);
  });
}

TEST_P(Join, IdsAreNonZeroDistinctAndMatchThisFiberId) {
  Runtime rt(config());
  constexpr int kFibers = 1000;
  std::vector<weft::FiberId> seen_inside(kFibers, 0);
  std::vector<weft::FiberId> from_handles;
  rt.block_on([&] {
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < kFibers; ++i) {
      hs.push_back(weft::spawn([&seen_inside, i] { seen_inside[i] = weft::this_fiber::id(); }));
    }
    for (auto& h : hs) from_handles.push_back(h.id());
    for (auto& h : hs) h.join();
  });
  std::set<weft::FiberId> distinct(from_handles.begin(), from_handles.end());
  EXPECT_EQ(distinct.size(), static_cast<std::size_t>(kFibers));
  EXPECT_EQ(distinct.count(0), 0u);
  for (int i = 0; i < kFibers; ++i) EXPECT_EQ(seen_inside[i], from_handles[i]) << i;

  // Unique within the process: another runtime never reuses them.
  Runtime other(weft::test::workers_config(1));
  auto h = other.spawn([] { return weft::this_fiber::id(); });
  weft::FiberId other_id = h.id();
  EXPECT_EQ(h.join(), other_id);
  EXPECT_EQ(distinct.count(other_id), 0u);
}

TEST_P(Join, DetachedFiberRunsToCompletion) {
  Runtime rt(config());
  std::atomic<bool> done{false};
  {
    auto h = rt.spawn([&] {
      weft::this_fiber::sleep_for(10ms);
      done = true;
    });
    EXPECT_NE(h.id(), 0u);
    h.detach();
    EXPECT_FALSE(h.joinable());
    EXPECT_EQ(h.id(), 0u);
    EXPECT_THROW(h.join(), std::logic_error);
  }
  EXPECT_TRUE(eventually([&] { return done.load(); }));
  std::atomic<int> dropped_done{0};
  for (int i = 0; i < 10; ++i) {
    // Destroying an unjoined handle detaches too.
    (void)rt.spawn([&] {
      weft::this_fiber::yield();
      ++dropped_done;
    });
  }
  EXPECT_TRUE(eventually([&] { return dropped_done.load() == 10; }));
  // Move-assigning over an unjoined handle detaches the old fiber.
  std::atomic<bool> first_done{false};
  auto h = rt.spawn([&] {
    weft::this_fiber::sleep_for(5ms);
    first_done = true;
    return 1;
  });
  h = rt.spawn([] { return 2; });
  EXPECT_EQ(h.join(), 2);
  EXPECT_TRUE(eventually([&] { return first_done.load(); }));
  expect_no_live_fibers(rt);
}

TEST_P(Join, CapturesAreDestroyedWhenTheFiberEnds) {
  Runtime rt(config());
  auto token = std::make_shared<int>(1);
  std::weak_ptr<int> weak = token;
  auto h = rt.spawn([t = std::move(token)] { return *t; });
  // The handle still holds the result, but the closure died with the fiber.
  ASSERT_TRUE(eventually([&] { return h.is_finished(); }));
  EXPECT_TRUE(weak.expired());
  EXPECT_EQ(h.join(), 1);
}

TEST_P(Join, DetachedExceptionIsReportedOnStderr) {
  Runtime rt(config());
  auto h = rt.spawn([]() -> int { throw std::runtime_error("nobody joins me"); });
  const weft::FiberId id = h.id();
  ASSERT_TRUE(eventually([&] { return h.is_finished(); }));
  ::testing::internal::CaptureStderr();
  h.detach();
  expect_no_live_fibers(rt);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("weft: fiber " + std::to_string(id) + " ended with an uncaught exception"),
            std::string::npos)
      << "stderr was: " << err;
  EXPECT_NE(err.find("nobody joins me"), std::string::npos) << "stderr was: " << err;
}

/// Naive recursive Fibonacci where every call above the leaves is a fiber
/// that spawns its two halves: a tree of fibers spawned from fibers.
long fib_fibers(int n) {
  if (n < 2) return n;
  auto a = weft::spawn([n] { return fib_fibers(n - 1); });
  auto b = weft::spawn([n] { return fib_fibers(n - 2); });
  return a.join() + b.join();
}

TEST_P(Join, TreeOfNestedSpawns) {
  Runtime rt(config());
  constexpr int n = weft::test::kSanitized ? 14 : 18;  // ~1.2k / ~8.4k fibers
  long want = 0, next = 1;                             // fib(n), iteratively
  for (int i = 0; i < n; ++i) {
    long sum = want + next;
    want = next;
    next = sum;
  }
  EXPECT_EQ(rt.block_on([] { return fib_fibers(n); }), want);
  expect_no_live_fibers(rt);
}

TEST_P(Join, NestedBlockOnFromAFiber) {
  Runtime rt(config());
  int v = rt.block_on([&rt] {
    // Parks this fiber, never blocks the worker (1 worker would deadlock).
    int inner = rt.block_on([] {
      weft::this_fiber::sleep_for(1ms);
      return weft::this_fiber::in_fiber() ? 20 : -1000;
    });
    return inner + 1;
  });
  EXPECT_EQ(v, 21);
}

TEST_P(Join, RootFiberIsNamedMain) {
  Runtime rt(config());
  EXPECT_EQ(rt.block_on([] { return std::string(weft::this_fiber::name()); }), "main");
}

TEST(JoinAcrossRuntimes, FiberOfOneRuntimeSpawnsOnAndJoinsAnother) {
  Runtime a(weft::test::workers_config(1));
  Runtime b(weft::test::workers_config(1));
  auto a_thread = a.block_on([] { return weft::test::current_thread_id(); });
  auto b_thread = b.block_on([] { return weft::test::current_thread_id(); });
  ASSERT_NE(a_thread, b_thread);
  auto [ran_on, nested_on] = a.block_on([&b] {
    // Runtime::spawn from a fiber of another runtime must go to b, and the
    // join parks only this fiber of a.
    auto h = b.spawn([] {
      weft::this_fiber::sleep_for(2ms);
      // weft::spawn inside b's fiber spawns on b.
      auto inner = weft::spawn([] { return weft::test::current_thread_id(); });
      return std::pair{weft::test::current_thread_id(), inner.join()};
    });
    return h.join();
  });
  EXPECT_EQ(ran_on, b_thread);
  EXPECT_EQ(nested_on, b_thread);
}

}  // namespace
