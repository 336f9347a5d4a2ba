// weft::signal::wait from fibers (both reactor backends) and plain threads.
#include "weft/signal.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/process_util.hpp"
#include "signal/signal_impl.hpp"

namespace {

using namespace std::chrono_literals;
using weft::test::BackendTest;
using weft::test::FiberCanceller;

// The result of a fiber's wait, or -1 if it does not return within the
// test patience (a broken dispatcher: the fiber is left to the runtime's
// destructor, which cancels it). A hang detector, not a timing bound.
int result_of(weft::JoinHandle<int>& h) {
  const bool done = weft::test::eventually([&] { return h.is_finished(); });
  EXPECT_TRUE(done) << "a signal wait did not return";
  return done ? h.join() : -1;
}

// Waits until at least n waits are registered with the dispatcher: a
// signal sent from then on must reach them.
bool registered(std::size_t n) {
  return weft::test::eventually([n] { return weft::detail::sig::registered_waits() >= n; });
}

// signal::wait for a plain thread: -1 instead of an exception. The
// deadline only ends a broken test (the caller gives up waiting first).
int wait_on_thread(std::initializer_list<int> signals) {
  try {
    return weft::signal::wait(signals, weft::test::kPatience * 2);
  } catch (const std::exception&) {
    return -1;
  }
}

// Waits (bounded) until the thread's result is in.
bool arrived(const std::atomic<int>& got) {
  const bool ok = weft::test::eventually([&] { return got.load() != 0; });
  EXPECT_TRUE(ok) << "a thread's signal wait did not return";
  return ok;
}

void raise_signal(int signo) {
  ASSERT_EQ(::kill(::getpid(), signo), 0);
}

using SignalTest = BackendTest;
WEFT_INSTANTIATE_BACKENDS(SignalTest);

TEST_P(SignalTest, FiberReceivesSignal) {
  weft::Runtime rt(config());
  auto h = rt.spawn([] { return weft::signal::wait({SIGUSR1}); });
  ASSERT_TRUE(registered(1));
  raise_signal(SIGUSR1);
  EXPECT_EQ(result_of(h), SIGUSR1);
  EXPECT_EQ(weft::detail::sig::registered_waits(), 0u);
}

TEST_P(SignalTest, EveryWaiterOfTheSignalIsWoken) {
  weft::Runtime rt(config());
  auto a = rt.spawn([] { return weft::signal::wait({SIGUSR1}); });
  auto b = rt.spawn([] { return weft::signal::wait({SIGUSR1, SIGUSR2}); });
  ASSERT_TRUE(registered(2));
  raise_signal(SIGUSR1);
  EXPECT_EQ(result_of(a), SIGUSR1);
  EXPECT_EQ(result_of(b), SIGUSR1);
}

TEST_P(SignalTest, ReturnsTheSignalThatArrived) {
  weft::Runtime rt(config());
  for (int signo : {SIGUSR2, SIGUSR1, SIGUSR2}) {
    auto h = rt.spawn([] { return weft::signal::wait({SIGUSR1, SIGUSR2}); });
    ASSERT_TRUE(registered(1));
    raise_signal(signo);
    EXPECT_EQ(result_of(h), signo);
  }
  // Only the waiters of the signal that arrived wake up. (The dispatcher
  // wakes everyone due in one pass under the registry lock, which
  // registered_waits() takes: the count is exact once `mine` returned.)
  auto other = rt.spawn([] { return weft::signal::wait({SIGUSR2}); });
  auto mine = rt.spawn([] { return weft::signal::wait({SIGUSR1}); });
  ASSERT_TRUE(registered(2));
  raise_signal(SIGUSR1);
  EXPECT_EQ(result_of(mine), SIGUSR1);
  EXPECT_EQ(weft::detail::sig::registered_waits(), 1u);
  raise_signal(SIGUSR2);
  EXPECT_EQ(result_of(other), SIGUSR2);
}

TEST_P(SignalTest, DeadlineTimesOut) {
  weft::Runtime rt(config());
  rt.block_on([] {
    EXPECT_THROW(weft::signal::wait({SIGUSR2}, 20ms), weft::TimedOut);
    EXPECT_THROW(weft::signal::wait({SIGUSR2}, weft::Deadline::after(-1s)), weft::TimedOut);
  });
  EXPECT_EQ(weft::detail::sig::registered_waits(), 0u);
}

TEST_P(SignalTest, CancellingAWaitingFiber) {
  weft::Runtime rt(config());
  FiberCanceller canceller;
  auto h = rt.spawn([&] {
    canceller.capture();
    return weft::signal::wait({SIGUSR1});
  });
  ASSERT_TRUE(registered(1));
  canceller.cancel();
  EXPECT_THROW(h.join(), weft::Cancelled);
  EXPECT_EQ(weft::detail::sig::registered_waits(), 0u);
}

TEST_P(SignalTest, RuntimeShutdownCancelsWaiters) {
  {
    weft::Runtime rt(config());
    rt.spawn([] { (void)weft::signal::wait({SIGUSR1}); }).detach();
    ASSERT_TRUE(registered(1));
  }  // the destructor cancels the fiber
  EXPECT_EQ(weft::detail::sig::registered_waits(), 0u);
}

// Wake-ups are not lost when the signal follows the registration closely,
// many times in a row, with several waiters at once.
TEST_P(SignalTest, RepeatedWaitsNeverMissASignal) {
  weft::Runtime rt(config(4));
  const int rounds = static_cast<int>(weft::test::scaled(200, 20));
  for (int i = 0; i < rounds; ++i) {
    auto a = rt.spawn([] { return weft::signal::wait({SIGUSR1}); });
    auto b = rt.spawn([] { return weft::signal::wait({SIGUSR1}); });
    ASSERT_TRUE(registered(2));
    raise_signal(SIGUSR1);
    ASSERT_EQ(result_of(a), SIGUSR1) << "round " << i;
    ASSERT_EQ(result_of(b), SIGUSR1) << "round " << i;
  }
}

TEST(SignalThread, PlainThreadWaits) {
  std::atomic<int> got{0};
  std::thread t([&] { got = wait_on_thread({SIGUSR1, SIGUSR2}); });
  ASSERT_TRUE(registered(1));
  raise_signal(SIGUSR2);
  arrived(got);
  t.join();
  EXPECT_EQ(got.load(), SIGUSR2);
  EXPECT_THROW(weft::signal::wait({SIGUSR2}, 20ms), weft::TimedOut);
}

// A fiber and a plain thread wait for the same signal.
TEST(SignalThread, FiberAndThreadTogether) {
  weft::Runtime rt(weft::test::workers_config(2));
  auto h = rt.spawn([] { return weft::signal::wait({SIGUSR1}); });
  std::atomic<int> got{0};
  std::thread t([&] { got = wait_on_thread({SIGUSR1}); });
  ASSERT_TRUE(registered(2));
  raise_signal(SIGUSR1);
  arrived(got);
  t.join();
  EXPECT_EQ(got.load(), SIGUSR1);
  EXPECT_EQ(result_of(h), SIGUSR1);
}

TEST(SignalApi, RejectsSignalsItCannotHandle) {
  for (int bad : {0, -1, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL, SIGFPE, 32, 33, NSIG, 1000}) {
    EXPECT_THROW(weft::signal::wait({bad}, 1ms), std::invalid_argument) << bad;
    EXPECT_THROW(weft::signal::wait({SIGUSR1, bad}, 1ms), std::invalid_argument) << bad;
  }
  EXPECT_THROW(weft::signal::wait({}, 1ms), std::invalid_argument);
  // Real-time signals are fine.
  EXPECT_THROW(weft::signal::wait({SIGRTMIN + 1}, 1ms), weft::TimedOut);
}

// A Listener counts from its construction: signals raised before its
// first wait and between two waits are reported, the lowest first, each
// once (deliveries of one signal in between coalesce).
TEST_P(SignalTest, ListenerKeepsSignalsBetweenWaits) {
  weft::Runtime rt(config());
  weft::signal::Listener listener({SIGUSR1, SIGUSR2});
  // kill(2) of our own process runs the handler before it returns (the
  // calling thread does not block these signals), so both are counted.
  raise_signal(SIGUSR2);
  raise_signal(SIGUSR1);
  raise_signal(SIGUSR1);
  auto h = rt.spawn([&] {
    std::vector<int> got;
    got.push_back(listener.wait());
    got.push_back(listener.wait());
    try {
      listener.wait(30ms);
      got.push_back(-1);  // a third report: the two SIGUSR1 did not coalesce
    } catch (const weft::TimedOut&) {
    }
    return got;
  });
  EXPECT_EQ(h.join(), (std::vector<int>{SIGUSR1, SIGUSR2}));
  // Plain signal::wait calls do not consume the listener's deliveries.
  raise_signal(SIGUSR2);
  EXPECT_THROW(weft::signal::wait({SIGUSR2}, 20ms), weft::TimedOut);
  EXPECT_EQ(listener.wait(weft::test::kPatience), SIGUSR2);
}

TEST_P(SignalTest, ListenerWaitParksUntilASignalAndIsCancellable) {
  weft::Runtime rt(config());
  weft::signal::Listener listener({SIGUSR1});
  auto h = rt.spawn([&] { return listener.wait(); });
  ASSERT_TRUE(registered(1));
  raise_signal(SIGUSR1);
  EXPECT_EQ(result_of(h), SIGUSR1);
  auto c = rt.spawn([&] { return listener.wait(); });
  ASSERT_TRUE(registered(1));
  c.cancel();
  EXPECT_THROW(c.join(), weft::Cancelled);
  EXPECT_THROW(weft::signal::Listener({SIGKILL}), std::invalid_argument);
}

}  // namespace
