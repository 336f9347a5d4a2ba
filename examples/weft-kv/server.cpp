// weft-kv server core: connections, cron, AOF loading, shutdown. INFO and
// CLIENT LIST are in info.cpp. See server.hpp.
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

// --- server -----------------------------------------------------------------

Server::Server(Options options, weft::Runtime& runtime)
    : options_(std::move(options)), runtime_(runtime) {}

Server::~Server() = default;

void Server::request_shutdown() noexcept {
  shutdown_.set();
}

std::int64_t Server::used_memory() const noexcept {
  return keyspace_.bytes() + stats_.client_buffers.load(std::memory_order_relaxed);
}

void Server::reset_stats() noexcept {
  for (auto* c : {&stats_.commands, &stats_.connections, &stats_.rejected, &stats_.hits,
                  &stats_.misses, &stats_.net_in, &stats_.net_out})
    c->store(0, std::memory_order_relaxed);
}

void Server::settings_changed(std::string_view name) {
  if (name == "appendfsync" && aof_ != nullptr)
    aof_->set_policy(settings_.appendfsync.load(std::memory_order_relaxed));
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
    aof_ = Aof::open(options_.dir, settings_.appendfsync.load(std::memory_order_relaxed));
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
      std::lock_guard lk(connections_mu_);
      for (Connection* c : connections_) {
        try {
          c->stream->shutdown(weft::net::Shutdown::read);
        } catch (const std::system_error&) {
          // ENOTCONN: the peer is gone already; its read ends by itself.
        }
      }
    }
    if (!active_.wait_for(std::chrono::seconds(5)))
      std::fprintf(stderr, "weft-kv: %lld connections still busy after 5 s; closing them\n",
                   static_cast<long long>(active_.count()));
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
    stats_.connections.fetch_add(1, std::memory_order_relaxed);
    if (static_cast<std::size_t>(active_.count()) >= options_.maxclients) {
      stats_.rejected.fetch_add(1, std::memory_order_relaxed);
      static constexpr std::string_view kFull = "-ERR max number of clients reached\r\n";
      ::send(conn.native_handle(), kFull.data(), kFull.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      continue;  // conn closes here
    }
    // Counted before the fiber starts, so shutdown's wait covers it; the
    // fiber's last act is done().
    active_.add(1);
    try {
      scope.spawn([this, c = std::move(conn)]() mutable { serve(std::move(c)); });
    } catch (...) {
      active_.done();
      throw;
    }
  }
}

namespace {
constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::size_t kOutFlush = 64 * 1024;   // write replies once this much is pending
constexpr std::size_t kOutKeep = 1024 * 1024;  // shrink a reply buffer grown beyond this
// Input a blocked client may send before it is closed (Redis's
// client-query-buffer-limit default).
constexpr std::size_t kHeldMax = std::size_t{1} << 30;
}  // namespace

void Server::serve(weft::net::TcpStream conn) {
  Connection self;
  self.stream = &conn;
  Client& client = self.client;
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
    // Registered only while not stopping: shutdown ends the reads of every
    // registered connection under the same lock, so none is missed.
    std::lock_guard lk(connections_mu_);
    if (!stopping_.load()) {
      connections_.push_back(&self);
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
      stats_.net_out.fetch_add(out.size(), std::memory_order_relaxed);
      out.clear();
      if (out.capacity() > kOutKeep) out.shrink_to_fit();
    }
  };
  // A blocking command (BLPOP...) parks through this (client.hpp's
  // BlockWatch): it sends the replies so far, then reads the connection on
  // a second fiber while the command waits, keeping what arrives in `held`
  // (parsed after the command, before the next read) and waking the
  // command if the connection ends.
  std::string held;
  struct Watch final : BlockWatch {
    using Flush = decltype(flush);
    Watch(Flush& f, weft::net::TcpStream& c, std::string& h) : send(f), conn(c), held(h) {}
    bool park(std::uint64_t& aof_seq, weft::Event& wake, weft::Deadline deadline) override {
      send(std::exchange(aof_seq, 0));
      bool open = true;
      weft::scope([&](weft::Scope& s) {
        auto reader = s.spawn([&] {
          char buf[4096];
          try {
            for (std::size_t n; held.size() <= kHeldMax && (n = conn.read(buf, sizeof buf)) != 0;)
              held.append(buf, n);
          } catch (const weft::Cancelled&) {
            return;  // the command stopped waiting first
          } catch (const std::system_error&) {
            // Reset: the connection ended.
          }
          open = false;
          wake.set();
        });
        wake.wait_until(deadline);
        reader.cancel();
      });
      return open;
    }
    Flush& send;
    weft::net::TcpStream& conn;
    std::string& held;
  } watch(flush, conn, held);
  client.watch = &watch;

  try {
    bool open = registered;
    while (open) {
      const std::span<char> space = parser.prepare(std::max(kReadChunk, held.size()));
      std::size_t n = 0;
      if (!held.empty()) {  // sent while a command was blocked
        n = held.size();
        std::memcpy(space.data(), held.data(), n);
        std::string().swap(held);
      } else {
        try {
          const std::uint64_t timeout_s = settings_.timeout_s.load(std::memory_order_relaxed);
          n = timeout_s == 0 ? conn.read(space.data(), space.size())
                             : conn.read(space.data(), space.size(),
                                         weft::Deadline::after(std::chrono::seconds(timeout_s)));
        } catch (const weft::TimedOut&) {
          break;  // idle timeout: close without a reply, as Redis does
        }
      }
      if (n == 0) open = false;  // peer closed, or shutdown ended our reads
      parser.commit(n);
      stats_.net_in.fetch_add(n, std::memory_order_relaxed);

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
      stats_.commands.fetch_add(ncommands, std::memory_order_relaxed);
      if (ctx.hits != 0) stats_.hits.fetch_add(ctx.hits, std::memory_order_relaxed);
      if (ctx.misses != 0) stats_.misses.fetch_add(ctx.misses, std::memory_order_relaxed);
      client.last_ms.store(ctx.now, std::memory_order_relaxed);
      const std::uint64_t buffered = parser.buffered();
      client.qbuf.store(buffered, std::memory_order_relaxed);
      if (buffered != reported_buffers) {
        stats_.client_buffers.fetch_add(static_cast<std::int64_t>(buffered - reported_buffers),
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
  stats_.client_buffers.fetch_sub(static_cast<std::int64_t>(reported_buffers),
                                  std::memory_order_relaxed);
  if (registered) {
    std::lock_guard lk(connections_mu_);
    connections_.erase(std::find(connections_.begin(), connections_.end(), &self));
  }
  conn.close();
  active_.done();
}

void Server::cron() {
  // Redis's serverCron at 10 Hz: active expiry (activeExpireCycle: 20 keys
  // per shard and loop, again while more than 10% of a sample had expired,
  // within 25 ms; keyspace.hpp) and the ops/sec sample.
  constexpr std::size_t kSample = 20;
  std::uint64_t last_commands = stats_.commands.load();
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
    const std::uint64_t commands = stats_.commands.load(std::memory_order_relaxed);
    const std::int64_t now = unix_ms();
    if (now > last_ms) {
      samples[nsample++ % 16] = (commands - last_commands) * 1000 / std::uint64_t(now - last_ms);
      std::uint64_t sum = 0;
      const std::size_t k = std::min<std::size_t>(nsample, 16);
      for (std::size_t j = 0; j < k; ++j) sum += samples[j];
      stats_.ops_per_sec.store(sum / k, std::memory_order_relaxed);
    }
    last_commands = commands;
    last_ms = now;
  }
}

}  // namespace kv
