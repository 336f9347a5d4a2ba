// The reactor (src/io) below weft::net: backend selection, a backend's
// wait/wake/timeout contract driven directly, the IoObject lifecycle
// (descriptor kept open while operations run, generations make stale
// tokens miss), io::perform on plain threads and in fibers, grants to every
// waiter of a descriptor, a tiny io_uring, and workers asleep in their
// backend's wait being woken by spawns from outside, by I/O finishing and
// by timers while I/O is pending.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/io_util.hpp"
#include "common/test_util.hpp"
#include "io/backend.hpp"
#include "io/io_object.hpp"
#include "io/request.hpp"
#include "weft/net.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::Clock;
using weft::IoBackend;
using weft::JoinHandle;
using weft::Runtime;
using weft::test::Checker;
using weft::test::eventually;
using weft::test::IoTest;
using weft::test::kPatience;
using weft::test::scaled;
namespace io = weft::detail::io;

/// A deadline for io::perform: CLOCK_MONOTONIC ns, d from now.
std::int64_t ns_from_now(std::chrono::nanoseconds d) {
  return weft::detail::monotonic_ns() + d.count();
}

/// A non-blocking, close-on-exec socketpair, closed on destruction unless
/// released.
struct RawPair {
  int fd[2] = {-1, -1};
  RawPair() {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd) != 0) {
      throw std::system_error(errno, std::generic_category(), "socketpair");
    }
  }
  ~RawPair() {
    for (int f : fd) {
      if (f >= 0) ::close(f);
    }
  }
  /// Hands fd[i] over (to an IoObject).
  int release(int i) { return std::exchange(fd[i], -1); }
};

io::Request recv_request(int fd, void* buf, std::size_t len) {
  io::Request r;
  r.op = io::Op::recv;
  r.fd = fd;
  r.buf = buf;
  r.len = len;
  return r;
}

std::uint64_t token_of(io::IoObject* o) {
  weft::detail::LockGuard g(o->lock);
  return o->token();
}

// ---------------------------------------------------------------------------
// Backend selection and the wait/wake contract

class BackendTest : public ::testing::TestWithParam<IoBackend> {};
INSTANTIATE_TEST_SUITE_P(Io, BackendTest, ::testing::Values(IoBackend::io_uring, IoBackend::epoll),
                         [](const auto& info) { return weft::test::backend_name(info.param); });

TEST_P(BackendTest, CreateAllMakesTheRequestedKind) {
  weft::Config cfg;
  cfg.io_backend = GetParam();
  auto all = io::Backend::create_all(cfg, 3);
  ASSERT_EQ(all.size(), 3u);
  for (auto& b : all) {
    EXPECT_EQ(b->kind(), GetParam());
    EXPECT_FALSE(b->has_pending());
  }
}

