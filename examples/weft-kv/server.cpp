// weft-kv server: options, connections, cron, INFO, shutdown. See server.hpp.
#include "server.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <system_error>

#include "weft/signal.hpp"

namespace kv {

// --- options ----------------------------------------------------------------

const char* const kUsage =
    "usage: weft-kv [options]\n"
    "  --bind ADDR             IP address to listen on (default 127.0.0.1)\n"
    "  --port N                TCP port, 1..65535 (default 6380)\n"
    "  --workers N             worker threads (default: one per core)\n"
    "  --io auto|io_uring|epoll  I/O backend (default auto)\n"
    "  --appendonly yes|no     keep an append-only file (default no)\n"
    "  --appendfsync always|everysec|no  when to fsync it (default everysec)\n"
    "  --dir PATH              directory of appendonly.aof (default .)\n"
    "  --maxclients N          connections served at once (default 10000)\n"
    "  --maxmemory BYTES       refuse writes above this much data; 0 = no limit\n"
    "                          (suffixes k, kb, m, mb, g, gb as in redis.conf)\n"
    "  --timeout S             close clients idle for S seconds; 0 = never (default)\n"
    "  --help                  this text\n"
    "Without options it serves an in-memory keyspace on 127.0.0.1:6380.\n";

namespace {

std::uint64_t parse_uint(std::string_view flag, std::string_view v, std::uint64_t lo,
                         std::uint64_t hi) {
  std::uint64_t x = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || p != v.data() + v.size() || v.empty() || x < lo || x > hi) {
    throw std::invalid_argument(std::string(flag) + " wants an integer in " + std::to_string(lo) +
                                ".." + std::to_string(hi) + ", got '" + std::string(v) + "'");
  }
  return x;
}

// redis.conf memory units: k=1000, kb=1024, m, mb, g, gb (case-insensitive).
std::uint64_t parse_memory(std::string_view flag, std::string_view v) {
  std::size_t digits = 0;
  while (digits < v.size() && v[digits] >= '0' && v[digits] <= '9') ++digits;
  std::string unit(v.substr(digits));
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::uint64_t mul = 1;
  if (unit.empty() || unit == "b")
    mul = 1;
  else if (unit == "k")
    mul = 1000;
  else if (unit == "kb")
    mul = 1024;
  else if (unit == "m")
    mul = 1000 * 1000;
  else if (unit == "mb")
    mul = 1024 * 1024;
  else if (unit == "g")
    mul = 1000 * 1000 * 1000;
  else if (unit == "gb")
    mul = 1024ull * 1024 * 1024;
  else
    throw std::invalid_argument(std::string(flag) + ": unknown unit '" + unit +
                                "' (use k, kb, m, mb, g or gb)");
  const std::uint64_t n = parse_uint(flag, v.substr(0, digits), 0, UINT64_MAX / mul);
  return n * mul;
}

bool parse_yes_no(std::string_view flag, std::string_view v) {
  if (v == "yes") return true;
  if (v == "no") return false;
  throw std::invalid_argument(std::string(flag) + " wants yes or no, got '" + std::string(v) + "'");
}

}  // namespace

