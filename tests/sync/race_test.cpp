// Wake versus timeout versus cancellation on the sync primitives. Every
// blocked call has exactly one winner among its waker, its timer and its
// cancellation, so a lock, a permit or a notification is never lost to a
// waiter that gave up. Pair races check each single race's outcome; stress
// runs check conservation; the shutdown test checks that a Runtime destroyed
// while fibers are blocked in lock/acquire/wait cancels them and leaves every
// primitive as if those calls had never been made.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::Clock;
using weft::JoinHandle;
using weft::Runtime;
using weft::test::Checker;
using weft::test::eventually;
using weft::test::scaled;
using weft::test::Watchdog;

class SyncRace : public weft::test::WorkersTest {};
WEFT_INSTANTIATE_WORKERS(SyncRace);

/// A delay around the 1 ms timer tick.
std::chrono::microseconds jitter(std::mt19937& rng) {
  return std::chrono::microseconds(rng() % 2500);
}

int rounds() {
  return static_cast<int>(scaled(200, 50));
}

// try_lock_for(1 ms) against unlock: true means the waiter owns the lock (it
// returns without unlocking), false means the lock is free afterwards.
TEST_P(SyncRace, MutexTimedLockVersusUnlock) {
  Runtime rt(config());
  weft::Mutex m;
  std::mt19937 rng(static_cast<unsigned>(workers()));
  int acquired = 0;
  for (int i = 0; i < rounds(); ++i) {
    m.lock();
    auto w = rt.spawn([&] { return m.try_lock_for(1ms); });
    std::this_thread::sleep_for(jitter(rng));
    m.unlock();
    const bool got = w.join();
    if (got) {
      ++acquired;
      ASSERT_FALSE(m.try_lock()) << "round " << i << ": the waiter got the lock but it is free";
      m.unlock();  // on the waiter's behalf
    } else {
      ASSERT_TRUE(m.try_lock()) << "round " << i << ": the waiter timed out and the lock is lost";
      m.unlock();
    }
  }
  RecordProperty("acquired", acquired);
}

TEST_P(SyncRace, SharedMutexTimedLockVersusUnlock) {
  Runtime rt(config());
  weft::SharedMutex m;
  std::mt19937 rng(static_cast<unsigned>(workers()) + 3);
  for (int i = 0; i < rounds(); ++i) {
    const bool shared = i % 2 == 0;
    m.lock();
    auto w = rt.spawn([&] { return shared ? m.try_lock_shared_for(1ms) : m.try_lock_for(1ms); });
    std::this_thread::sleep_for(jitter(rng));
    m.unlock();
    const bool got = w.join();
    if (got) {
      ASSERT_FALSE(m.try_lock()) << "round " << i << ": acquired, yet the lock is free";
      if (shared) {
        ASSERT_TRUE(m.try_lock_shared()) << "round " << i;
        m.unlock_shared();
        m.unlock_shared();
      } else {
        m.unlock();
      }
    } else {
      ASSERT_TRUE(m.try_lock()) << "round " << i << ": timed out and the lock is lost";
      m.unlock();
    }
  }
}

// acquire_for(1 ms, n) against release(n): either the waiter took the n
// permits, or they are all still available.
TEST_P(SyncRace, SemaphoreTimedAcquireVersusRelease) {
  Runtime rt(config());
  weft::Semaphore sem(0);
  std::mt19937 rng(static_cast<unsigned>(workers()) + 7);
  for (int i = 0; i < rounds(); ++i) {
    const std::int64_t n = 1 + i % 3;
    auto w = rt.spawn([&] { return sem.acquire_for(1ms, n); });
    std::this_thread::sleep_for(jitter(rng));
    sem.release(n);
    const bool got = w.join();
    ASSERT_EQ(sem.available(), got ? 0 : n) << "round " << i << ": permits lost or duplicated";
    if (!got) {
      ASSERT_TRUE(sem.try_acquire(n));
    }
  }
}

