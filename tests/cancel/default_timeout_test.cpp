// Default timeouts (Config::default_operation_timeout, network_timeout,
// io_timeout): each bounds the waits it covers that have no deadline of
// their own - with weft::TimedOut - and no others; a call's own deadline
// always wins, and weft::no_deadline opts a call out. Both I/O backends.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <string>

#include "common/io_util.hpp"
#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::Runtime;
using weft::TimedOut;
using weft::net::Address;
using weft::net::TcpListener;
using weft::net::TcpStream;

// Longer than every default timeout set below (30 ms), so that a wait this
// long survives only if no default applied to it.
constexpr auto kLonger = 150ms;
constexpr auto kTimeout = 30ms;

class DefaultTimeout : public weft::test::IoTest {
 protected:
  weft::Config with(std::chrono::nanoseconds operation, std::chrono::nanoseconds network,
                    std::chrono::nanoseconds io) const {
    weft::Config c = config();
    c.default_operation_timeout = operation;
    c.network_timeout = network;
    c.io_timeout = io;
    return c;
  }
};
WEFT_INSTANTIATE_IO_BACKENDS(DefaultTimeout);

// A connected TCP pair on loopback.
struct Pair {
  TcpStream client;
  TcpStream server;
};
Pair connect_pair() {
  auto listener = TcpListener::bind(Address::loopback_ipv4(0));
  auto accepting = weft::spawn([&] { return listener.accept(); });
  Pair p{TcpStream::connect(listener.local_address()), TcpStream()};
  p.server = accepting.join();
  return p;
}

// Runs `send_later` in a fiber after kLonger.
template <class F>
weft::JoinHandle<void> later(F send_later) {
  return weft::spawn([send_later] {
    weft::this_fiber::sleep_for(kLonger);
    send_later();
  });
}

// A read on `s` that gets its byte only after kLonger: true if it got it.
bool slow_socket_read(Pair& p) {
  auto writer = later([&p] { p.server.write_all("x"); });
  char c = 0;
  const bool got = p.client.read(&c, 1) == 1 && c == 'x';
  writer.join();
  return got;
}

// A channel receive that gets its value only after kLonger.
bool slow_recv() {
  auto [tx, rx] = weft::channel<int>(0);
  auto sender = later([tx = tx] { (void)tx.send(5); });
  const std::optional<int> v = rx.recv();
  sender.join();
  return v == 5;
}

TEST_P(DefaultTimeout, OperationTimeoutBoundsChannelAndSyncWaits) {
  Runtime rt(with(kTimeout, 0ns, 0ns));
  ASSERT_EQ(rt.io_backend(), backend());
  rt.block_on([] {
    auto [tx, rx] = weft::channel<int>(0);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_THROW(rx.recv(), TimedOut);
    EXPECT_GE(std::chrono::steady_clock::now() - start, kTimeout);  // not before
    EXPECT_THROW((void)tx.send(1), TimedOut);
    EXPECT_THROW(weft::select(weft::on_recv(rx, [](int) {})), TimedOut);

    weft::Mutex m;
    m.lock();
    auto contender = weft::spawn([&m] {
      try {
        m.lock();
        m.unlock();
        return false;
      } catch (const TimedOut&) {
        return true;
      }
    });
    EXPECT_TRUE(contender.join());
    m.unlock();

    weft::CondVar cv;
    std::unique_lock<weft::Mutex> held(m);
    EXPECT_THROW(cv.wait(held), TimedOut);
    EXPECT_TRUE(held.owns_lock());  // relocked, as after Cancelled
    held.unlock();

    weft::Event e;
    EXPECT_THROW(e.wait(), TimedOut);
    weft::Semaphore s(0);
    EXPECT_THROW(s.acquire(), TimedOut);
    weft::WaitGroup wg;
    wg.add(1);
    EXPECT_THROW(wg.wait(), TimedOut);
    wg.done();

    // The call's own deadline wins, shorter (its own result, no throw) or
    // longer; no_deadline opts out.
    EXPECT_EQ(rx.recv_for(1ms).status(), weft::ChannelStatus::timed_out);
    EXPECT_FALSE(e.wait_for(1ms));
    {
      auto sender = later([tx = tx] { (void)tx.send(2); });
      EXPECT_EQ(rx.recv_for(10s).value(), 2);
      sender.join();
    }
    {
      auto sender = later([tx = tx] { (void)tx.send(3); });
      EXPECT_EQ(rx.recv_until(weft::no_deadline).value(), 3);
      sender.join();
    }
    {
      auto setter = later([&e] { e.set(); });
      EXPECT_TRUE(e.wait_until(weft::no_deadline));
      setter.join();
    }
    // Not covered: sleeps and join.
    auto sleeper = weft::spawn([] { weft::this_fiber::sleep_for(kLonger); });
    sleeper.join();
  });
}

