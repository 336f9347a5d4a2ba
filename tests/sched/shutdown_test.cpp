// Runtime destruction: every fiber still alive is cancelled (weft::Cancelled
// thrown from its blocking call), unwinds, and the destructor returns.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::JoinHandle;
using weft::Runtime;
using weft::test::eventually;
using weft::test::Watchdog;

class Shutdown : public weft::test::WorkersTest {};
WEFT_INSTANTIATE_WORKERS(Shutdown);

struct SetOnDestruction {
  std::atomic<int>* counter;
  ~SetOnDestruction() { ++*counter; }
};

TEST_P(Shutdown, ParkedDetachedFiberIsCancelledAndUnwinds) {
  std::atomic<bool> started{false}, cancelled{false}, returned_normally{false};
  std::atomic<int> destroyed{0};
  {
    Watchdog wd("~Runtime with a fiber parked in sleep_for(1h)");  // outlives rt: guards ~Runtime
    Runtime rt(config());
    rt.spawn([&] {
        SetOnDestruction local{&destroyed};
        started = true;
        try {
          weft::this_fiber::sleep_for(1h);
          returned_normally = true;
        } catch (const weft::Cancelled&) {
          cancelled = true;
          throw;
        }
      }).detach();
    ASSERT_TRUE(eventually([&] { return started.load(); }));
    std::this_thread::sleep_for(5ms);  // let it really park
    // rt is destroyed here.
  }
  EXPECT_TRUE(cancelled.load()) << "the fiber's catch (weft::Cancelled&) did not run";
  EXPECT_EQ(destroyed.load(), 1) << "the fiber's locals were not destroyed";
  EXPECT_FALSE(returned_normally.load());
}

TEST_P(Shutdown, CancelledIsAStdExceptionWithAMessage) {
  std::string what;
  std::atomic<bool> started{false};
  {
    Watchdog wd("~Runtime");  // outlives rt: guards ~Runtime
    Runtime rt(config());
    rt.spawn([&] {
        started = true;
        try {
          weft::this_fiber::sleep_for(1h);
        } catch (const std::exception& e) {  // catchable as std::exception
          what = e.what();
        }
      }).detach();
    ASSERT_TRUE(eventually([&] { return started.load(); }));
  }
  EXPECT_EQ(what, "weft: fiber cancelled");
}

TEST_P(Shutdown, ManyParkedFibersAreAllCancelled) {
  const int n = static_cast<int>(weft::test::scaled(1000, 100));
  std::atomic<int> started{0}, cancelled{0}, destroyed{0};
  {
    Watchdog wd("~Runtime with many parked fibers");  // outlives rt: guards ~Runtime
    Runtime rt(config());
    rt.block_on([&] {
      for (int i = 0; i < n; ++i) {
        weft::spawn([&, i] {
          SetOnDestruction local{&destroyed};
          ++started;
          try {
            if (i % 2 == 0) {
              weft::this_fiber::sleep_for(1h);
            } else {
              weft::this_fiber::sleep_until(weft::Clock::now() + 24h);
            }
          } catch (const weft::Cancelled&) {
            ++cancelled;
            throw;
          }
        }).detach();
      }
    });
    ASSERT_TRUE(eventually([&] { return started.load() == n; }));
  }
  EXPECT_EQ(cancelled.load(), n);
  EXPECT_EQ(destroyed.load(), n);
}

