// weft-echo: a TCP echo server, one fiber per connection.
//
//   weft-echo --port P [--bind ADDR] [--workers N] [--io auto|io_uring|epoll]
//             [--tls CERT.pem KEY.pem]
//
// Every connection gets a fiber that reads what arrives and writes it back
// until the peer closes. With --tls the connections are TLS (weft::tls):
// the handshake has 10 s to complete, and a peer that fails it is dropped
// with the reason on stderr. SIGINT/SIGTERM shut it down: every fiber is
// cancelled (blocked reads and the accept throw weft::Cancelled) and the
// process exits 0 once they have ended. Built on the public API only; used
// by bench/compare_echo.sh against Go's echo server.
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "weft/net.hpp"
#include "weft/tls.hpp"
#include "weft/weft.hpp"

namespace {

[[noreturn]] void usage(const char* error) {
  if (error != nullptr) std::fprintf(stderr, "weft-echo: %s\n", error);
  std::fprintf(error != nullptr ? stderr : stdout,
               "usage: weft-echo --port P [--bind ADDR] [--workers N] [--io auto|io_uring|epoll]\n"
               "                 [--tls CERT.pem KEY.pem]\n"
               "  --port P      TCP port to listen on (0..65535; 0 picks a free one)\n"
               "  --bind ADDR   IP address to bind (default 127.0.0.1)\n"
               "  --workers N   worker threads (default: one per core)\n"
               "  --io KIND     I/O backend (default auto: io_uring when available)\n"
               "  --tls C K     serve TLS with certificate chain C and private key K (PEM)\n");
  std::exit(error != nullptr ? 2 : 0);
}

long number(const char* flag, const char* text, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
    const std::string msg = std::string(flag) + " wants an integer in " + std::to_string(lo) +
                            ".." + std::to_string(hi) + ", got '" + text + "'";
    usage(msg.c_str());
  }
  return v;
}

void serve(weft::net::TcpStream conn) {
  conn.set_nodelay(true);
  char buf[16 * 1024];
  try {
    for (;;) {
      const std::size_t n = conn.read(buf, sizeof buf);
      if (n == 0) return;
      conn.write_all(buf, n);
    }
  } catch (const std::system_error&) {
    // Peer reset or went away: drop the connection.
  }
}

void serve_tls(weft::net::TcpStream conn, const weft::tls::Context& ctx) {
  conn.set_nodelay(true);
  char buf[16 * 1024];
  try {
    weft::tls::Stream s = weft::tls::Stream::server(std::move(conn), ctx);
    s.handshake(std::chrono::seconds(10));
    for (;;) {
      const std::size_t n = s.read(buf, sizeof buf);
      if (n == 0) return;
      s.write_all(buf, n);
    }
  } catch (const weft::tls::Error& e) {
    std::fprintf(stderr, "weft-echo: %s\n", e.what());
  } catch (const weft::TimedOut& e) {
    std::fprintf(stderr, "weft-echo: %s\n", e.what());
  } catch (const std::system_error&) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  long port = -1;
  std::string bind = "127.0.0.1";
  std::string cert, key;
  weft::Config config;
  try {
    config = weft::Config::from_env();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft-echo: %s\n", e.what());
    return 2;
  }
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") usage(nullptr);
    if (i + 1 >= argc) usage(("missing value after " + std::string(a)).c_str());
    const char* v = argv[++i];
    if (a == "--port") {
      port = number("--port", v, 0, 65535);
    } else if (a == "--tls") {
      if (i + 1 >= argc) usage("--tls wants CERT.pem KEY.pem");
      cert = v;
      key = argv[++i];
    } else if (a == "--bind") {
      bind = v;
    } else if (a == "--workers") {
      config.workers = static_cast<std::size_t>(number("--workers", v, 1, 1024));
    } else if (a == "--io") {
      const std::string_view k = v;
      if (k == "auto") {
        config.io_backend = weft::IoBackend::auto_detect;
      } else if (k == "io_uring") {
        config.io_backend = weft::IoBackend::io_uring;
      } else if (k == "epoll") {
        config.io_backend = weft::IoBackend::epoll;
      } else {
        usage("--io wants auto, io_uring or epoll");
      }
    } else {
      usage(("unknown option " + std::string(a)).c_str());
    }
  }
  if (port < 0) usage("--port is required");

  weft::net::Address addr;
  try {
    addr = weft::net::Address(bind, static_cast<std::uint16_t>(port));
  } catch (const std::exception& e) {
    usage(e.what());
  }

  std::optional<weft::tls::Context> tls;
  if (!cert.empty()) {
    try {
      weft::tls::ServerOptions o;
      o.cert_chain_file = cert;
      o.key_file = key;
      tls = weft::tls::Context::server(o);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "weft-echo: %s\n", e.what());
      return 2;
    }
  }

  try {
    weft::Runtime rt(config);
    rt.shutdown_on_signals({SIGINT, SIGTERM}, std::chrono::seconds(2));
    // The accept loop: connection fibers are spawned from it, so under
    // thread_per_core they run on the acceptor's worker (fibers stay where
    // they are spawned).
    auto accept_loop = [&tls](weft::net::TcpListener& listener) {
      for (;;) {
        if (tls) {
          weft::spawn([c = listener.accept(), &tls]() mutable {
            serve_tls(std::move(c), *tls);
          }).detach();
        } else {
          weft::spawn([c = listener.accept()]() mutable { serve(std::move(c)); }).detach();
        }
      }
    };
    const bool per_worker = rt.config().strategy == weft::Strategy::thread_per_core;
    const char* io = rt.io_backend() == weft::IoBackend::io_uring ? "io_uring" : "epoll";
    if (!per_worker) {
      rt.block_on([&] {
        auto listener = weft::net::TcpListener::bind(addr);
        std::printf("weft-echo: listening on %s (%zu workers, %s%s)\n",
                    listener.local_address().to_string().c_str(), rt.workers(), io,
                    tls ? ", tls" : "");
        std::fflush(stdout);
        accept_loop(listener);
      });
    } else {
      // thread_per_core: one SO_REUSEPORT listener and accept loop per
      // worker (the kernel spreads the connections over the listeners;
      // spawns from this thread are placed round-robin, one per worker),
      // so that each worker serves the connections it accepted.
      weft::net::BindOptions shared;
      shared.reuse_port = true;
      std::vector<weft::net::TcpListener> listeners;
      listeners.push_back(weft::net::TcpListener::bind(addr, shared));
      const weft::net::Address bound = listeners.front().local_address();
      for (std::size_t i = 1; i < rt.workers(); ++i) {
        listeners.push_back(weft::net::TcpListener::bind(bound, shared));
      }
      std::printf(
          "weft-echo: listening on %s (%zu workers, %s%s, thread_per_core: an accept "
          "loop per worker)\n",
          bound.to_string().c_str(), rt.workers(), io, tls ? ", tls" : "");
      std::fflush(stdout);
      std::vector<weft::JoinHandle<void>> acceptors;
      for (auto& l : listeners) acceptors.push_back(rt.spawn([&] { accept_loop(l); }));
      for (auto& a : acceptors) a.join();  // rethrows weft::Cancelled at shutdown
    }
  } catch (const weft::Cancelled&) {
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft-echo: %s\n", e.what());
    return 1;
  }
  return 0;
}