Options parse_options(std::span<char* const> args, bool* help) {
  Options o;
  *help = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--help" || a == "-h") {
      *help = true;
      return o;
    }
    if (i + 1 >= args.size()) throw std::invalid_argument("missing value after " + std::string(a));
    const std::string_view v = args[++i];
    if (a == "--bind") {
      if (!weft::net::Address::try_parse(std::string(v) + ":0") &&
          !weft::net::Address::try_parse("[" + std::string(v) + "]:0"))
        throw std::invalid_argument("--bind wants an IP address, got '" + std::string(v) + "'");
      o.bind = v;
    } else if (a == "--port") {
      o.port = static_cast<std::uint16_t>(parse_uint(a, v, 1, 65535));
    } else if (a == "--workers") {
      o.workers = parse_uint(a, v, 1, 1024);
    } else if (a == "--io") {
      if (v == "auto")
        o.io = weft::IoBackend::auto_detect;
      else if (v == "io_uring")
        o.io = weft::IoBackend::io_uring;
      else if (v == "epoll")
        o.io = weft::IoBackend::epoll;
      else
        throw std::invalid_argument("--io wants auto, io_uring or epoll, got '" + std::string(v) +
                                    "'");
    } else if (a == "--appendonly") {
      o.appendonly = parse_yes_no(a, v);
    } else if (a == "--appendfsync") {
      if (v == "always")
        o.appendfsync = FsyncPolicy::always;
      else if (v == "everysec")
        o.appendfsync = FsyncPolicy::everysec;
      else if (v == "no")
        o.appendfsync = FsyncPolicy::no;
      else
        throw std::invalid_argument("--appendfsync wants always, everysec or no, got '" +
                                    std::string(v) + "'");
    } else if (a == "--dir") {
      std::error_code ec;
      if (v.empty() || !std::filesystem::is_directory(v, ec))
        throw std::invalid_argument("--dir: '" + std::string(v) + "' is not a directory");
      o.dir = v;
    } else if (a == "--maxclients") {
      o.maxclients = parse_uint(a, v, 1, 1000000);
    } else if (a == "--maxmemory") {
      o.maxmemory = parse_memory(a, v);
    } else if (a == "--timeout") {
      o.timeout_s = parse_uint(a, v, 0, 100LL * 365 * 24 * 3600);
    } else {
      throw std::invalid_argument("unknown option " + std::string(a) + " (see --help)");
    }
  }
  return o;
}

// --- server -----------------------------------------------------------------

Server::Server(Options options, weft::Runtime& runtime)
    : options_(std::move(options)), runtime_(runtime) {}

Server::~Server() = default;

void Server::request_shutdown() noexcept {
  shutdown_.set();
}

std::int64_t Server::used_memory() const noexcept {
  return keyspace_.bytes() + stats.client_buffers.load(std::memory_order_relaxed);
}

void Server::propagate(Context& ctx, std::span<const std::string_view> argv) {
  if (aof_ == nullptr || loading_) return;
  ctx.aof_seq = std::max(ctx.aof_seq, aof_->append(argv));
}

void Server::load_aof() {
  loading_ = true;
  std::string sink;
  std::uint64_t failed = 0;
  const auto r = aof_->replay([&](std::span<const std::string_view> argv) {
    sink.clear();
    Context ctx{*this, nullptr, argv, sink, unix_ms()};
    execute(ctx);
    if (!sink.empty() && sink[0] == '-') {
      if (++failed <= 5)
        std::fprintf(stderr, "weft-kv: AOF: a record failed on replay: %.*s", int(sink.size() - 1),
                     sink.data() + 1);
    }
  });
  loading_ = false;
  std::fprintf(stderr, "weft-kv: AOF: replayed %llu commands (%lld keys)%s\n",
               static_cast<unsigned long long>(r.commands),
               static_cast<long long>(keyspace_.keys()),
               r.truncated_bytes != 0 ? ", torn tail truncated" : "");
}

