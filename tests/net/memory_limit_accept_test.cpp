// Config::memory_limit against a connection storm: a server spawning one
// fiber per connection is refused spawns once its memory reaches the limit;
// its accept then backs off (it leaves connections in the kernel's listen
// backlog rather than taking on their memory and descriptors), and takes
// them all once the handlers end. Both backends (TcpListener::accept and
// the limit's check are the same code on each; the accept operation is not).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <vector>

#include "common/io_util.hpp"
#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace weft::test {
namespace {

using namespace std::chrono_literals;
using weft::net::Address;
using weft::net::TcpListener;
using weft::net::TcpStream;

constexpr std::size_t kStack = 64 * 1024;
constexpr std::size_t kLimit = 8 * 1024 * 1024;
constexpr int kClients = 300;  // ~2.5x what the limit admits; < the backlog (1024)

class MemoryLimitAccept : public IoTest {};
WEFT_INSTANTIATE_IO_BACKENDS(MemoryLimitAccept);

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// A non-blocking connect that is never waited for: the kernel completes the
// handshake into the listener's backlog by itself.
int start_connect(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  EXPECT_TRUE(rc == 0 || errno == EINPROGRESS) << std::strerror(errno);
  return fd;
}

TEST_P(MemoryLimitAccept, ConnectionStormBacksOffAndRecovers) {
  weft::Config c = config();
  c.stack_size = kStack;
  c.memory_limit = kLimit;
  weft::Runtime rt(c);
  ASSERT_EQ(rt.io_backend(), backend());
  const std::size_t fds_before = open_fds();
  rt.block_on([&] {
    TcpListener listener = TcpListener::bind(Address::parse("127.0.0.1:0"));
    const std::uint16_t port = listener.local_address().port();
    weft::Event gate;
    std::atomic<int> accepted{0};
    std::atomic<int> refused{0};
    auto server = weft::spawn([&] {
      std::vector<weft::JoinHandle<void>> handlers;
      while (accepted.load() < kClients) {
        TcpStream s = listener.accept();
        accepted.fetch_add(1);
        try {
          handlers.push_back(weft::spawn([&gate, s = std::move(s)]() mutable {
            gate.wait();
            s.close();
          }));
        } catch (const weft::ResourceExhausted& e) {
          EXPECT_EQ(e.limit(), "memory_limit");
          refused.fetch_add(1);  // s closes: that client is turned away
        }
      }
      for (auto& h : handlers) h.join();
    });
    std::vector<int> clients;
    for (int i = 0; i < kClients; ++i) clients.push_back(start_connect(port));
    // The storm fills the limit; the server's spawns are refused and its
    // accept backs off.
    ASSERT_TRUE(eventually([&] { return refused.load() > 0; }));
    const int at_refusal = accepted.load();
    EXPECT_LT(at_refusal, kClients);
    this_fiber::sleep_for(50ms);
    // At most the connection whose handler was being spawned when the limit
    // hit was taken since: accept does not drain the backlog meanwhile.
    EXPECT_LE(accepted.load(), at_refusal + 1);
    EXPECT_TRUE(rt.memory_usage().refusing);
    EXPECT_LE(rt.memory_usage().charged, kLimit);
    // Descriptors: the clients', the accepted ones, no more (a few slack
    // for the listener and the runtime's own).
    EXPECT_LE(open_fds(), fds_before + kClients + static_cast<std::size_t>(accepted.load()) + 8);
    // Load drops: the handlers end; accept resumes and takes the rest.
    gate.set();
    server.join();
    EXPECT_EQ(accepted.load(), kClients);
    for (int fd : clients) ::close(fd);
  });
  EXPECT_GE(rt.memory_usage().refusals, 1u);
  expect_no_live_fibers(rt);
}

}  // namespace
}  // namespace weft::test
