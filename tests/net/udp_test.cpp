// UDP on both backends: send_to/recv_from, connect/send/recv and its peer
// filter, datagram boundaries, truncation ("truncated to len: the rest is
// discarded"), empty datagrams, EMSGSIZE, deadlines, close, plain threads.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "common/io_util.hpp"
#include "common/test_util.hpp"
#include "weft/net.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::Clock;
using weft::JoinHandle;
using weft::net::Address;
using weft::net::UdpSocket;
using weft::test::ByteStream;
using weft::test::Checker;
using weft::test::errno_of;
using weft::test::IoTest;
using weft::test::kPatience;
using weft::test::scaled;

UdpSocket bind_loopback() {
  return UdpSocket::bind(Address::loopback_ipv4(0));
}

std::string str(const std::vector<char>& b, std::size_t n) {
  return std::string(b.data(), n);
}

class UdpTest : public IoTest {};
WEFT_INSTANTIATE_IO(UdpTest);

TEST_P(UdpTest, SendToRecvFromRoundTrip) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([] {
    UdpSocket a = bind_loopback();
    UdpSocket b = bind_loopback();
    const Address aa = a.local_address(), ba = b.local_address();
    EXPECT_NE(aa.port(), 0);
    EXPECT_NE(aa, ba);
    auto echo = weft::spawn([&] {
      std::vector<char> buf(2048);
      auto [n, from] = b.recv_from(buf.data(), buf.size());
      EXPECT_EQ(from, aa);
      EXPECT_EQ(b.send_to(buf.data(), n, from), n);
      return str(buf, n);
    });
    const std::string msg = "ping over udp";
    EXPECT_EQ(a.send_to(msg.data(), msg.size(), ba), msg.size());
    std::vector<char> buf(2048);
    auto [n, from] = a.recv_from(buf.data(), buf.size(), kPatience);
    EXPECT_EQ(from, ba);
    EXPECT_EQ(str(buf, n), msg);
    EXPECT_EQ(echo.join(), msg);
  });
}

TEST_P(UdpTest, Ipv6RoundTrip) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([] {
    UdpSocket a = UdpSocket::bind(Address::loopback_ipv6(0));
    UdpSocket b = UdpSocket::bind(Address::loopback_ipv6(0));
    EXPECT_TRUE(a.local_address().is_ipv6());
    a.send_to("six", 3, b.local_address());
    char buf[8];
    auto [n, from] = b.recv_from(buf, sizeof buf, kPatience);
    EXPECT_EQ(std::string(buf, n), "six");
    EXPECT_EQ(from, a.local_address());
  });
}

TEST_P(UdpTest, ConnectedSendRecvAndPeerFilter) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([] {
    UdpSocket a = bind_loopback();
    UdpSocket b = bind_loopback();
    UdpSocket stranger = bind_loopback();
    a.connect(b.local_address());
    b.connect(a.local_address());
    // b only takes datagrams from a now: the stranger's is dropped.
    stranger.send_to("from stranger", 13, b.local_address());
    EXPECT_EQ(a.send("hi b", 4), 4u);
    char buf[64];
    EXPECT_EQ(std::string(buf, b.recv(buf, sizeof buf, kPatience)), "hi b");
    EXPECT_EQ(b.send("hi a", 4), 4u);
    EXPECT_EQ(std::string(buf, a.recv(buf, sizeof buf, kPatience)), "hi a");
    // Nothing else is queued for b (the stranger's datagram was filtered).
    const auto deadline = Clock::now() + 30ms;
    EXPECT_THROW((void)b.recv(buf, sizeof buf, deadline), weft::TimedOut);
    EXPECT_GE(Clock::now(), deadline);
    // A connected socket can still send_to its peer explicitly.
    a.send_to("explicit", 8, b.local_address());
    EXPECT_EQ(std::string(buf, b.recv(buf, sizeof buf, kPatience)), "explicit");
  });
}

