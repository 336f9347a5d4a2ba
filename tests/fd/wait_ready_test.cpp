// weft::fd::wait_ready: readiness of caller-owned descriptors, on both
// backends (io_uring POLL_ADD, epoll's private one-shot instances) with 1
// and 2 workers, and on plain threads.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include "common/io_util.hpp"
#include "common/test_util.hpp"
#include "weft/fd.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::test::IoTest;
using Clock = std::chrono::steady_clock;

/// A non-blocking pipe, closed on destruction.
struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() {
    if (::pipe2(fd, O_NONBLOCK | O_CLOEXEC) != 0)
      throw std::system_error(errno, std::generic_category());
  }
  ~Pipe() {
    for (int f : fd)
      if (f >= 0) ::close(f);
  }
  void close_end(int i) {
    ::close(fd[i]);
    fd[i] = -1;
  }
};

/// Descriptors open in this process now.
std::size_t open_fds() {
  std::size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

int error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::system_error& e) {
    return e.code().value();
  }
  return 0;
}

class WaitReadyTest : public IoTest {};
WEFT_INSTANTIATE_IO(WaitReadyTest);

TEST_P(WaitReadyTest, ParksUntilReadable) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([] {
    Pipe p;
    auto writer = weft::spawn([&] {
      weft::this_fiber::sleep_for(5ms);
      EXPECT_EQ(::write(p.fd[1], "x", 1), 1);
    });
    const auto t0 = Clock::now();
    const short r = weft::fd::wait_ready(p.fd[0], POLLIN);
    EXPECT_NE(r & POLLIN, 0);
    EXPECT_GE(Clock::now() - t0, 5ms);
    writer.join();
    // A write end is writable at once; both directions at once report both.
    EXPECT_NE(weft::fd::wait_ready(p.fd[1], POLLOUT) & POLLOUT, 0);
    EXPECT_NE(weft::fd::wait_ready(p.fd[0], POLLIN | POLLOUT) & POLLIN, 0);
  });
}

TEST_P(WaitReadyTest, DeadlinesAndPassedDeadlines) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([] {
    Pipe p;
    const auto t0 = Clock::now();
    EXPECT_THROW(weft::fd::wait_ready(p.fd[0], POLLIN, 10ms), weft::TimedOut);
    EXPECT_GE(Clock::now() - t0, 10ms);
    EXPECT_THROW(weft::fd::wait_ready(p.fd[0], POLLIN, weft::Deadline(Clock::now() - 1s)),
                 weft::TimedOut);
    // A passed deadline still reports readiness that needs no waiting.
    ASSERT_EQ(::write(p.fd[1], "x", 1), 1);
    EXPECT_NE(weft::fd::wait_ready(p.fd[0], POLLIN, weft::Deadline(Clock::now() - 1s)) & POLLIN, 0);
  });
}

TEST_P(WaitReadyTest, CancellationAndHangUp) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([] {
    Pipe p;
    auto waiter = weft::spawn([&] { (void)weft::fd::wait_ready(p.fd[0], POLLIN); });
    weft::this_fiber::sleep_for(5ms);
    waiter.cancel();
    EXPECT_THROW(waiter.join(), weft::Cancelled);
    // The peer goes away: a hang-up wakes a reader.
    auto reader = weft::spawn([&] { return weft::fd::wait_ready(p.fd[0], POLLIN); });
    weft::this_fiber::sleep_for(5ms);
    p.close_end(1);
    EXPECT_NE(reader.join() & (POLLIN | POLLHUP), 0);
  });
}

TEST_P(WaitReadyTest, BadArguments) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([] {
    Pipe p;
    EXPECT_THROW(weft::fd::wait_ready(p.fd[0], 0), std::invalid_argument);
    EXPECT_THROW(weft::fd::wait_ready(p.fd[0], POLLIN | 0x4000), std::invalid_argument);
    EXPECT_EQ(error_of([] { (void)weft::fd::wait_ready(-1, POLLIN); }), EBADF);
    EXPECT_EQ(error_of([] { (void)weft::fd::wait_ready(999999, POLLIN, 1s); }), EBADF);
    // A regular file is always ready.
    FILE* f = std::tmpfile();
    ASSERT_NE(f, nullptr);
    EXPECT_NE(weft::fd::wait_ready(::fileno(f), POLLIN | POLLOUT) & (POLLIN | POLLOUT), 0);
    std::fclose(f);
  });
}

// Many fibers wait on one descriptor, in both directions; every wait
// leaves nothing behind (no epoll instance, no registration), even when it
// times out or is cancelled.
TEST_P(WaitReadyTest, ManyWaitersLeaveNothingBehind) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([] {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    const std::size_t before = open_fds();
    std::atomic<int> readable{0}, writable{0};
    std::vector<weft::JoinHandle<void>> hs;
    for (int i = 0; i < 16; ++i) {
      hs.push_back(weft::spawn([&] {
        if (weft::fd::wait_ready(sv[0], POLLIN) & POLLIN) readable.fetch_add(1);
      }));
    }
    for (int i = 0; i < 4; ++i) {
      hs.push_back(weft::spawn([&] {
        if (weft::fd::wait_ready(sv[0], POLLOUT) & POLLOUT) writable.fetch_add(1);
      }));
    }
    auto timed = weft::spawn([&] { (void)weft::fd::wait_ready(sv[0], POLLPRI, 3ms); });
    auto cancelled = weft::spawn([&] { (void)weft::fd::wait_ready(sv[0], POLLPRI); });
    weft::this_fiber::sleep_for(5ms);
    cancelled.cancel();
    ASSERT_EQ(::write(sv[1], "x", 1), 1);
    for (auto& h : hs) h.join();
    EXPECT_THROW(timed.join(), weft::TimedOut);
    EXPECT_THROW(cancelled.join(), weft::Cancelled);
    EXPECT_EQ(readable.load(), 16);
    EXPECT_EQ(writable.load(), 4);
    EXPECT_EQ(open_fds(), before);
    ::close(sv[0]);
    ::close(sv[1]);
  });
}

// Descriptor numbers are reused: a wait on a new descriptor that got the
// number of one waited on before sees only the new one.
TEST_P(WaitReadyTest, ReusedDescriptorNumbers) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([] {
    for (int round = 0; round < 50; ++round) {
      Pipe p;
      if (round % 2 == 0) {
        ASSERT_EQ(::write(p.fd[1], "x", 1), 1);
        EXPECT_NE(weft::fd::wait_ready(p.fd[0], POLLIN, 1s) & POLLIN, 0);
      } else {
        EXPECT_THROW(weft::fd::wait_ready(p.fd[0], POLLIN, 1ms), weft::TimedOut);
      }
    }
  });
}

TEST(WaitReadyThread, PlainThreadsPoll) {
  Pipe p;
  EXPECT_THROW(weft::fd::wait_ready(p.fd[0], POLLIN, 5ms), weft::TimedOut);
  std::thread writer([&] {
    std::this_thread::sleep_for(5ms);
    EXPECT_EQ(::write(p.fd[1], "x", 1), 1);
  });
  EXPECT_NE(weft::fd::wait_ready(p.fd[0], POLLIN) & POLLIN, 0);
  writer.join();
  EXPECT_EQ(error_of([] { (void)weft::fd::wait_ready(999999, POLLIN, 1s); }), EBADF);
}

}  // namespace
