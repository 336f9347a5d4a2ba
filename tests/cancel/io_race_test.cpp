// Cancellation racing the completion of every kind of I/O operation, on both
// reactor backends (net.hpp, fs.hpp, process.hpp promise: a call that
// completed returns its result; a cancelled one transferred nothing).
//
// A victim fiber runs one operation per round, each under its own
// CancellationSource (with_cancellation). The test thread waits until the
// operation is in flight (the victim parked in it, or already done), then
// makes it complete (writes the bytes a read waits for, reads what a write
// waits to send, connects to an accept, sends a datagram, lets a child
// exit) and cancels, in one of three orders, round-robin:
//   before  cancel, then complete: normally Cancelled, nothing consumed;
//   racing  complete, then cancel right away (after 0-20 us): the cancel
//           often wins the waiter while the kernel has already done the
//           work - the case where io_uring must return op.res (>= 0) and
//           epoll must not check cancellation after its system call;
//   after   complete, wait a little (0-200 us), then cancel.
// File reads and writes, connects, datagram sends and process waits need
// no trigger: they complete by themselves, and the cancel comes at a random
// moment after the victim parked.
//
// Every round's outcome is accounted for, and at the end the data must be
// whole: a byte stream read or written across cancelled and completed calls
// equals the stream sent, every connection and datagram arrives exactly
// once, a child's exit status is never lost. A loss or a duplicate fails,
// whatever the timing; the timing only decides how often the races are hit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/cancel_util.hpp"
#include "common/io_util.hpp"
#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace weft::test {
namespace {

using namespace std::chrono_literals;
using weft::net::Address;
using weft::net::TcpListener;
using weft::net::TcpStream;
using weft::net::UdpSocket;
using weft::net::UnixStream;

enum class When { before, racing, after };

const char* when_name(When w) {
  return w == When::before ? "before" : w == When::racing ? "racing" : "after";
}

/// One source per round, a victim side (in the fiber) and a driver side (on
/// the test thread). Outcomes are counted per order for the test's record.
/// eventually() for short waits: a few hundred microseconds of polling
/// first, then its 1 ms sleeps (a loaded machine gets its cores back).
template <class Pred>
bool soon(Pred pred) {
  const auto spin_until = std::chrono::steady_clock::now() + 300us;
  while (std::chrono::steady_clock::now() < spin_until) {
    if (pred()) return true;
    std::this_thread::yield();
  }
  return eventually(pred);
}

class Race {
 public:
  explicit Race(int rounds) : sources_(static_cast<std::size_t>(rounds)), rng_(42) {}

  int rounds() const { return static_cast<int>(sources_.size()); }
  static When when(int round) { return static_cast<When>(round % 3); }

  // --- victim (the fiber) ---
  void capture() { watch_.capture(); }
  /// Runs op() under round r's token; true if it returned, false if it threw
  /// Cancelled.
  template <class F>
  bool attempt(int r, F&& op) {
    // One round at a time: the driver is ready for this one (otherwise an
    // operation that completes by itself would run ahead of its cancel).
    go_.acquire();
    bool done = false;
    started_.store(r);
    try {
      with_cancellation(sources_[static_cast<std::size_t>(r)].token(), op);
      done = true;
    } catch (const Cancelled&) {
    }
    (done ? completed_ : cancelled_)[static_cast<int>(when(r))].fetch_add(1);
    finished_.store(r);
    return done;
  }

  // --- driver (the test thread) ---
  /// Waits until round r's operation is in flight (parked) or over, then
  /// runs trigger() and cancels in the order of when(r). trigger may be
  /// empty (an operation that completes by itself).
  template <class F>
  void drive(int r, F&& trigger) {
    go_.release();
    ASSERT_TRUE(soon([&] { return started_.load() >= r; })) << "round " << r;
    spin_until_parked_or_done(r);
    auto& src = sources_[static_cast<std::size_t>(r)];
    switch (when(r)) {
      case When::before:
        src.cancel();
        trigger();
        break;
      case When::racing:
        trigger();
        spin_for(std::chrono::microseconds(rng_() % 20));
        src.cancel();
        break;
      case When::after:
        trigger();
        spin_for(std::chrono::microseconds(rng_() % 200));
        src.cancel();
        break;
    }
    ASSERT_TRUE(soon([&] { return finished_.load() >= r; })) << "round " << r;
  }