// Notify: wait_for(1 ms) against notify_one. If the waiter timed out, the
// notification had no waiter and must be stored as the permit; if it was
// woken, nothing may be stored.
TEST_P(SyncRace, NotifyTimedWaitVersusNotifyOne) {
  Runtime rt(config());
  weft::Notify n;
  std::mt19937 rng(static_cast<unsigned>(workers()) + 11);
  for (int i = 0; i < rounds(); ++i) {
    auto w = rt.spawn([&] { return n.wait_for(1ms); });
    std::this_thread::sleep_for(jitter(rng));
    n.notify_one();
    const bool woken = w.join();
    if (woken) {
      ASSERT_FALSE(n.wait_for(2ms)) << "round " << i << ": woken and a permit stored too";
    } else {
      ASSERT_TRUE(n.wait_for(200ms)) << "round " << i << ": the notification was lost";
    }
  }
}

// CondVar: A waits with a ~1-4 ms timeout, B (queued after A) without one;
// one notify_one. If A timed out, the notification must have gone to B.
// A waiter is known to be queued once it said so under the mutex and the
// test thread then got the mutex: wait() releases it only after queueing.
TEST_P(SyncRace, CondVarTimedWaiterVersusNotifyOne) {
  Runtime rt(config());
  weft::Mutex m;
  weft::CondVar cv;
  std::mt19937 rng(static_cast<unsigned>(workers()) + 13);
  int a_timeouts = 0;
  auto until_queued = [&](std::atomic<bool>& flag) {
    ASSERT_TRUE(eventually([&] { return flag.load(); }));
    std::lock_guard g(m);
  };
  for (int i = 0; i < rounds(); ++i) {
    std::atomic<bool> a_waiting{false}, b_waiting{false}, b_woke{false};
    const auto a_timeout = 1000us + jitter(rng);
    auto a = rt.spawn([&] {
      std::unique_lock lk(m);
      a_waiting = true;
      return cv.wait_for(lk, a_timeout);
    });
    until_queued(a_waiting);  // or already timed out
    auto b = rt.spawn([&] {
      std::unique_lock lk(m);
      b_waiting = true;
      cv.wait(lk);
      b_woke = true;
    });
    until_queued(b_waiting);
    std::this_thread::sleep_for(jitter(rng) / 2);
    cv.notify_one();
    const auto a_status = a.join();
    if (a_status == std::cv_status::timeout) {
      ++a_timeouts;
      ASSERT_TRUE(eventually([&] { return b_woke.load(); }))
          << "round " << i << ": A timed out and B never got the notification";
    }
    while (!b_woke.load()) {
      cv.notify_all();
      std::this_thread::sleep_for(100us);
    }
    b.join();
  }
  RecordProperty("a_timeouts", a_timeouts);
}

// Barrier(2): a timed arrival against a second arrival. Both complete the
// generation (one leader) or both time out (generation unchanged): never one
// of each.
TEST_P(SyncRace, BarrierTimedArrivalVersusArrival) {
  Runtime rt(config());
  weft::Barrier barrier(2);
  std::mt19937 rng(static_cast<unsigned>(workers()) + 17);
  std::uint64_t gen = 0;
  for (int i = 0; i < rounds(); ++i) {
    auto a = rt.spawn([&] { return barrier.arrive_and_wait_for(1ms); });
    std::this_thread::sleep_for(jitter(rng));
    const auto mine = barrier.arrive_and_wait_for(1ms);
    const auto theirs = a.join();
    using R = weft::Barrier::Result;
    const bool mine_done = mine != R::timed_out, theirs_done = theirs != R::timed_out;
    ASSERT_EQ(mine_done, theirs_done) << "round " << i << ": one completed, the other timed out";
    if (mine_done) {
      ++gen;
      ASSERT_NE(mine, theirs) << "round " << i << ": two leaders or none";
    }
    ASSERT_EQ(barrier.generation(), gen) << "round " << i;
  }
}

