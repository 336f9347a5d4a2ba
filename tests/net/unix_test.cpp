// Unix-domain stream sockets on both backends: a listener on a filesystem
// path and on an abstract '@' name, UnixStream::pair(), the documented
// errors (EADDRINUSE, ENOENT, ECONNREFUSED, ENAMETOOLONG), closing, and many
// pairs at once.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <filesystem>
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
using weft::net::Shutdown;
using weft::net::UnixListener;
using weft::net::UnixStream;
using weft::test::ByteStream;
using weft::test::Checker;
using weft::test::errno_of;
using weft::test::IoTest;
using weft::test::kPatience;
using weft::test::scaled;
using weft::test::TempDir;

class UnixTest : public IoTest {};
WEFT_INSTANTIATE_IO(UnixTest);

/// Accepts one connection on l and echoes it until end of stream.
JoinHandle<void> spawn_echo_server(UnixListener& l) {
  return weft::spawn([&l] {
    UnixStream s = l.accept();
    char buf[4096];
    for (;;) {
      const std::size_t n = s.read(buf, sizeof buf);
      if (n == 0) break;
      s.write_all(buf, n);
    }
  });
}

void round_trip(UnixStream& c, const std::string& msg) {
  c.write_all(msg);
  std::string got(msg.size(), '\0');
  c.read_exact(got.data(), got.size(), kPatience);
  EXPECT_EQ(got, msg);
}

TEST_P(UnixTest, ListenerOnPath) {
  WEFT_IO_RUNTIME(rt);
  TempDir dir;
  const std::string path = (dir.path() / "sock").string();
  rt.block_on([&] {
    UnixListener l = UnixListener::bind(path);
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    auto server = spawn_echo_server(l);
    UnixStream c = UnixStream::connect(path, kPatience);
    round_trip(c, "over a path");
    round_trip(c, std::string(100000, 'p'));
    c.shutdown(Shutdown::write);
    char ch;
    EXPECT_EQ(c.read(&ch, 1, kPatience), 0u);
    server.join();
    // The path is taken while it exists, even by a closed listener.
    EXPECT_EQ(errno_of([&] { (void)UnixListener::bind(path); }), EADDRINUSE);
    l.close();
    EXPECT_TRUE(std::filesystem::exists(path)) << "closing must not unlink the path";
    EXPECT_EQ(errno_of([&] { (void)UnixListener::bind(path); }), EADDRINUSE);
    // Nobody listens now.
    EXPECT_EQ(errno_of([&] { (void)UnixStream::connect(path, kPatience); }), ECONNREFUSED);
    std::filesystem::remove(path);
    EXPECT_EQ(errno_of([&] { (void)UnixStream::connect(path, kPatience); }), ENOENT);
    UnixListener again = UnixListener::bind(path);  // free again once unlinked
    EXPECT_TRUE(again.is_open());
  });
}

TEST_P(UnixTest, ListenerOnAbstractName) {
  WEFT_IO_RUNTIME(rt);
  const std::string name = weft::test::abstract_socket_name("abstract");
  rt.block_on([&] {
    {
      UnixListener l = UnixListener::bind(name);
      EXPECT_FALSE(std::filesystem::exists(name)) << "an abstract name is not a file";
      EXPECT_EQ(errno_of([&] { (void)UnixListener::bind(name); }), EADDRINUSE);
      auto server = spawn_echo_server(l);
      UnixStream c = UnixStream::connect(name, kPatience);
      round_trip(c, "over an abstract name");
      c.close();
      server.join();
    }
    // Abstract names vanish with their socket.
    EXPECT_EQ(errno_of([&] { (void)UnixStream::connect(name, kPatience); }), ECONNREFUSED);
    UnixListener l = UnixListener::bind(name);
    EXPECT_TRUE(l.is_open());
  });
}

TEST_P(UnixTest, BindAndConnectErrors) {
  WEFT_IO_RUNTIME(rt);
  TempDir dir;
  rt.block_on([&] {
    const std::string too_long = (dir.path() / std::string(120, 'n')).string();
    EXPECT_EQ(errno_of([&] { (void)UnixListener::bind(too_long); }), ENAMETOOLONG);
    EXPECT_EQ(errno_of([&] { (void)UnixStream::connect(too_long); }), ENAMETOOLONG);
    const std::string missing = (dir.path() / "missing").string();
    EXPECT_EQ(errno_of([&] { (void)UnixStream::connect(missing); }), ENOENT);
    EXPECT_EQ(errno_of([&] { (void)UnixListener::bind((dir.path() / "no/such/dir").string()); }),
              ENOENT);
    EXPECT_EQ(errno_of([&] { (void)UnixListener::bind((dir.path() / "x").string(), 0); }), EINVAL);
    // The longest path that fits: 107 bytes.
    std::string longest = dir.path().string() + "/";
    longest += std::string(107 - longest.size(), 'm');
    ASSERT_EQ(longest.size(), 107u);
    UnixListener l = UnixListener::bind(longest);
    UnixStream c = UnixStream::connect(longest, kPatience);
    UnixStream s = l.accept(kPatience);
    round_trip(c, "");
    s.write_all("107");
    char buf[3];
    c.read_exact(buf, 3, kPatience);
    EXPECT_EQ(std::string(buf, 3), "107");
  });
}