// The backend's poll contract, driven from an owner thread while this
// thread checks each step (bounded) instead of hanging on a broken one:
// poll(0) returns; a timeout alone ends a poll; a wake() before a poll
// makes it return (a wake-up is never lost); wake() from another thread
// ends a blocking poll, many times over; no poll hands back a fiber
// (nothing is in flight). Blocking polls are counted.
TEST_P(BackendTest, PollHonoursWakeAndTimeout) {
  weft::Config cfg;
  cfg.io_backend = GetParam();
  auto all = io::Backend::create_all(cfg, 1);
  io::Backend& b = *all.front();
  std::atomic<int> step{0};  // the owner's progress
  std::atomic<int> go{0};    // how far the owner may go
  std::atomic<bool> woken{false};
  constexpr int kWakes = 50;
  std::atomic<int> fibers{0};  // handed back by a poll: none may be
  std::thread owner([&] {
    b.attach();  // this thread is the owner now
    weft::detail::FiberList woken_fibers;
    auto poll = [&](std::int64_t timeout_ns) {
      b.poll(timeout_ns, woken_fibers);
      while (woken_fibers.pop_front() != nullptr) fibers.fetch_add(1);
    };
    poll(0);  // nothing to do: returns at once
    step = 1;
    // A timeout alone ends a wait. (It may end early: "up to timeout_ns";
    // the worker re-checks its timers. epoll_pwait2 on a thread that owned
    // an io_uring before can say EINTR, for instance.)
    for (int i = 0; i < 3; ++i) poll(std::chrono::nanoseconds(20ms).count());
    step = 2;
    while (go.load() < 3) std::this_thread::yield();
    poll(-1);  // woken before it began
    step = 3;
    for (int i = 0; i < kWakes; ++i) {
      while (!woken.exchange(false)) poll(-1);  // a spurious return just waits again
      step = 4 + i;
    }
    poll(0);
  });
  const std::uint64_t waits0 = b.blocking_waits();
  EXPECT_TRUE(eventually([&] { return step.load() >= 2; })) << "poll(0) or a timed poll hung";
  b.wake();
  go = 3;
  EXPECT_TRUE(eventually([&] { return step.load() >= 3; })) << "a wake() before the poll was lost";
  for (int i = 0; i < kWakes && !HasFailure(); ++i) {
    std::this_thread::sleep_for(std::chrono::microseconds(100 * (i % 10)));
    woken = true;
    b.wake();
    EXPECT_TRUE(eventually([&] { return step.load() >= 4 + i; }))
        << "wake() " << i << " from another thread did not end the poll";
  }
  while (step.load() < 3 + kWakes) {  // only when broken: let the owner finish
    go = 3;
    woken = true;
    b.wake();
    std::this_thread::sleep_for(1ms);
  }
  owner.join();
  EXPECT_EQ(fibers.load(), 0) << "a poll with nothing in flight handed back fibers";
  // The timed and the blocking polls were counted (not poll(0)).
  EXPECT_GE(b.blocking_waits() - waits0, static_cast<std::uint64_t>(kWakes));
}

TEST(BackendSelectionTest, RuntimeReportsTheBackendInForce) {
  for (IoBackend kind : {IoBackend::io_uring, IoBackend::epoll}) {
    weft::Config cfg = weft::test::workers_config(2);
    cfg.io_backend = kind;
    Runtime rt(cfg);
    EXPECT_EQ(rt.io_backend(), kind);
  }
  // auto_detect picks io_uring where a ring can be made, else epoll; never
  // reports auto_detect itself.
  weft::Config cfg = weft::test::workers_config(1);
  cfg.io_backend = IoBackend::auto_detect;
  const bool uring_works = io::make_uring_backend(cfg) != nullptr;
  Runtime rt(cfg);
  EXPECT_EQ(rt.io_backend(), uring_works ? IoBackend::io_uring : IoBackend::epoll);
}

// ---------------------------------------------------------------------------
// IoObject lifecycle

TEST(IoObjectTest, DescriptorStaysOpenUntilTheLastOperationEnds) {
  RawPair p;
  io::IoObject* o = io::adopt(p.release(0), true);
  const std::uint64_t token = token_of(o);
  ASSERT_TRUE(io::begin_op(o));  // an operation in progress
  EXPECT_EQ(io::close(o), 0);
  {
    weft::detail::LockGuard g(o->lock);
    EXPECT_TRUE(o->closed);
    EXPECT_GE(o->fd, 0) << "closed under a running operation";
  }
  char c;
  // The peer does not see the end yet: the descriptor is still open.
  EXPECT_EQ(::read(p.fd[1], &c, 1), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_FALSE(io::begin_op(o)) << "new operations start after close()";
  EXPECT_EQ(io::close(o), 0);  // idempotent
  io::end_op(o);               // the last operation: now it is closed
  EXPECT_EQ(::read(p.fd[1], &c, 1), 0) << "the peer should see end of stream";
  // Still held by its handle, so not recycled yet; gone after drop_handle.
  io::drop_handle(o);
  EXPECT_EQ(io::lock_token(token), nullptr);
}

TEST(IoObjectTest, DroppedHandleWaitsForOperations) {
  RawPair p;
  io::IoObject* o = io::adopt(p.release(0), true);
  const std::uint64_t token = token_of(o);
  ASSERT_TRUE(io::begin_op(o));
  io::drop_handle(o);  // closes; the operation keeps object and fd alive
  char c;
  EXPECT_EQ(::read(p.fd[1], &c, 1), -1);
  io::end_op(o);
  EXPECT_EQ(::read(p.fd[1], &c, 1), 0);
  EXPECT_EQ(io::lock_token(token), nullptr);
}

TEST(IoObjectTest, StaleTokensMissRecycledSlots) {
  std::vector<std::uint64_t> stale;
  for (int i = 0; i < 100; ++i) {
    RawPair p;
    io::IoObject* o = io::adopt(p.release(0), true);
    const std::uint64_t t = token_of(o);
    io::IoObject* found = io::lock_token(t);
    ASSERT_EQ(found, o);
    found->lock.assert_held();  // lock_token returns it locked
    found->lock.unlock();
    for (std::uint64_t s : stale) EXPECT_EQ(io::lock_token(s), nullptr);
    io::drop_handle(o);
    EXPECT_EQ(io::lock_token(t), nullptr);
    stale.push_back(t);
  }
  // Slots are reused (same index, another generation): no token repeats.
  std::vector<std::uint64_t> sorted = stale;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());
}