  /// "before: 3 completed / 97 cancelled, ..." for the failure messages.
  ~Race() { ::testing::Test::RecordProperty("outcomes", tally()); }
  std::string tally() const {
    std::string s;
    for (int w = 0; w < 3; ++w) {
      s += std::string(when_name(static_cast<When>(w))) + ": " +
           std::to_string(completed_[w].load()) + " completed / " +
           std::to_string(cancelled_[w].load()) + " cancelled; ";
    }
    return s;
  }

 private:
  void spin_until_parked_or_done(int r) {
    // Bounded: a fast operation may be over before it is ever seen parked.
    const auto give_up = std::chrono::steady_clock::now() + 50ms;
    while (!watch_.parked() && finished_.load() < r && std::chrono::steady_clock::now() < give_up) {
    }
  }

  std::vector<CancellationSource> sources_;
  FiberWatch watch_;
  weft::Semaphore go_{0};  // a permit per round, from the driver
  std::atomic<int> started_{-1}, finished_{-1};
  std::atomic<int> completed_[3]{}, cancelled_[3]{};
  std::mt19937 rng_;
};

class IoCancelRace : public IoTest {
 protected:
  int rounds(int n) const { return static_cast<int>(scaled(n, 30)); }
};
WEFT_INSTANTIATE_IO(IoCancelRace);

// --- byte streams ---------------------------------------------------------------

// read: the thread writes a chunk per round. Bytes a completed read returned
// and bytes read after the last round must be the stream, in order.
TEST_P(IoCancelRace, StreamReadNeverLosesOrRepeatsBytes) {
  WEFT_IO_RUNTIME(rt);
  auto ends = UnixStream::pair();  // (clang 14 cannot capture a structured binding)
  auto& reader_end = ends.first;
  auto& peer = ends.second;
  Race race(rounds(150));
  std::uint64_t sent = 0;
  std::atomic<std::uint64_t> verified{0};
  std::atomic<bool> corrupt{false};
  auto victim = rt.spawn([&, s = std::move(reader_end)]() mutable {
    race.capture();
    ByteStream want(1);
    std::vector<char> buf(64 * 1024);
    auto take = [&](std::size_t n) {
      if (want.verify(buf.data(), n) != n) corrupt.store(true);
      verified.fetch_add(n);
    };
    for (int r = 0; r < race.rounds(); ++r) {
      std::size_t n = 0;
      if (race.attempt(r, [&] { n = s.read(buf.data(), buf.size()); })) take(n);
    }
    // What is left: read until the peer closes (never cancelled).
    while (const std::size_t n = s.read(buf.data(), buf.size(), Deadline::after(kPatience))) {
      take(n);
    }
  });
  ByteStream out(1);
  std::uint64_t seed = 5;
  for (int r = 0; r < race.rounds(); ++r) {
    const std::size_t len = uniform(seed, 1, 8192);
    const auto chunk = out.take(len);
    race.drive(r, [&] { peer.write_all(chunk.data(), chunk.size()); });
    sent += len;
  }
  peer.close();
  victim.join();
  EXPECT_FALSE(corrupt.load()) << "bytes lost or repeated; " << race.tally();
  EXPECT_EQ(verified.load(), sent) << race.tally();
}

// The narrow window of the race, made wide: the read's wake-up is already
// granted (the data is there) when the cancel arrives, before the read
// returns. One worker, busy with a hog while a thread writes to two
// sockets, first the canceller's, then the victim's; released, the worker
// polls once and wakes both, the canceller first (the earliest wake runs
// first), which cancels the victim before it runs. The victim's read must
// then return its bytes (epoll: the system call after the grant; io_uring:
// the completion reaped before the cancel), or, if it says Cancelled, leave
// them in the socket.
TEST_P(IoCancelRace, CancelAfterTheWakeUpBeforeTheReadReturns) {
  if (workers() != 1) GTEST_SKIP() << "needs one worker";
  WEFT_IO_RUNTIME(rt);
  const int rounds = static_cast<int>(scaled(25, 10));
  int completed = 0;
  for (int round = 0; round < rounds; ++round) {
    auto v = UnixStream::pair();  // (clang 14 cannot capture a structured binding)
    auto w = UnixStream::pair();
    auto& v_end = v.first;
    auto& v_peer = v.second;
    auto& w_end = w.first;
    auto& w_peer = w.second;
    CancellationSource src;
    std::size_t got = 0;
    bool cancelled = false;
    auto victim = rt.spawn([&] {
      char buf[64];
      try {
        with_cancellation(src.token(), [&] { got = v_end.read(buf, sizeof buf); });
      } catch (const Cancelled&) {
        cancelled = true;
      }
    });
    auto canceller = rt.spawn([&] {
      char c;
      (void)w_end.read(&c, 1);
      src.cancel();
    });
    settle_parked(rt, 2);
    std::atomic<bool> release{false}, hog_running{false};
    auto hog = rt.spawn([&] {
      hog_running.store(true);
      while (!release.load()) {
      }
    });
    ASSERT_TRUE(eventually([&] { return hog_running.load(); }));
    const char one = 'w';
    w_peer.write_all(&one, 1);
    const char sixteen[16] = "0123456789abcde";
    v_peer.write_all(sixteen, sizeof sixteen);
    release.store(true);
    hog.join();
    canceller.join();
    victim.join();
    if (!cancelled) {
      EXPECT_EQ(got, sizeof sixteen) << "round " << round;
      ++completed;
      continue;
    }
    // Cancelled: the bytes must still be there.
    char buf[64];
    std::size_t left = 0;
    try {
      left = v_end.read(buf, sizeof buf, Deadline::after(2s));
    } catch (const TimedOut&) {
    }
    EXPECT_EQ(left, sizeof sixteen)
        << "round " << round << ": a cancelled read consumed the bytes it was woken for";
    if (HasFailure()) return;
  }
  RecordProperty("completed", completed);
}

// write: the victim's socket is full, so each write waits; the thread
// reads a random amount (room for the write), checking the stream. A
// cancelled write that sent bytes would send them again.
TEST_P(IoCancelRace, StreamWriteNeverLosesOrRepeatsBytes) {
  WEFT_IO_RUNTIME(rt);
  auto ends = UnixStream::pair();  // (clang 14 cannot capture a structured binding)
  auto& writer_end = ends.first;
  auto& peer = ends.second;
  Race race(rounds(150));
  std::atomic<std::uint64_t> written{0};
  auto victim = rt.spawn([&, s = std::move(writer_end)]() mutable {
    race.capture();
    ByteStream gen(2);
    std::vector<unsigned char> pending;  // generated, not yet written
    auto refill = [&] {
      if (pending.size() < 16 * 1024) {
        auto more = gen.take(64 * 1024);
        pending.insert(pending.end(), more.begin(), more.end());
      }
    };
    auto sent = [&](std::size_t n) {
      pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(n));
      written.fetch_add(n);
    };
    // Fill the socket until a write would wait.
    for (;;) {
      refill();
      try {
        sent(s.write(pending.data(), pending.size(), Deadline::after(20ms)));
      } catch (const TimedOut&) {
        break;
      }
    }
    for (int r = 0; r < race.rounds(); ++r) {
      refill();
      std::size_t n = 0;
      if (race.attempt(r, [&] { n = s.write(pending.data(), pending.size()); })) sent(n);
    }
    s.close();
  });
  ByteStream want(2);
  std::uint64_t seed = 9;
  std::uint64_t got = 0;
  bool corrupt = false;
  std::vector<char> buf(64 * 1024);
  auto consume = [&](std::size_t n) {
    if (want.verify(buf.data(), n) != n) corrupt = true;
    got += n;
  };
  for (int r = 0; r < race.rounds(); ++r) {
    const std::size_t len = uniform(seed, 1, buf.size());
    race.drive(r, [&] { consume(peer.read(buf.data(), len)); });
  }
  while (const std::size_t n = peer.read(buf.data(), buf.size(), Deadline::after(kPatience))) {
    consume(n);
  }
  victim.join();
  EXPECT_FALSE(corrupt) << "bytes lost or repeated; " << race.tally();
  EXPECT_EQ(got, written.load()) << race.tally();
}

