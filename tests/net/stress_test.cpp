// Stress on 2 workers, both backends: thousands of fibers cycling through
// connect/write/read/close, ping-pong that needs every readiness edge, and
// closes racing I/O on other sockets that may reuse the closed descriptor's
// number.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <system_error>
#include <vector>

#include "common/io_util.hpp"
#include "common/test_util.hpp"
#include "weft/net.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::JoinHandle;
using weft::net::Address;
using weft::net::BindOptions;
using weft::net::Shutdown;
using weft::net::TcpListener;
using weft::net::TcpStream;
using weft::net::UnixStream;
using weft::test::ByteStream;
using weft::test::Checker;
using weft::test::IoTest;
using weft::test::kPatience;
using weft::test::scaled;

class NetStressTest : public IoTest {};
WEFT_INSTANTIATE_IO_BACKENDS(NetStressTest);

TEST_P(NetStressTest, ThousandsOfFibersConnectWriteReadClose) {
  const int fibers = static_cast<int>(scaled(2000, 200));
  const int cycles = 3;
  weft::test::raise_fd_limit(static_cast<rlim_t>(fibers) * 2 + 256);
  WEFT_IO_RUNTIME(rt);
  Checker check;
  std::atomic<int> served{0}, done{0};
  rt.block_on([&] {
    BindOptions o;
    o.backlog = 4096;
    TcpListener l = TcpListener::bind(Address::loopback_ipv4(0), o);
    const Address addr = l.local_address();
    auto acceptor = weft::spawn([&] {
      std::vector<JoinHandle<void>> hs;
      for (int i = 0; i < fibers * cycles; ++i) {
        TcpStream s = l.accept();
        hs.push_back(weft::spawn([&, s = std::move(s)]() mutable {
          try {
            char buf[4096];
            for (;;) {
              const std::size_t n = s.read(buf, sizeof buf);
              if (n == 0) break;
              s.write_all(buf, n);
            }
            ++served;
          } catch (...) {
            check.check(false, "server: " + weft::test::current_message());
          }
        }));
      }
      for (auto& h : hs) h.join();
    });
    std::vector<JoinHandle<void>> clients;
    for (int f = 0; f < fibers; ++f) {
      clients.push_back(weft::spawn([&, f] {
        std::uint64_t rng = static_cast<std::uint64_t>(f) + 7;
        ByteStream gen(static_cast<std::uint64_t>(f));
        for (int c = 0; c < cycles; ++c) {
          try {
            TcpStream s = TcpStream::connect(addr);
            const std::vector<unsigned char> out = gen.take(weft::test::uniform(rng, 1, 4096));
            std::vector<unsigned char> in(out.size());
            s.write_all(out.data(), out.size());
            s.read_exact(in.data(), in.size());
            if (!check.check(in == out, "fiber " + std::to_string(f) + ": echo differs")) return;
            s.close();
            check.check(!s.is_open(), "open after close");
          } catch (...) {
            check.check(false,
                        "client " + std::to_string(f) + ": " + weft::test::current_message());
            return;
          }
        }
        ++done;
      }));
    }
    for (auto& h : clients) h.join();
    acceptor.join();
  });
  WEFT_EXPECT_NO_FAILURES(check);
  EXPECT_EQ(done.load(), fibers);
  EXPECT_EQ(served.load(), fibers * cycles);
  weft::test::expect_no_live_fibers(rt);
}

/// One-byte ping-pong between fibers on different workers: every round
/// trip needs a readiness edge that arrives while the reader is between
/// its EAGAIN and parking (epoll's `ready` flag) or a completion (io_uring).
/// A lost edge leaves a reader waiting for ever (caught by the deadline).
TEST_P(NetStressTest, PingPongNeedsEveryEdge) {
  WEFT_IO_RUNTIME(rt);
  const int pairs = 8;
  const int rounds = static_cast<int>(scaled(5000, 500));
  Checker check;
  rt.block_on([&] {
    std::vector<JoinHandle<void>> hs;
    for (int p = 0; p < pairs; ++p) {
      hs.push_back(weft::spawn([&, p] {
        try {
          auto u = UnixStream::pair();
          auto pong = weft::spawn([&] {
            char c;
            for (int r = 0; r < rounds; ++r) {
              u.second.read_exact(&c, 1, kPatience);
              ++c;
              u.second.write_all(&c, 1, kPatience);
            }
          });
          char c = static_cast<char>(p);
          for (int r = 0; r < rounds; ++r) {
            const char sent = c;
            u.first.write_all(&c, 1, kPatience);
            u.first.read_exact(&c, 1, kPatience);
            if (!check.check(c == static_cast<char>(sent + 1), "wrong pong")) break;
          }
          pong.join();
        } catch (const weft::TimedOut&) {
          check.check(false, "pair " + std::to_string(p) + ": a wake-up was lost");
        } catch (...) {
          check.check(false, weft::test::current_message());
        }
      }));
    }
    for (auto& h : hs) h.join();
  });
  WEFT_EXPECT_NO_FAILURES(check);
}

/// Closes racing reads that complete, while other fibers open new sockets
/// (which reuse the closed descriptors' numbers) and read from them. A close
/// must only ever affect its own socket: the innocent readers must never
/// see ECANCELED, EBADF or a lost byte (e.g. from a cancel-by-descriptor
/// that reaches a ring after the descriptor was closed and its number
/// reused).
TEST_P(NetStressTest, ClosesRacingIoNeverHitOtherSockets) {
  WEFT_IO_RUNTIME(rt);
  const int iterations = static_cast<int>(scaled(3000, 300));
  Checker check;
  std::atomic<bool> stop{false};
  std::atomic<long> innocent_rounds{0};
  rt.block_on([&] {
    // Innocent bystanders: open a pair, read one byte that the other end
    // sends shortly after, close, repeat.
    std::vector<JoinHandle<void>> bystanders;
    for (int b = 0; b < 4; ++b) {
      bystanders.push_back(weft::spawn([&] {
        while (!stop.load()) {
          try {
            auto u = UnixStream::pair();
            auto w = weft::spawn([&] {
              weft::this_fiber::yield();
              u.second.write_all("i", kPatience);
            });
            char c = 0;
            u.first.read_exact(&c, 1, kPatience);
            check.check(c == 'i', "bystander read the wrong byte");
            w.join();
            ++innocent_rounds;
          } catch (...) {
            check.check(false, "bystander: " + weft::test::current_message());
            return;
          }
        }
      }));
    }
    // Racers: a read in flight on one end, a write that completes it and a
    // close of the reading end right after, from another fiber.
    for (int i = 0; i < iterations; ++i) {
      auto u = UnixStream::pair();
      auto reader = weft::spawn([&] {
        char c;
        try {
          const std::size_t n = u.first.read(&c, 1, kPatience);
          check.check(n == 1 && c == 'r', "racer read");
        } catch (const std::system_error& e) {
          check.check(e.code().value() == EBADF, std::string("racer: ") + e.what());
        } catch (...) {
          check.check(false, "racer: " + weft::test::current_message());
        }
      });
      weft::this_fiber::yield();
      weft::spawn([&] {
        u.second.write_all("r", kPatience);
        u.first.close();
      }).join();
      reader.join();
    }
    stop = true;
    for (auto& h : bystanders) h.join();
  });
  WEFT_EXPECT_NO_FAILURES(check);
  EXPECT_GT(innocent_rounds.load(), 0);
}

}  // namespace
