// weft::net::Address (parse, format, sockaddr conversions) and resolve():
// IP literals answered without a lookup, localhost, a name that does not
// exist, deadlines already passed; in fibers on both backends and on plain
// threads.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netdb.h>
#include <sys/un.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <stdexcept>
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
using weft::net::Address;
using weft::net::resolve;
using weft::test::IoTest;
using weft::test::kPatience;

bool is_loopback(const Address& a) {
  if (a.is_ipv4()) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(a.sockaddr_ptr());
    return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
  }
  if (a.is_ipv6()) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(a.sockaddr_ptr());
    return IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr) != 0;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Address

TEST(AddressTest, Ipv4RoundTrips) {
  for (const char* text : {"127.0.0.1:80", "0.0.0.0:0", "255.255.255.255:65535", "10.1.2.3:8080"}) {
    SCOPED_TRACE(text);
    const Address a = Address::parse(text);
    EXPECT_TRUE(a.is_ipv4());
    EXPECT_FALSE(a.is_ipv6());
    EXPECT_EQ(a.family(), AF_INET);
    EXPECT_EQ(a.to_string(), text);
    EXPECT_EQ(Address::parse(a.to_string()), a);
    EXPECT_EQ(a.sockaddr_len(), sizeof(sockaddr_in));
  }
  const Address a = Address::parse("192.168.1.20:443");
  EXPECT_EQ(a.ip(), "192.168.1.20");
  EXPECT_EQ(a.port(), 443);
  const auto* sin = reinterpret_cast<const sockaddr_in*>(a.sockaddr_ptr());
  EXPECT_EQ(sin->sin_family, AF_INET);
  EXPECT_EQ(ntohs(sin->sin_port), 443);
  EXPECT_EQ(ntohl(sin->sin_addr.s_addr), 0xc0a80114u);
}

TEST(AddressTest, Ipv6RoundTrips) {
  struct Case {
    const char* in;
    const char* out;  // canonical form
  };
  for (const Case& c : {Case{"[::1]:443", "[::1]:443"}, Case{"[::]:0", "[::]:0"},
                        Case{"[2001:db8::1]:8080", "[2001:db8::1]:8080"},
                        Case{"[2001:0db8:0000:0000:0000:0000:0000:0001]:1", "[2001:db8::1]:1"},
                        Case{"[::ffff:1.2.3.4]:65535", "[::ffff:1.2.3.4]:65535"},
                        Case{"[fe80::1%7]:80", "[fe80::1%7]:80"}}) {
    SCOPED_TRACE(c.in);
    const Address a = Address::parse(c.in);
    EXPECT_TRUE(a.is_ipv6());
    EXPECT_EQ(a.family(), AF_INET6);
    EXPECT_EQ(a.to_string(), c.out);
    EXPECT_EQ(Address::parse(a.to_string()), a);
    EXPECT_EQ(a.sockaddr_len(), sizeof(sockaddr_in6));
  }
  const Address z = Address::parse("[fe80::1%7]:80");
  EXPECT_EQ(reinterpret_cast<const sockaddr_in6*>(z.sockaddr_ptr())->sin6_scope_id, 7u);
  EXPECT_EQ(z.ip(), "fe80::1%7");
  EXPECT_EQ(Address::parse("[::1]:9").ip(), "::1");
}

TEST(AddressTest, InvalidTextThrowsInvalidArgumentNamingIt) {
  for (const char* text : {"",
                           "garbage",
                           "127.0.0.1",
                           "127.0.0.1:",
                           "127.0.0.1:65536",
                           "127.0.0.1:99999",
                           "127.0.0.1:-1",
                           "127.0.0.1:+80",
                           "127.0.0.1: 80",
                           "127.0.0.1:80x",
                           "127.0.0.1:0x50",
                           ":80",
                           "::1:80",
                           "::1",
                           "[::1]",
                           "[::1]:",
                           "[::1]80",
                           "[::1:80",
                           "::1]:80",
                           "[::1]:65536",
                           "[::1]:x",
                           "[]:80",
                           "localhost:80",
                           "1.2.3:80",
                           "1.2.3.4.5:80",
                           "256.0.0.1:80",
                           " 127.0.0.1:80",
                           "127.0.0.1:80 ",
                           "[fe80::1%]:80",
                           "[gggg::1]:80"}) {
    SCOPED_TRACE(std::string("'") + text + "'");
    EXPECT_FALSE(Address::try_parse(text).has_value());
    try {
      (void)Address::parse(text);
      ADD_FAILURE() << "parse did not throw";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("'") + text + "'"), std::string::npos)
          << e.what();
    }
  }
}

