// weft-kv: the observability endpoint; see metrics_http.hpp.
#include "metrics_http.hpp"

#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <system_error>

#include "weft/fiber.hpp"
#include "weft/this_fiber.hpp"

namespace kv {

namespace {

/// The value of `key` in the query string `q` ("a=1&format=json"), or
/// `fallback` when absent.
std::string_view query_param(std::string_view q, std::string_view key, std::string_view fallback) {
  while (!q.empty()) {
    const std::size_t amp = q.find('&');
    const std::string_view pair = q.substr(0, amp);
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key)
      return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
  }
  return fallback;
}

HttpResponse error_response(int status, std::string body, bool close = false) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.close = close;
  return r;
}

constexpr std::string_view kEndpoints =
    "endpoints: /metrics, /debug/fibers?format=text, /debug/fibers?format=json\n";

}  // namespace

std::string_view http_reason(int status) noexcept {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Content Too Large";
    case 417:
      return "Expectation Failed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

std::string prometheus_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  // Integral values (every count) print as integers; others in the
  // shortest form that reads back exactly ("1e-05", "0.25").
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

void append_prometheus_header(std::string& out, std::string_view name, std::string_view type,
                              std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

HttpResponse route_http(const http_hello::RequestHead& head, const MetricsPages& pages) {
  if (head.method != "GET" && head.method != "HEAD") {
    HttpResponse r = error_response(405, "method " + std::string(head.method) +
                                             " not allowed: the endpoints answer GET and HEAD\n");
    r.allow = "GET, HEAD";
    return r;
  }
  // The body is not read: the connection closes after the answer.
  if (head.content_length != 0)
    return error_response(413, "a request body is not accepted here\n", /*close=*/true);
  const std::size_t qmark = head.target.find('?');
  const std::string_view path = head.target.substr(0, qmark);
  const std::string_view query =
      qmark == std::string_view::npos ? std::string_view() : head.target.substr(qmark + 1);
  HttpResponse r;
  if (path == "/metrics") {
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = pages.metrics();
    return r;
  }
  if (path == "/debug/fibers") {
    const std::string_view format = query_param(query, "format", "text");
    if (format == "json") {
      r.content_type = "application/json";
      r.body = pages.fibers(weft::DumpFormat::json);
    } else if (format == "text") {
      r.body = pages.fibers(weft::DumpFormat::text);
    } else {
      return error_response(400, "unknown format '" + std::string(format.substr(0, 64)) +
                                     "': use format=text or format=json\n");
    }
    return r;
  }
  return error_response(404, "no such endpoint: " + std::string(path.substr(0, 256)) + "\n" +
                                 std::string(kEndpoints));
}

void append_http_response(std::string& out, const HttpResponse& r, bool head_only) {
  out += "HTTP/1.1 ";
  out += std::to_string(r.status);
  out += ' ';
  out += http_reason(r.status);
  out += "\r\nServer: weft-kv\r\nContent-Type: ";
  out += r.content_type;
  out += "\r\nContent-Length: ";
  out += std::to_string(r.body.size());
  out += "\r\n";
  if (!r.allow.empty()) {
    out += "Allow: ";
    out += r.allow;
    out += "\r\n";
  }
  if (r.close) out += "Connection: close\r\n";
  out += "\r\n";
  if (!head_only) out += r.body;
}

namespace {

constexpr std::size_t kBufferBytes = 2 * http_hello::kMaxHeadBytes;

/// Serves requests until either side ends the connection. Returns when the
/// server decided to close after a response (the caller then shuts down
/// its sending side), or the peer ended the stream.
void serve_requests(weft::net::TcpStream& conn, const MetricsPages& pages) {
  char buf[kBufferBytes];
  std::size_t end = 0;  // buffered, unconsumed input: buf[0, end)
  std::string out;
  for (;;) {
    const auto parsed = http_hello::parse_head(std::string_view(buf, end));
    if (parsed.status == http_hello::ParseStatus::incomplete) {
      const std::size_t n =
          conn.read(buf + end, kBufferBytes - end, weft::Deadline::after(kMetricsIdleTimeout));
      if (n == 0) return;
      end += n;
      continue;
    }
    HttpResponse r;
    bool head_only = false;
    if (parsed.status == http_hello::ParseStatus::error) {
      r = error_response(parsed.error_status,
                         std::to_string(parsed.error_status) + " " +
                             std::string(http_reason(parsed.error_status)) + "\n",
                         /*close=*/true);
    } else {
      head_only = parsed.head.method == "HEAD";
      try {
        r = route_http(parsed.head, pages);
      } catch (const std::bad_alloc&) {
        r = error_response(500, "out of memory\n", /*close=*/true);
      }
      // An unread body would be taken for the next request: close instead.
      if (!parsed.head.keep_alive || parsed.head.content_length != 0) r.close = true;
    }
    out.clear();
    append_http_response(out, r, head_only);
    conn.write_all(out, weft::Deadline::after(kMetricsIdleTimeout));
    if (r.close) return;
    const std::size_t used = parsed.head.head_bytes;
    std::memmove(buf, buf + used, end - used);
    end -= used;
  }
}

}  // namespace

weft::net::TcpStream accept_retrying(weft::net::TcpListener& listener, const char* what) {
  for (;;) {
    try {
      return listener.accept();
    } catch (const std::system_error& e) {
      // Out of fds or memory: keep serving the clients we have and retry
      // (as Redis, which logs and goes on).
      std::fprintf(stderr, "weft-kv: %s: %s\n", what, e.what());
      weft::this_fiber::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

void serve_metrics_http(weft::net::TcpListener& listener, weft::Scope& scope,
                        const MetricsPages& pages) {
  // Connections being served (this loop's fibers only): a relaxed count
  // suffices, it orders nothing and only bounds how many are open.
  auto open = std::make_shared<std::atomic<std::size_t>>(0);
  weft::FiberOptions opts;
  opts.name = "metrics-http";
  for (;;) {
    weft::net::TcpStream conn = accept_retrying(listener, "metrics: accept");
    if (open->load(std::memory_order_relaxed) >= kMetricsMaxConnections) {
      std::string out;
      append_http_response(out,
                           error_response(503, "too many connections to the metrics port\n",
                                          /*close=*/true),
                           false);
      try {
        conn.write_all(out, weft::Deadline::after(std::chrono::milliseconds(100)));
      } catch (const std::exception&) {
        // A client that does not read even this is simply dropped.
      }
      continue;
    }
    // Counted here, uncounted by the fiber however it ends (or here if it
    // could not be spawned).
    struct Slot {
      std::shared_ptr<std::atomic<std::size_t>> open;
      explicit Slot(std::shared_ptr<std::atomic<std::size_t>> o) : open(std::move(o)) {
        open->fetch_add(1, std::memory_order_relaxed);
      }
      Slot(Slot&&) = default;
      ~Slot() {
        if (open != nullptr) open->fetch_sub(1, std::memory_order_relaxed);
      }
    };
    scope.spawn(opts, [c = std::move(conn), &pages, slot = Slot(open)]() mutable {
      try {
        weft::this_fiber::set_label("peer", c.peer_address().to_string());
        serve_requests(c, pages);
        // Lingering close (as weft-http-hello's): unread input at close()
        // would make the kernel reset the connection, which can destroy
        // the response before the client has read it.
        c.shutdown(weft::net::Shutdown::write);
        const weft::Deadline until = weft::Deadline::after(std::chrono::seconds(1));
        char drain[4096];
        for (std::size_t total = 0; total < (std::size_t{1} << 20);) {
          const std::size_t n = c.read(drain, sizeof drain, until);
          if (n == 0) break;
          total += n;
        }
      } catch (const std::system_error&) {
        // Reset, or gone: drop it.
      } catch (const weft::TimedOut&) {
        // Idle, or a stalled write.
      }
    });
  }
}

}  // namespace kv
