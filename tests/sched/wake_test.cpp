// Every path that wakes a sleeping worker, each checked without the
// monitor's backstop (this binary runs with Config::wake_backstop off, see
// tests/CMakeLists.txt): if the path loses its wake-up, the woken fiber never
// runs, and the test fails after kPatience instead of passing 5 ms late.
//
// The shape of each test: make sure the worker that must be woken is asleep
// in its backend's wait with no timeout (no timer is armed anywhere, and
// RuntimeImpl::idle_workers() says it is idle-listed), make work for it, and
// wait for that work to run, from a fiber that spins without yielding when
// the work can only run on another worker. Paths: a spawn from a fiber
// (schedule_local), a spawn and an unpark from a plain thread (the
// injector), a timer due (the sleep's timeout), an I/O completion (the
// backend's wait), a fiber displaced from the LIFO slot of a busy worker,
// and a spawn racing a worker on its way to sleep (the Dekker re-check).
//
// The surplus-wake rule (9f69372, scheduler.md): fibers woken together by
// one poll or timer advance wake another worker for all but one of them;
// a single fiber woken on an idle worker wakes nobody (it runs there next).
// Both halves are checked: two readers of one socket woken by one EOF run in
// parallel, and a single reader's wake-ups cost no extra worker wake-up.
//
// Finally the backstop itself (Config::wake_backstop on): a timer armed on a
// worker that then spins is fired by another worker, which only the monitor
// wakes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "common/cancel_util.hpp"
#include "common/io_util.hpp"
#include "common/test_util.hpp"
#include "sched/runtime_impl.hpp"
#include "sched/worker.hpp"
#include "weft/weft.hpp"

namespace weft::test {
namespace {

using namespace std::chrono_literals;

/// The runtime's internals, for idle_workers(): read from any thread.
detail::RuntimeImpl* impl_of(Runtime& rt) {
  return rt.block_on([] { return detail::current_runtime(); });
}

/// Busy-waits (no yield, no syscall but the clock) until pred() or kPatience.
/// A fiber that spins here keeps its worker: whatever must run meanwhile has
/// to run on another one.
template <class Pred>
bool spin_until(Pred pred) {
  const auto give_up = std::chrono::steady_clock::now() + kPatience;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > give_up) return pred();
  }
  return true;
}

/// Sum of the workers' sleeps (times a worker entered its backend's wait).
std::uint64_t total_sleeps(const Runtime& rt) {
  std::uint64_t n = 0;
  for (const auto& w : rt.stats().workers) n += w.sleeps;
  return n;
}

/// A fiber that reads `s` a byte at a time until end of stream, counting.
weft::JoinHandle<void> spawn_byte_counter(Runtime& rt, weft::net::UnixStream s,
                                          std::atomic<int>& got) {
  return rt.spawn([&got, s = std::move(s)]() mutable {
    char c;
    while (s.read(&c, 1) == 1) got.fetch_add(1);
  });
}

constexpr int kRounds = 20;

// --- a spawn from a fiber -----------------------------------------------------

// The spawner keeps its worker busy (spinning); the child is in its deque,
// where only the other, sleeping worker can take it: schedule_local's
// notify_work must wake it.
TEST(WakePath, SpawnFromABusyFiberWakesTheSleepingWorker) {
  Runtime rt(workers_config(2));
  detail::RuntimeImpl* impl = impl_of(rt);
  rt.block_on([&] {
    for (int round = 0; round < kRounds; ++round) {
      ASSERT_TRUE(spin_until([&] { return impl->idle_workers() == 1; }))
          << "the other worker never went to sleep";
      std::atomic<bool> ran{false};
      auto child = weft::spawn([&] { ran.store(true); });
      EXPECT_TRUE(spin_until([&] { return ran.load(); }))
          << "round " << round << ": the child of a busy fiber never ran: no worker was woken";
      child.join();
      if (HasFailure()) return;
    }
  });
}