TEST_P(UdpTest, DatagramBoundariesArePreserved) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([] {
    UdpSocket a = bind_loopback();
    UdpSocket b = bind_loopback();
    const int big = 1 << 20;  // room for every datagram at once
    ::setsockopt(b.native_handle(), SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    const std::vector<std::size_t> sizes = {1, 1000, 0, 60000, 7, 65507};
    ByteStream gen(3);
    std::vector<std::vector<unsigned char>> sent;
    for (std::size_t n : sizes) {
      sent.push_back(gen.take(n));
      EXPECT_EQ(a.send_to(sent.back().data(), n, b.local_address()), n);
    }
    std::vector<unsigned char> buf(70000);
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      auto [n, from] = b.recv_from(buf.data(), buf.size(), kPatience);
      ASSERT_EQ(n, sizes[i]) << "datagram " << i;
      EXPECT_TRUE(std::equal(sent[i].begin(), sent[i].end(), buf.begin())) << "datagram " << i;
      EXPECT_EQ(from, a.local_address());
    }
  });
}

TEST_P(UdpTest, TruncatedDatagramLosesItsRest) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([] {
    UdpSocket a = bind_loopback();
    UdpSocket b = bind_loopback();
    const std::string big(100, 'x');
    const std::string next = "next datagram";
    a.send_to(big.data(), big.size(), b.local_address());
    a.send_to(next.data(), next.size(), b.local_address());
    char buf[64];
    // recv_from: the first 10 bytes; the other 90 are discarded.
    auto [n, from] = b.recv_from(buf, 10, kPatience);
    EXPECT_EQ(n, 10u) << "recv_from returns the bytes stored (the datagram truncated to len)";
    EXPECT_EQ(std::string(buf, 10), std::string(10, 'x'));
    EXPECT_EQ(from, a.local_address());
    // The next call gets the next datagram, not the rest of the first.
    auto [m, from2] = b.recv_from(buf, sizeof buf, kPatience);
    EXPECT_EQ(std::string(buf, m), next);
    // Same through connected recv().
    b.connect(a.local_address());
    a.send_to(big.data(), big.size(), b.local_address());
    a.send_to(next.data(), next.size(), b.local_address());
    EXPECT_EQ(b.recv(buf, 5, kPatience), 5u);
    EXPECT_EQ(std::string(buf, b.recv(buf, sizeof buf, kPatience)), next);
    // A zero-length receive buffer consumes one datagram.
    a.send_to(big.data(), big.size(), b.local_address());
    a.send_to(next.data(), next.size(), b.local_address());
    EXPECT_EQ(b.recv(buf, 0, kPatience), 0u);
    EXPECT_EQ(std::string(buf, b.recv(buf, sizeof buf, kPatience)), next);
  });
}

TEST_P(UdpTest, OversizedDatagramFailsWithEmsgsize) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([] {
    UdpSocket a = bind_loopback();
    UdpSocket b = bind_loopback();
    std::vector<char> huge(70000, 'h');
    EXPECT_EQ(errno_of([&] { (void)a.send_to(huge.data(), huge.size(), b.local_address()); }),
              EMSGSIZE);
    a.connect(b.local_address());
    EXPECT_EQ(errno_of([&] { (void)a.send(huge.data(), huge.size()); }), EMSGSIZE);
  });
}

TEST_P(UdpTest, RecvDeadlineTimesOutAndLosesNothing) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([] {
    UdpSocket a = bind_loopback();
    UdpSocket b = bind_loopback();
    char buf[16];
    for (int i = 0; i < 3; ++i) {
      const auto deadline = Clock::now() + 30ms;
      EXPECT_THROW((void)b.recv_from(buf, sizeof buf, deadline), weft::TimedOut);
      EXPECT_GE(Clock::now(), deadline);
      const std::string msg = "late " + std::to_string(i);
      a.send_to(msg.data(), msg.size(), b.local_address());
      auto [n, from] = b.recv_from(buf, sizeof buf, kPatience);
      EXPECT_EQ(std::string(buf, n), msg);
    }
  });
}