// Many fibers with tiny timeouts on one semaphore: permits are conserved.
TEST_P(SyncRace, SemaphoreStressWithTimeoutsConservesPermits) {
  Runtime rt(config());
  constexpr std::int64_t kPermits = 4;
  weft::Semaphore sem(kPermits);
  std::atomic<std::int64_t> held{0};
  Checker check;
  const int per = static_cast<int>(scaled(1000, 100));
  rt.block_on([&] {
    std::vector<JoinHandle<void>> hs;
    for (int f = 0; f < 32; ++f) {
      hs.push_back(weft::spawn([&, f] {
        std::mt19937 rng(f);
        for (int i = 0; i < per; ++i) {
          const std::int64_t n = 1 + rng() % 3;
          if (!sem.acquire_for(jitter(rng) / 2, n)) continue;
          check.check(held.fetch_add(n) + n <= kPermits, "more permits held than exist");
          if (rng() % 4 == 0) weft::this_fiber::sleep_for(jitter(rng) / 4);
          held.fetch_sub(n);
          sem.release(n);
        }
      }));
    }
    for (auto& h : hs) h.join();
  });
  WEFT_EXPECT_NO_FAILURES(check);
  EXPECT_EQ(sem.available(), kPermits);
}

// Many fibers mixing lock() and try_lock_for(tiny) on one mutex: exclusion
// holds and the lock ends up free.
TEST_P(SyncRace, MutexStressWithTimeouts) {
  Runtime rt(config());
  weft::Mutex m;
  long counter = 0;
  std::atomic<long> successes{0};
  std::atomic<int> inside{0};
  Checker check;
  const int per = static_cast<int>(scaled(1000, 100));
  rt.block_on([&] {
    std::vector<JoinHandle<void>> hs;
    for (int f = 0; f < 32; ++f) {
      hs.push_back(weft::spawn([&, f] {
        std::mt19937 rng(f);
        for (int i = 0; i < per; ++i) {
          if (f % 2 == 0) {
            m.lock();
          } else if (!m.try_lock_for(jitter(rng) / 4)) {
            continue;
          }
          check.check(inside.fetch_add(1) == 0, "two holders");
          ++counter;
          if (rng() % 64 == 0) weft::this_fiber::sleep_for(jitter(rng) / 8);  // >= 1 tick
          inside.fetch_sub(1);
          m.unlock();
          successes.fetch_add(1);
        }
      }));
    }
    for (auto& h : hs) h.join();
  });
  WEFT_EXPECT_NO_FAILURES(check);
  EXPECT_EQ(counter, successes.load());
  EXPECT_TRUE(m.try_lock()) << "the mutex is left locked";
  m.unlock();
}

// ---------------------------------------------------------------------------
// Shutdown cancels fibers blocked on every primitive.