// --- connections ----------------------------------------------------------------

// accept: the thread connects a client per round and sends its number. A
// connection the kernel handed to a cancelled accept would be lost: every
// client must be accepted exactly once (the rest after the last round).
TEST_P(IoCancelRace, AcceptNeverLosesAConnection) {
  WEFT_IO_RUNTIME(rt);
  auto listener = TcpListener::bind(Address::loopback_ipv4(0));
  const Address addr = listener.local_address();
  Race race(rounds(90));
  std::vector<int> seen(static_cast<std::size_t>(race.rounds()), 0);
  auto victim = rt.spawn([&] {
    race.capture();
    int accepted = 0;
    auto take = [&](TcpStream c) {
      std::uint32_t id = 0;
      c.read_exact(&id, sizeof id, Deadline::after(kPatience));
      if (id < seen.size()) ++seen[id];
      ++accepted;
    };
    for (int r = 0; r < race.rounds(); ++r) {
      TcpStream c;
      if (race.attempt(r, [&] { c = listener.accept(); })) take(std::move(c));
    }
    while (accepted < race.rounds()) take(listener.accept(Deadline::after(kPatience)));
  });
  std::vector<TcpStream> clients;
  for (int r = 0; r < race.rounds(); ++r) {
    race.drive(r, [&] {
      clients.push_back(TcpStream::connect(addr));
      const auto id = static_cast<std::uint32_t>(r);
      clients.back().write_all(&id, sizeof id);
    });
  }
  victim.join();
  for (int r = 0; r < race.rounds(); ++r) {
    EXPECT_EQ(seen[static_cast<std::size_t>(r)], 1) << "connection " << r << "; " << race.tally();
  }
}