TEST(AddressTest, ConstructorTakesIpLiteralsOnly) {
  EXPECT_EQ(Address("127.0.0.1", 80), Address::parse("127.0.0.1:80"));
  EXPECT_EQ(Address("::1", 80), Address::parse("[::1]:80"));
  EXPECT_EQ(Address("[::1]", 80), Address::parse("[::1]:80"));
  EXPECT_THROW(Address("localhost", 80), std::invalid_argument);
  EXPECT_THROW(Address("", 80), std::invalid_argument);
  EXPECT_THROW(Address("1.2.3.4:80", 80), std::invalid_argument);
  EXPECT_THROW(Address("[1::2", 80), std::invalid_argument);
}

TEST(AddressTest, PortBoundaries) {
  EXPECT_EQ(Address::parse("1.2.3.4:0").port(), 0);
  EXPECT_EQ(Address::parse("1.2.3.4:65535").port(), 65535);
  EXPECT_EQ(Address::parse("[::1]:65535").port(), 65535);
  EXPECT_EQ(Address("::1", 65535).port(), 65535);
}

TEST(AddressTest, NamedConstructorsAndWithPort) {
  EXPECT_EQ(Address::any_ipv4(80).to_string(), "0.0.0.0:80");
  EXPECT_EQ(Address::any_ipv6(80).to_string(), "[::]:80");
  EXPECT_EQ(Address::loopback_ipv4(7).to_string(), "127.0.0.1:7");
  EXPECT_EQ(Address::loopback_ipv6(7).to_string(), "[::1]:7");
  const Address a = Address::parse("10.0.0.1:1");
  const Address b = a.with_port(2);
  EXPECT_EQ(b.to_string(), "10.0.0.1:2");
  EXPECT_EQ(a.port(), 1);  // unchanged
  EXPECT_EQ(Address::parse("[::1]:1").with_port(9).to_string(), "[::1]:9");
  EXPECT_NE(a, b);
  EXPECT_NE(Address::loopback_ipv4(1), Address::loopback_ipv6(1));
}

TEST(AddressTest, DefaultIsUnspecified) {
  const Address a;
  EXPECT_EQ(a.family(), AF_UNSPEC);
  EXPECT_FALSE(a.is_ipv4());
  EXPECT_FALSE(a.is_ipv6());
  EXPECT_EQ(a.port(), 0);
  EXPECT_EQ(a.with_port(5).port(), 0);
  EXPECT_EQ(a, Address());
  EXPECT_NE(a, Address::any_ipv4(0));
}

TEST(AddressTest, FromSockaddr) {
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  v4.sin_port = htons(1234);
  v4.sin_addr.s_addr = htonl(0x7f000001);
  const Address a = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&v4), sizeof v4);
  EXPECT_EQ(a.to_string(), "127.0.0.1:1234");

  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  v6.sin6_port = htons(4321);
  v6.sin6_addr = in6addr_loopback;
  EXPECT_EQ(Address::from_sockaddr(reinterpret_cast<sockaddr*>(&v6), sizeof v6).to_string(),
            "[::1]:4321");

  EXPECT_THROW(Address::from_sockaddr(reinterpret_cast<sockaddr*>(&v4), sizeof v4 - 1),
               std::invalid_argument);
  EXPECT_THROW(Address::from_sockaddr(reinterpret_cast<sockaddr*>(&v6), sizeof(sockaddr_in)),
               std::invalid_argument);
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  EXPECT_THROW(Address::from_sockaddr(reinterpret_cast<sockaddr*>(&un), sizeof un),
               std::invalid_argument);
  EXPECT_THROW(Address::from_sockaddr(nullptr, 0), std::invalid_argument);
}

// ---------------------------------------------------------------------------
// resolve()

/// Runs the resolve() checks in a fiber on both backends and, separately, on
/// a plain thread (resolve() takes a different path in each).
class ResolveTest : public IoTest {};
WEFT_INSTANTIATE_IO(ResolveTest);

void check_localhost(std::uint16_t port) {
  const std::vector<Address> v = resolve("localhost", port);
  ASSERT_FALSE(v.empty());
  for (const Address& a : v) {
    EXPECT_TRUE(is_loopback(a)) << a.to_string();
    EXPECT_EQ(a.port(), port);
  }
}