TEST_P(Shutdown, JoinIsCancelledToo) {
  std::atomic<bool> started{false}, joiner_cancelled{false}, sleeper_cancelled{false};
  {
    Watchdog wd("~Runtime with a fiber parked in join");  // outlives rt: guards ~Runtime
    Runtime rt(config());
    rt.spawn([&] {
        auto sleeper = weft::spawn([&] {
          try {
            weft::this_fiber::sleep_for(1h);
          } catch (const weft::Cancelled&) {
            sleeper_cancelled = true;
            throw;
          }
        });
        started = true;
        try {
          sleeper.join();
        } catch (const weft::Cancelled&) {
          joiner_cancelled = true;
          throw;
        }
      }).detach();
    ASSERT_TRUE(eventually([&] { return started.load(); }));
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(joiner_cancelled.load());
  EXPECT_TRUE(sleeper_cancelled.load());
}

TEST_P(Shutdown, BlockingAgainAfterCancellationThrowsAgain) {
  std::atomic<bool> started{false}, first{false}, second{false}, third{false};
  {
    Watchdog wd("~Runtime with a fiber that keeps blocking");  // outlives rt: guards ~Runtime
    Runtime rt(config());
    rt.spawn([&] {
        started = true;
        try {
          weft::this_fiber::sleep_for(1h);
        } catch (const weft::Cancelled&) {
          first = true;  // swallowed ...
        }
        try {
          weft::this_fiber::sleep_for(1h);  // ... so the next block must throw at once
        } catch (const weft::Cancelled&) {
          second = true;
        }
        try {
          // Joining a fiber that blocks: either this join is cancelled, or
          // the child (cancelled too) ends first and join rethrows that.
          weft::spawn([] { weft::this_fiber::sleep_for(1h); }).join();
        } catch (const weft::Cancelled&) {
          third = true;
        } catch (const std::logic_error&) {
          third = true;  // spawning may already be closed
        }
      }).detach();
    ASSERT_TRUE(eventually([&] { return started.load(); }));
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(first.load()) << "the parked sleep was not cancelled";
  EXPECT_TRUE(second.load()) << "a sleep entered after cancellation did not throw Cancelled";
  EXPECT_TRUE(third.load()) << "join of a blocking child after cancellation did not throw";
}

TEST_P(Shutdown, FibersSpawnedWhileUnwindingAreCancelled) {
  std::atomic<bool> started{false}, child_cancelled{false}, spawn_refused{false};
  std::atomic<int> child_ran{0};
  {
    Watchdog wd("~Runtime with a fiber spawning during shutdown");  // outlives rt: guards ~Runtime
    Runtime rt(config());
    rt.spawn([&] {
        started = true;
        try {
          weft::this_fiber::sleep_for(1h);
        } catch (const weft::Cancelled&) {
          try {
            weft::spawn([&] {
              ++child_ran;
              try {
                weft::this_fiber::sleep_for(1h);
              } catch (const weft::Cancelled&) {
                child_cancelled = true;
                throw;
              }
            }).detach();
          } catch (const std::logic_error&) {
            spawn_refused = true;
          }
          throw;
        }
      }).detach();
    ASSERT_TRUE(eventually([&] { return started.load(); }));
  }
  EXPECT_TRUE(spawn_refused.load() || child_cancelled.load() || child_ran.load() == 0)
      << "a fiber spawned during shutdown slept on";
}

TEST_P(Shutdown, RunnableFibersRunToCompletion) {
  // yield is not a cancellation point: a fiber that never parks finishes.
  std::atomic<int> iterations{0};
  {
    Watchdog wd("~Runtime with a yielding fiber");  // outlives rt: guards ~Runtime
    Runtime rt(config());
    rt.spawn([&] {
        for (int i = 0; i < 2000; ++i) {
          ++iterations;
          weft::this_fiber::yield();
        }
      }).detach();
  }
  EXPECT_EQ(iterations.load(), 2000);
}

TEST_P(Shutdown, WaitsForRunningBlockingTasks) {
  std::atomic<bool> started{false}, finished{false};
  {
    Watchdog wd("~Runtime with a running blocking task");  // outlives rt: guards ~Runtime
    Runtime rt(config());
    rt.block_on([&] {
      weft::spawn_blocking([&] {
        started = true;
        std::this_thread::sleep_for(50ms);
        finished = true;
      }).detach();
    });
    ASSERT_TRUE(eventually([&] { return started.load(); }));
  }
  EXPECT_TRUE(finished.load()) << "the destructor returned while a blocking task still ran";
}

TEST_P(Shutdown, CreateAndDestroyRepeatedly) {
  Watchdog wd("create/destroy loop");
  for (int i = 0; i < 20; ++i) {
    Runtime rt(config());
    if (i % 2 == 0) {
      EXPECT_EQ(rt.block_on([i] { return i; }), i);
    }
  }
}

TEST_P(Shutdown, DetachedFibersKeepRunningAfterBlockOnReturns) {
  std::atomic<bool> done{false};
  Runtime rt(config());
  rt.block_on([&] {
    weft::spawn([&] {
      weft::this_fiber::sleep_for(20ms);
      done = true;
    }).detach();
  });
  EXPECT_TRUE(eventually([&] { return done.load(); }));
}

}  // namespace

// A plain thread's spawn races the destructor: the fiber it queued runs and
// ends, and ~Runtime may then free the workers while that thread is still
// in the wake-up that follows its queueing (Worker::post under
// thread_per_core, notify_work under work stealing). The spawning thread
// keeps its handle until the runtime is gone, so that nothing but the
// external-wake bracket orders its wake-up before the workers are freed:
// without it, the wake-up and the free are unordered, a race TSan judges
// by happens-before rather than by timing: with the bracket removed it
// reported the spawner's eventfd write (notify_work -> Worker::wake) racing
// ~UringBackend's close of that eventfd, a write that could land on a
// reused descriptor. The plain run only shows that nothing crashes.
class ShutdownStrategies : public ::testing::TestWithParam<weft::Strategy> {};
WEFT_INSTANTIATE_STRATEGIES(ShutdownStrategies);

TEST_P(ShutdownStrategies, SpawnFromAPlainThreadRacesTheDestructor) {
  for (int round = 0; round < 10; ++round) {
    weft::Config c = weft::test::base_config();
    c.strategy = GetParam();
    c.workers = GetParam() == weft::Strategy::single_threaded ? 1 : 2;
    auto rt = std::make_unique<Runtime>(c);
    Runtime* raw = rt.get();
    std::atomic<bool> ran{false};
    std::atomic<bool> destroyed{false};
    std::thread spawner([&] {
      JoinHandle<void> h = raw->spawn([&] { ran.store(true, std::memory_order_release); });
      while (!destroyed.load(std::memory_order_acquire)) std::this_thread::yield();
    });
    // acquire: the fiber ran, so the spawner's queueing happened before this
    // (its wake-up after the queueing is ordered only by the bracket).
    while (!ran.load(std::memory_order_acquire)) std::this_thread::yield();
    rt.reset();
    destroyed.store(true, std::memory_order_release);
    spawner.join();
  }
}