// ---------------------------------------------------------------------------
// io::perform on a plain thread

TEST(PerformThreadTest, PlainThreadPaths) {
  RawPair p;
  io::IoObject* o = io::adopt(p.release(0), true);
  char buf[8];
  // Nothing to read: waits until the deadline, then TimedOut.
  const auto t0 = Clock::now();
  EXPECT_THROW((void)io::perform(recv_request(o->fd, buf, sizeof buf), o, ns_from_now(30ms)),
               weft::TimedOut);
  EXPECT_GE(Clock::now() - t0, 30ms);
  // poll: readiness.
  ASSERT_EQ(::write(p.fd[1], "abc", 3), 3);
  io::Request pr;
  pr.op = io::Op::poll;
  pr.fd = o->fd;
  pr.poll_events = POLLIN;
  EXPECT_NE(io::perform(pr, o, ns_from_now(kPatience)) & POLLIN, 0);
  EXPECT_EQ(io::perform(recv_request(o->fd, buf, sizeof buf), o, -1), 3);
  EXPECT_EQ(std::string(buf, 3), "abc");
  // After close: -EBADF, not a call on a dead descriptor.
  io::close(o);
  // (The request names the open peer: a broken guard would wait on it.)
  EXPECT_EQ(io::perform(recv_request(p.fd[1], buf, sizeof buf), o, ns_from_now(kPatience)), -EBADF);
  io::drop_handle(o);
}

// ---------------------------------------------------------------------------
// In fibers, on both backends

class ReactorTest : public IoTest {};
WEFT_INSTANTIATE_IO(ReactorTest);

TEST_P(ReactorTest, PerformInFibers) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([] {
    RawPair p;
    io::IoObject* o = io::adopt(p.release(0), true);
    char buf[8];
    // A deadline: TimedOut, and no request left behind on the object.
    const auto t0 = Clock::now();
    EXPECT_THROW((void)io::perform(recv_request(o->fd, buf, sizeof buf), o, ns_from_now(20ms)),
                 weft::TimedOut);
    EXPECT_GE(Clock::now() - t0, 20ms);
    {
      weft::detail::LockGuard g(o->lock);
      EXPECT_EQ(o->inflight, nullptr);
      EXPECT_EQ(o->ops, 0u);
    }
    // poll waits for readiness.
    auto poller = weft::spawn([&] {
      io::Request pr;
      pr.op = io::Op::poll;
      pr.fd = o->fd;
      pr.poll_events = POLLIN;
      return io::perform(pr, o, ns_from_now(kPatience));
    });
    weft::this_fiber::sleep_for(5ms);
    ASSERT_EQ(::write(p.fd[1], "xy", 2), 2);
    EXPECT_NE(poller.join() & POLLIN, 0);
    EXPECT_EQ(io::perform(recv_request(o->fd, buf, sizeof buf), o, -1), 2);
    // Closing wakes a blocked perform with -EBADF.
    auto blocked = weft::spawn([&] {
      return io::perform(recv_request(o->fd, buf, sizeof buf), o, ns_from_now(kPatience));
    });
    weft::this_fiber::sleep_for(5ms);
    io::close(o);
    EXPECT_EQ(blocked.join(), -EBADF);
    io::drop_handle(o);

    // A regular file (not pollable): reads through the blocking pool or the
    // ring, never waiting for readiness.
    weft::test::TempDir dir;
    const std::string path = (dir.path() / "f").string();
    const int wfd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(wfd, 0);
    ASSERT_EQ(::write(wfd, "file data", 9), 9);
    ::close(wfd);
    io::IoObject* f = io::adopt(::open(path.c_str(), O_RDONLY | O_CLOEXEC), false);
    io::Request rr;
    rr.op = io::Op::read;
    rr.fd = f->fd;
    rr.buf = buf;
    rr.len = 4;
    rr.offset = 5;
    EXPECT_EQ(io::perform(rr, f, -1), 4);
    EXPECT_EQ(std::string(buf, 4), "data");
    io::drop_handle(f);
  });
}

