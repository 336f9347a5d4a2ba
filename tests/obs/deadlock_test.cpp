// The deadlock report (Config::deadlock_report; docs/observability.md):
// every fiber parked with nothing that could wake one is reported once,
// with the fiber dump, in the runtime log; a fiber sleeping, waiting for
// I/O, a signal or a spawn_blocking task is not; a deadlock that a plain
// thread resolves re-arms the report.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "common/io_util.hpp"
#include "common/test_util.hpp"
#include "obs/capture.hpp"
#include "weft/signal.hpp"
#include "weft/weft.hpp"

// External linkage, no inlining: the report's dump must name it.
namespace weft_deadlock_test {
[[gnu::noinline]] int wait_in_recv_forever(const weft::Receiver<int>& rx) {
  const std::optional<int> v = rx.recv();
  asm volatile("" ::: "memory");
  return v.value_or(-1);
}
}  // namespace weft_deadlock_test

namespace weft {
namespace {

using namespace std::chrono_literals;

constexpr auto kPeriod = 50ms;
constexpr const char* kHeadline = "weft: deadlock: all ";

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

std::size_t reports_so_far() {
  return count_of(test::fd2_so_far(), kHeadline);
}

Config report_config(Config c) {
  c.deadlock_report = kPeriod;
  return c;
}

// A fiber waits on a channel whose only sender is held by a plain thread
// that is itself waiting for the report (the runtime cannot see that
// thread: docs/observability.md says so). Reported once, with the dump
// naming the function the fiber waits in; the thread's send wakes it, it
// waits again, and the new deadlock is reported again.
TEST(DeadlockReport, AFiberOnAChannelNobodyFeedsIsReportedOnceWithTheDumpAndRearms) {
  test::CaptureFd2 err;
  {
    Runtime rt(report_config(test::workers_config(2)));
    const auto ch = channel<int>(0);
    std::atomic<bool> quiet_after_first{false};
    std::thread rescuer([&, tx = ch.first] {
      test::eventually([] { return reports_so_far() >= 1; });
      // Several periods more, with nothing changed: still one report.
      std::this_thread::sleep_for(kPeriod * 6);
      quiet_after_first.store(reports_so_far() == 1);
      (void)tx.send(1);
      test::eventually([] { return reports_so_far() >= 2; });
      (void)tx.send(2);
    });
    int sum = 0;
    rt.block_on([&] {
      auto h = spawn(FiberOptions{.name = "stuck"}, [&, rx = ch.second] {
        sum += weft_deadlock_test::wait_in_recv_forever(rx);
        sum += weft_deadlock_test::wait_in_recv_forever(rx);
      });
      h.join();
    });
    rescuer.join();
    EXPECT_EQ(sum, 3);
    EXPECT_TRUE(quiet_after_first.load());
  }
  const std::string text = err.text();
  EXPECT_EQ(count_of(text, kHeadline), 2u) << text;
  EXPECT_NE(text.find("weft: deadlock: all 2 fibers of the runtime have been parked for "),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ERROR"), std::string::npos) << text;
  EXPECT_NE(text.find("\"stuck\" [parked: chan_recv on channel 0x"), std::string::npos) << text;
  EXPECT_NE(text.find("weft_deadlock_test::wait_in_recv_forever"), std::string::npos) << text;
}

TEST(DeadlockReport, OffByDefault) {
  EXPECT_EQ(Config{}.deadlock_report, std::chrono::nanoseconds(0));
  EXPECT_FALSE(Config{}.deadlock_abort);
  test::CaptureFd2 err;
  {
    Runtime rt(test::workers_config(2));
    const auto ch = channel<int>(0);
    std::thread rescuer([tx = ch.first] {
      std::this_thread::sleep_for(kPeriod * 4);
      (void)tx.send(1);
    });
    rt.block_on([&, rx = ch.second] { (void)weft_deadlock_test::wait_in_recv_forever(rx); });
    rescuer.join();
  }
  EXPECT_EQ(count_of(err.text(), kHeadline), 0u);
}

// Waits that something outside the fibers ends are not deadlocks: a sleep
// (a timer), I/O (the reactor), a signal (the dispatcher thread), a
// spawn_blocking task (a pool thread). Each lasts several report periods.
// Then a real deadlock in the same runtime is reported, so the report was
// armed all along.
class DeadlockReportNot : public test::IoTest {};

TEST_P(DeadlockReportNot, ASleepIoSignalOrBlockingTaskIsNotReported) {
  test::CaptureFd2 err;
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  {
    Runtime rt(report_config(config()));
    ASSERT_EQ(rt.io_backend(), backend());
    const auto ch = channel<int>(0);
    std::atomic<int> phase{0};
    // Ends each outside wait a few periods after the fiber began it.
    std::thread helper([&, tx = ch.first] {
      test::eventually([&] { return phase.load() == 1; });
      std::this_thread::sleep_for(kPeriod * 6);
      EXPECT_EQ(::write(pipefd[1], "x", 1), 1);
      test::eventually([&] { return phase.load() == 2; });
      if (!test::kThreadSanitizer) {
        std::this_thread::sleep_for(kPeriod * 6);
        EXPECT_EQ(::kill(::getpid(), SIGUSR2), 0);
      }
      test::eventually([] { return reports_so_far() >= 1; });
      (void)tx.send(7);
    });
    int got = 0;
    rt.block_on([&, rx = ch.second] {
      spawn(FiberOptions{.name = "sleeper"}, [] { this_fiber::sleep_for(kPeriod * 6); }).join();
      EXPECT_EQ(reports_so_far(), 0u) << "a sleep";
      phase.store(1);
      spawn(FiberOptions{.name = "reader"}, [&] {
        EXPECT_TRUE(fd::wait_ready(pipefd[0], POLLIN) & POLLIN);
      }).join();
      EXPECT_EQ(reports_so_far(), 0u) << "I/O";
      phase.store(2);
      // Not under TSan: it defers a process-directed signal until the thread
      // it landed on enters an intercepted call, and a worker asleep in
      // io_uring_enter (a raw syscall) may never do so (seen: the wait never
      // ended).
      if (!test::kThreadSanitizer) {
        EXPECT_EQ(
            spawn(FiberOptions{.name = "signal"}, [] { return weft::signal::wait({SIGUSR2}); })
                .join(),
            SIGUSR2);
        EXPECT_EQ(reports_so_far(), 0u) << "a signal";
      }
      spawn_blocking([] { std::this_thread::sleep_for(kPeriod * 6); }).join();
      EXPECT_EQ(reports_so_far(), 0u) << "a spawn_blocking task";
      got = weft_deadlock_test::wait_in_recv_forever(rx);
    });
    helper.join();
    EXPECT_EQ(got, 7);
  }
  ::close(pipefd[0]);
  ::close(pipefd[1]);
  const std::string text = err.text();
  EXPECT_EQ(count_of(text, kHeadline), 1u) << text;
  EXPECT_NE(text.find("weft_deadlock_test::wait_in_recv_forever"), std::string::npos) << text;
}

WEFT_INSTANTIATE_IO_BACKENDS(DeadlockReportNot);

}  // namespace
}  // namespace weft