// A worker that finished its fiber searches for spin_before_park, then
// registers as idle and re-checks every queue before it sleeps; a spawn
// landing between its last search and its registration is seen only by that
// re-check (notify_work saw no worker idle, and none searching). The window
// is a fraction of a microsecond, so the spawns aim at it: every other round
// measures when, after its child ran, the other worker registers as idle;
// the rounds between spawn up to 4 us before that moment.
TEST(WakePath, SpawnRacingAWorkerOnItsWayToSleep) {
  Runtime rt(workers_config(2));
  detail::RuntimeImpl* impl = impl_of(rt);
  const long rounds = scaled(12000, 1200);
  std::atomic<long> ran{-1};
  long lost_round = -1;
  rt.block_on([&] {
    std::mt19937 rng(7);
    using ns = std::chrono::nanoseconds;
    auto registered_after = ns(20'000);  // moving average of the measured moment
    for (long round = 0; round < rounds; ++round) {
      // Detached: this fiber never parks, so it keeps its worker and every
      // child runs on the other one.
      weft::spawn([&ran, round] { ran.store(round); }).detach();
      if (!spin_until([&] { return ran.load() == round; })) {
        lost_round = round;
        return;
      }
      const auto t_ran = std::chrono::steady_clock::now();
      if (round % 2 == 0) {
        if (!spin_until([&] { return impl->idle_workers() == 1; })) return;
        registered_after = (registered_after * 7 + (std::chrono::steady_clock::now() - t_ran)) / 8;
      } else {
        const auto aim = t_ran + registered_after - ns(rng() % 4'000);
        while (std::chrono::steady_clock::now() < aim) {
        }
      }
    }
  });
  EXPECT_EQ(lost_round, -1) << "a spawn was lost by a worker going to sleep";
}

// --- a spawn and an unpark from a plain thread --------------------------------

class WakeFromThread : public WorkersTest {};
WEFT_INSTANTIATE_WORKERS(WakeFromThread);

// From outside, a spawn goes through the injector: inject's notify_work
// must wake a sleeping worker.
TEST_P(WakeFromThread, SpawnWakesASleepingWorker) {
  Runtime rt(config());
  detail::RuntimeImpl* impl = impl_of(rt);
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_TRUE(eventually([&] { return impl->idle_workers() == workers(); }));
    std::atomic<bool> ran{false};
    auto h = rt.spawn([&] { ran.store(true); });
    ASSERT_TRUE(eventually([&] { return ran.load(); }))
        << "round " << round << ": a fiber spawned from a thread never ran";
    h.join();
  }
}

// A fiber parked in recv, woken by a send from a thread: unpark from outside
// the runtime injects it.
TEST_P(WakeFromThread, UnparkWakesASleepingWorker) {
  Runtime rt(config());
  detail::RuntimeImpl* impl = impl_of(rt);
  auto chan = weft::channel<int>(0);  // no structured binding: clang 14 cannot capture one
  auto& tx = chan.first;
  auto& rx = chan.second;
  std::atomic<int> received{0};
  auto receiver = rt.spawn([&, rx = std::move(rx)]() mutable {
    while (auto v = rx.recv()) received.store(*v + 1);
  });
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_TRUE(eventually([&] { return impl->idle_workers() == workers(); }));
    ASSERT_TRUE(tx.send(round).ok());
    ASSERT_TRUE(eventually([&] { return received.load() == round + 1; }))
        << "round " << round << ": a fiber unparked from a thread never ran";
  }
  tx.close();
  receiver.join();
}

// --- a timer ------------------------------------------------------------------

// A worker with nothing to run sleeps until its earliest timer: nothing
// else wakes it for a fiber in sleep_for.
TEST_P(WakeFromThread, TimerWakesASleepingWorker) {
  Runtime rt(config());
  std::atomic<int> woke{0};
  auto sleeper = rt.spawn([&] {
    for (int i = 0; i < kRounds; ++i) {
      weft::this_fiber::sleep_for(2ms);
      woke.fetch_add(1);
    }
  });
  EXPECT_TRUE(eventually([&] { return woke.load() == kRounds; }))
      << "sleep_for(2ms) woke " << woke.load() << " of " << kRounds << " times";
  sleeper.join();  // the runtime's shutdown would cancel it otherwise
}

