// Unit tests of weft-kv's observability pieces: the slow log and Redis's
// truncation of what it keeps (slowlog.hpp), the metrics endpoint's routing
// and response format (metrics_http.hpp), Prometheus number formatting and
// the AOF's latency histogram (histogram.hpp).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "histogram.hpp"
#include "http_parser.hpp"
#include "metrics_http.hpp"
#include "slowlog.hpp"

namespace {

using kv::HttpResponse;
using kv::LatencyHistogram;
using kv::SlowLog;

std::vector<std::string_view> views(const std::vector<std::string>& v) {
  return {v.begin(), v.end()};
}

TEST(SlowLogArgv, KeepsShortCommandsAsTheyAre) {
  std::vector<std::string> argv(32, "x");
  argv[5] = std::string(128, 'a');
  EXPECT_EQ(kv::slowlog_argv(views(argv)), argv);
}

TEST(SlowLogArgv, TruncatesArgumentsAndStringsAsRedis) {
  std::vector<std::string> argv;
  for (int i = 0; i < 35; ++i) argv.push_back("a" + std::to_string(i));
  argv[1] = std::string(130, 'b');
  const auto out = kv::slowlog_argv(views(argv));
  ASSERT_EQ(out.size(), 32u);
  EXPECT_EQ(out[0], "a0");
  EXPECT_EQ(out[1], std::string(128, 'b') + "... (2 more bytes)");
  EXPECT_EQ(out[30], "a30");
  EXPECT_EQ(out[31], "... (4 more arguments)") << "35 arguments: 31 kept, 4 more";
  argv.resize(33);
  EXPECT_EQ(kv::slowlog_argv(views(argv))[31], "... (2 more arguments)");
}

TEST(SlowLog, LogsAtOrAboveTheThresholdNewestFirst) {
  SlowLog log;
  const std::vector<std::string> cmd = {"SET", "k", "v"};
  log.record(views(cmd), 9, 10, 128, 1000, "1.2.3.4:5", "n");
  EXPECT_EQ(log.size(), 0u) << "below the threshold";
  log.record(views(cmd), 10, -1, 128, 1000, "1.2.3.4:5", "n");
  EXPECT_EQ(log.size(), 0u) << "-1 logs nothing";
  log.record(views(cmd), 10, 10, 128, 1000, "1.2.3.4:5", "n");
  log.record(views({"GET", "k"}), 0, 0, 128, 1001, "1.2.3.4:6", "");
  ASSERT_EQ(log.size(), 2u);
  const auto all = log.get(-1);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id, 1u);
  EXPECT_EQ(all[0].argv, (std::vector<std::string>{"GET", "k"}));
  EXPECT_EQ(all[0].timestamp, 1001);
  EXPECT_EQ(all[0].addr, "1.2.3.4:6");
  EXPECT_EQ(all[1].id, 0u);
  EXPECT_EQ(all[1].duration_us, 10);
  EXPECT_EQ(all[1].name, "n");
  EXPECT_EQ(log.get(1).size(), 1u);
  EXPECT_EQ(log.get(0).size(), 0u);
}

TEST(SlowLog, MaxLenDropsTheOldestAndResetKeepsTheIds) {
  SlowLog log;
  for (int i = 0; i < 5; ++i) log.record(views({"PING"}), 1, 0, 3, 0, "a", "");
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log.get(-1).back().id, 2u) << "ids 0 and 1 dropped";
  log.record(views({"PING"}), 1, 0, 0, 0, "a", "");
  EXPECT_EQ(log.size(), 0u) << "max-len 0 keeps nothing";
  log.reset();
  log.record(views({"PING"}), 1, 0, 10, 0, "a", "");
  EXPECT_EQ(log.get(1).at(0).id, 6u) << "RESET does not restart the ids (Redis)";
}

/// The head of `request` (which must be complete).
http_hello::RequestHead head(std::string_view request) {
  static std::string keep;  // the views point into it
  keep = request;
  const auto r = http_hello::parse_head(keep);
  EXPECT_EQ(r.status, http_hello::ParseStatus::complete) << request;
  return r.head;
}

