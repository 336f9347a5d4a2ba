// weft-http-hello: an HTTP/1.1 keep-alive "Hello, World!" server, one fiber
// per connection.
//
//   weft-http-hello --port P [--bind ADDR] [--workers N] [--io auto|io_uring|epoll]
//
// Every request, whatever its method and target, is answered 200 with the
// body "Hello, World!" (Content-Type text/plain, Content-Length, Date; no
// body for HEAD). Connections stay open for HTTP/1.1 unless the request
// says "Connection: close"; HTTP/1.0 ones close unless it says
// "Connection: keep-alive". A request body framed by Content-Length is read
// and discarded; anything parse_head() refuses (http_parser.hpp: malformed
// 400, oversized head 431, Transfer-Encoding 501, ...) is answered with
// that status and the connection closed. Used by bench/compare_http.sh
// against nginx.
//
// A connection's fiber runs one loop: parse every complete request in the
// buffer, appending each response to one output string; when the buffer
// holds no further complete request, send that string in one write (so a
// pipelined burst costs one send) and read more. A connection silent for
// kIdleTimeout is closed. When the server closes a connection (an error,
// Connection: close) it shuts down its sending side first and reads what
// the client still sends for a while ("lingering close", as nginx does):
// closing with unread bytes makes the kernel send a reset, which can
// destroy the response before the client has read it.
//
// SIGINT/SIGTERM shut it down: every fiber is cancelled (blocked reads and
// the accept throw weft::Cancelled) and the process exits 0 once they have
// ended. Built on the public API only.
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>

#include "http_parser.hpp"
#include "weft/net.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using http_hello::ParseStatus;
using http_hello::RequestHead;

/// A keep-alive connection silent this long (no byte of a new request, or
/// of a body) is closed; also bounds each response write.
constexpr auto kIdleTimeout = 60s;
/// Lingering close: how long, and how many bytes at most, to keep reading
/// and discarding after the server has sent its last response.
constexpr auto kLingerTime = 2s;
constexpr std::size_t kLingerBytes = 1 << 20;
/// The receive buffer: twice the head limit, so after moving an unfinished
/// head (at most kMaxHeadBytes) to the front there is always room to read.
constexpr std::size_t kBufferBytes = 2 * http_hello::kMaxHeadBytes;

constexpr std::string_view kBody = "Hello, World!";

/// Prints the usage (to stderr after `error`, else to stdout) and exits 2
/// on an error, 0 for --help.
[[noreturn]] void usage(const char* error) {
  if (error != nullptr) std::fprintf(stderr, "weft-http-hello: %s\n", error);
  std::fprintf(error != nullptr ? stderr : stdout,
               "usage: weft-http-hello --port P [--bind ADDR] [--workers N] "
               "[--io auto|io_uring|epoll]\n"
               "  --port P      TCP port to listen on (0..65535; 0 picks a free port, printed\n"
               "                on the 'listening on' line)\n"
               "  --bind ADDR   IP address to bind (default 127.0.0.1)\n"
               "  --workers N   worker threads (default: one per core)\n"
               "  --io KIND     I/O backend (default auto: io_uring when available)\n");
  std::exit(error != nullptr ? 2 : 0);
}

/// `text` as an integer in lo..hi, or usage() naming `flag`.
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

/// Appends the current time as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37
/// GMT", 29 bytes), formatted at most once a second per worker thread. Not
/// inlined, and it never parks: its thread_local is reached afresh on every
/// call, on whatever worker the fiber runs then (docs/design/overview.md,
/// "TLS caching across a switch").
[[gnu::noinline]] void append_date(std::string& out) {
  struct Cache {
    time_t second = -1;
    char text[29] = {};
  };
  thread_local Cache cache;
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
  if (now.tv_sec != cache.second) {
    static constexpr std::string_view kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    tm t{};
    ::gmtime_r(&now.tv_sec, &t);
    // By hand rather than strftime (locale) or snprintf (g++ cannot bound
    // the ints and warns about truncation).
    char* p = cache.text;
    auto put = [&p](std::string_view s) { p = std::copy(s.begin(), s.end(), p); };
    auto put2 = [&p](int v) {
      *p++ = static_cast<char>('0' + v / 10 % 10);
      *p++ = static_cast<char>('0' + v % 10);
    };
    put(kDays[t.tm_wday % 7]);
    put(", ");
    put2(t.tm_mday);
    *p++ = ' ';
    put(kMonths[t.tm_mon % 12]);
    *p++ = ' ';
    put2((t.tm_year + 1900) / 100);
    put2((t.tm_year + 1900) % 100);
    *p++ = ' ';
    put2(t.tm_hour);
    *p++ = ':';
    put2(t.tm_min);
    *p++ = ':';
    put2(t.tm_sec);
    put(" GMT");
    cache.second = now.tv_sec;
  }
  out.append(cache.text, sizeof cache.text);
}

/// What the response to a parsed request depends on (kept while its body
/// is discarded; the head's views into the buffer are gone by then).
struct Reply {
  bool head_only = false;  ///< HEAD: headers without the body
  bool keep_alive = true;  ///< false: "Connection: close", then close
  bool http10 = false;     ///< an HTTP/1.0 keep-alive gets "Connection: keep-alive"
};

/// Appends the 200 response described by `r`.
void append_hello(std::string& out, const Reply& r) {
  static_assert(kBody.size() == 13, "the Content-Length below");
  out += "HTTP/1.1 200 OK\r\nServer: weft\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n";
  if (!r.keep_alive) {
    out += "Connection: close\r\n";
  } else if (r.http10) {
    out += "Connection: keep-alive\r\n";
  }
  out += "Date: ";
  append_date(out);
  out += "\r\n\r\n";
  if (!r.head_only) out += kBody;
}