TEST_P(SyncRace, ShutdownCancelsFibersBlockedOnEveryPrimitive) {
  weft::Mutex mutex;
  weft::SharedMutex rw_writer_held, rw_reader_held;
  weft::Semaphore sem(0);
  weft::Mutex cv_mutex;
  weft::CondVar cv;
  weft::Barrier barrier(3);
  weft::WaitGroup wg(1);
  weft::Latch latch(1);
  weft::Event event;
  weft::Notify notify;
  weft::Once once;
  std::atomic<int> started{0}, cancelled{0}, returned{0}, cv_relocked{0};

  mutex.lock();                  // held by the test thread
  rw_writer_held.lock();         // held exclusively by the test thread
  rw_reader_held.lock_shared();  // held shared by the test thread

  struct Op {
    const char* name;
    std::function<void()> fn;
  };
  std::vector<Op> ops = {
      {"Mutex::lock", [&] { mutex.lock(); }},
      {"Mutex::try_lock_for", [&] { (void)mutex.try_lock_for(1h); }},
      {"SharedMutex::lock_shared", [&] { rw_writer_held.lock_shared(); }},
      {"SharedMutex::lock", [&] { rw_reader_held.lock(); }},
      {"Semaphore::acquire", [&] { sem.acquire(2); }},
      {"Semaphore::acquire_for", [&] { (void)sem.acquire_for(1h); }},
      {"CondVar::wait",
       [&] {
         std::unique_lock lk(cv_mutex);
         try {
           cv.wait(lk);
         } catch (const weft::Cancelled&) {
           if (lk.owns_lock()) ++cv_relocked;
           throw;
         }
       }},
      {"Barrier::arrive_and_wait", [&] { (void)barrier.arrive_and_wait(); }},
      {"Barrier::arrive_and_wait_for", [&] { (void)barrier.arrive_and_wait_for(1h); }},
      {"WaitGroup::wait", [&] { wg.wait(); }},
      {"Latch::wait", [&] { latch.wait(); }},
      {"Event::wait", [&] { event.wait(); }},
      {"Notify::wait", [&] { notify.wait(); }},
      {"call_once (runner)",
       [&] { weft::call_once(once, [] { weft::this_fiber::sleep_for(1h); }); }},
      {"call_once (waiter)",
       [&] { weft::call_once(once, [] { weft::this_fiber::sleep_for(1h); }); }},
  };
  const int n = static_cast<int>(ops.size());
  std::vector<std::string> not_cancelled;
  std::mutex not_cancelled_mu;
  {
    Watchdog wd("~Runtime with fibers blocked on sync primitives");  // outlives rt
    Runtime rt(config());
    for (auto& op : ops) {
      rt.spawn([&, op] {
          ++started;
          try {
            op.fn();
            ++returned;
            std::lock_guard g(not_cancelled_mu);
            not_cancelled.push_back(op.name);
          } catch (const weft::Cancelled&) {
            ++cancelled;
            throw;
          }
        }).detach();
    }
    ASSERT_TRUE(eventually([&] { return started.load() == n; }));
    ASSERT_TRUE(
        eventually([&] { return rt.stats().fibers_parked >= static_cast<std::uint64_t>(n); }));
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(cancelled.load(), n);
  EXPECT_EQ(returned.load(), 0) << "returned normally: " << ::testing::PrintToString(not_cancelled);
  EXPECT_EQ(cv_relocked.load(), 1) << "CondVar::wait must relock before Cancelled propagates";

  // Every primitive is as if the cancelled calls had never been made.
  mutex.unlock();
  EXPECT_TRUE(mutex.try_lock()) << "Mutex: a cancelled waiter took or kept the lock";
  mutex.unlock();
  rw_writer_held.unlock();
  EXPECT_TRUE(rw_writer_held.try_lock()) << "SharedMutex: a cancelled reader holds it";
  rw_writer_held.unlock();
  rw_reader_held.unlock_shared();
  EXPECT_TRUE(rw_reader_held.try_lock_shared()) << "SharedMutex: a cancelled writer blocks readers";
  rw_reader_held.unlock_shared();
  EXPECT_TRUE(rw_reader_held.try_lock()) << "SharedMutex: a cancelled writer holds it";
  rw_reader_held.unlock();
  sem.release(2);
  EXPECT_EQ(sem.available(), 2) << "Semaphore: a cancelled waiter took permits";
  EXPECT_TRUE(cv_mutex.try_lock()) << "CondVar's mutex left locked by the cancelled waiter";
  cv_mutex.unlock();
  cv.notify_all();
  EXPECT_EQ(barrier.generation(), 0u);
  EXPECT_EQ(barrier.arrive_and_wait_for(10ms), weft::Barrier::Result::timed_out)
      << "Barrier: cancelled arrivals were not withdrawn";
  notify.notify_one();
  EXPECT_TRUE(notify.wait_for(200ms)) << "Notify: the permit went to a cancelled waiter";
  EXPECT_FALSE(once.is_done());
  int runs = 0;
  weft::call_once(once, [&] { ++runs; });
  EXPECT_EQ(runs, 1) << "Once: stuck after its runner was cancelled";
  wg.done();
  EXPECT_EQ(wg.count(), 0);
  latch.count_down();
  EXPECT_TRUE(latch.try_wait());
  event.set();
  EXPECT_TRUE(event.is_set());
}

}  // namespace