// connect: completes by itself on loopback; the cancel comes at a random
// moment. A connect that returned sends its number; the server must see each
// such number exactly once, and none from a cancelled connect.
TEST_P(IoCancelRace, ConnectReturnsEveryConnectionItMade) {
  WEFT_IO_RUNTIME(rt);
  auto listener = TcpListener::bind(Address::loopback_ipv4(0));
  const Address addr = listener.local_address();
  Race race(rounds(90));
  std::vector<char> connected(static_cast<std::size_t>(race.rounds()), 0);
  std::atomic<bool> victim_done{false};
  auto victim = rt.spawn([&] {
    race.capture();
    for (int r = 0; r < race.rounds(); ++r) {
      TcpStream c;
      if (race.attempt(r, [&] { c = TcpStream::connect(addr); })) {
        const auto id = static_cast<std::uint32_t>(r);
        c.write_all(&id, sizeof id);
        connected[static_cast<std::size_t>(r)] = 1;
      }
    }
    victim_done.store(true);
  });
  // The server: a thread accepting everything (cancelled connects may have
  // reached the backlog too: they send nothing).
  std::vector<int> seen(static_cast<std::size_t>(race.rounds()), 0);
  std::atomic<bool> stop{false};
  std::thread server([&] {
    std::vector<TcpStream> conns;
    while (!stop.load()) {
      try {
        conns.push_back(listener.accept(Deadline::after(20ms)));
      } catch (const TimedOut&) {
      }
    }
    for (auto& c : conns) {
      std::uint32_t id = 0;
      if (c.read(&id, sizeof id, Deadline::after(kPatience)) == sizeof id && id < seen.size()) {
        ++seen[id];
      }
    }
  });
  for (int r = 0; r < race.rounds(); ++r) race.drive(r, [] {});
  victim.join();
  std::this_thread::sleep_for(50ms);  // the last connections reach the backlog
  stop.store(true);
  server.join();
  for (int r = 0; r < race.rounds(); ++r) {
    EXPECT_EQ(seen[static_cast<std::size_t>(r)], connected[static_cast<std::size_t>(r)])
        << "connection " << r << "; " << race.tally();
  }
}

