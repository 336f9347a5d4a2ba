// weft-crawler: a link crawler with bounded concurrency, a limit per host
// and deadlines, against a small web site that the program serves itself.
//
//   weft-crawler [--pages N] [--hosts H] [--concurrency C] [--per-host P]
//                [--timeout-ms T] [--deadline-ms D] [--workers W] [--io KIND]
//
// The site: H HTTP servers on 127.0.0.1 (each its own listener on a free
// port: to the crawler, H hosts). Page n (0..N-1) lives on host n % H at
// /p/n and links to pages 2n+1 and 2n+2 (so every page is reachable from
// page 0), back to page n/2, to /missing/n when n % 10 == 9 (answered 404)
// and to /slow/n when n % 25 == 24 (never answered: the server waits until
// the crawler gives up). The servers use examples/http-hello's request
// parser and weft's TCP API; they are the same process as the crawler.
//
// The crawler starts at page 0 and fetches every link it has not seen, one
// fiber per URL in a nursery (weft::scope). At most C fetches run at once
// (a weft::Semaphore), at most P per host (one Semaphore per host, taken
// first so a fetch waiting for its host does not hold a global slot); each
// fetch runs under fail_after(T) (connect, request, response: the whole
// exchange), and the whole crawl under move_on_after(D). It prints what it
// found:
//
//   fetched 68 URLs: 60 pages ok, 6 not found, 2 timed out, 0 failed
//   in flight at most 8 (limit 8), per host at most 2 (limit 2)
//
// and exits 0, or 1 if the crawl deadline cut it short. Built on the public
// API only.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "../common/cli.hpp"
#include "../http-hello/http_parser.hpp"
#include "weft/bufio.hpp"
#include "weft/net.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kUsage =
    "usage: weft-crawler [--pages N] [--hosts H] [--concurrency C] [--per-host P]\n"
    "                    [--timeout-ms T] [--deadline-ms D] [--workers W] [--io KIND]\n"
    "  --pages N        pages of the local site (default 60)\n"
    "  --hosts H        local HTTP servers the pages are spread over (default 3)\n"
    "  --concurrency C  fetches at once, in all (default 8)\n"
    "  --per-host P     fetches at once per host (default 2)\n"
    "  --timeout-ms T   deadline of one fetch (default 1000)\n"
    "  --deadline-ms D  deadline of the whole crawl (default 60000)\n"
    "  --workers W      worker threads (default: one per core)\n"
    "  --io KIND        auto, io_uring or epoll\n";

/// Responses are small; a longer line or body is a broken server.
constexpr std::size_t kMaxLine = 8192;
constexpr std::size_t kMaxBody = 1 << 20;

// --- the site -----------------------------------------------------------------

struct Site {
  long pages = 0;
  std::vector<std::uint16_t> ports;  // host h listens on ports[h]

  std::string url(long page) const {
    return "http://127.0.0.1:" + std::to_string(ports[page % ports.size()]) + "/p/" +
           std::to_string(page);
  }
  std::string url_on(long page, const char* kind) const {
    return "http://127.0.0.1:" + std::to_string(ports[page % ports.size()]) + "/" + kind + "/" +
           std::to_string(page);
  }

  /// The HTML of page n.
  std::string page(long n) const {
    std::string html = "<html><body><h1>page " + std::to_string(n) + "</h1>\n";
    auto link = [&](const std::string& u) { html += "<a href=\"" + u + "\">" + u + "</a>\n"; };
    for (long c : {2 * n + 1, 2 * n + 2}) {
      if (c < pages) link(url(c));
    }
    link(url(n / 2));
    if (n % 10 == 9) link(url_on(n, "missing"));
    if (n % 25 == 24) link(url_on(n, "slow"));
    return html + "</body></html>\n";
  }
};

void respond(weft::net::TcpStream& conn, int status, std::string_view reason,
             const std::string& body) {
  std::string out =
      "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
      "\r\nContent-Type: text/html\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n\r\n" + body;
  conn.write_all(out, 10s);
}

/// One connection: one request, one response (Connection: close).
void serve(const Site& site, weft::net::TcpStream conn) {
  char buf[http_hello::kMaxHeadBytes];
  std::size_t len = 0;
  for (;;) {
    const std::size_t n = conn.read(buf + len, sizeof buf - len, 10s);
    if (n == 0) return;  // the client went away before a full request
    len += n;
    const auto r = http_hello::parse_head(std::string_view(buf, len));
    if (r.status == http_hello::ParseStatus::incomplete) continue;
    if (r.status == http_hello::ParseStatus::error) {
      respond(conn, r.error_status, "Refused", "");
      return;
    }
    const std::string_view target = r.head.target;
    long page = -1;
    if (target.substr(0, 3) == "/p/") {
      try {
        page = std::stol(std::string(target.substr(3)));
      } catch (const std::exception&) {
        page = -1;
      }
    }
    if (target.substr(0, 6) == "/slow/") {
      // Never answers: waits (bounded) for the client to give up and close.
      while (conn.read(buf, sizeof buf, 30s) > 0) {
      }
      return;
    }
    if (page < 0 || page >= site.pages) {
      respond(conn, 404, "Not Found", "<html>no such page</html>\n");
    } else {
      respond(conn, 200, "OK", site.page(page));
    }
    return;
  }
}

