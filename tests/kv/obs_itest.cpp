// weft-kv's observability, end to end (README.md, "Observability"): the
// --metrics-port endpoint (/metrics checked by promtool and metric by
// metric under a workload that fixes the counts, /debug/fibers naming the
// connection fibers, the HTTP errors, a stalled scraper not stalling the
// Redis port), SLOWLOG details the case file cannot fix (a blocking
// command's wait left out, the flags), INFO weft, and the fiber dump that
// kill -QUIT prints while the server goes on serving.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "kv/kv_harness.hpp"

namespace {

using namespace std::chrono_literals;
using kv::itest::Client;
using kv::itest::Reply;
using kv::itest::Server;
using kv::itest::ServerConfig;
using weft::test::eventually;

/// The metrics port the server logged ("weft-kv: metrics on
/// http://127.0.0.1:PORT/metrics"); 0 if it did not within kPatience.
std::uint16_t metrics_port(const Server& s) {
  static const std::regex re(R"(metrics on http://127\.0\.0\.1:(\d+)/metrics)");
  std::smatch m;
  std::string log;
  eventually([&] {
    log = s.log();
    return std::regex_search(log, m, re);
  });
  if (m.empty()) return 0;
  return static_cast<std::uint16_t>(std::stoi(m[1]));
}

/// Sends `request` (raw bytes) to 127.0.0.1:port and returns everything the
/// server answers until it closes the connection.
std::string http_raw(std::uint16_t port, std::string_view request) {
  auto s = weft::net::TcpStream::connect(weft::net::Address::loopback_ipv4(port),
                                         weft::Deadline::after(kv::itest::kPatience));
  s.write_all(request, weft::Deadline::after(kv::itest::kPatience));
  std::string out;
  char buf[65536];
  try {
    for (std::size_t n;
         (n = s.read(buf, sizeof buf, weft::Deadline::after(kv::itest::kPatience))) != 0;)
      out.append(buf, n);
  } catch (const std::system_error&) {
    // A reset after the response (the server closed with input unread).
  }
  return out;
}

/// One GET with Connection: close.
struct HttpResult {
  int status = 0;
  std::string head;
  std::string body;
};
HttpResult http_get(std::uint16_t port, const std::string& target,
                    const std::string& method = "GET") {
  const std::string raw =
      http_raw(port, method + " " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  HttpResult r;
  const std::size_t end = raw.find("\r\n\r\n");
  if (raw.size() < 12 || end == std::string::npos) {
    r.head = raw;
    return r;
  }
  r.status = std::stoi(raw.substr(9, 3));
  r.head = raw.substr(0, end);
  r.body = raw.substr(end + 4);
  return r;
}

/// A /metrics page as sample -> value ("weft_kv_commands_total{cmd=\"get\"}").
std::map<std::string, double> parse_samples(const std::string& page) {
  std::map<std::string, double> m;
  for (const std::string& line : kv::itest::split_lines(page)) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t sp = line.rfind(' ');
    m[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  return m;
}

class ObsMetrics : public ::testing::Test {
 protected:
  void SetUp() override {
    KV_REQUIRE_SERVER();
    KV_WEFT_KV_ONLY("--metrics-port is weft-kv's");
    ServerConfig cfg;
    cfg.options = {{"metrics-port", "0"}, {"appendonly", "yes"}, {"appendfsync", "always"}};
    server_ = std::make_unique<Server>(cfg);
    mport_ = metrics_port(*server_);
    ASSERT_NE(mport_, 0) << server_->log();
  }
  std::map<std::string, double> scrape() {
    const HttpResult r = http_get(mport_, "/metrics");
    EXPECT_EQ(r.status, 200) << r.head;
    return parse_samples(r.body);
  }
  std::unique_ptr<Server> server_;
  std::uint16_t mport_ = 0;
};

TEST_F(ObsMetrics, PromtoolAcceptsThePageUnderAWorkload) {
  Client c(server_->port());
  for (int i = 0; i < 20; ++i) {
    ASSERT_FALSE(c.call({"SET", "k" + std::to_string(i), "v"}).is_error());
    ASSERT_FALSE(c.call({"GET", "k" + std::to_string(i)}).is_error());
    ASSERT_FALSE(c.call({"LPUSH", "l", "x"}).is_error());
  }
  ASSERT_FALSE(c.call({"CONFIG", "GET", "maxmemory"}).is_error());
  const HttpResult r = http_get(mport_, "/metrics");
  ASSERT_EQ(r.status, 200) << r.head;
  EXPECT_NE(r.head.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << r.head;
  // The runtime's registry and the server's own metrics, on one page.
  EXPECT_NE(r.body.find("\nweft_fiber_spawned_total "), std::string::npos);
  EXPECT_NE(r.body.find("\nweft_kv_commands_total{cmd=\"config|get\"} 1\n"), std::string::npos)
      << r.body;
  const std::string promtool = "/usr/bin/promtool";
  if (::access(promtool.c_str(), X_OK) != 0)
    GTEST_SKIP() << "promtool missing: install Debian's prometheus package (scripts/bootstrap.sh)";
  const auto check = kv::itest::run_tool(promtool, {"check", "metrics"}, r.body);
  EXPECT_TRUE(check.status.success()) << check.out << check.err;
  EXPECT_EQ(check.out + check.err, "") << "promtool's lint found problems";
}

TEST_F(ObsMetrics, EachServerMetricMovesAsDocumented) {
  Client c(server_->port());
  const auto before = scrape();
  const auto moved = [&](const std::map<std::string, double>& after, const std::string& name) {
    const auto b = before.find(name);
    const auto a = after.find(name);
    EXPECT_NE(a, after.end()) << name << " missing";
    return (a == after.end() ? 0 : a->second) - (b == before.end() ? 0 : b->second);
  };
  // 5 SETs, 3 GET hits, 2 GET misses, one key that expires and is then
  // looked up (a miss, an expiry), one from one connection at a time so
  // that every AOF round carries one command (appendfsync always: one
  // write and one fdatasync each).
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(c.call({"SET", "k" + std::to_string(i), "v"}).describe(), "+OK");
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(c.call({"GET", "k" + std::to_string(i)}).describe(), "\"v\"");
  for (int i = 0; i < 2; ++i) ASSERT_EQ(c.call({"GET", "nosuch"}).describe(), "(nil)");
  // A subscriber to one channel and one pattern, and one more plain client.
  Client sub(server_->port());
  ASSERT_EQ(sub.call({"SUBSCRIBE", "ch"}).elements.size(), 3u);
  ASSERT_EQ(sub.call({"PSUBSCRIBE", "p*"}).elements.size(), 3u);
  Client idle(server_->port());
  ASSERT_EQ(idle.call({"PING"}).describe(), "+PONG");

  // The harness's readiness check may still be closing its connection.
  EXPECT_TRUE(eventually([&] { return scrape().at("weft_kv_connected_clients") == 3; }));
  const auto after = scrape();
  EXPECT_EQ(moved(after, "weft_kv_commands_total{cmd=\"set\"}"), 5);
  EXPECT_EQ(moved(after, "weft_kv_commands_total{cmd=\"get\"}"), 5);
  EXPECT_EQ(moved(after, "weft_kv_commands_total{cmd=\"subscribe\"}"), 1);
  EXPECT_GT(after.at("weft_kv_commands_duration_seconds_total{cmd=\"set\"}"), 0);
  EXPECT_EQ(moved(after, "weft_kv_keyspace_hits_total"), 3);
  EXPECT_EQ(moved(after, "weft_kv_keyspace_misses_total"), 2);
  EXPECT_EQ(after.at("weft_kv_connected_clients"), 3);
  EXPECT_EQ(after.at("weft_kv_keys"), 5);
  EXPECT_EQ(after.at("weft_kv_pubsub_channels"), 1);
  EXPECT_EQ(after.at("weft_kv_pubsub_patterns"), 1);
  EXPECT_EQ(after.at("weft_kv_aof_enabled"), 1);
  EXPECT_EQ(moved(after, "weft_kv_aof_writes_total"), 5);
  EXPECT_EQ(moved(after, "weft_kv_aof_fsync_duration_seconds_count"), 5);
  EXPECT_EQ(moved(after, "weft_kv_aof_fsync_duration_seconds_bucket{le=\"+Inf\"}"), 5);
  EXPECT_GT(moved(after, "weft_kv_aof_fsync_duration_seconds_sum"), 0);
  EXPECT_EQ(moved(after, "weft_kv_aof_write_errors_total"), 0);
  EXPECT_EQ(moved(after, "weft_kv_evicted_keys_total"), 0);

  // Expiry: a key with a 1 ms TTL, looked up after it passed.
  ASSERT_EQ(c.call({"SET", "e", "v", "PX", "1"}).describe(), "+OK");
  std::this_thread::sleep_for(20ms);
  ASSERT_EQ(c.call({"GET", "e"}).describe(), "(nil)");
  sub.close();
  EXPECT_TRUE(eventually([&] { return scrape().at("weft_kv_connected_clients") == 2; }));
  const auto last = scrape();
  EXPECT_EQ(moved(last, "weft_kv_expired_keys_total"), 1);
  EXPECT_EQ(moved(last, "weft_kv_keyspace_misses_total"), 3);
  EXPECT_EQ(last.at("weft_kv_pubsub_channels"), 0);
  EXPECT_EQ(last.at("weft_kv_pubsub_patterns"), 0);
}

TEST_F(ObsMetrics, HttpErrorsAreClearAndTheRedisPortNeverStalls) {
  // A scraper that connects and sends nothing holds only its own fiber.
  auto silent = weft::net::TcpStream::connect(weft::net::Address::loopback_ipv4(mport_),
                                              weft::Deadline::after(kv::itest::kPatience));
  auto half = weft::net::TcpStream::connect(weft::net::Address::loopback_ipv4(mport_),
                                            weft::Deadline::after(kv::itest::kPatience));
  half.write_all(std::string_view("GET /metrics HTTP/1.1\r\nHost:"),
                 weft::Deadline::after(kv::itest::kPatience));
  Client c(server_->port());
  EXPECT_EQ(c.call({"PING"}).describe(), "+PONG");

  HttpResult r = http_get(mport_, "/nosuch");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("no such endpoint: /nosuch"), std::string::npos) << r.body;
  r = http_get(mport_, "/metrics", "POST");
  EXPECT_EQ(r.status, 405);
  EXPECT_NE(r.head.find("\r\nAllow: GET, HEAD"), std::string::npos) << r.head;
  r = http_get(mport_, "/metrics", "HEAD");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "") << "HEAD has no body";
  r = http_get(mport_, "/debug/fibers?format=xml");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("use format=text or format=json"), std::string::npos) << r.body;

  std::string raw = http_raw(mport_, "GARBAGE\r\n\r\n");
  EXPECT_EQ(raw.substr(0, 24), "HTTP/1.1 400 Bad Request") << raw;
  // A head over 8 KiB: 431, and the connection closes.
  raw = http_raw(
      mport_, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n");
  EXPECT_EQ(raw.substr(0, 12), "HTTP/1.1 431") << raw.substr(0, 100);
  // A body is refused, and the connection closed rather than misframed.
  raw = http_raw(mport_, "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(raw.substr(0, 12), "HTTP/1.1 413") << raw.substr(0, 100);
  EXPECT_NE(raw.find("Connection: close"), std::string::npos) << raw.substr(0, 200);
  // Keep-alive: two requests on one connection, the second closes it.
  raw = http_raw(mport_,
                 "GET /nosuch HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(raw.substr(0, 12), "HTTP/1.1 404") << raw.substr(0, 100);
  EXPECT_NE(raw.find("HTTP/1.1 200 OK"), std::string::npos);

  // Still serving Redis, the silent scrapers still open.
  EXPECT_EQ(c.call({"SET", "a", "1"}).describe(), "+OK");
  EXPECT_EQ(c.call({"GET", "a"}).describe(), "\"1\"");
}

TEST_F(ObsMetrics, DebugFibersNamesTheConnectionFibersWithTheirClients) {
  Client a(server_->port());
  Client b(server_->port());
  ASSERT_EQ(a.call({"PING"}).describe(), "+PONG");
  ASSERT_EQ(b.call({"PING"}).describe(), "+PONG");
  const std::string addr_a = "127.0.0.1:" + std::to_string(a.local_port());
  const std::string addr_b = "127.0.0.1:" + std::to_string(b.local_port());

  const HttpResult r = http_get(mport_, "/debug/fibers?format=json");
  ASSERT_EQ(r.status, 200) << r.head;
  EXPECT_NE(r.head.find("Content-Type: application/json"), std::string::npos) << r.head;
  const nlohmann::json dump = nlohmann::json::parse(r.body);
  EXPECT_EQ(dump.at("version"), 1);
  std::map<std::string, int> names;
  std::vector<std::string> clients;
  for (const auto& f : dump.at("fibers")) {
    ++names[f.at("name").get<std::string>()];
    if (f.at("name") == "client") {
      ASSERT_TRUE(f.at("labels").contains("client")) << f.dump();
      clients.push_back(f.at("labels").at("client").get<std::string>());
      EXPECT_EQ(f.at("state"), "parked") << f.dump();
      EXPECT_EQ(f.at("wait").at("reason"), "io_read") << f.dump();
    }
  }
  EXPECT_EQ(names["accept"], 1) << r.body;
  EXPECT_EQ(names["cron"], 1);
  EXPECT_EQ(names["metrics-accept"], 1);
  EXPECT_EQ(names["client"], 2) << r.body;
  EXPECT_NE(std::find(clients.begin(), clients.end(), addr_a), clients.end()) << r.body;
  EXPECT_NE(std::find(clients.begin(), clients.end(), addr_b), clients.end()) << r.body;

  const HttpResult text = http_get(mport_, "/debug/fibers");
  ASSERT_EQ(text.status, 200);
  EXPECT_NE(text.body.find("labels: client=" + addr_a), std::string::npos) << text.body;
  EXPECT_NE(text.body.find("\"accept\" [parked"), std::string::npos) << text.body;
}

// thread_per_core: fibers never leave the worker they start on, so the
// accept loop hands each connection to the workers in turn. Four clients on
// two workers: two more served on each, and every command still answers.
TEST(ObsThreadPerCore, ConnectionsAreSpreadOverTheWorkers) {
  KV_REQUIRE_SERVER();
  KV_WEFT_KV_ONLY("weft_kv_connections_by_worker_total is weft-kv's");
  ServerConfig cfg;
  cfg.options = {{"metrics-port", "0"}, {"workers", "2"}};
  Server server(cfg, {{"WEFT_STRATEGY", "thread_per_core"}});
  const std::uint16_t mport = metrics_port(server);
  ASSERT_NE(mport, 0) << server.log();
  // Per worker: served so far (the harness's readiness PING took a turn).
  const auto served = [mport](int worker) {
    const HttpResult r = http_get(mport, "/metrics");
    EXPECT_EQ(r.status, 200) << r.head;
    const auto m = parse_samples(r.body);
    const auto it =
        m.find("weft_kv_connections_by_worker_total{worker=\"" + std::to_string(worker) + "\"}");
    EXPECT_NE(it, m.end()) << r.body;
    return it == m.end() ? -1.0 : it->second;
  };
  const double before0 = served(0);
  const double before1 = served(1);
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<Client>(server.port()));
    const std::string key = "k" + std::to_string(i);
    ASSERT_EQ(clients.back()->call({"SET", key, "v"}).describe(), "+OK");
  }
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(
        clients[static_cast<std::size_t>(i)]->call({"GET", "k" + std::to_string(3 - i)}).describe(),
        "\"v\"");
    EXPECT_EQ(clients[static_cast<std::size_t>(i)]->call({"INCR", "n"}).describe(),
              ":" + std::to_string(i + 1));
  }
  EXPECT_EQ(served(0) - before0, 2);
  EXPECT_EQ(served(1) - before1, 2);
}

// INFO weft: the registry's metrics as name:value lines, only when asked for
// (or in INFO all / everything), never in plain INFO.
TEST_F(ObsMetrics, InfoWeftComesFromTheRegistry) {
  Client c(server_->port());
  ASSERT_EQ(c.call({"SET", "k", "v"}).describe(), "+OK");
  const auto weft_info = kv::itest::info(c, "weft");
  EXPECT_EQ(weft_info.sections, std::vector<std::string>{"Weft"});
  EXPECT_GT(weft_info.integer("weft_fiber_spawned_total"), 0);
  EXPECT_TRUE(weft_info.has("weft_scheduler_scheduling_latency_seconds_count"));
  EXPECT_TRUE(weft_info.has("weft_io_operations_total{op=\"recv\"}") ||
              weft_info.has("weft_io_operations_total{op=\"read\"}"))
      << "labelled series keep their labels";
  const auto page = scrape();
  EXPECT_TRUE(page.count("weft_fiber_spawned_total"));
  for (const char* section : {"", "default"}) {
    const auto plain = kv::itest::info(c, section);
    EXPECT_FALSE(plain.has("weft_fiber_spawned_total")) << section;
  }
  for (const char* section : {"all", "everything"}) {
    const auto all = kv::itest::info(c, section);
    EXPECT_TRUE(all.has("weft_fiber_spawned_total")) << section;
    EXPECT_EQ(all.sections.back(), "Weft") << section;
  }
}

// SLOWLOG details the case file cannot fix: the flags set the parameters,
// a blocking command's wait is not its duration, the client's name and
// address are the ones at the time.
TEST(ObsSlowlog, FlagsAndBlockingWaitLeftOut) {
  KV_REQUIRE_SERVER();
  KV_WEFT_KV_ONLY("the --slowlog-* flags are weft-kv's");
  ServerConfig cfg;
  cfg.options = {{"slowlog-log-slower-than", "0"}, {"slowlog-max-len", "5"}};
  Server server(cfg);
  Client c(server.port());
  Reply conf = c.call({"CONFIG", "GET", "slowlog-*"});
  ASSERT_EQ(conf.elements.size(), 4u) << conf;
  std::map<std::string, std::string> params;
  for (std::size_t i = 0; i + 1 < conf.elements.size(); i += 2)
    params[conf.elements[i].str] = conf.elements[i + 1].str;
  EXPECT_EQ(params["slowlog-log-slower-than"], "0");
  EXPECT_EQ(params["slowlog-max-len"], "5");

  ASSERT_EQ(c.call({"CLIENT", "SETNAME", "waiter"}).describe(), "+OK");
  // BLPOP waits 1 s for nothing; its entry counts the work, not the wait.
  ASSERT_EQ(c.call({"BLPOP", "nolist", "1"}).type, Reply::Type::nil_array);
  const Reply log = c.call({"SLOWLOG", "GET", "2"});
  ASSERT_EQ(log.elements.size(), 2u) << log;
  const Reply& e = log.elements[0];
  ASSERT_EQ(e.elements.size(), 6u) << e;
  EXPECT_EQ(e.elements[3].describe(), "[\"BLPOP\", \"nolist\", \"1\"]");
  EXPECT_LT(e.elements[2].integer, 1'000'000) << "the 1 s wait was counted: " << e;
  EXPECT_EQ(e.elements[4].str, "127.0.0.1:" + std::to_string(c.local_port()));
  EXPECT_EQ(e.elements[5].str, "waiter");
  // Newest first, ids consecutive: CLIENT SETNAME, then BLPOP.
  const Reply& prev = log.elements[1];
  EXPECT_EQ(prev.elements[3].describe(), "[\"CLIENT\", \"SETNAME\", \"waiter\"]");
  EXPECT_EQ(e.elements[0].integer, prev.elements[0].integer + 1);
  // slowlog-max-len 5 keeps 5.
  for (int i = 0; i < 10; ++i) ASSERT_EQ(c.call({"PING"}).describe(), "+PONG");
  EXPECT_EQ(c.call({"SLOWLOG", "LEN"}).integer, 5);
}

// kill -QUIT: the fiber dump on stderr (the accept loop, each connection's
// fiber labelled with its client), and the server goes on serving.
TEST(ObsSignal, SigquitPrintsTheDumpAndKeepsServing) {
  KV_REQUIRE_SERVER();
  KV_WEFT_KV_ONLY("the fiber dump is weft's");
  KV_SKIP_EXTERNAL_SIGNALS_UNDER_TSAN();
  Server server;
  Client a(server.port());
  ASSERT_EQ(a.call({"SET", "k", "v"}).describe(), "+OK");
  const std::string addr = "127.0.0.1:" + std::to_string(a.local_port());
  const std::size_t from = server.log_size();
  server.kill(SIGQUIT);
  ASSERT_TRUE(eventually([&] {
    const std::string log = server.log(from);
    return log.find("cancellation tree") != std::string::npos;
  })) << server.log(from);
  const std::string dump = server.log(from);
  EXPECT_NE(dump.find("weft fiber dump"), std::string::npos) << dump;
  EXPECT_NE(dump.find("\"accept\" [parked: io_read"), std::string::npos) << dump;
  EXPECT_NE(dump.find("\"client\" [parked: io_read"), std::string::npos) << dump;
  EXPECT_NE(dump.find("labels: client=" + addr), std::string::npos) << dump;
  // Still serving: the old connection and a new one.
  EXPECT_TRUE(server.running());
  EXPECT_EQ(a.call({"GET", "k"}).describe(), "\"v\"");
  Client b(server.port());
  EXPECT_EQ(b.call({"PING"}).describe(), "+PONG");
}

}  // namespace

namespace {

// A metrics port that cannot be bound is a clear error at start-up, exit 1.
TEST(ObsMetricsPort, ATakenPortIsAClearError) {
  KV_REQUIRE_SERVER();
  KV_WEFT_KV_ONLY("--metrics-port is weft-kv's");
  auto taken = weft::net::TcpListener::bind(weft::net::Address::loopback_ipv4(0));
  const std::string port = std::to_string(taken.local_address().port());
  const auto r = kv::itest::run_tool(
      kv::itest::target().binary,
      {"--port", std::to_string(kv::itest::free_port()), "--metrics-port", port});
  EXPECT_EQ(r.status, weft::process::ExitStatus::exited(1)) << r.out << r.err;
  EXPECT_NE(
      r.err.find("weft-kv: --metrics-port: bind 127.0.0.1:" + port + ": Address already in use"),
      std::string::npos)
      << r.err;
}

}  // namespace