// --- datagrams ----------------------------------------------------------------------

// recv: the thread sends a datagram per round; every one must be received
// exactly once (the rest after the last round).
TEST_P(IoCancelRace, DatagramRecvNeverLosesADatagram) {
  WEFT_IO_RUNTIME(rt);
  auto sock = UdpSocket::bind(Address::loopback_ipv4(0));
  const Address addr = sock.local_address();
  Race race(rounds(150));
  std::vector<int> seen(static_cast<std::size_t>(race.rounds()), 0);
  auto victim = rt.spawn([&] {
    race.capture();
    int received = 0;
    auto take = [&](std::uint32_t id) {
      if (id < seen.size()) ++seen[id];
      ++received;
    };
    for (int r = 0; r < race.rounds(); ++r) {
      std::uint32_t id = 0;
      if (race.attempt(r, [&] { (void)sock.recv_from(&id, sizeof id); })) take(id);
    }
    while (received < race.rounds()) {
      std::uint32_t id = 0;
      (void)sock.recv_from(&id, sizeof id, Deadline::after(kPatience));
      take(id);
    }
  });
  auto sender = UdpSocket::bind(Address::loopback_ipv4(0));
  for (int r = 0; r < race.rounds(); ++r) {
    const auto id = static_cast<std::uint32_t>(r);
    race.drive(r, [&] { sender.send_to(&id, sizeof id, addr); });
  }
  victim.join();
  for (int r = 0; r < race.rounds(); ++r) {
    EXPECT_EQ(seen[static_cast<std::size_t>(r)], 1) << "datagram " << r << "; " << race.tally();
  }
}

// send: completes by itself; a send that returned must have sent its
// datagram, and a cancelled one must not have.
TEST_P(IoCancelRace, DatagramSendReportsExactlyWhatItSent) {
  WEFT_IO_RUNTIME(rt);
  auto receiver = UdpSocket::bind(Address::loopback_ipv4(0));
  const Address addr = receiver.local_address();
  Race race(rounds(150));
  std::vector<char> sent(static_cast<std::size_t>(race.rounds()), 0);
  auto victim = rt.spawn([&] {
    race.capture();
    auto sock = UdpSocket::bind(Address::loopback_ipv4(0));
    for (int r = 0; r < race.rounds(); ++r) {
      const auto id = static_cast<std::uint32_t>(r);
      if (race.attempt(r, [&] { sock.send_to(&id, sizeof id, addr); })) {
        sent[static_cast<std::size_t>(r)] = 1;
      }
    }
  });
  // Receive on a thread meanwhile (the receive buffer stays small).
  std::vector<int> seen(static_cast<std::size_t>(race.rounds()), 0);
  std::atomic<bool> stop{false};
  std::thread rx([&] {
    for (;;) {
      std::uint32_t id = 0;
      try {
        (void)receiver.recv_from(&id, sizeof id, Deadline::after(20ms));
      } catch (const TimedOut&) {
        if (stop.load()) return;
        continue;
      }
      if (id < seen.size()) ++seen[id];
    }
  });
  for (int r = 0; r < race.rounds(); ++r) race.drive(r, [] {});
  victim.join();
  stop.store(true);
  rx.join();
  for (int r = 0; r < race.rounds(); ++r) {
    EXPECT_EQ(seen[static_cast<std::size_t>(r)], sent[static_cast<std::size_t>(r)])
        << "datagram " << r << "; " << race.tally();
  }
}

// --- files --------------------------------------------------------------------------

