// The stall report (RuntimeImpl::report_stall): a fiber that runs past
// Config::stall_warning without a switch is reported once, with its
// backtrace taken on its worker (src/obs/backtrace.hpp), naming the user
// function it is stuck in; a program's own handler of the sampling signal
// is never replaced.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "common/test_util.hpp"
#include "obs/backtrace.hpp"
#include "obs/capture.hpp"
#include "weft/weft.hpp"

// External linkage and no inlining: the frame must exist and have a name.
namespace weft_stall_test {
[[gnu::noinline]] void block_the_worker_for(std::chrono::milliseconds d) {
  const auto end = std::chrono::steady_clock::now() + d;
  // A blocking call in a loop: the stall the report is for (and a call
  // that TSan intercepts, where it delivers the sampling signal).
  while (std::chrono::steady_clock::now() < end) ::usleep(1000);
  asm volatile("" ::: "memory");  // keeps the frame: no tail call
}
}  // namespace weft_stall_test

namespace weft {
namespace {

using CaptureStderr = test::CaptureFd2;

TEST(StallReport, NamesTheFunctionTheFiberIsStuckIn) {
  Config c = test::workers_config(1);
  c.stall_warning = std::chrono::milliseconds(50);
  CaptureStderr err;
  {
    Runtime rt(c);
    rt.spawn(FiberOptions{.name = "staller"}, [] {
        weft_stall_test::block_the_worker_for(std::chrono::milliseconds(600));
      }).join();
  }
  const std::string text = err.text();
  EXPECT_NE(text.find("has run fiber"), std::string::npos) << text;
  EXPECT_NE(text.find("'staller'"), std::string::npos) << text;
  EXPECT_NE(text.find("backtrace of the stalled fiber"), std::string::npos) << text;
  EXPECT_NE(text.find("weft_stall_test::block_the_worker_for"), std::string::npos) << text;
}

TEST(StallReport, BacktracesAreRateLimited) {
  Config c = test::workers_config(2);
  c.stall_warning = std::chrono::milliseconds(30);
  CaptureStderr err;
  {
    Runtime rt(c);
    // Two stalls at once, on two workers: one backtrace, one skipped.
    auto a =
        rt.spawn([] { weft_stall_test::block_the_worker_for(std::chrono::milliseconds(400)); });
    auto b =
        rt.spawn([] { weft_stall_test::block_the_worker_for(std::chrono::milliseconds(400)); });
    a.join();
    b.join();
  }
  const std::string text = err.text();
  std::size_t reports = 0;
  for (std::size_t p = 0; (p = text.find("has run fiber", p)) != std::string::npos; ++p) ++reports;
  ASSERT_EQ(reports, 2u) << text;
  EXPECT_NE(text.find("backtrace skipped"), std::string::npos) << text;
}

TEST(StallReportDeathTest, AProgramsOwnHandlerIsKept) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        struct sigaction mine {};
        mine.sa_handler = [](int) {};
        sigemptyset(&mine.sa_mask);
        ::sigaction(detail::obs::sample_signal(), &mine, nullptr);
        { Runtime rt(test::workers_config(1)); }
        struct sigaction now {};
        ::sigaction(detail::obs::sample_signal(), nullptr, &now);
        std::_Exit(now.sa_handler == mine.sa_handler && !detail::obs::install_sample_handler() ? 0
                                                                                               : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace weft