TEST_P(ReactorTest, EveryWaiterOfADescriptorIsWoken) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([] {
    // Readers: 16 fibers each read one byte of the same socket; all 16 bytes
    // arrive in one write, i.e. one readiness edge for all of them.
    auto u = weft::net::UnixStream::pair();
    const int k = 16;
    std::vector<JoinHandle<char>> readers;
    for (int i = 0; i < k; ++i) {
      readers.push_back(weft::spawn([&] {
        char c = 0;
        try {
          u.first.read_exact(&c, 1, kPatience);
        } catch (const weft::TimedOut&) {
          return '?';  // never woken
        }
        return c;
      }));
    }
    weft::this_fiber::sleep_for(10ms);  // let them all block
    u.second.write_all("abcdefghijklmnop");
    std::string got;
    for (auto& h : readers) got += h.join();
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, "abcdefghijklmnop");

    // Writers: the buffer is full; 8 fibers each want to write; the reader
    // drains it at once.
    const int small = 4096;
    ::setsockopt(u.first.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    std::vector<char> fill(1 << 16, 'f');
    std::size_t filled = 0;
    for (;;) {
      try {
        filled += u.first.write(fill.data(), fill.size(), Clock::now());
      } catch (const weft::TimedOut&) {
        break;  // full
      }
    }
    std::vector<JoinHandle<bool>> writers;
    for (int i = 0; i < 8; ++i) {
      writers.push_back(weft::spawn([&] {
        try {
          u.first.write_all(std::string(100, 'w'), kPatience);
          return true;
        } catch (const weft::TimedOut&) {
          return false;
        }
      }));
    }
    weft::this_fiber::sleep_for(10ms);
    std::vector<char> sink(1 << 20);
    std::size_t drained = 0;
    while (drained < filled + 800) {
      drained += u.second.read(sink.data(), sink.size(), kPatience);
    }
    for (auto& h : writers) EXPECT_TRUE(h.join()) << "a writer was never woken";
  });
}

TEST_P(ReactorTest, CloseWakesWaitersOnEveryWorker) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([] {
    for (int round = 0; round < 20; ++round) {
      RawPair p;
      io::IoObject* o = io::adopt(p.release(0), true);
      // Read once here: a waiter that starts after the close must not read
      // o->fd while the last operation's end resets it under o->lock (TSan).
      const int fd = o->fd;
      std::vector<JoinHandle<std::int64_t>> hs;
      for (int i = 0; i < 6; ++i) {
        hs.push_back(weft::spawn([o, fd] {
          char c;
          return io::perform(recv_request(fd, &c, 1), o, ns_from_now(kPatience));
        }));
      }
      weft::this_fiber::sleep_for(2ms);
      std::thread closer([o] { io::close(o); });  // from outside the runtime
      closer.join();
      for (auto& h : hs) EXPECT_EQ(h.join(), -EBADF);
      io::drop_handle(o);
    }
  });
}

TEST_P(ReactorTest, TinyRingWithManyRequests) {
  weft::Config cfg = config();
  cfg.io_uring_entries = 8;  // a submission batch of 8; completion queue of 32
  Runtime rt(cfg);
  ASSERT_EQ(rt.io_backend(), backend());
  const int n = static_cast<int>(scaled(400, 100));
  weft::test::raise_fd_limit(static_cast<rlim_t>(n) * 2 + 256);
  Checker check;
  rt.block_on([&] {
    std::vector<std::pair<weft::net::UnixStream, weft::net::UnixStream>> pairs;
    for (int i = 0; i < n; ++i) pairs.push_back(weft::net::UnixStream::pair());
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < n; ++i) {
      hs.push_back(weft::spawn([&, i] {
        char c = 0;
        try {
          pairs[static_cast<std::size_t>(i)].first.read_exact(&c, 1, kPatience);
          check.check(c == static_cast<char>('a' + i % 26), "wrong byte");
        } catch (...) {
          check.check(false, weft::test::current_message());
        }
      }));
    }
    weft::this_fiber::sleep_for(10ms);
    // All complete at once: more completions than the queue holds.
    for (int i = 0; i < n; ++i) {
      const char c = static_cast<char>('a' + i % 26);
      pairs[static_cast<std::size_t>(i)].second.write_all(&c, 1);
    }
    for (auto& h : hs) h.join();
  });
  WEFT_EXPECT_NO_FAILURES(check);
}