// --- an I/O completion --------------------------------------------------------

class WakeOnIo : public IoTest {};
WEFT_INSTANTIATE_IO(WakeOnIo);

// A reader parked on a socket; every worker asleep; a thread writes a byte:
// the completion (io_uring) or the readiness (epoll) must end the wait of
// the worker whose backend holds the read.
TEST_P(WakeOnIo, CompletionWakesASleepingWorker) {
  WEFT_IO_RUNTIME(rt);
  detail::RuntimeImpl* impl = impl_of(rt);
  auto ends = weft::net::UnixStream::pair();  // (clang 14 cannot capture a structured binding)
  auto& a = ends.first;
  auto& b = ends.second;
  std::atomic<int> got{0};
  auto reader = spawn_byte_counter(rt, std::move(a), got);
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_TRUE(eventually([&] { return impl->idle_workers() == workers(); }));
    const char c = 'x';
    ASSERT_EQ(::write(b.native_handle(), &c, 1), 1);
    ASSERT_TRUE(eventually([&] { return got.load() == round + 1; }))
        << "round " << round << ": a read never returned the byte written";
  }
  b.close();
  reader.join();
}

// --- a fiber displaced from the LIFO slot ---------------------------------------

// A running fiber that wakes two fibers puts the first in its worker's LIFO
// slot and the second displaces it into the deque, where another worker can
// steal it: that push must wake the sleeping worker, since the waker keeps
// its own worker busy.
TEST(WakePath, FiberDisplacedFromTheLifoSlotWakesTheSleepingWorker) {
  Runtime rt(workers_config(2));
  detail::RuntimeImpl* impl = impl_of(rt);
  rt.block_on([&] {
    for (int round = 0; round < kRounds; ++round) {
      weft::Event go;
      std::atomic<int> ran{0};
      auto waiter = [&] {
        go.wait();
        ran.fetch_add(1);
      };
      auto y1 = weft::spawn(waiter);
      auto y2 = weft::spawn(waiter);
      // Both parked on the event (this fiber yields so that they can run).
      while (rt.stats().fibers_parked < 2) weft::this_fiber::yield();
      ASSERT_TRUE(spin_until([&] { return impl->idle_workers() == 1; }))
          << "the other worker never went to sleep";
      go.set();  // unparks both from this fiber: LIFO slot, then displaced
      EXPECT_TRUE(spin_until([&] { return ran.load() >= 1; }))
          << "round " << round << ": the fiber displaced from the LIFO slot never ran";
      y1.join();
      y2.join();
      if (HasFailure()) return;
    }
  });
}

// --- the surplus-wake rule -------------------------------------------------------

class SurplusWake : public IoTest {};
INSTANTIATE_TEST_SUITE_P(Io, SurplusWake,
                         ::testing::Values(IoParam{weft::IoBackend::io_uring, 2},
                                           IoParam{weft::IoBackend::epoll, 2}),
                         io_param_name);

