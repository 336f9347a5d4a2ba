// main() of every weft test binary (tests/CMakeLists.txt links it instead of
// GTest::gtest_main): GoogleTest and GoogleMock set up as usual, plus a
// watchdog over each test.
//
// Why a watchdog per test: a lost wake-up, a join that never returns or a
// destructor that waits forever would otherwise block the binary until
// ctest's timeout kills it, which names the binary but not the test. Here
// one thread, for the binary's whole life, is armed with the test's full
// name when the test starts and disarmed when it ends; a test still running
// after the limit prints its name and aborts the process (with ASan or TSan
// the runtime's report follows, and a core dump if enabled).
//
// The limit is weft::test::kPatience * 4 (2 min plain, 8 min under a
// sanitizer), or WEFT_TEST_WATCHDOG_S seconds. It is a hang detector, not a
// performance bound: no test comes near it when it passes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "common/test_util.hpp"

namespace {

std::chrono::seconds watchdog_limit() {
  if (const char* s = std::getenv("WEFT_TEST_WATCHDOG_S")) {
    char* end = nullptr;
    const long v = std::strtol(s, &end, 10);
    if (end != s && *end == '\0' && v > 0) return std::chrono::seconds(v);
    std::fprintf(stderr, "WEFT_TEST_WATCHDOG_S='%s' is not a positive number of seconds\n", s);
    std::exit(2);
  }
  return weft::test::kPatience * 4;
}

// The watch: one detached thread and the state it shares with the listener.
// Never freed: the thread may still be waiting while the process exits.
struct Watch {
  explicit Watch(std::chrono::seconds limit) : limit(limit) {
    std::thread([this] { run(); }).detach();
  }

  void run() {
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [this] { return armed; });
      const unsigned long gen = generation;
      if (cv.wait_until(lock, deadline, [&] { return !armed || generation != gen; })) {
        continue;  // the test ended (or the next one started) in time
      }
      std::fprintf(stderr,
                   "\nWATCHDOG: test %s still running after %lld s (a hang: a lost wake-up, a "
                   "join or a destructor that never returns?): aborting\n",
                   name.c_str(), static_cast<long long>(limit.count()));
      std::fflush(stderr);
      std::abort();
    }
  }

  const std::chrono::seconds limit;
  std::mutex mu;
  std::condition_variable cv;
  bool armed = false;                              // guarded by mu
  unsigned long generation = 0;                    // guarded by mu: tests started so far
  std::string name;                                // guarded by mu
  std::chrono::steady_clock::time_point deadline;  // guarded by mu
};

class WatchdogListener final : public ::testing::EmptyTestEventListener {
 public:
  explicit WatchdogListener(Watch* w) : w_(w) {}

  void OnTestStart(const ::testing::TestInfo& t) override {
    std::lock_guard lock(w_->mu);
    w_->name = std::string(t.test_suite_name()) + "." + t.name();
    w_->deadline = std::chrono::steady_clock::now() + w_->limit;
    w_->armed = true;
    ++w_->generation;
    w_->cv.notify_all();
  }

  void OnTestEnd(const ::testing::TestInfo&) override {
    std::lock_guard lock(w_->mu);
    w_->armed = false;
    w_->cv.notify_all();
  }

 private:
  Watch* const w_;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleMock(&argc, argv);
  auto* watch = new Watch(watchdog_limit());  // leaked on purpose (see Watch)
  ::testing::UnitTest::GetInstance()->listeners().Append(new WatchdogListener(watch));
  return RUN_ALL_TESTS();
}