/// The reason phrase of the statuses parse_head() refuses with.
std::string_view reason(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 417:
      return "Expectation Failed";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

/// Appends an error response that closes the connection; its body is the
/// status line's text ("400 Bad Request\n").
void append_error(std::string& out, int status) {
  const std::string body = std::to_string(status) + " " + std::string(reason(status)) + "\n";
  out += "HTTP/1.1 ";
  out += body.substr(0, body.size() - 1);
  out += "\r\nServer: weft\r\nContent-Type: text/plain\r\nContent-Length: ";
  out += std::to_string(body.size());
  out += "\r\nConnection: close\r\nDate: ";
  append_date(out);
  out += "\r\n\r\n";
  out += body;
}

/// Serves one connection until either side closes it. Returns true when
/// the server decided to close (the caller then lingers), false when the
/// peer ended the stream.
bool serve_requests(weft::net::TcpStream& conn, char* buf, std::string& out) {
  std::size_t begin = 0;  // unconsumed input is buf[begin, end)
  std::size_t end = 0;
  std::uint64_t body_left = 0;  // body bytes of the pending request still to discard
  bool pending = false;         // a request parsed, its response not queued yet
  Reply reply;                  // the response the pending request gets
  for (;;) {
    // Consume every complete request in the buffer, queueing the responses.
    for (;;) {
      if (pending) {
        const std::uint64_t avail = end - begin;
        const std::uint64_t take = body_left < avail ? body_left : avail;
        begin += static_cast<std::size_t>(take);
        body_left -= take;
        if (body_left > 0) break;  // more body to come
        pending = false;
        append_hello(out, reply);
        if (!reply.keep_alive) {
          conn.write_all(out, kIdleTimeout);
          return true;  // pipelined requests after a close are ignored
        }
      }
      if (begin == end) break;
      const auto r = http_hello::parse_head(std::string_view(buf + begin, end - begin));
      if (r.status == ParseStatus::incomplete) break;
      if (r.status == ParseStatus::error) {
        append_error(out, r.error_status);
        conn.write_all(out, kIdleTimeout);
        return true;
      }
      const RequestHead& req = r.head;
      reply.head_only = req.method == "HEAD";
      reply.keep_alive = req.keep_alive;
      reply.http10 = req.version == http_hello::Version::http10;
      begin += req.head_bytes;
      body_left = req.content_length;
      pending = true;
      if (req.expect_continue && body_left > end - begin) out += "HTTP/1.1 100 Continue\r\n\r\n";
    }
    // One write for every response of this batch, then read more.
    if (!out.empty()) {
      conn.write_all(out, kIdleTimeout);
      out.clear();
    }
    if (begin == end) {
      begin = end = 0;
    } else if (begin > 0) {
      std::memmove(buf, buf + begin, end - begin);
      end -= begin;
      begin = 0;
    }
    const std::size_t n = conn.read(buf + end, kBufferBytes - end, kIdleTimeout);
    if (n == 0) return false;
    end += n;
  }
}

/// Lingering close: stop sending, then read and drop what the client still
/// sends until it closes, kLingerTime passes or kLingerBytes arrived.
void linger(weft::net::TcpStream& conn, char* buf) {
  conn.shutdown(weft::net::Shutdown::write);
  const weft::Deadline until = weft::Deadline::after(kLingerTime);
  std::size_t total = 0;
  while (total < kLingerBytes) {
    const std::size_t n = conn.read(buf, kBufferBytes, until);
    if (n == 0) return;
    total += n;
  }
}

/// The fiber of one connection: serve_requests(), then a lingering close
/// when the server ended it; a reset, an idle timeout or a stalled write
/// drops the connection. weft::Cancelled (shutdown) propagates.
void serve(weft::net::TcpStream conn) {
  char buf[kBufferBytes];
  std::string out;
  bool server_closes = false;
  try {
    conn.set_nodelay(true);
    out.reserve(4096);
    server_closes = serve_requests(conn, buf, out);
  } catch (const std::system_error&) {
    return;  // peer reset or went away: drop the connection
  } catch (const weft::TimedOut&) {
    return;  // idle keep-alive connection, or a stalled write
  }
  if (!server_closes) return;
  try {
    linger(conn, buf);
  } catch (const std::system_error&) {
  } catch (const weft::TimedOut&) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  long port = -1;
  std::string bind = "127.0.0.1";
  weft::Config config;
  try {
    config = weft::Config::from_env();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft-http-hello: %s\n", e.what());
    return 2;
  }
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") usage(nullptr);
    if (i + 1 >= argc) usage(("missing value after " + std::string(a)).c_str());
    const char* v = argv[++i];
    if (a == "--port") {
      port = number("--port", v, 0, 65535);
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

  try {
    weft::Runtime rt(config);
    rt.shutdown_on_signals({SIGINT, SIGTERM}, std::chrono::seconds(2));
    rt.block_on([&] {
      auto listener = weft::net::TcpListener::bind(addr);
      std::printf("weft-http-hello: listening on %s (%zu workers, %s)\n",
                  listener.local_address().to_string().c_str(), rt.workers(),
                  rt.io_backend() == weft::IoBackend::io_uring ? "io_uring" : "epoll");
      std::fflush(stdout);
      for (;;) weft::spawn([c = listener.accept()]() mutable { serve(std::move(c)); }).detach();
    });
  } catch (const weft::Cancelled&) {
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft-http-hello: %s\n", e.what());
    return 1;
  }
  return 0;
}