/// Accepts until cancelled; one fiber per connection. A connection that
/// fails (the crawler gave up on it) only ends that fiber.
void run_server(const Site& site, weft::net::TcpListener listener) {
  weft::scope([&](weft::Scope& s) {
    for (;;) {
      weft::net::TcpStream conn = listener.accept();
      s.spawn([&site, c = std::move(conn)]() mutable {
         try {
           serve(site, std::move(c));
         } catch (const weft::Cancelled&) {
           throw;
         } catch (const std::exception&) {
           // A reset or a timed-out write: that connection's business only.
         }
       }).detach();
    }
  });
}

// --- the crawler ----------------------------------------------------------------

struct Url {
  std::string host;  // "127.0.0.1:port"
  std::uint16_t port = 0;
  std::string path;
};

/// Parses "http://127.0.0.1:PORT/path"; empty for anything else (the
/// crawler stays on plain-HTTP IPv4 loopback links).
std::optional<Url> parse_url(std::string_view u) {
  constexpr std::string_view kPrefix = "http://127.0.0.1:";
  if (u.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  u.remove_prefix(kPrefix.size());
  const std::size_t slash = u.find('/');
  if (slash == 0 || slash == std::string_view::npos) return std::nullopt;
  long port = 0;
  for (char c : u.substr(0, slash)) {
    if (c < '0' || c > '9' || (port = port * 10 + (c - '0')) > 65535) return std::nullopt;
  }
  return Url{"127.0.0.1:" + std::string(u.substr(0, slash)), static_cast<std::uint16_t>(port),
             std::string(u.substr(slash))};
}

/// Every href="..." of an HTML page.
std::vector<std::string> links_of(std::string_view html) {
  std::vector<std::string> out;
  constexpr std::string_view kHref = "href=\"";
  for (std::size_t i = html.find(kHref); i != std::string_view::npos; i = html.find(kHref, i)) {
    i += kHref.size();
    const std::size_t end = html.find('"', i);
    if (end == std::string_view::npos) break;
    out.emplace_back(html.substr(i, end - i));
    i = end;
  }
  return out;
}

struct Response {
  int status = 0;
  std::string body;
};

/// GET over a fresh connection, reading the response with a BufReader.
/// @throws std::runtime_error for a malformed response; what the socket
/// throws (weft::Cancelled when the fetch's deadline cancels it).
Response get(const Url& url) {
  weft::net::TcpStream conn =
      weft::net::TcpStream::connect(weft::net::Address::loopback_ipv4(url.port));
  conn.write_all("GET " + url.path + " HTTP/1.1\r\nHost: " + url.host +
                 "\r\nConnection: close\r\n\r\n");
  weft::io::BufReader in(conn);
  Response r;
  const std::optional<std::string> status_line = in.read_line(kMaxLine);
  if (!status_line || status_line->size() < 12 || status_line->substr(0, 5) != "HTTP/") {
    throw std::runtime_error("malformed status line");
  }
  r.status = std::stoi(status_line->substr(9, 3));
  std::size_t length = 0;
  for (;;) {
    const std::optional<std::string> line = in.read_line(kMaxLine);
    if (!line) throw std::runtime_error("connection closed inside the response head");
    if (line->empty()) break;
    std::string lower = *line;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower.rfind("content-length:", 0) == 0) length = std::stoul(lower.substr(15));
  }
  if (length > kMaxBody) throw std::runtime_error("response body over the limit");
  r.body.resize(length);
  for (std::size_t got = 0; got < length;) {
    const std::size_t n = in.read(r.body.data() + got, length - got);
    if (n == 0) throw std::runtime_error("connection closed inside the body");
    got += n;
  }
  return r;
}

/// A Semaphore permit held for a scope (acquire may throw weft::Cancelled).
class Permit {
 public:
  explicit Permit(weft::Semaphore& s) : s_(s) { s_.acquire(); }
  ~Permit() { s_.release(); }
  Permit(const Permit&) = delete;
  Permit& operator=(const Permit&) = delete;

 private:
  weft::Semaphore& s_;
};

class Crawler {
 public:
  Crawler(long concurrency, long per_host, std::chrono::milliseconds timeout)
      : all_(concurrency), per_host_limit_(per_host), timeout_(timeout) {}

  /// Crawls from `start` until every reachable link was fetched once.
  void run(const std::string& start) {
    weft::scope([&](weft::Scope& s) {
      scope_ = &s;
      enqueue(start);
    });
  }