// ---------------------------------------------------------------------------
// Workers asleep in their backend's wait

/// Lets rt's workers go idle: nothing runnable, every worker has slept in
/// its backend's wait at least once, then a pause far longer than their
/// spin before sleeping. (Makes "the worker sleeps in its backend wait" the
/// likely state; the assertions that follow hold in any state.)
void settle_idle(const Runtime& rt) {
  EXPECT_TRUE(eventually([&] {
    const auto s = rt.stats();
    if (s.fibers_runnable != 0) return false;
    for (const auto& w : s.workers) {
      if (w.sleeps == 0) return false;
    }
    return true;
  }));
  std::this_thread::sleep_for(3ms);
}

TEST_P(ReactorTest, SleepingWorkersWakeForSpawnsFromOutside) {
  WEFT_IO_RUNTIME(rt);
  // Some I/O registered/in flight, so the backends have something to wait on.
  auto u = weft::net::UnixStream::pair();
  auto idle_reader = rt.spawn([&] {
    char c;
    try {
      (void)u.first.read(&c, 1);
    } catch (...) {
    }
  });
  const int rounds = static_cast<int>(scaled(100, 20));
  for (int i = 0; i < rounds; ++i) {
    settle_idle(rt);
    auto h = rt.spawn([i] { return i * 2; });
    ASSERT_TRUE(eventually([&] { return h.is_finished(); })) << "round " << i;
    EXPECT_EQ(h.join(), i * 2);
  }
  u.second.write_all("x");
  idle_reader.join();
}

TEST_P(ReactorTest, SleepingWorkerWakesWhenItsIoCompletes) {
  WEFT_IO_RUNTIME(rt);
  auto u = weft::net::UnixStream::pair();
  const int rounds = static_cast<int>(scaled(100, 20));
  std::atomic<int> got{0};
  auto reader = rt.spawn([&] {
    char c;
    for (int i = 0; i < rounds; ++i) {
      u.first.read_exact(&c, 1, kPatience);
      ++got;
    }
  });
  for (int i = 0; i < rounds; ++i) {
    settle_idle(rt);          // the reader's worker sleeps in its wait
    u.second.write_all("r");  // from this plain thread
    ASSERT_TRUE(eventually([&] { return got.load() == i + 1; })) << "round " << i;
  }
  reader.join();
}

TEST_P(ReactorTest, TimersFireWhileIoIsPending) {
  WEFT_IO_RUNTIME(rt);
  auto u = weft::net::UnixStream::pair();
  rt.block_on([&] {
    // Readers that stay blocked for the whole test (I/O pending on every
    // worker's backend).
    std::vector<JoinHandle<void>> readers;
    for (std::size_t i = 0; i < workers() * 2; ++i) {
      readers.push_back(weft::spawn([&] {
        char c;
        try {
          (void)u.first.read(&c, 1);
        } catch (...) {
        }
      }));
    }
    for (int i = 0; i < 20; ++i) {
      const auto t0 = Clock::now();
      weft::this_fiber::sleep_for(5ms);
      EXPECT_GE(Clock::now() - t0, 5ms);
    }
    // Timers in several fibers at once, on every worker.
    std::vector<JoinHandle<void>> sleepers;
    for (int i = 0; i < 8; ++i) {
      sleepers.push_back(weft::spawn([i] {
        const auto t0 = Clock::now();
        weft::this_fiber::sleep_for(std::chrono::milliseconds(1 + i));
        EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(1 + i));
      }));
    }
    for (auto& h : sleepers) h.join();
    u.first.close();  // releases the readers (EBADF)
    for (auto& h : readers) h.join();
  });
}

