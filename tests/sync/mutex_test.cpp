// Mutex, SharedMutex and Synchronized: mutual exclusion with thousands of
// fibers across workers and with plain threads, the try/timed forms, the std
// lock adaptors, and the anti-starvation guarantees (a waiter eventually gets
// a contended Mutex; a writer is not starved by a stream of readers, nor
// readers by writers).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/cancel_util.hpp"
#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::Clock;
using weft::JoinHandle;
using weft::Runtime;
using weft::test::Checker;
using weft::test::eventually;
using weft::test::kSanitized;
using weft::test::scaled;
using weft::test::settle_parked;
using weft::test::Watchdog;

class MutexTest : public weft::test::WorkersTest {};
WEFT_INSTANTIATE_WORKERS(MutexTest);

// 10,000 fibers (1,000 under sanitizers: TSan cannot track many more live
// fibers) increment a plain int under the lock; some yield while holding it
// so that others really queue.
TEST_P(MutexTest, ThousandsOfFibersKeepAPlainCounterExact) {
  Runtime rt(config());
  const int fibers = kSanitized ? 1000 : 10000;
  constexpr int kIncrements = 20;
  weft::Mutex m;
  long counter = 0;  // plain: only the mutex protects it
  std::atomic<int> inside{0};
  Checker check;
  {
    Watchdog wd("10,000 fibers on one mutex");
    rt.block_on([&] {
      std::vector<JoinHandle<void>> hs;
      hs.reserve(fibers);
      for (int f = 0; f < fibers; ++f) {
        hs.push_back(weft::spawn([&, f] {
          for (int i = 0; i < kIncrements; ++i) {
            std::lock_guard g(m);
            check.check(inside.fetch_add(1) == 0, "two holders at once");
            const long before = counter;
            if ((f + i) % 7 == 0) weft::this_fiber::yield();
            counter = before + 1;
            inside.fetch_sub(1);
          }
        }));
      }
      for (auto& h : hs) h.join();
    });
  }
  WEFT_EXPECT_NO_FAILURES(check);
  EXPECT_EQ(counter, static_cast<long>(fibers) * kIncrements);
  EXPECT_TRUE(m.try_lock()) << "the mutex is left locked";
}

