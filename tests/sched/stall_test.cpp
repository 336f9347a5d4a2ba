// The stall warning (Config::stall_warning): "a worker stuck on one fiber
// longer than this gets one warning on stderr naming the fiber" - once per
// stall, with the fiber's name.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "common/test_util.hpp"
#include "sched/worker.hpp"
#include "weft/weft.hpp"

namespace weft::test {
namespace {

using namespace std::chrono_literals;

/// Sends the process's stderr (fd 2) to a temporary file until text() is
/// called or the capture ends.
class StderrCapture {
 public:
  StderrCapture() {
    char name[] = "/tmp/weft-stderr-XXXXXX";
    fd_ = ::mkstemp(name);
    path_ = name;
    std::fflush(stderr);
    saved_ = ::dup(STDERR_FILENO);
    ::dup2(fd_, STDERR_FILENO);
  }
  ~StderrCapture() {
    restore();
    ::unlink(path_.c_str());
  }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

  /// Restores stderr and returns what was written meanwhile.
  std::string text() {
    restore();
    return so_far();
  }
  /// What was written so far (stderr stays captured).
  std::string so_far() const {
    std::ifstream in(path_);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    ::close(fd_);
    saved_ = -1;
  }
  int fd_ = -1;
  int saved_ = -1;
  std::string path_;
};

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

/// Holds the worker (no yield, no checkpoint, no switch) until `captured`
/// shows `want` stall warnings, then for `samples` more samples of the
/// monitor: each sample of a stalled worker raises its preempt flag, which
/// the fiber clears and waits to see raised again. Waiting for the monitor's
/// own evidence, not for a duration: on a loaded machine the monitor thread
/// may not run for hundreds of milliseconds. Bounded by kPatience.
void stall_until_reported(const StderrCapture& captured, std::size_t want, int samples) {
  detail::Worker* w = detail::current_worker();
  const auto give_up = std::chrono::steady_clock::now() + kPatience;
  auto patient = [&] { return std::chrono::steady_clock::now() < give_up; };
  while (count(captured.so_far(), "without a switch") < want && patient()) {
  }
  for (int i = 0; i < samples && patient(); ++i) {
    w->preempt_.store(false, std::memory_order_relaxed);
    while (!w->preempt_.load(std::memory_order_relaxed) && patient()) {
    }
  }
}

/// Runs body(capture) in a fiber named `name` on a runtime of `workers` with
/// a 20 ms stall_warning, stderr captured; returns what was printed.
template <class Body>
std::string stderr_of_named_fiber(std::size_t workers, const char* name, Body body) {
  weft::Config c = workers_config(workers);
  c.stall_warning = 20ms;
  Runtime rt(c);
  StderrCapture capture;
  rt.block_on([&] {
    weft::FiberOptions o;
    o.name = name;
    weft::spawn(o, [&] { body(capture); }).join();
  });
  return capture.text();
}

// A fiber that holds its worker past stall_warning gets exactly one warning,
// naming it, however many more samples the monitor takes of the same stall.
TEST(StallWarning, PrintedOncePerStallNamingTheFiber) {
  const std::string text = stderr_of_named_fiber(
      2, "stuck-in-a-loop", [](const StderrCapture& c) { stall_until_reported(c, 1, 5); });
  EXPECT_EQ(count(text, "without a switch"), 1u) << "stderr:\n" << text;
  EXPECT_EQ(count(text, "'stuck-in-a-loop'"), 1u) << "stderr:\n" << text;
}

// A second stall of the same fiber, after it switched, is a new stall: one
// more warning.
TEST(StallWarning, EachStallIsReported) {
  const std::string text = stderr_of_named_fiber(1, "stalls-twice", [](const StderrCapture& c) {
    stall_until_reported(c, 1, 2);
    weft::this_fiber::sleep_for(20ms);  // a switch: the first stall is over
    stall_until_reported(c, 2, 2);
  });
  EXPECT_EQ(count(text, "'stalls-twice'"), 2u) << "stderr:\n" << text;
}

}  // namespace
}  // namespace weft::test