// Ping-pong across workers that keep drifting to sleep in their backends'
// waits: every round must complete (the test thread watches, bounded; a
// stuck pair is ended by the runtime's shutdown, waits being cancellation
// points).
TEST_P(ReactorTest, UnparkAcrossWorkersWhileTheOwnerSleeps) {
  WEFT_IO_RUNTIME(rt);
  const int rounds = static_cast<int>(scaled(200, 30));
  weft::Event ping, pong;
  std::atomic<int> done{0};
  auto other = rt.spawn([&] {
    for (int i = 0; i < rounds; ++i) {
      ping.wait();
      ping.reset();
      pong.set();
    }
  });
  auto self = rt.spawn([&] {
    for (int i = 0; i < rounds; ++i) {
      if (i % 4 == 0) weft::this_fiber::sleep_for(1ms);  // both workers drift to sleep
      ping.set();
      pong.wait();
      pong.reset();
      done.fetch_add(1);
    }
  });
  EXPECT_TRUE(eventually([&] { return done.load() == rounds; }))
      << "stuck after " << done.load() << " of " << rounds << " rounds: a wake-up was lost";
  if (!HasFailure()) {
    other.join();
    self.join();
  }
}

// A kernel before 5.11, or a container's seccomp profile written before it,
// refuses epoll_pwait2 (ENOSYS, EPERM): the epoll backend must fall back to
// epoll_wait, not spin on the error with nothing ever becoming ready. The
// filter is installed on a thread of its own (seccomp filters are per
// thread and inherited by the threads it creates: the runtime's workers),
// so the rest of the test binary is untouched.
#if defined(__x86_64__) && defined(SYS_epoll_pwait2)
void refuse_epoll_pwait2_on_this_thread(int error) {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_epoll_pwait2, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | static_cast<std::uint32_t>(error)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
  ASSERT_EQ(::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0) << std::strerror(errno);
  ASSERT_EQ(::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0) << std::strerror(errno);
  timespec zero{};
  ASSERT_EQ(::syscall(SYS_epoll_pwait2, -1, nullptr, 0, &zero, nullptr, 0), -1);
  ASSERT_EQ(errno, error) << "the filter is not in force";
}

// Timers and readiness through the epoll backend's wait.
void run_timers_and_readiness(Runtime& rt) {
  rt.block_on([&] {
    // A timer due in 3.5 ms: epoll_wait's whole milliseconds round up,
    // never down (a worker that woke early would spin, not fail).
    for (int i = 0; i < 5; ++i) {
      const auto t0 = Clock::now();
      weft::this_fiber::sleep_for(3500us);
      EXPECT_GE(Clock::now() - t0, 3500us);
    }
    // Readiness: a reader parked on an empty socket is woken by a write
    // from another fiber; a read with a deadline times out.
    auto u = weft::net::UnixStream::pair();
    auto reader = weft::spawn([&] {
      char buf[5];
      u.first.read_exact(buf, sizeof buf, kPatience);
      return std::string(buf, sizeof buf);
    });
    weft::this_fiber::sleep_for(5ms);  // the reader's worker goes idle in its wait
    u.second.write_all("hello");
    EXPECT_EQ(reader.join(), "hello");
    char c;
    EXPECT_THROW((void)u.first.read(&c, 1, 20ms), weft::TimedOut);
  });
}

class EpollWithoutPwait2 : public ::testing::TestWithParam<int> {};

TEST_P(EpollWithoutPwait2, TimersAndReadinessStillWork) {
  std::thread([&] {
    refuse_epoll_pwait2_on_this_thread(GetParam());
    if (HasFatalFailure()) return;
    weft::Config cfg = weft::test::workers_config(2);
    cfg.io_backend = IoBackend::epoll;
    Runtime rt(cfg);
    ASSERT_EQ(rt.io_backend(), IoBackend::epoll);
    try {
      run_timers_and_readiness(rt);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "threw: " << e.what();
    }
  }).join();
}

INSTANTIATE_TEST_SUITE_P(Refused, EpollWithoutPwait2, ::testing::Values(ENOSYS, EPERM),
                         [](const auto& info) {
                           return info.param == ENOSYS ? "ENOSYS" : "EPERM";
                         });
#endif

}  // namespace