TEST_P(DefaultTimeout, OperationTimeoutLeavesNetworkWaitsAlone) {
  Runtime rt(with(kTimeout, 0ns, 0ns));
  rt.block_on([] {
    Pair p = connect_pair();
    EXPECT_TRUE(slow_socket_read(p));
  });
}

TEST_P(DefaultTimeout, NetworkTimeoutBoundsSocketWaitsOnly) {
  Runtime rt(with(0ns, kTimeout, 0ns));
  ASSERT_EQ(rt.io_backend(), backend());
  rt.block_on([] {
    // accept is not covered: a server waits for clients without limit.
    auto listener = TcpListener::bind(Address::loopback_ipv4(0));
    const Address addr = listener.local_address();
    auto client = later([addr] { (void)TcpStream::connect(addr); });
    EXPECT_NO_THROW((void)listener.accept());
    client.join();

    Pair p = connect_pair();
    char c = 0;
    const auto start = std::chrono::steady_clock::now();
    EXPECT_THROW((void)p.client.read(&c, 1), TimedOut);
    EXPECT_GE(std::chrono::steady_clock::now() - start, kTimeout);
    // Own deadline wins; no_deadline opts out.
    {
      auto writer = later([&p] { p.server.write_all("a"); });
      EXPECT_EQ(p.client.read(&c, 1, 10s), 1u);
      writer.join();
    }
    {
      auto writer = later([&p] { p.server.write_all("b"); });
      EXPECT_EQ(p.client.read(&c, 1, weft::no_deadline), 1u);
      EXPECT_EQ(c, 'b');
      writer.join();
    }
    // Not on channel or sync waits.
    EXPECT_TRUE(slow_recv());
  });
}

TEST_P(DefaultTimeout, IoTimeoutBoundsFileWaitsOnly) {
  Runtime rt(with(0ns, 0ns, kTimeout));
  ASSERT_EQ(rt.io_backend(), backend());
  weft::test::TempDir dir;
  const auto fifo = dir.path() / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const bool uring = backend() == weft::IoBackend::io_uring;
  rt.block_on([&] {
    // Not on network or channel waits.
    Pair p = connect_pair();
    EXPECT_TRUE(slow_socket_read(p));
    EXPECT_TRUE(slow_recv());
    // A FIFO opened read-write never waits to open; its read waits for
    // data. On epoll a file's read runs on the blocking pool to
    // completion, so no deadline (own or default) can end it there.
    if (!uring) return;
    auto f = weft::fs::File::open(fifo, weft::fs::OpenMode::read | weft::fs::OpenMode::write);
    char buf[4] = {};
    EXPECT_THROW((void)f.read(buf, sizeof buf), TimedOut);
    auto writer = later([&f] { (void)f.write("ok", 2); });
    EXPECT_EQ(f.read(buf, sizeof buf, weft::no_deadline), 2u);
    writer.join();
  });
}

TEST(DefaultTimeoutConfig, OffByDefaultAndFromTheEnvironment) {
  const weft::Config c;
  EXPECT_EQ(c.default_operation_timeout, 0ns);
  EXPECT_EQ(c.network_timeout, 0ns);
  EXPECT_EQ(c.io_timeout, 0ns);
  EXPECT_NE(weft::Deadline(), weft::no_deadline);
  EXPECT_TRUE(weft::no_deadline.is_none());
  EXPECT_TRUE(weft::no_deadline.is_never());
  EXPECT_FALSE(weft::Deadline().is_never());
  EXPECT_TRUE(weft::Deadline(std::chrono::nanoseconds::max()).is_never());
  EXPECT_TRUE(weft::Deadline().earliest(weft::no_deadline).is_never());
  EXPECT_TRUE(weft::no_deadline.earliest(weft::Deadline()).is_never());
  EXPECT_FALSE(weft::no_deadline.earliest(weft::Deadline(5s)).is_none());
}

}  // namespace
