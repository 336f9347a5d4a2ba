// The stall warning (Config::stall_warning): "a worker stuck on one fiber
// longer than this gets one warning on stderr naming the fiber" - once per
// stall, with the fiber's name, and none for fibers that switch.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "common/test_util.hpp"
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

/// Busy for `d` without a switch (no yield, no checkpoint).
void hog_for(std::chrono::nanoseconds d) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}

// A fiber that holds its worker for ~56 monitor periods past the threshold
// gets exactly one warning, naming it. (The monitor samples every 5 ms; the
// 280 ms margin is for a loaded machine, where the monitor may run late.)
TEST(StallWarning, PrintedOncePerStallNamingTheFiber) {
  weft::Config c = workers_config(2);
  c.stall_warning = 20ms;
  Runtime rt(c);
  StderrCapture capture;
  rt.block_on([] {
    weft::FiberOptions hog;
    hog.name = "stuck-in-a-loop";
    weft::spawn(hog, [] { hog_for(300ms); }).join();
  });
  const std::string text = capture.text();
  EXPECT_EQ(count(text, "without a switch"), 1u) << "stderr:\n" << text;
  EXPECT_EQ(count(text, "'stuck-in-a-loop'"), 1u) << "stderr:\n" << text;
}

// A second stall of the same fiber, after it switched, is a new stall: one
// more warning.
TEST(StallWarning, EachStallIsReported) {
  weft::Config c = workers_config(1);
  c.stall_warning = 20ms;
  Runtime rt(c);
  StderrCapture capture;
  rt.block_on([] {
    weft::FiberOptions hog;
    hog.name = "stalls-twice";
    weft::spawn(hog, [] {
      hog_for(300ms);
      weft::this_fiber::sleep_for(20ms);  // a switch: the first stall is over
      hog_for(300ms);
    }).join();
  });
  const std::string text = capture.text();
  EXPECT_EQ(count(text, "'stalls-twice'"), 2u) << "stderr:\n" << text;
}

}  // namespace
}  // namespace weft::test