TEST_P(UdpTest, ManyFibersPingPong) {
  WEFT_IO_RUNTIME(rt);
  const int pairs = 20;
  const int rounds = static_cast<int>(scaled(200, 20));
  Checker check;
  rt.block_on([&] {
    std::vector<JoinHandle<void>> hs;
    for (int p = 0; p < pairs; ++p) {
      hs.push_back(weft::spawn([&, p] {
        UdpSocket a = bind_loopback();
        UdpSocket b = bind_loopback();
        auto echo = weft::spawn([&] {
          char buf[64];
          for (int r = 0; r < rounds; ++r) {
            auto [n, from] = b.recv_from(buf, sizeof buf);
            b.send_to(buf, n, from);
          }
        });
        char buf[64];
        for (int r = 0; r < rounds; ++r) {
          const std::string msg = std::to_string(p) + ":" + std::to_string(r);
          a.send_to(msg.data(), msg.size(), b.local_address());
          auto [n, from] = a.recv_from(buf, sizeof buf);
          check.equal(std::string(buf, n), msg, "echo");
          check.check(from == b.local_address(), "sender");
        }
        echo.join();
      }));
    }
    for (auto& h : hs) h.join();
  });
  WEFT_EXPECT_NO_FAILURES(check);
}

TEST_P(UdpTest, CloseWakesBlockedReceiverWithEbadf) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([] {
    UdpSocket a = bind_loopback();
    auto reader = weft::spawn([&] {
      char buf[8];
      return errno_of([&] { (void)a.recv_from(buf, sizeof buf, kPatience); });
    });
    weft::this_fiber::sleep_for(20ms);  // let it block (either order is valid)
    a.close();
    EXPECT_EQ(reader.join(), EBADF);
    EXPECT_FALSE(a.is_open());
    char buf[1];
    EXPECT_EQ(errno_of([&] { (void)a.send_to(buf, 1, Address::loopback_ipv4(9)); }), EBADF);
    EXPECT_EQ(errno_of([&] { (void)a.recv(buf, 1); }), EBADF);
  });
}

TEST(UdpThreadTest, PlainThreads) {
  UdpSocket a = bind_loopback();
  UdpSocket b = bind_loopback();
  std::thread t([&] {
    char buf[32];
    auto [n, from] = b.recv_from(buf, sizeof buf, kPatience);
    b.send_to(buf, n, from, kPatience);
  });
  a.send_to("thread", 6, b.local_address());
  char buf[32];
  auto [n, from] = a.recv_from(buf, sizeof buf, kPatience);
  EXPECT_EQ(std::string(buf, n), "thread");
  EXPECT_EQ(from, b.local_address());
  t.join();
  const auto deadline = Clock::now() + 30ms;
  EXPECT_THROW((void)a.recv_from(buf, sizeof buf, deadline), weft::TimedOut);
  EXPECT_GE(Clock::now(), deadline);
}

// UDP sockets never get SO_REUSEADDR: with it, a second socket could bind
// (even be handed through port 0) a port another holds, and datagrams meant
// for one would reach the other. This once hung ManyFibersPingPong when two
// test processes ran side by side.
TEST(UdpBindTest, DefaultOptionsNeverShareAPort) {
  UdpSocket a = UdpSocket::bind(Address::loopback_ipv4(0));
  EXPECT_EQ(errno_of([&] { (void)UdpSocket::bind(a.local_address()); }), EADDRINUSE);
  int reuse = -1;
  socklen_t len = sizeof reuse;
  ASSERT_EQ(::getsockopt(a.native_handle(), SOL_SOCKET, SO_REUSEADDR, &reuse, &len), 0);
  EXPECT_EQ(reuse, 0);
  // Deliberate sharing stays possible with reuse_port on both.
  weft::net::BindOptions share;
  share.reuse_port = true;
  UdpSocket c = UdpSocket::bind(Address::loopback_ipv4(0), share);
  UdpSocket d = UdpSocket::bind(c.local_address(), share);
  EXPECT_EQ(c.local_address(), d.local_address());
}

}  // namespace