TEST_P(UnixTest, PairIsConnectedBothWays) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([] {
    auto pr = UnixStream::pair();  // (clang 14 cannot capture structured bindings)
    UnixStream& a = pr.first;
    UnixStream& b = pr.second;
    EXPECT_TRUE(a.is_open());
    EXPECT_TRUE(b.is_open());
    for (int fd : {a.native_handle(), b.native_handle()}) {
      EXPECT_NE(::fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
      EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    }
    a.write_all("to b");
    char buf[16];
    b.read_exact(buf, 4, kPatience);
    EXPECT_EQ(std::string(buf, 4), "to b");
    b.write_all("to a");
    a.read_exact(buf, 4, kPatience);
    EXPECT_EQ(std::string(buf, 4), "to a");
    // Concurrent reader and writer fibers on both ends.
    const std::size_t total = static_cast<std::size_t>(scaled(4'000'000, 400'000));
    UnixStream& x = a;
    UnixStream& y = b;
    auto w = weft::spawn([&] {
      ByteStream gen(1);
      std::vector<unsigned char> chunk(50000);
      for (std::size_t sent = 0; sent < total;) {
        const std::size_t n = std::min(chunk.size(), total - sent);
        gen.fill(chunk.data(), n);
        x.write_all(chunk.data(), n);
        sent += n;
      }
      x.shutdown(Shutdown::write);
    });
    ByteStream want(1);
    std::vector<unsigned char> in(30000);
    std::size_t got = 0;
    for (;;) {
      const std::size_t n = y.read(in.data(), in.size(), kPatience);
      if (n == 0) break;
      const std::size_t ok = want.verify(in.data(), n);
      EXPECT_EQ(ok, n) << "at byte " << got + ok;
      if (ok != n) break;  // (not ASSERT: the writer uses locals until joined)
      got += n;
    }
    EXPECT_EQ(got, total);
    w.join();
    // Closing one end: the other reads end of stream, then writes fail.
    b.close();
    EXPECT_EQ(a.read(buf, sizeof buf, kPatience), 0u);
    const int e = errno_of([&] {
      for (int i = 0; i < 100; ++i) a.write_all("x");
    });
    EXPECT_TRUE(e == EPIPE || e == ECONNRESET) << e;
  });
}

TEST_P(UnixTest, ManyConcurrentConnections) {
  WEFT_IO_RUNTIME(rt);
  const std::string name = weft::test::abstract_socket_name("many");
  const int conns = static_cast<int>(scaled(300, 30));
  Checker check;
  rt.block_on([&] {
    UnixListener l = UnixListener::bind(name);
    auto acceptor = weft::spawn([&] {
      std::vector<JoinHandle<void>> hs;
      for (int i = 0; i < conns; ++i) {
        hs.push_back(weft::spawn([s = l.accept()]() mutable {
          char buf[1024];
          for (;;) {
            const std::size_t n = s.read(buf, sizeof buf);
            if (n == 0) break;
            s.write_all(buf, n);
          }
        }));
      }
      for (auto& h : hs) h.join();
    });
    std::vector<JoinHandle<void>> clients;
    for (int i = 0; i < conns; ++i) {
      clients.push_back(weft::spawn([&, i] {
        try {
          UnixStream c = UnixStream::connect(name);
          for (int r = 0; r < 3; ++r) {
            const std::string msg = "conn " + std::to_string(i) + " round " + std::to_string(r);
            c.write_all(msg);
            std::string got(msg.size(), '\0');
            c.read_exact(got.data(), got.size());
            check.equal(got, msg, "echo");
          }
        } catch (...) {
          check.check(false, weft::test::current_message());
        }
      }));
    }
    for (auto& h : clients) h.join();
    acceptor.join();
  });
  WEFT_EXPECT_NO_FAILURES(check);
}

TEST(UnixThreadTest, PlainThreads) {
  const std::string name = weft::test::abstract_socket_name("thread");
  UnixListener l = UnixListener::bind(name);
  std::thread server([&] {
    UnixStream s = l.accept(kPatience);
    char buf[5];
    s.read_exact(buf, 5, kPatience);
    s.write_all(std::string(buf, 5) + "!", kPatience);
  });
  UnixStream c = UnixStream::connect(name, kPatience);
  c.write_all("hello");
  char reply[6];
  c.read_exact(reply, 6, kPatience);
  EXPECT_EQ(std::string(reply, 6), "hello!");
  server.join();
  auto [a, b] = UnixStream::pair();
  const auto deadline = Clock::now() + 30ms;
  EXPECT_THROW((void)a.read(reply, 1, deadline), weft::TimedOut);
  EXPECT_GE(Clock::now(), deadline);
}

}  // namespace