void check_literals() {
  // Literals are answered without a lookup, even past the deadline.
  const auto past = weft::Deadline(weft::Clock::now() - 1s);
  for (weft::Deadline d : {weft::Deadline(), past}) {
    const auto v4 = resolve("127.0.0.1", 80, d);
    ASSERT_EQ(v4.size(), 1u);
    EXPECT_EQ(v4[0], Address::parse("127.0.0.1:80"));
    const auto v6 = resolve("::1", 81, d);
    ASSERT_EQ(v6.size(), 1u);
    EXPECT_EQ(v6[0], Address::parse("[::1]:81"));
    const auto b6 = resolve("[::1]", 82, d);
    ASSERT_EQ(b6.size(), 1u);
    EXPECT_EQ(b6[0], Address::parse("[::1]:82"));
  }
}

void check_bogus_name() {
  try {
    (void)resolve("does-not-exist.invalid", 80, 30s);
    ADD_FAILURE() << "resolved a .invalid name";
  } catch (const weft::TimedOut&) {
    ADD_FAILURE() << "TimedOut instead of a resolver error";
  } catch (const std::system_error& e) {
    EXPECT_NE(e.code().value(), 0);
    EXPECT_NE(std::string(e.what()).find("does-not-exist.invalid"), std::string::npos) << e.what();
    if (e.code().category() == weft::net::resolver_category()) {
      EXPECT_EQ(e.code().message(), ::gai_strerror(e.code().value()));
    }
  }
}

TEST_P(ResolveTest, InFiber) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([] {
    check_localhost(8080);
    check_localhost(0);
    check_literals();
    check_bogus_name();
    // Many lookups at once, all on the blocking pool.
    std::vector<weft::JoinHandle<std::size_t>> hs;
    for (int i = 0; i < 16; ++i) {
      hs.push_back(weft::spawn(
          [i] { return resolve("localhost", static_cast<std::uint16_t>(1000 + i)).size(); }));
    }
    for (auto& h : hs) EXPECT_GE(h.join(), 1u);
  });
}

TEST(ResolveThreadTest, OnPlainThread) {
  std::thread t([] {
    check_localhost(8080);
    check_literals();
    check_bogus_name();
  });
  t.join();
}

TEST(ResolveThreadTest, ExpiredDeadlineOnPlainThreadTimesOut) {
  // On a plain thread the lookup runs inline and the deadline is checked
  // after it: deterministic.
  EXPECT_THROW((void)resolve("localhost", 80, weft::Deadline(weft::Clock::now() - 1s)),
               weft::TimedOut);
  EXPECT_THROW((void)resolve("localhost", 80, 0ns), weft::TimedOut);
}

TEST_P(ResolveTest, DeadlineInFiberTimesOut) {
  // In a fiber the lookup runs on the blocking pool. With the pool's only
  // thread kept busy, the lookup cannot even start, so the deadline decides
  // deterministically (with a free pool, a deadline already passed may
  // still see the answer: "completes if it can without waiting").
  weft::Config cfg = config();
  cfg.max_blocking_threads = 1;
  weft::Runtime rt(cfg);
  ASSERT_EQ(rt.io_backend(), backend());
  std::atomic<bool> started{false}, release{false};
  rt.block_on([&] {
    auto blocker = weft::spawn_blocking([&] {
      started = true;
      while (!release.load()) std::this_thread::sleep_for(1ms);
    });
    EXPECT_TRUE(weft::test::eventually([&] { return started.load(); }));
    EXPECT_THROW((void)resolve("localhost", 80, weft::Deadline(weft::Clock::now() - 1s)),
                 weft::TimedOut);
    EXPECT_THROW((void)resolve("localhost", 80, 0ns), weft::TimedOut);
    const auto deadline = weft::Clock::now() + 30ms;
    EXPECT_THROW((void)resolve("localhost", 80, deadline), weft::TimedOut);
    EXPECT_GE(weft::Clock::now(), deadline);
    // Literals need no lookup: answered even now.
    EXPECT_EQ(resolve("127.0.0.1", 80, weft::Deadline(weft::Clock::now() - 1s)).size(), 1u);
    release = true;
    blocker.join();
    // The abandoned lookups finish in the background; later ones work.
    check_localhost(80);
    EXPECT_FALSE(resolve("localhost", 80, kPatience).empty());
  });
}

}  // namespace
