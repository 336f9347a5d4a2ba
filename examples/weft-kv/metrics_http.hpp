// weft-kv: the observability endpoint (--metrics-port): /metrics in the
// Prometheus text format and /debug/fibers (the runtime's fiber dump), over
// HTTP/1.1 on weft's net API, with weft-http-hello's request-head parser
// (examples/http-hello/http_parser.hpp; no second HTTP stack).
//
// What it answers (README.md, "Observability"):
//   GET /metrics                      200 text/plain; version=0.0.4
//   GET /debug/fibers[?format=text]   200 text/plain (Runtime::dump's text)
//   GET /debug/fibers?format=json     200 application/json (schema version 1)
//   GET /debug/fibers?format=other    400 naming the formats
//   any other path                    404 listing the endpoints
//   a method other than GET or HEAD   405 with Allow: GET, HEAD
//   a request with a body             413, then close
//   what parse_head refuses           its status (400, 417, 431, 501, 505), then close
// A request head is at most 8 KiB (http_hello::kMaxHeadBytes); a connection
// idle for kMetricsIdleTimeout, or whose response write stalls that long, is
// closed; at most kMetricsMaxConnections are served at once (more get 503
// and closed). Connections are served on their own fibers, never on the
// Redis port's: a slow scraper delays nothing but itself. The fiber dump is
// taken on a spawn_blocking thread, so it keeps no worker busy.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "http_parser.hpp"
#include "weft/net.hpp"
#include "weft/runtime.hpp"
#include "weft/scope.hpp"

namespace kv {

/// The bodies the endpoint serves, produced by the server at each request.
/// Called on the connection's fiber (`metrics`) or on a spawn_blocking
/// thread (`fibers`); may throw std::bad_alloc (answered 500).
struct MetricsPages {
  std::function<std::string()> metrics;                 ///< /metrics
  std::function<std::string(weft::DumpFormat)> fibers;  ///< /debug/fibers
};

/// One response: status, Content-Type, body; `allow` is sent as Allow
/// (405); `close` ends the connection after it.
struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string allow;
  bool close = false;
};

/// Answers one parsed request head (the routing of the file comment;
/// no I/O). The fiber dump is produced by pages.fibers on the calling
/// thread. @throws std::bad_alloc, what the pages throw.
HttpResponse route_http(const http_hello::RequestHead& head, const MetricsPages& pages);

/// Appends `r` as an HTTP/1.1 response: status line with its reason,
/// Content-Type, Content-Length, Allow when set, Connection: close when
/// `r.close`; the body unless `head_only` (HEAD). @throws std::bad_alloc.
void append_http_response(std::string& out, const HttpResponse& r, bool head_only);

/// The reason phrase of a status the endpoint sends ("Not Found").
std::string_view http_reason(int status) noexcept;

/// listener.accept(), retried every 10 ms after a failure (out of fds or
/// memory), each failure logged as "weft-kv: <what>: <error>". For the
/// accept loops of the Redis port and of the metrics port.
/// @throws weft::Cancelled.
weft::net::TcpStream accept_retrying(weft::net::TcpListener& listener, const char* what);

/// Serves HTTP connections accepted on `listener`, each on a fiber of
/// `scope` named "metrics-http", until the calling fiber is cancelled
/// (weft::Cancelled propagates). Accept failures as accept_retrying.
void serve_metrics_http(weft::net::TcpListener& listener, weft::Scope& scope,
                        const MetricsPages& pages);

/// `v` as a Prometheus sample value: integers without a fraction, others
/// with 17 significant digits, NaN, +Inf, -Inf. @throws std::bad_alloc.
std::string prometheus_number(double v);

/// Appends a metric family's `# HELP` and `# TYPE` lines to `out`.
/// @throws std::bad_alloc.
void append_prometheus_header(std::string& out, std::string_view name, std::string_view type,
                              std::string_view help);

/// A connection idle this long, or whose response write makes no progress
/// this long, is closed.
inline constexpr std::chrono::seconds kMetricsIdleTimeout{10};
/// Connections served at once.
inline constexpr std::size_t kMetricsMaxConnections = 64;

}  // namespace kv