kv::MetricsPages pages() {
  kv::MetricsPages p;
  p.metrics = [] { return std::string("m 1\n"); };
  p.fibers = [](weft::DumpFormat f) {
    return std::string(f == weft::DumpFormat::json ? "{}" : "dump");
  };
  return p;
}

TEST(MetricsHttp, RoutesTheEndpoints) {
  HttpResponse r = kv::route_http(head("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), pages());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r.body, "m 1\n");
  r = kv::route_http(head("GET /debug/fibers HTTP/1.1\r\nHost: x\r\n\r\n"), pages());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "dump");
  r = kv::route_http(head("GET /debug/fibers?a=b&format=json HTTP/1.1\r\nHost: x\r\n\r\n"),
                     pages());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, "{}");
  r = kv::route_http(head("GET /debug/fibers?format=text HTTP/1.1\r\nHost: x\r\n\r\n"), pages());
  EXPECT_EQ(r.body, "dump");
  r = kv::route_http(head("GET /debug/fibers?format=yaml HTTP/1.1\r\nHost: x\r\n\r\n"), pages());
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "unknown format 'yaml': use format=text or format=json\n");
  r = kv::route_http(head("GET /metrics/x HTTP/1.1\r\nHost: x\r\n\r\n"), pages());
  EXPECT_EQ(r.status, 404);
  r = kv::route_http(head("DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), pages());
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.allow, "GET, HEAD");
  r = kv::route_http(head("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"),
                     pages());
  EXPECT_EQ(r.status, 413);
  EXPECT_TRUE(r.close);
}

TEST(MetricsHttp, FormatsResponses) {
  HttpResponse r;
  r.status = 405;
  r.body = "no\n";
  r.allow = "GET, HEAD";
  r.close = true;
  std::string out;
  kv::append_http_response(out, r, false);
  EXPECT_EQ(out,
            "HTTP/1.1 405 Method Not Allowed\r\nServer: weft-kv\r\nContent-Type: text/plain; "
            "charset=utf-8\r\nContent-Length: 3\r\nAllow: GET, HEAD\r\nConnection: close\r\n\r\n"
            "no\n");
  out.clear();
  kv::append_http_response(out, r, /*head_only=*/true);
  EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n") << "HEAD: no body, same Content-Length";
}

TEST(MetricsHttp, PrometheusNumbers) {
  EXPECT_EQ(kv::prometheus_number(0), "0");
  EXPECT_EQ(kv::prometheus_number(12345), "12345");
  EXPECT_EQ(kv::prometheus_number(0.25), "0.25");
  EXPECT_EQ(kv::prometheus_number(1e-05), "1e-05");
  EXPECT_EQ(kv::prometheus_number(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(kv::prometheus_number(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(kv::prometheus_number(std::nan("")), "NaN");
}

TEST(LatencyHistogramTest, BucketsAreCumulativeWithInclusiveBounds) {
  LatencyHistogram h;
  h.observe_ns(0);                // bucket 0 (<= 10 us)
  h.observe_ns(10'000);           // bucket 0: the bound is inclusive
  h.observe_ns(10'001);           // bucket 1 (<= 20 us)
  h.observe_ns(1'000'000);        // 1 ms: bucket 7 (<= 1.28 ms)
  h.observe_ns(100'000'000'000);  // 100 s: +Inf only
  const auto s = h.snapshot();
  EXPECT_EQ(s.cumulative[0], 2u);
  EXPECT_EQ(s.cumulative[1], 3u);
  EXPECT_EQ(s.cumulative[6], 3u);
  EXPECT_EQ(s.cumulative[7], 4u);
  EXPECT_EQ(s.cumulative[LatencyHistogram::kBounds - 1], 4u);
  EXPECT_EQ(s.cumulative[LatencyHistogram::kBounds], 5u);
  EXPECT_EQ(s.count, 5u);
  EXPECT_DOUBLE_EQ(s.sum_seconds, 100.001020001);
  EXPECT_DOUBLE_EQ(LatencyHistogram::bound(0), 1e-5);
  EXPECT_NEAR(LatencyHistogram::bound(LatencyHistogram::kBounds - 1), 10.48576, 1e-9);
}

}  // namespace