void Server::run() {
  start_ms_ = unix_ms();
  if (options_.appendonly) {
    aof_ = Aof::open(options_.dir, options_.appendfsync);
    load_aof();
  }
  // Listen before binding: from here on SIGINT/SIGTERM shut us down
  // cleanly; none is lost, even one that arrives before the watcher runs.
  weft::signal::Listener signals_listener({SIGINT, SIGTERM});
  weft::net::BindOptions bo;
  bo.backlog = 4096;
  auto listener =
      weft::net::TcpListener::bind(weft::net::Address(options_.bind, options_.port), bo);
  bound_port_ = listener.local_address().port();
  weft::scope([&](weft::Scope& s) {
    auto signals = s.spawn([&] {
      const int sig = signals_listener.wait();
      std::fprintf(stderr, "weft-kv: received %s, shutting down\n",
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
      request_shutdown();
    });
    s.spawn([this] { cron(); });
    auto acceptor = s.spawn([&] { accept_loop(listener, s); });
    std::printf("weft-kv: ready to accept connections on %s (%zu workers, %s, appendonly %s)\n",
                listener.local_address().to_string().c_str(), runtime_.workers(),
                runtime_.io_backend() == weft::IoBackend::io_uring ? "io_uring" : "epoll",
                options_.appendonly ? "yes" : "no");
    std::fflush(stdout);

    shutdown_.wait();
    // 1. Stop accepting.
    stopping_.store(true);
    acceptor.cancel();
    try {
      acceptor.join();
    } catch (...) {
    }
    listener.close();
    // 2. Let every connection finish what it has read: end their reads
    // (a blocked read returns end-of-stream), so each one executes the
    // commands buffered, writes the replies and closes.
    {
      std::lock_guard lk(clients_mu_);
      for (Client* c : clients_) ::shutdown(c->fd, SHUT_RD);
    }
    const auto limit = weft::Deadline::after(std::chrono::seconds(5));
    while (nclients_.load() != 0 && !limit.expired())
      weft::this_fiber::sleep_for(std::chrono::milliseconds(2));
    if (nclients_.load() != 0)
      std::fprintf(stderr, "weft-kv: %zu connections still busy after 5 s; closing them\n",
                   nclients_.load());
    // 3. Stop the cron, the signal watcher and any straggler.
    signals.cancel();
    s.cancel();
  });
  // 4. Make the AOF durable.
  if (aof_ != nullptr) aof_->flush_and_sync();
  std::fprintf(stderr, "weft-kv: bye\n");
}

void Server::accept_loop(weft::net::TcpListener& listener, weft::Scope& scope) {
  for (;;) {
    weft::net::TcpStream conn;
    try {
      conn = listener.accept();
    } catch (const std::system_error& e) {
      // Out of fds or memory: keep serving the clients we have and retry
      // (as Redis, which logs and goes on).
      std::fprintf(stderr, "weft-kv: accept: %s\n", e.what());
      weft::this_fiber::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    stats.connections.fetch_add(1, std::memory_order_relaxed);
    if (nclients_.load(std::memory_order_relaxed) >= options_.maxclients) {
      stats.rejected.fetch_add(1, std::memory_order_relaxed);
      static constexpr std::string_view kFull = "-ERR max number of clients reached\r\n";
      ::send(conn.native_handle(), kFull.data(), kFull.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      continue;  // conn closes here
    }
    nclients_.fetch_add(1, std::memory_order_relaxed);
    try {
      scope.spawn([this, c = std::move(conn)]() mutable { serve(std::move(c)); });
    } catch (...) {
      nclients_.fetch_sub(1, std::memory_order_relaxed);
      throw;
    }
  }
}

namespace {
constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::size_t kOutFlush = 64 * 1024;   // write replies once this much is pending
constexpr std::size_t kOutKeep = 1024 * 1024;  // shrink a reply buffer grown beyond this
}  // namespace

void Server::serve(weft::net::TcpStream conn) {
  Client client;
  client.id = next_client_id_.fetch_add(1, std::memory_order_relaxed);
  client.fd = conn.native_handle();
  client.created_ms = unix_ms();
  client.last_ms.store(client.created_ms, std::memory_order_relaxed);
  try {
    client.addr = conn.peer_address().to_string();
    client.laddr = conn.local_address().to_string();
    conn.set_nodelay(true);
  } catch (const std::exception&) {
    // The peer is gone already; the read below ends the connection.
  }
  bool registered = false;
  {
    std::lock_guard lk(clients_mu_);
    if (!stopping_.load()) {
      clients_.push_back(&client);
      registered = true;
    }
  }

  RequestParser parser(options_.limits);
  std::string out;
  std::vector<std::string_view> argv;
  std::uint64_t reported_buffers = 0;
  auto flush = [&](std::uint64_t seq) {
    if (seq != 0) aof_->wait_durable(seq);
    if (!out.empty()) {
      conn.write_all(out.data(), out.size());
      stats.net_out.fetch_add(out.size(), std::memory_order_relaxed);
      out.clear();
      if (out.capacity() > kOutKeep) out.shrink_to_fit();
    }
  };
  try {
    bool open = registered;
    while (open) {
      const std::span<char> space = parser.prepare(kReadChunk);
      std::size_t n = 0;
      try {
        n = options_.timeout_s == 0
                ? conn.read(space.data(), space.size())
                : conn.read(space.data(), space.size(),
                            weft::Deadline::after(std::chrono::seconds(options_.timeout_s)));
      } catch (const weft::TimedOut&) {
        break;  // idle timeout: close without a reply, as Redis does
      }
      if (n == 0) open = false;  // peer closed, or shutdown ended our reads
      parser.commit(n);
      stats.net_in.fetch_add(n, std::memory_order_relaxed);

      Context ctx{*this, &client, {}, out, unix_ms()};
      std::uint64_t ncommands = 0;
      ParseStatus st;
      while ((st = parser.next(argv)) == ParseStatus::complete) {
        ctx.argv = argv;
        execute(ctx);
        ++ncommands;
        if (ctx.close) break;
        if (out.size() >= kOutFlush) {
          flush(std::exchange(ctx.aof_seq, 0));
          ctx.now = unix_ms();
        }
      }
      if (st == ParseStatus::error) {
        out += '-';
        out += parser.error();
        out += "\r\n";
        open = false;
      }
      if (ctx.close) open = false;
      stats.commands.fetch_add(ncommands, std::memory_order_relaxed);
      if (ctx.hits != 0) stats.hits.fetch_add(ctx.hits, std::memory_order_relaxed);
      if (ctx.misses != 0) stats.misses.fetch_add(ctx.misses, std::memory_order_relaxed);
      client.last_ms.store(ctx.now, std::memory_order_relaxed);
      const std::uint64_t buffered = parser.buffered();
      client.qbuf.store(buffered, std::memory_order_relaxed);
      if (buffered != reported_buffers) {
        stats.client_buffers.fetch_add(static_cast<std::int64_t>(buffered - reported_buffers),
                                       std::memory_order_relaxed);
        reported_buffers = buffered;
      }
      flush(ctx.aof_seq);
    }
  } catch (const std::system_error&) {
    // Peer reset, or an AOF write failed (the reply was never sent).
  } catch (const weft::Cancelled&) {
    // Server stopping after the grace period.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft-kv: client %llu: %s\n", static_cast<unsigned long long>(client.id),
                 e.what());
  }
  stats.client_buffers.fetch_sub(static_cast<std::int64_t>(reported_buffers),
                                 std::memory_order_relaxed);
  if (registered) {
    std::lock_guard lk(clients_mu_);
    clients_.erase(std::find(clients_.begin(), clients_.end(), &client));
  }
  conn.close();
  nclients_.fetch_sub(1, std::memory_order_relaxed);
}

void Server::cron() {
  // Redis's serverCron at 10 Hz: active expiry (activeExpireCycle: 20 keys
  // per shard and loop, again while more than 10% of a sample had expired,
  // within 25 ms) and the ops/sec sample.
  constexpr std::size_t kSample = 20;
  std::uint64_t last_commands = stats.commands.load();
  std::int64_t last_ms = unix_ms();
  std::uint64_t samples[16] = {};
  std::size_t nsample = 0;
  for (;;) {
    weft::this_fiber::sleep_for(std::chrono::milliseconds(100));
    const std::int64_t start = unix_ms();
    for (std::size_t i = 0; i < Keyspace::kShards; ++i) {
      Shard& sh = keyspace_.shard(i);
      if (sh.counters().expires.load(std::memory_order_relaxed) == 0) continue;
      for (;;) {
        std::pair<std::size_t, std::size_t> r;
        {
          std::lock_guard lk(sh.mu);
          r = sh.expire_sample(kSample, unix_ms());
        }
        if (r.second * 10 <= r.first || unix_ms() - start > 25) break;
        weft::this_fiber::yield();
      }
    }
    const std::uint64_t commands = stats.commands.load(std::memory_order_relaxed);
    const std::int64_t now = unix_ms();
    if (now > last_ms) {
      samples[nsample++ % 16] = (commands - last_commands) * 1000 / std::uint64_t(now - last_ms);
      std::uint64_t sum = 0;
      const std::size_t k = std::min<std::size_t>(nsample, 16);
      for (std::size_t j = 0; j < k; ++j) sum += samples[j];
      stats.ops_per_sec.store(sum / k, std::memory_order_relaxed);
    }
    last_commands = commands;
    last_ms = now;
  }
}

// --- INFO and CLIENT LIST ---------------------------------------------------

namespace {

std::int64_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  f >> pages >> resident;
  return static_cast<std::int64_t>(resident) * ::sysconf(_SC_PAGESIZE);
}

std::string human_bytes(std::int64_t n) {
  char buf[32];
  const double d = static_cast<double>(n);
  if (n < 1024)
    std::snprintf(buf, sizeof buf, "%lldB", static_cast<long long>(n));
  else if (n < 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.2fK", d / 1024);
  else if (n < 1024LL * 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.2fM", d / (1024 * 1024));
  else
    std::snprintf(buf, sizeof buf, "%.2fG", d / (1024.0 * 1024 * 1024));
  return buf;
}

// Appends one printf-formatted INFO line and its CRLF (the compiler checks
// the format against the arguments).
__attribute__((format(printf, 2, 3))) void line(std::string& s, const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  const int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0) s.append(buf, static_cast<std::size_t>(std::min<int>(n, sizeof buf - 1)));
  s += "\r\n";
}

}  // namespace

std::string Server::info(std::string_view section) {
  std::string s;
  const bool all = section == "all" || section == "everything";
  const bool dflt = section.empty() || section == "default" || all;
  auto want = [&](std::string_view name) { return dflt || section == name; };
  const std::int64_t now = unix_ms();
  if (want("server")) {
    s += "# Server\r\n";
    line(s, "redis_version:7.0.0");
    line(s, "redis_mode:standalone");
    line(s, "server_name:weft-kv");
    line(s, "weft_kv_version:0.1.0");
    line(s, "os:Linux");
    line(s, "multiplexing_api:%s",
         runtime_.io_backend() == weft::IoBackend::io_uring ? "io_uring" : "epoll");
    line(s, "process_id:%ld", static_cast<long>(::getpid()));
    line(s, "tcp_port:%u", unsigned{bound_port_});
    line(s, "uptime_in_seconds:%lld", static_cast<long long>((now - start_ms_) / 1000));
    line(s, "uptime_in_days:%lld", static_cast<long long>((now - start_ms_) / 86400000));
    line(s, "executable:weft-kv");
    s += "\r\n";
  }
  if (want("clients")) {
    s += "# Clients\r\n";
    line(s, "connected_clients:%zu", nclients_.load(std::memory_order_relaxed));
    line(s, "maxclients:%zu", options_.maxclients);
    line(s, "blocked_clients:0");
    s += "\r\n";
  }
  if (want("memory")) {
    const std::int64_t used = used_memory();
    const std::int64_t rss = rss_bytes();
    s += "# Memory\r\n";
    line(s, "used_memory:%lld", static_cast<long long>(used));
    line(s, "used_memory_human:%s", human_bytes(used).c_str());
    line(s, "used_memory_rss:%lld", static_cast<long long>(rss));
    line(s, "used_memory_rss_human:%s", human_bytes(rss).c_str());
    line(s, "used_memory_dataset:%lld", static_cast<long long>(keyspace_.bytes()));
    line(s, "maxmemory:%llu", static_cast<unsigned long long>(options_.maxmemory));
    line(s, "maxmemory_human:%s",
         human_bytes(static_cast<std::int64_t>(options_.maxmemory)).c_str());
    line(s, "maxmemory_policy:noeviction");
    s += "\r\n";
  }
  if (want("persistence")) {
    s += "# Persistence\r\n";
    line(s, "loading:%d", loading_ ? 1 : 0);
    line(s, "aof_enabled:%d", aof_ != nullptr ? 1 : 0);
    line(s, "aof_current_size:%llu",
         static_cast<unsigned long long>(aof_ != nullptr ? aof_->size() : 0));
    s += "\r\n";
  }
  if (want("stats")) {
    s += "# Stats\r\n";
    line(s, "total_connections_received:%llu",
         static_cast<unsigned long long>(stats.connections.load(std::memory_order_relaxed)));
    line(s, "total_commands_processed:%llu",
         static_cast<unsigned long long>(stats.commands.load(std::memory_order_relaxed)));
    line(s, "instantaneous_ops_per_sec:%llu",
         static_cast<unsigned long long>(stats.ops_per_sec.load(std::memory_order_relaxed)));
    line(s, "total_net_input_bytes:%llu",
         static_cast<unsigned long long>(stats.net_in.load(std::memory_order_relaxed)));
    line(s, "total_net_output_bytes:%llu",
         static_cast<unsigned long long>(stats.net_out.load(std::memory_order_relaxed)));
    line(s, "rejected_connections:%llu",
         static_cast<unsigned long long>(stats.rejected.load(std::memory_order_relaxed)));
    line(s, "expired_keys:%llu", static_cast<unsigned long long>(keyspace_.expired()));
    line(s, "evicted_keys:0");
    line(s, "keyspace_hits:%llu",
         static_cast<unsigned long long>(stats.hits.load(std::memory_order_relaxed)));
    line(s, "keyspace_misses:%llu",
         static_cast<unsigned long long>(stats.misses.load(std::memory_order_relaxed)));
    s += "\r\n";
  }
  if (want("keyspace")) {
    s += "# Keyspace\r\n";
    const std::int64_t keys = keyspace_.keys();
    if (keys > 0) {
      line(s, "db0:keys=%lld,expires=%lld,avg_ttl=0", static_cast<long long>(keys),
           static_cast<long long>(keyspace_.expires()));
    }
    s += "\r\n";
  }
  if (all || section == "weft") {
    const weft::RuntimeStats rs = runtime_.stats();
    s += "# Weft\r\n";
    line(s, "weft_workers:%zu", runtime_.workers());
    line(s, "weft_io_backend:%s",
         runtime_.io_backend() == weft::IoBackend::io_uring ? "io_uring" : "epoll");
    line(s, "weft_fibers_alive:%llu", static_cast<unsigned long long>(rs.fibers_alive));
    line(s, "weft_fibers_spawned:%llu", static_cast<unsigned long long>(rs.fibers_spawned));
    line(s, "weft_fibers_completed:%llu", static_cast<unsigned long long>(rs.fibers_completed));
    line(s, "weft_fibers_runnable:%llu", static_cast<unsigned long long>(rs.fibers_runnable));
    line(s, "weft_fibers_parked:%llu", static_cast<unsigned long long>(rs.fibers_parked));
    line(s, "weft_fiber_parks:%llu", static_cast<unsigned long long>(rs.fiber_parks));
    line(s, "weft_steals:%llu", static_cast<unsigned long long>(rs.steals));
    line(s, "weft_injector_depth:%llu", static_cast<unsigned long long>(rs.injector_depth));
    line(s, "weft_io_requests:%llu", static_cast<unsigned long long>(rs.io_requests));
    line(s, "weft_blocking_threads:%llu", static_cast<unsigned long long>(rs.blocking_threads));
    line(s, "weft_blocking_tasks:%llu", static_cast<unsigned long long>(rs.blocking_tasks));
    for (std::size_t i = 0; i < rs.workers.size(); ++i) {
      const weft::WorkerStats& w = rs.workers[i];
      line(s,
           "weft_worker%zu:switches=%llu,steals=%llu,parks=%llu,sleeps=%llu,runnable=%llu,"
           "io_requests=%llu",
           i, static_cast<unsigned long long>(w.switches),
           static_cast<unsigned long long>(w.steals),
           static_cast<unsigned long long>(w.fiber_parks),
           static_cast<unsigned long long>(w.sleeps), static_cast<unsigned long long>(w.runnable),
           static_cast<unsigned long long>(w.io_requests));
    }
    s += "\r\n";
  }
  if (s.size() >= 2) s.resize(s.size() - 2);  // no blank line after the last section
  return s;
}

std::string Server::client_list(const Client* self) {
  std::string s;
  const std::int64_t now = unix_ms();
  std::lock_guard lk(clients_mu_);
  for (Client* c : clients_) {
    std::string name;
    {
      std::lock_guard nl(c->mu);
      name = c->name;
    }
    const char* cmd = c->last_cmd.load(std::memory_order_relaxed);
    // The client running CLIENT LIST is in the middle of it.
    const std::string cmdname = c == self ? "client|list" : cmd != nullptr ? cmd : "NULL";
    // The name may be long: only the fixed-width parts go through snprintf.
    char head[128];
    std::snprintf(head, sizeof head, "id=%llu addr=", static_cast<unsigned long long>(c->id));
    s += head;
    s += c->addr;
    s += " laddr=";
    s += c->laddr;
    std::snprintf(head, sizeof head, " fd=%d name=", c->fd);
    s += head;
    s += name;
    char tail[512];
    std::snprintf(tail, sizeof tail,
                  " age=%lld idle=%lld flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=%llu "
                  "qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 "
                  "events=r cmd=%s user=default redir=-1 resp=2\n",
                  static_cast<long long>((now - c->created_ms) / 1000),
                  static_cast<long long>((now - c->last_ms.load(std::memory_order_relaxed)) / 1000),
                  static_cast<unsigned long long>(c->qbuf.load(std::memory_order_relaxed)),
                  cmdname.c_str());
    s += tail;
  }
  return s;
}

}  // namespace kv