TEST_P(MutexTest, TryLockAndTimedLock) {
  Runtime rt(config());
  weft::Mutex m;
  std::atomic<bool> held{false}, release{false};
  auto holder = rt.spawn([&] {
    std::lock_guard g(m);
    held = true;
    while (!release.load()) weft::this_fiber::sleep_for(1ms);
  });
  ASSERT_TRUE(eventually([&] { return held.load(); }));
  rt.block_on([&] {
    EXPECT_FALSE(m.try_lock());
    auto start = Clock::now();
    EXPECT_FALSE(m.try_lock_for(15ms));
    EXPECT_GE(Clock::now() - start, 15ms) << "try_lock_for gave up early";
    start = Clock::now();
    EXPECT_FALSE(m.try_lock_until(start + 10ms));
    EXPECT_GE(Clock::now() - start, 10ms);
    EXPECT_FALSE(m.try_lock_for(0ms));
    EXPECT_FALSE(m.try_lock_until(Clock::now() - 1s));
    std::unique_lock ul(m, std::try_to_lock);
    EXPECT_FALSE(ul.owns_lock());
    // Now let the holder go while we wait with a long timeout.
    release = true;
    EXPECT_TRUE(m.try_lock_for(weft::test::kPatience));
    m.unlock();
  });
  holder.join();
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST(MutexPlain, TimedLockFromAPlainThread) {
  weft::Mutex m;
  m.lock();
  std::thread t([&] {
    const auto start = Clock::now();
    EXPECT_FALSE(m.try_lock_for(15ms));
    EXPECT_GE(Clock::now() - start, 15ms);
  });
  t.join();
  m.unlock();
  std::thread t2([&] { EXPECT_TRUE(m.try_lock_for(1ms)); });
  t2.join();
  m.unlock();  // unlocking from another thread than the locker is allowed
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST_P(MutexTest, StdLockAdaptorsAndScopedLockWithoutDeadlock) {
  Runtime rt(config());
  weft::Mutex a, b;
  long in_both = 0;
  const int rounds = static_cast<int>(scaled(5000, 500));
  {
    Watchdog wd("std::scoped_lock on two weft::Mutex in opposite orders");
    rt.block_on([&] {
      auto one = weft::spawn([&] {
        for (int i = 0; i < rounds; ++i) {
          std::scoped_lock g(a, b);
          ++in_both;
          if (i % 16 == 0) weft::this_fiber::yield();
        }
      });
      auto two = weft::spawn([&] {
        for (int i = 0; i < rounds; ++i) {
          std::scoped_lock g(b, a);
          ++in_both;
          if (i % 16 == 0) weft::this_fiber::yield();
        }
      });
      for (int i = 0; i < rounds; ++i) {
        std::unique_lock ua(a, std::defer_lock);
        std::unique_lock ub(b, std::defer_lock);
        std::lock(ub, ua);
        ++in_both;
      }
      one.join();
      two.join();
    });
  }
  EXPECT_EQ(in_both, 3L * rounds);
}

TEST_P(MutexTest, FibersAndPlainThreadsShareOneMutex) {
  Runtime rt(config());
  weft::Mutex m;
  long counter = 0;
  std::atomic<int> inside{0};
  Checker check;
  constexpr int kThreads = 3, kFibers = 40;
  const int per = static_cast<int>(scaled(5000, 500));
  auto work = [&](bool fiber) {
    for (int i = 0; i < per; ++i) {
      std::lock_guard g(m);
      check.check(inside.fetch_add(1) == 0, "two holders at once");
      ++counter;
      if (fiber && i % 32 == 0) weft::this_fiber::yield();
      inside.fetch_sub(1);
    }
  };
  Watchdog wd("fibers and threads on one mutex");
  std::vector<std::thread> threads;
  std::vector<JoinHandle<void>> fibers;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(work, false);
  for (int f = 0; f < kFibers; ++f) fibers.push_back(rt.spawn([&] { work(true); }));
  for (auto& t : threads) t.join();
  for (auto& f : fibers) f.join();
  WEFT_EXPECT_NO_FAILURES(check);
  EXPECT_EQ(counter, static_cast<long>(per) * (kThreads + kFibers));
}

TEST(MutexPlain, PlainThreadsWithoutAnyRuntime) {
  weft::Mutex m;
  long counter = 0;
  const int per = static_cast<int>(scaled(50000, 5000));
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < per; ++i) {
        std::lock_guard g(m);
        ++counter;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(counter, 4L * per);
}

// Starvation guard: hogs re-lock the mutex as soon as they release it; a
// waiter that arrives meanwhile must still get it.
TEST_P(MutexTest, AWaiterEventuallyAcquiresUnderConstantContention) {
  Runtime rt(config());
  weft::Mutex m;
  std::atomic<bool> stop{false}, victim_got_it{false};
  std::atomic<long> hog_rounds{0};
  std::vector<JoinHandle<void>> hogs;
  for (int h = 0; h < 4; ++h) {
    hogs.push_back(rt.spawn([&] {
      while (!stop.load()) {
        m.lock();
        for (int spin = 0; spin < 50; ++spin) weft::detail::cpu_relax();
        if (hog_rounds.fetch_add(1) % 8 == 0) weft::this_fiber::yield();  // hold across a yield
        m.unlock();
      }
    }));
  }
  std::thread thread_hog([&] {
    while (!stop.load()) {
      std::lock_guard g(m);
      hog_rounds.fetch_add(1);
    }
  });
  ASSERT_TRUE(eventually([&] { return hog_rounds.load() > 1000; }));
  auto victim = rt.spawn([&] {
    m.lock();
    victim_got_it = true;
    m.unlock();
  });
  const bool got = eventually([&] { return victim_got_it.load(); });
  stop = true;
  thread_hog.join();
  for (auto& h : hogs) h.join();
  victim.join();
  EXPECT_TRUE(got) << "a waiter starved behind hogs that re-lock at once";
}

// ---------------------------------------------------------------------------
// SharedMutex

class SharedMutexTest : public weft::test::WorkersTest {};
WEFT_INSTANTIATE_WORKERS(SharedMutexTest);

TEST_P(SharedMutexTest, NoReaderWhileAWriterHoldsIt) {
  Runtime rt(config());
  weft::SharedMutex m;
  std::atomic<int> readers{0}, writers{0};
  std::atomic<int> max_readers{0};
  long protected_value = 0;  // written only under the exclusive lock
  Checker check;
  constexpr int kReaders = 24, kWriters = 6;
  const int rounds = static_cast<int>(scaled(2000, 200));
  {
    Watchdog wd("SharedMutex invariant run");
    rt.block_on([&] {
      std::vector<JoinHandle<void>> hs;
      for (int r = 0; r < kReaders; ++r) {
        hs.push_back(weft::spawn([&, r] {
          for (int i = 0; i < rounds; ++i) {
            std::shared_lock g(m);
            const int now = readers.fetch_add(1) + 1;
            int seen = max_readers.load();
            while (now > seen && !max_readers.compare_exchange_weak(seen, now)) {
            }
            check.check(writers.load() == 0, "a reader inside while a writer holds the lock");
            const long v = protected_value;
            if ((r + i) % 5 == 0) weft::this_fiber::yield();
            check.check(protected_value == v, "the value changed under a shared lock");
            readers.fetch_sub(1);
          }
        }));
      }
      for (int w = 0; w < kWriters; ++w) {
        hs.push_back(weft::spawn([&, w] {
          for (int i = 0; i < rounds; ++i) {
            std::lock_guard g(m);
            check.check(writers.fetch_add(1) == 0, "two writers at once");
            check.check(readers.load() == 0, "a writer inside while readers hold the lock");
            const long v = protected_value;
            if ((w + i) % 3 == 0) weft::this_fiber::yield();
            protected_value = v + 1;
            writers.fetch_sub(1);
          }
        }));
      }
      for (auto& h : hs) h.join();
    });
  }
  WEFT_EXPECT_NO_FAILURES(check);
  EXPECT_EQ(protected_value, static_cast<long>(kWriters) * rounds);
  RecordProperty("max_concurrent_readers", max_readers.load());
}

TEST_P(SharedMutexTest, ReadersHoldItTogether) {
  Runtime rt(config());
  weft::SharedMutex m;
  constexpr int kReaders = 8;
  std::atomic<int> holding{0};
  std::atomic<bool> all_seen{false}, release{false};
  std::vector<JoinHandle<bool>> hs;
  for (int r = 0; r < kReaders; ++r) {
    hs.push_back(rt.spawn([&] {
      m.lock_shared();
      ++holding;
      // Every reader must get in while the others still hold it.
      const bool together = eventually([&] { return holding.load() == kReaders; });
      while (!release.load()) weft::this_fiber::sleep_for(1ms);
      m.unlock_shared();
      return together;
    }));
  }
  all_seen = eventually([&] { return holding.load() == kReaders; });
  EXPECT_TRUE(all_seen.load()) << "only " << holding.load() << " readers got in together";
  EXPECT_TRUE(m.try_lock_shared()) << "try_lock_shared failed with only readers holding";
  m.unlock_shared();
  EXPECT_FALSE(m.try_lock()) << "try_lock succeeded while readers hold the lock";
  release = true;
  for (auto& h : hs) EXPECT_TRUE(h.join());
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST_P(SharedMutexTest, WriterIsNotStarvedByContinuousReaders) {
  Runtime rt(config());
  weft::SharedMutex m;
  std::atomic<bool> stop{false}, writer_done{false};
  std::atomic<long> reads{0};
  std::vector<JoinHandle<void>> readers;
  for (int r = 0; r < 8; ++r) {
    readers.push_back(rt.spawn([&] {
      while (!stop.load()) {
        std::shared_lock g(m);
        reads.fetch_add(1);
        weft::this_fiber::sleep_for(200us);  // readers overlap: the lock is never free
      }
    }));
  }
  ASSERT_TRUE(eventually([&] { return reads.load() > 100; }));
  auto writer = rt.spawn([&] {
    std::lock_guard g(m);
    writer_done = true;
  });
  const bool got = eventually([&] { return writer_done.load(); });
  stop = true;
  writer.join();
  for (auto& r : readers) r.join();
  EXPECT_TRUE(got) << "the writer starved behind a stream of readers";
}

TEST_P(SharedMutexTest, ReadersAreNotStarvedByContinuousWriters) {
  Runtime rt(config());
  weft::SharedMutex m;
  std::atomic<bool> stop{false}, reader_done{false};
  std::atomic<long> writes{0};
  std::vector<JoinHandle<void>> writers;
  for (int w = 0; w < 4; ++w) {
    writers.push_back(rt.spawn([&] {
      while (!stop.load()) {
        std::lock_guard g(m);
        writes.fetch_add(1);
        weft::this_fiber::sleep_for(100us);
      }
    }));
  }
  ASSERT_TRUE(eventually([&] { return writes.load() > 50; }));
  auto reader = rt.spawn([&] {
    std::shared_lock g(m);
    reader_done = true;
  });
  const bool got = eventually([&] { return reader_done.load(); });
  stop = true;
  reader.join();
  for (auto& w : writers) w.join();
  EXPECT_TRUE(got) << "a reader starved behind a stream of writers";
}

TEST_P(SharedMutexTest, TimedForms) {
  Runtime rt(config());
  weft::SharedMutex m;
  rt.block_on([&] {
    std::atomic<bool> release{false}, held{false};
    // A writer holds it: neither form gets in.
    auto w = weft::spawn([&] {
      std::lock_guard g(m);
      held = true;
      while (!release.load()) weft::this_fiber::sleep_for(1ms);
    });
    ASSERT_TRUE(eventually([&] { return held.load(); }));
    auto start = Clock::now();
    EXPECT_FALSE(m.try_lock_shared_for(10ms));
    EXPECT_GE(Clock::now() - start, 10ms);
    start = Clock::now();
    EXPECT_FALSE(m.try_lock_for(10ms));
    EXPECT_GE(Clock::now() - start, 10ms);
    EXPECT_FALSE(m.try_lock_until(Clock::now() - 1s));
    EXPECT_FALSE(m.try_lock_shared_until(Clock::now() + 5ms));
    EXPECT_FALSE(m.try_lock_shared());
    release = true;
    w.join();
    // A reader holds it: shared gets in, exclusive does not.
    m.lock_shared();
    auto r = weft::spawn([&] {
      const bool shared = m.try_lock_shared_for(10ms);
      if (shared) m.unlock_shared();
      const auto s = Clock::now();
      const bool exclusive = m.try_lock_for(10ms);
      const bool waited = Clock::now() - s >= 10ms;
      if (exclusive) m.unlock();
      return shared && !exclusive && waited;
    });
    EXPECT_TRUE(r.join());
    m.unlock_shared();
    EXPECT_TRUE(m.try_lock_for(1ms));
    m.unlock();
  });
}

// A writer that times out while queued must not keep out the readers that
// queued behind it (phase-fair: readers wait behind a waiting writer).
// The reader must queue behind the writer before the writer times out, or
// the test proves nothing: that is checked (both seen parked at once), and
// the scenario is repeated with a doubled timeout (50 ms, 100 ms, ...) until
// it holds, as it may not on a loaded machine.
TEST_P(SharedMutexTest, ATimedOutWriterLetsTheReadersBehindItIn) {
  Runtime rt(config());
  bool conclusive = false;
  for (auto timeout = 50ms; !conclusive && timeout <= 3200ms; timeout *= 2) {
    weft::SharedMutex m;
    m.lock_shared();  // R1 (the test thread) holds it shared throughout
    weft::test::FiberWatch writer_watch, reader_watch;
    auto writer = rt.spawn([&] {
      writer_watch.capture();
      return m.try_lock_for(timeout);
    });
    ASSERT_TRUE(writer_watch.wait_parked());
    std::atomic<bool> reader_in{false};
    auto reader = rt.spawn([&] {
      reader_watch.capture();
      m.lock_shared();
      reader_in = true;
      m.unlock_shared();
    });
    eventually(
        [&] { return (reader_watch.parked() && writer_watch.parked()) || writer.is_finished(); });
    conclusive = reader_watch.parked() && writer_watch.parked();
    EXPECT_FALSE(writer.join()) << "the writer got in while a reader held the lock";
    EXPECT_TRUE(eventually([&] { return reader_in.load(); }))
        << "a reader queued behind a writer that timed out is stuck";
    m.unlock_shared();
    reader.join();
    EXPECT_TRUE(m.try_lock());
    m.unlock();
  }
  if (!conclusive) GTEST_SKIP() << "the reader never queued before the writer timed out";
}

TEST_P(SharedMutexTest, FibersAndThreadsMix) {
  Runtime rt(config());
  weft::SharedMutex m;
  long value = 0;
  std::atomic<int> writers_in{0};
  Checker check;
  const int per = static_cast<int>(scaled(3000, 300));
  auto writer = [&] {
    for (int i = 0; i < per; ++i) {
      std::unique_lock g(m);
      check.check(writers_in.fetch_add(1) == 0, "two writers");
      ++value;
      writers_in.fetch_sub(1);
    }
  };
  auto reader = [&] {
    for (int i = 0; i < per; ++i) {
      std::shared_lock g(m);
      check.check(writers_in.load() == 0, "reader with a writer");
    }
  };
  Watchdog wd("SharedMutex with fibers and threads");
  std::thread t1(writer), t2(reader);
  auto f1 = rt.spawn(writer);
  auto f2 = rt.spawn(reader);
  t1.join();
  t2.join();
  f1.join();
  f2.join();
  WEFT_EXPECT_NO_FAILURES(check);
  EXPECT_EQ(value, 2L * per);
}

// ---------------------------------------------------------------------------
// Synchronized

TEST(SynchronizedTest, AccessOnlyUnderTheLock) {
  weft::Synchronized<std::map<int, int>> m;
  m.lock()->emplace(1, 2);
  EXPECT_EQ(m.with_lock([](auto& map) { return map.at(1); }), 2);
  {
    auto g = m.lock();
    EXPECT_FALSE(m.try_lock().has_value()) << "try_lock succeeded while a guard is alive";
    const auto start = Clock::now();
    EXPECT_FALSE(m.try_lock_for(10ms).has_value());
    EXPECT_GE(Clock::now() - start, 10ms);
    auto moved = std::move(g);  // the moved-from guard must not unlock
    EXPECT_FALSE(m.try_lock().has_value());
    (*moved)[3] = 4;
  }
  auto g = m.try_lock();
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ((**g).size(), 2u);
}

TEST_P(MutexTest, SynchronizedUnderContention) {
  Runtime rt(config());
  weft::Synchronized<std::vector<int>> v;
  constexpr int kFibers = 50;
  const int per = static_cast<int>(scaled(500, 50));
  rt.block_on([&] {
    std::vector<JoinHandle<void>> hs;
    for (int f = 0; f < kFibers; ++f) {
      hs.push_back(weft::spawn([&, f] {
        for (int i = 0; i < per; ++i) {
          if (i % 2 == 0) {
            v.lock()->push_back(f);
          } else {
            v.with_lock([&](std::vector<int>& x) {
              weft::this_fiber::yield();
              x.push_back(f);
            });
          }
        }
      }));
    }
    for (auto& h : hs) h.join();
  });
  auto g = v.lock();
  EXPECT_EQ(g->size(), static_cast<std::size_t>(kFibers) * per);
  std::vector<int> per_fiber(kFibers);
  for (int f : *g) ++per_fiber[f];
  for (int f = 0; f < kFibers; ++f) EXPECT_EQ(per_fiber[f], per) << "fiber " << f;
}

}  // namespace