// Two readers of one socket, every worker asleep; one event (the peer's
// shutdown: EOF) wakes both in one poll of the worker whose epoll holds the
// socket. Each reader then spins until the other has returned from its read
// too: they finish only if the polling worker woke the other one for the
// surplus fiber (wake_one_idle must not pick the poller itself, which is
// still on the idle list while it polls from its sleep). epoll only: there
// both reads wait on one descriptor's wait list and one edge grants both;
// on io_uring each read is its own request, and one event may complete them
// in two task-work runs, the second after the worker has started the first.
TEST_P(SurplusWake, TwoFibersWokenByOneEventRunInParallel) {
  if (backend() != weft::IoBackend::epoll) GTEST_SKIP() << "needs one edge for both readers";
  WEFT_IO_RUNTIME(rt);
  detail::RuntimeImpl* impl = impl_of(rt);
  for (int round = 0; round < kRounds; ++round) {
    auto ends = weft::net::UnixStream::pair();  // (clang 14 cannot capture a structured binding)
    auto& a = ends.first;
    auto& b = ends.second;
    std::atomic<int> returned{0};
    std::atomic<int> alone{0};
    auto reader = [&] {
      char c;
      EXPECT_EQ(a.read(&c, 1), 0u);
      returned.fetch_add(1);
      if (!spin_until([&] { return returned.load() == 2; })) alone.fetch_add(1);
    };
    auto r1 = rt.spawn(reader);
    auto r2 = rt.spawn(reader);
    settle_parked(rt, 2);  // both readers in their read
    ASSERT_TRUE(eventually([&] { return impl->idle_workers() == 2; }));
    b.shutdown(weft::net::Shutdown::write);  // EOF for both reads at once
    r1.join();
    r2.join();
    EXPECT_EQ(alone.load(), 0) << "round " << round
                               << ": a fiber woken with another by one poll waited for it";
    if (HasFailure()) return;
  }
}

// A single fiber woken by I/O on an idle worker runs there next: no other
// worker (nor the polling worker itself) is woken for it. Counted in
// worker sleeps: each round costs the polling worker one sleep (it runs
// the reader, which parks again, and goes back to sleep); a wasted wake-up
// costs a second one (the woken worker finds nothing and sleeps again).
TEST_P(SurplusWake, ASingleWakeUpWakesNoOtherWorker) {
  WEFT_IO_RUNTIME(rt);
  detail::RuntimeImpl* impl = impl_of(rt);
  auto ends = weft::net::UnixStream::pair();  // (clang 14 cannot capture a structured binding)
  auto& a = ends.first;
  auto& b = ends.second;
  std::atomic<int> got{0};
  auto reader = spawn_byte_counter(rt, std::move(a), got);
  const int rounds = 100;
  ASSERT_TRUE(eventually([&] { return impl->idle_workers() == 2; }));
  const std::uint64_t before = total_sleeps(rt);
  for (int round = 0; round < rounds; ++round) {
    const std::uint64_t s0 = total_sleeps(rt);
    const char c = 'x';
    ASSERT_EQ(::write(b.native_handle(), &c, 1), 1);
    ASSERT_TRUE(eventually([&] { return got.load() == round + 1; }));
    // Back asleep, both: at least one sleep since the write.
    ASSERT_TRUE(eventually([&] { return total_sleeps(rt) > s0 && impl->idle_workers() == 2; }));
  }
  const std::uint64_t sleeps = total_sleeps(rt) - before;
  // One per round when nothing is wasted (fewer if a byte arrives while the
  // worker still searches); a wake-up per round for the single fiber would
  // make it two.
  EXPECT_LT(sleeps, rounds * 3 / 2) << sleeps << " worker sleeps for " << rounds
                                    << " single wake-ups: other wake-ups were wasted";
  b.close();
  reader.join();
}

// --- the backstop ---------------------------------------------------------------

// With Config::wake_backstop on (the default): a fiber arms a timer
// (move_on_after) and spins on its worker; the other worker, asleep since
// before the timer existed, is woken by the monitor and fires the overdue
// timer for it (help_timers). Without the backstop nothing would.
TEST(Backstop, FiresTheOverdueTimerOfASpinningWorker) {
  weft::Config c = workers_config(2);
  c.wake_backstop = true;
  Runtime rt(c);
  detail::RuntimeImpl* impl = impl_of(rt);
  rt.block_on([&] {
    ASSERT_TRUE(spin_until([&] { return impl->idle_workers() == 1; }));
    bool saw = false;
    (void)weft::move_on_after(
        5ms, [&] { saw = spin_until([] { return weft::this_fiber::is_cancelled(); }); });
    EXPECT_TRUE(saw) << "the timer of a spinning worker never fired";
  });
}

}  // namespace
}  // namespace weft::test