// read at the file position: a read the kernel completed moved the
// position; if its bytes were dropped, they are missing from the stream.
TEST_P(IoCancelRace, FileReadNeverLosesOrRepeatsBytes) {
  WEFT_IO_RUNTIME(rt);
  TempDir dir;
  const auto path = dir.path() / "data";
  const std::size_t size = static_cast<std::size_t>(scaled(4 << 20, 1 << 20));
  {
    ByteStream gen(3);
    const auto bytes = gen.take(size);
    auto f = fs::File::open(path, fs::OpenMode::write | fs::OpenMode::create);
    f.write_all(bytes.data(), bytes.size());
  }
  Race race(rounds(150));
  std::atomic<bool> corrupt{false};
  std::atomic<std::uint64_t> got{0};
  auto victim = rt.spawn([&] {
    race.capture();
    auto f = fs::File::open(path, fs::OpenMode::read);
    ByteStream want(3);
    std::vector<char> buf(4096);
    auto take = [&](std::size_t n) {
      if (want.verify(buf.data(), n) != n) corrupt.store(true);
      got.fetch_add(n);
    };
    for (int r = 0; r < race.rounds(); ++r) {
      std::size_t n = 0;
      if (race.attempt(r, [&] { n = f.read(buf.data(), buf.size()); })) take(n);
    }
    while (const std::size_t n = f.read(buf.data(), buf.size())) take(n);
  });
  for (int r = 0; r < race.rounds(); ++r) race.drive(r, [] {});
  victim.join();
  EXPECT_FALSE(corrupt.load()) << "bytes lost or repeated; " << race.tally();
  EXPECT_EQ(got.load(), size) << race.tally();
}

// write at the file position: the file must hold exactly the bytes of the
// writes that returned, in order (a cancelled write that wrote would leave
// them twice once they are written again).
TEST_P(IoCancelRace, FileWriteNeverLosesOrRepeatsBytes) {
  WEFT_IO_RUNTIME(rt);
  TempDir dir;
  const auto path = dir.path() / "out";
  Race race(rounds(150));
  std::atomic<std::uint64_t> written{0};
  auto victim = rt.spawn([&] {
    race.capture();
    auto f = fs::File::open(path, fs::OpenMode::write | fs::OpenMode::create);
    ByteStream gen(4);
    std::vector<unsigned char> chunk;
    for (int r = 0; r < race.rounds(); ++r) {
      if (chunk.empty()) chunk = gen.take(4096);
      std::size_t n = 0;
      if (race.attempt(r, [&] { n = f.write(chunk.data(), chunk.size()); })) {
        chunk.erase(chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
        written.fetch_add(n);
      }
    }
    f.close();
  });
  for (int r = 0; r < race.rounds(); ++r) race.drive(r, [] {});
  victim.join();
  std::ifstream in(path, std::ios::binary);
  const std::string content{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  EXPECT_EQ(content.size(), written.load()) << race.tally();
  ByteStream want(4);
  EXPECT_EQ(want.verify(content.data(), content.size()), content.size())
      << "bytes lost or repeated; " << race.tally();
}

// --- processes ----------------------------------------------------------------------

// wait: a child that exits by itself (code 7), the cancel at a random moment.
// A wait that returned reports the exit; a cancelled one terminated and
// reaped the child, whose status (the exit, if it came first, or the
// signal) stays available from try_wait(): never lost.
TEST_P(IoCancelRace, ProcessWaitNeverLosesTheExitStatus) {
  WEFT_IO_RUNTIME(rt);
  Race race(static_cast<int>(scaled(60, 12)));
  std::atomic<int> bad{0};
  std::string first_bad;
  auto victim = rt.spawn([&] {
    race.capture();
    for (int r = 0; r < race.rounds(); ++r) {
      auto child = process::Command("/bin/sh").arg("-c").arg("exit 7").kill_grace(1s).spawn();
      std::optional<process::ExitStatus> st;
      if (!race.attempt(r, [&] { st = child.wait(); })) st = child.try_wait();
      const bool ok = st && (st->code() == std::optional<int>(7) ||
                             st->signal() == std::optional<int>(SIGTERM) ||
                             st->signal() == std::optional<int>(SIGKILL));
      if (!ok && bad.fetch_add(1) == 0) {
        first_bad = "round " + std::to_string(r) + ": " +
                    (st ? (st->code() ? "exit " + std::to_string(*st->code())
                                      : "signal " + std::to_string(st->signal().value_or(0)))
                        : std::string("no status"));
      }
    }
  });
  for (int r = 0; r < race.rounds(); ++r) race.drive(r, [] {});
  victim.join();
  EXPECT_EQ(bad.load(), 0) << first_bad << "; " << race.tally();
}

}  // namespace
}  // namespace weft::test
