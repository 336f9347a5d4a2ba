// TcpListener::accept: "Connections aborted before they were accepted
// (ECONNABORTED) are skipped" (net.hpp).
//
// Linux rarely reports ECONNABORTED for TCP (a connection reset in the
// accept queue is handed out and fails later), so this binary interposes
// accept4(3): armed, the next calls take the connection out of the queue,
// close it and fail with ECONNABORTED, as a kernel does for a peer that gave
// up (BSD, or Linux with some protocols). The epoll backend and plain
// threads call accept4 (src/io/syscall.cpp); io_uring's accept is a ring
// operation that cannot be interposed, but its result goes through the same
// loop in src/net/socket.cpp.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include "common/io_util.hpp"
#include "common/test_util.hpp"
#include "net/accept_hook.hpp"
#include "weft/weft.hpp"

namespace weft::test {
std::atomic<long> g_accept4_calls{0};
std::atomic<int> g_accept4_abort_next{0};
}  // namespace weft::test

extern "C" int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  using weft::test::g_accept4_abort_next;
  weft::test::g_accept4_calls.fetch_add(1, std::memory_order_relaxed);
  const long c = ::syscall(SYS_accept4, fd, addr, len, flags);
  if (c >= 0 && g_accept4_abort_next.load() > 0 && g_accept4_abort_next.fetch_sub(1) > 0) {
    ::close(static_cast<int>(c));
    errno = ECONNABORTED;
    return -1;
  }
  return static_cast<int>(c);
}

namespace weft::test {
namespace {

using namespace std::chrono_literals;
using weft::net::Address;
using weft::net::TcpListener;
using weft::net::TcpStream;

// Connects `n` clients, each sending its number (one byte).
std::vector<TcpStream> connect_clients(const Address& addr, int n) {
  std::vector<TcpStream> clients;
  for (int i = 0; i < n; ++i) {
    clients.push_back(TcpStream::connect(addr));
    const char id = static_cast<char>('0' + i);
    clients.back().write_all(&id, 1);
  }
  return clients;
}

// Two aborted connections, then a good one: accept returns the good one
// (from a fiber, epoll backend).
TEST(AcceptAbort, AbortedConnectionsAreSkippedInAFiber) {
  weft::Config c = workers_config(2);
  c.io_backend = weft::IoBackend::epoll;
  Runtime rt(c);
  auto listener = TcpListener::bind(Address::loopback_ipv4(0));
  const Address addr = listener.local_address();
  auto clients = connect_clients(addr, 3);  // queued before the accept
  g_accept4_abort_next.store(2);
  const char got = rt.block_on([&] {
    TcpStream s = listener.accept(Deadline::after(kPatience));
    char id = 0;
    s.read_exact(&id, 1, Deadline::after(kPatience));
    return id;
  });
  g_accept4_abort_next.store(0);
  EXPECT_EQ(got, '2') << "accept should skip the two aborted connections";
}

// The same on a plain thread, and with the aborted one arriving while accept
// waits: the wait goes on until a good connection comes.
TEST(AcceptAbort, AbortedConnectionsAreSkippedOnAPlainThread) {
  auto listener = TcpListener::bind(Address::loopback_ipv4(0));
  const Address addr = listener.local_address();
  g_accept4_abort_next.store(1);
  std::vector<TcpStream> clients;
  std::thread late([&] {
    std::this_thread::sleep_for(20ms);
    clients = connect_clients(addr, 2);
  });
  char id = 0;
  try {
    TcpStream s = listener.accept(Deadline::after(kPatience));
    s.read_exact(&id, 1, Deadline::after(kPatience));
  } catch (const std::exception& e) {
    ADD_FAILURE() << "accept threw: " << e.what();
  }
  late.join();
  g_accept4_abort_next.store(0);
  EXPECT_EQ(id, '1');
}

}  // namespace
}  // namespace weft::test