  void print(long per_host, long concurrency) const {
    std::printf("fetched %ld URLs: %ld pages ok, %ld not found, %ld timed out, %ld failed\n",
                ok_.load() + not_found_.load() + timed_out_.load() + failed_.load(), ok_.load(),
                not_found_.load(), timed_out_.load(), failed_.load());
    std::printf("in flight at most %ld (limit %ld), per host at most %ld (limit %ld)\n",
                max_in_flight_.load(), concurrency, max_per_host_.load(), per_host);
  }

 private:
  struct Host {
    explicit Host(long limit) : slots(limit) {}
    weft::Semaphore slots;
    std::atomic<long> in_flight{0};
  };

  // Spawns a fetch of `url` unless it was seen before.
  void enqueue(const std::string& url) {
    {
      std::lock_guard g(seen_mu_);
      if (!seen_.insert(url).second) return;
    }
    scope_->spawn([this, url] { fetch(url); }).detach();
  }

  Host& host(const std::string& name) {
    std::lock_guard g(seen_mu_);
    auto& h = hosts_[name];
    if (!h) h = std::make_unique<Host>(per_host_limit_);
    return *h;
  }

  static void raise_max(std::atomic<long>& max, long v) {
    long m = max.load();
    while (v > m && !max.compare_exchange_weak(m, v)) {
    }
  }

  void fetch(const std::string& url) {
    const std::optional<Url> u = parse_url(url);
    if (!u) return;  // off-site link: not followed
    Host& h = host(u->host);
    // Per host first, then a global slot: a fetch that waits for its host
    // holds no global slot meanwhile.
    Permit host_slot(h.slots);
    Permit slot(all_);
    raise_max(max_per_host_, h.in_flight.fetch_add(1) + 1);
    raise_max(max_in_flight_, in_flight_.fetch_add(1) + 1);
    std::optional<Response> r;
    try {
      r = weft::fail_after(timeout_, [&] { return get(*u); });
    } catch (const weft::TimedOut&) {
      timed_out_.fetch_add(1);
    } catch (const weft::Cancelled&) {
      throw;  // the crawl's deadline: the nursery is going away
    } catch (const std::exception& e) {
      std::fprintf(stderr, "weft-crawler: %s: %s\n", url.c_str(), e.what());
      failed_.fetch_add(1);
    }
    in_flight_.fetch_sub(1);
    h.in_flight.fetch_sub(1);
    if (!r) return;
    if (r->status == 404) {
      not_found_.fetch_add(1);
      return;
    }
    if (r->status != 200) {
      failed_.fetch_add(1);
      return;
    }
    ok_.fetch_add(1);
    for (const std::string& link : links_of(r->body)) enqueue(link);
  }

  weft::Semaphore all_;
  const long per_host_limit_;
  const std::chrono::milliseconds timeout_;
  weft::Scope* scope_ = nullptr;
  std::mutex seen_mu_;  // held briefly, never across a park
  std::set<std::string> seen_;
  std::map<std::string, std::unique_ptr<Host>> hosts_;
  std::atomic<long> in_flight_{0}, max_in_flight_{0}, max_per_host_{0};
  std::atomic<long> ok_{0}, not_found_{0}, timed_out_{0}, failed_{0};
};

}  // namespace

int main(int argc, char** argv) {
  examples::Cli cli(argc, argv, "weft-crawler", kUsage);
  const long pages = cli.number("--pages", 1, 1'000'000, 60);
  const long hosts = cli.number("--hosts", 1, 64, 3);
  const long concurrency = cli.number("--concurrency", 1, 10'000, 8);
  const long per_host = cli.number("--per-host", 1, 10'000, 2);
  const auto timeout = std::chrono::milliseconds(cli.number("--timeout-ms", 1, 3'600'000, 1000));
  const auto deadline =
      std::chrono::milliseconds(cli.number("--deadline-ms", 1, 86'400'000, 60000));
  const weft::Config config = cli.config();
  cli.done();

  weft::Runtime rt(config);
  return rt.block_on([&] {
    Site site;
    site.pages = pages;
    std::vector<weft::net::TcpListener> listeners;
    for (long h = 0; h < hosts; ++h) {
      listeners.push_back(weft::net::TcpListener::bind(weft::net::Address::loopback_ipv4(0)));
      site.ports.push_back(listeners.back().local_address().port());
    }
    int code = 0;
    weft::scope([&](weft::Scope& s) {
      for (auto& l : listeners) {
        s.spawn([&site, l = std::move(l)]() mutable { run_server(site, std::move(l)); }).detach();
      }
      Crawler crawler(concurrency, per_host, timeout);
      const auto t0 = Clock::now();
      const bool finished = weft::move_on_after(deadline, [&] { crawler.run(site.url(0)); });
      if (!finished) {
        std::printf("crawl deadline of %lld ms reached: partial results\n",
                    static_cast<long long>(deadline.count()));
        code = 1;
      }
      crawler.print(per_host, concurrency);
      std::fprintf(stderr, "weft-crawler: %.3f s\n",
                   std::chrono::duration<double>(Clock::now() - t0).count());
      s.cancel();  // stops the servers
    });
    return code;
  });
}
