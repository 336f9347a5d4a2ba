// weft-kv server core: connections, cron, AOF loading, shutdown. INFO and
// CLIENT LIST are in info.cpp. See server.hpp.
#include "server.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <stdexcept>
#include <system_error>

#include "memory.hpp"
#include "metrics_http.hpp"
#include "rdb.hpp"
#include "weft/fs.hpp"
#include "weft/signal.hpp"

namespace kv {

// --- server -----------------------------------------------------------------

Server::Server(Options options, weft::Runtime& runtime)
    : options_(std::move(options)),
      runtime_(runtime),
      served_by_worker_(new std::atomic<std::uint64_t>[runtime.workers()]()) {
  keyspace_.set_expiry_listener(&expiry_notifier_);
  for (const char* name : {"maxmemory-policy", "lfu-log-factor", "lfu-decay-time"})
    settings_changed(name);
  for (const Command& c : command_table()) {
    command_stats_.try_emplace(&c);
    for (const Command& sub : c.subcommands) command_stats_.try_emplace(&sub);
  }
}

Server::~Server() = default;

std::size_t Server::kill_clients(const std::function<bool(const Client&)>& match) {
  std::size_t killed = 0;
  std::lock_guard lk(connections_mu_);
  for (Connection* c : connections_) {
    if (!match(c->client)) continue;
    ++killed;
    // As shutdown does to end reads, both ways: the connection's blocked
    // read (or reply write) ends, and its loop closes the connection.
    try {
      c->stream->shutdown(weft::net::Shutdown::both);
    } catch (const std::system_error&) {
      // ENOTCONN: the peer is gone already; the connection is ending.
    }
  }
  return killed;
}

void Server::request_shutdown() noexcept {
  shutdown_.set();
}

std::int64_t Server::used_memory() const noexcept {
  return keyspace_.bytes() + stats_.client_buffers.load(std::memory_order_relaxed);
}

std::string Server::write_refusal() const {
  const int e = aof_ != nullptr ? aof_->status().error : 0;
  return std::string("MISCONF Errors writing to the AOF file: ") + std::strerror(e != 0 ? e : EIO);
}

void Server::reset_stats() noexcept {
  for (auto* c : {&stats_.commands, &stats_.connections, &stats_.rejected, &stats_.hits,
                  &stats_.misses, &stats_.net_in, &stats_.net_out})
    c->store(0, std::memory_order_relaxed);
  evictor_.reset_stats();
  for (auto& [cmd, st] : command_stats_) {
    st.calls.store(0, std::memory_order_relaxed);
    st.usec.store(0, std::memory_order_relaxed);
  }
}

void Server::command_done(const Context& ctx, const Command& cmd,
                          std::int64_t duration_us) noexcept {
  if (const auto it = command_stats_.find(&cmd); it != command_stats_.end()) {
    it->second.calls.fetch_add(1, std::memory_order_relaxed);
    it->second.usec.fetch_add(static_cast<std::uint64_t>(duration_us), std::memory_order_relaxed);
  }
  if (ctx.client == nullptr || (cmd.flags & kSkipSlowlog) != 0) return;
  const std::int64_t slower_than =
      settings_.slowlog_log_slower_than.load(std::memory_order_relaxed);
  if (slower_than < 0 || duration_us < slower_than) return;
  try {
    std::string name;
    {
      std::lock_guard g(ctx.client->mu);
      name = ctx.client->name;
    }
    slowlog_.record(ctx.argv, duration_us, slower_than,
                    settings_.slowlog_max_len.load(std::memory_order_relaxed), unix_ms() / 1000,
                    ctx.client->addr, name);
  } catch (const std::bad_alloc&) {
    // No memory for the entry: the command is not logged; it ran anyway.
  }
}

void Server::settings_changed(std::string_view name) {
  if (name == "appendfsync" && aof_ != nullptr)
    aof_->set_policy(settings_.appendfsync.load(std::memory_order_relaxed));
  if (name == "save") rdb_.stop_schedule();
  if (name == "rdb-key-save-delay")
    rdb_.set_key_save_delay(settings_.rdb_key_save_delay.load(std::memory_order_relaxed));
  AccessClock& clock = keyspace_.access_clock();
  if (name == "maxmemory-policy")
    clock.lfu.store(policy_is_lfu(settings_.maxmemory_policy.load(std::memory_order_relaxed)),
                    std::memory_order_relaxed);
  if (name == "lfu-log-factor")
    clock.lfu_log_factor.store(settings_.lfu_log_factor.load(std::memory_order_relaxed),
                               std::memory_order_relaxed);
  if (name == "lfu-decay-time")
    clock.lfu_decay_time.store(settings_.lfu_decay_time.load(std::memory_order_relaxed),
                               std::memory_order_relaxed);
}

void Server::propagate(Context& ctx, std::span<const std::string_view> argv) {
  signal_modified_keys(keyspace_, argv);
  if (loading_) return;
  rdb_.note_changes(1);
  if (aof_ == nullptr) return;
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

void Server::load_rdb() {
  std::string file;
  try {
    file = weft::fs::read_file(rdb_.path());
  } catch (const std::system_error& e) {
    if (e.code() == std::errc::no_such_file_or_directory) return;
    throw std::runtime_error("weft-kv: RDB: cannot read '" + rdb_.path().string() +
                             "': " + e.code().message());
  }
  loading_ = true;
  std::string sink;
  RdbLoadResult r;
  try {
    r = rdb_load(file, unix_ms(), [&](std::span<const std::string_view> argv) {
      sink.clear();
      Context ctx{*this, nullptr, argv, sink, unix_ms()};
      execute(ctx);
      if (!sink.empty() && sink[0] == '-')
        throw RdbFormatError("a key could not be rebuilt (" + std::string(argv[0]) + " " +
                             std::string(argv[1]) + "): " + sink.substr(1, sink.size() - 3));
    });
  } catch (const RdbFormatError& e) {
    loading_ = false;
    throw std::runtime_error("weft-kv: RDB: '" + rdb_.path().string() +
                             "' cannot be loaded: " + e.what());
  }
  loading_ = false;
  rdb_.loaded(r.keys, r.expired);
  std::fprintf(stderr, "weft-kv: RDB: loaded %llu keys from '%s' (%llu expired skipped)\n",
               static_cast<unsigned long long>(r.keys), rdb_.path().c_str(),
               static_cast<unsigned long long>(r.expired));
}

void Server::run() {
  start_ms_ = unix_ms();
  if (options_.appendonly) {
    aof_ = Aof::open(options_.dir, settings_.appendfsync.load(std::memory_order_relaxed));
    load_aof();
    aof_rewriter_.set_base_size(aof_->size());
    aof_->on_failure([this] { roll_back_unlogged(); });
  } else {
    load_rdb();
  }
  // Listen before binding: from here on SIGINT/SIGTERM shut us down
  // cleanly; none is lost, even one that arrives before the watcher runs.
  weft::signal::Listener signals_listener({SIGINT, SIGTERM});
  weft::net::BindOptions bo;
  bo.backlog = 4096;
  weft::net::TcpListener listener = bind_listener(bo);
  bound_port_ = listener.local_address().port();
  std::optional<weft::net::TcpListener> metrics_listener;
  if (options_.metrics_port >= 0) {
    try {
      metrics_listener.emplace(weft::net::TcpListener::bind(
          weft::net::Address(options_.bind, static_cast<std::uint16_t>(options_.metrics_port))));
    } catch (const std::system_error& e) {
      // what(): "weft-kv: --metrics-port: bind 127.0.0.1:9121: Address already in use".
      throw std::system_error(e.code(), "weft-kv: --metrics-port: bind " + options_.bind + ":" +
                                            std::to_string(options_.metrics_port));
    }
  }
  // Named fibers: the dump (SIGQUIT, /debug/fibers) shows what each is.
  const auto named = [](const char* name) {
    weft::FiberOptions o;
    o.name = name;
    return o;
  };
  weft::scope([&](weft::Scope& s) {
    auto signals = s.spawn(named("signals"), [&] {
      const int sig = signals_listener.wait();
      std::fprintf(stderr, "weft-kv: received %s, shutting down\n",
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
      request_shutdown();
    });
    rdb_.attach(&s);
    aof_rewriter_.attach(&s, aof_.get());
    s.spawn(named("cron"), [this] { cron(); });
    auto acceptor = s.spawn(named("accept"), [&] { accept_loop(listener, s); });
    std::printf("weft-kv: ready to accept connections on %s (%zu workers, %s, appendonly %s)\n",
                listener.local_address().to_string().c_str(), runtime_.workers(),
                runtime_.io_backend() == weft::IoBackend::io_uring ? "io_uring" : "epoll",
                options_.appendonly ? "yes" : "no");
    if (metrics_listener) {
      std::printf("weft-kv: metrics on http://%s/metrics\n",
                  metrics_listener->local_address().to_string().c_str());
      s.spawn(named("metrics-accept"), [&] { serve_metrics(*metrics_listener, s); });
    }
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
    // 3. With a save schedule, save on the way out, as Redis's SHUTDOWN
    // does (after a BGSAVE still running).
    if (rdb_.schedule_on()) {
      rdb_.wait_idle();
      rdb_.save(used_memory());
    }
    // 4. Stop the cron, the signal watcher and any straggler.
    signals.cancel();
    s.cancel();
  });
  rdb_.attach(nullptr);
  aof_rewriter_.attach(nullptr, aof_.get());
  // 5. Make the AOF durable.
  if (aof_ != nullptr) aof_->flush_and_sync();
  std::fprintf(stderr, "weft-kv: bye\n");
}

weft::net::TcpListener Server::bind_listener(const weft::net::BindOptions& bo) {
  // Right after a kill -9 the predecessor's listening socket can outlive
  // its process for a few tens of ms: under io_uring its ring holds a
  // reference to the socket (the accept request in flight) until the
  // kernel's ring teardown runs in a worker thread after the exit. A
  // bounded retry on EADDRINUSE covers that; a port really in use still
  // fails, after bind_retries * 10 ms. (SO_REUSEPORT would bind at once,
  // but the dying socket could then take connections that are lost.)
  const weft::net::Address addr(options_.bind, options_.port);
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t attempt = 0;; ++attempt) {
    try {
      auto l = weft::net::TcpListener::bind(addr, bo);
      if (attempt != 0) {
        std::fprintf(stderr, "weft-kv: bound %s after %zu retries (%lld ms)\n",
                     addr.to_string().c_str(), attempt,
                     static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::steady_clock::now() - start)
                                                .count()));
      }
      return l;
    } catch (const std::system_error& e) {
      if (e.code() != std::errc::address_in_use || attempt >= options_.bind_retries) throw;
      if (attempt == 0)
        std::fprintf(stderr,
                     "weft-kv: %s in use; retrying for up to %zu ms (a killed predecessor's "
                     "socket may still be closing)\n",
                     addr.to_string().c_str(), options_.bind_retries * 10);
    }
    weft::this_fiber::sleep_for(std::chrono::milliseconds(10));
  }
}

void Server::accept_loop(weft::net::TcpListener& listener, weft::Scope& scope) {
  for (;;) {
    weft::net::TcpStream conn = accept_retrying(listener, "accept");
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
      weft::FiberOptions opts;
      opts.name = "client";
      if (runtime_.config().strategy == weft::Strategy::thread_per_core) {
        // Fibers stay where they start: hand the connections to the workers
        // in turn, or every one would be served by the acceptor's worker.
        // One accept loop handing off beats a SO_REUSEPORT listener per
        // worker here (docs/benchmarks.md, series KA): exact balance, and
        // no other process can join the port's group and take connections.
        opts.worker = static_cast<int>(next_worker_);
        next_worker_ = (next_worker_ + 1) % runtime_.workers();
      }
      scope.spawn(opts, [this, c = std::move(conn)]() mutable { serve(std::move(c)); });
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
  served_by_worker_[static_cast<std::size_t>(weft::this_fiber::worker_index())].fetch_add(
      1, std::memory_order_relaxed);
  client.fd = conn.native_handle();
  client.created_ms = unix_ms();
  client.last_ms.store(client.created_ms, std::memory_order_relaxed);
  // Redis: authenticated at once while the default user needs no password.
  client.authenticated = !settings_.requirepass.required();
  try {
    client.addr = conn.peer_address().to_string();
    client.laddr = conn.local_address().to_string();
    conn.set_nodelay(true);
    // The dump (SIGQUIT, /debug/fibers) names the client each fiber serves.
    weft::this_fiber::set_label("client", client.addr);
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
  // The replies of this batch that logged a record, to be replaced by the
  // MISCONF error if a failed AOF write discards their records.
  std::vector<Logged> logged;
  // Where the reply of the command being executed begins in `out`: 0 again
  // once a blocking command has sent the replies before it (and its own
  // reply, appended after it wakes, begins the output).
  std::size_t reply_at = 0;
  // Waits for the batch's records, then writes the replies; false when the
  // client is closed for the write deadline or the output limits.
  // Once the client has subscribed, its replies go to its outbox (the
  // messages published to it are there too) and a writer fiber of the
  // connection's scope writes them (pubsub.hpp).
  std::unique_ptr<Outbox> box;
  Subscriber sub;
  weft::Scope* conn_scope = nullptr;
  auto flush = [&](std::uint64_t seq) {
    if (seq != 0) wait_logged(out, logged, seq);
    logged.clear();
    if (!out.empty()) {
      if (box != nullptr) {
        if (!box->push(out, unix_ms())) return false;
      } else {
        if (!write_replies(conn, client, out)) return false;
        stats_.net_out.fetch_add(out.size(), std::memory_order_relaxed);
      }
      out.clear();
      reply_at = 0;
      if (out.capacity() > kOutKeep) out.shrink_to_fit();
    }
    return true;
  };
  // A blocking command (BLPOP...) parks through this (client.hpp's
  // BlockWatch): it sends the replies so far, then reads the connection on
  // a second fiber while the command waits, keeping what arrives in `held`
  // (parsed after the command, before the next read) and waking the
  // command if the connection ends.
  std::string held;
  struct Watch final : BlockWatch {
    using Flush = decltype(flush);
    Watch(Flush& f, weft::net::TcpStream& c, std::string& h, Client& cl)
        : send(f), conn(c), held(h), client(cl) {}
    bool park(std::uint64_t& aof_seq, weft::Event& wake, weft::Deadline deadline) override {
      // Closed for the output limits or the write deadline: it leaves at once.
      if (!send(std::exchange(aof_seq, 0))) return false;
      // The wait is not the command's time (SLOWLOG, commandstats).
      const auto start = std::chrono::steady_clock::now();
      struct Parked {
        Client& client;
        std::chrono::steady_clock::time_point start;
        ~Parked() {
          client.parked_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::steady_clock::now() - start)
                                  .count();
        }
      } parked{client, start};
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
    Client& client;
  } watch(flush, conn, held, client);
  client.watch = &watch;

  // Publish/subscribe (client.hpp's PubSubLink): the first subscription
  // makes the outbox and starts the writer.
  struct Link final : PubSubLink {
    using Flush = decltype(flush);
    using Make = std::function<void()>;
    Link(Flush& f, std::unique_ptr<Outbox>& b, Subscriber& s, Make m)
        : send(f), box(b), sub(s), make(std::move(m)) {}
    Subscriber* subscriber(bool create) override {
      if (box == nullptr) {
        if (!create) return nullptr;
        make();
      }
      return &sub;
    }
    void sync(Context& ctx) override {
      // False: the outbox closed (over its limits); the connection is ending.
      if (box != nullptr) (void)send(std::exchange(ctx.aof_seq, 0));
    }
    Flush& send;
    std::unique_ptr<Outbox>& box;
    Subscriber& sub;
    Make make;
  } link(flush, box, sub, [&] {
    box = std::make_unique<Outbox>(options_.pubsub_limit, [this, &conn, &client] {
      // Redis: "Client ... scheduled to be closed ASAP for overcoming of
      // output buffer limits."; its reads end, then the connection.
      stats_.output_limit_closed.fetch_add(1, std::memory_order_relaxed);
      std::fprintf(stderr,
                   "weft-kv: client %llu closed for overcoming of output buffer limits (pubsub "
                   "class: hard %llu, soft %llu for %llu s)\n",
                   static_cast<unsigned long long>(client.id),
                   static_cast<unsigned long long>(options_.pubsub_limit.hard),
                   static_cast<unsigned long long>(options_.pubsub_limit.soft),
                   static_cast<unsigned long long>(options_.pubsub_limit.soft_seconds));
      try {
        conn.shutdown(weft::net::Shutdown::both);
      } catch (const std::system_error&) {
        // Not connected any more: it is ending anyway.
      }
    });
    sub.client_id = client.id;
    sub.box = box.get();
    sub.resp = &client.resp;
    conn_scope->spawn([this, &conn, &client, b = box.get()] { write_outbox(conn, client, *b); });
  });
  client.pubsub = &link;

  try {
    weft::scope([&](weft::Scope& scope) {
      conn_scope = &scope;
      // However the loop ends, the writer ends with it.
      struct CloseBox {
        std::unique_ptr<Outbox>& b;
        ~CloseBox() {
          if (b != nullptr) b->close(/*drain=*/true);
        }
      } close_box{box};
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
            // Subscribed clients are never idle (Redis's clientsCronHandleTimeout).
            const std::uint64_t timeout_s =
                client.subscriptions > 0 ? 0 : settings_.timeout_s.load(std::memory_order_relaxed);
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
          const std::uint64_t seq_before = ctx.aof_seq;
          reply_at = out.size();
          execute(ctx);
          // A blocking command that parked sent what came before it and reset
          // ctx.aof_seq: it logged a record only if it was served (seq != 0).
          if (ctx.aof_seq != seq_before && ctx.aof_seq != 0)
            logged.push_back({reply_at, out.size(), ctx.aof_seq});
          ++ncommands;
          if (ctx.close) break;
          if (out.size() >= kOutFlush) {
            if (!flush(std::exchange(ctx.aof_seq, 0))) {
              ctx.close = true;
              break;
            }
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
        if (!flush(ctx.aof_seq)) open = false;
      }
    });
  } catch (const std::system_error&) {
    // Peer reset, or the AOF failed permanently (the reply was never sent).
  } catch (const weft::Cancelled&) {
    // Server stopping after the grace period.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft-kv: client %llu: %s\n", static_cast<unsigned long long>(client.id),
                 e.what());
  }
  // Its watched keys and subscriptions go before the outbox and the stream
  // do: no other client touches them after this.
  client_closed(*this, client);
  stats_.client_buffers.fetch_sub(static_cast<std::int64_t>(reported_buffers),
                                  std::memory_order_relaxed);
  if (registered) {
    std::lock_guard lk(connections_mu_);
    connections_.erase(std::find(connections_.begin(), connections_.end(), &self));
  }
  conn.close();
  active_.done();
}

void Server::write_outbox(weft::net::TcpStream& conn, Client& client, Outbox& box) {
  std::string chunk;
  // Draining (the connection ended) to a peer that takes nothing: given up
  // after 5 s of bounded waits without progress.
  int stalls = 0;
  try {
    while (box.take(chunk)) {
      client.omem.store(box.pending(), std::memory_order_relaxed);
      for (std::size_t done = 0; done < chunk.size();) {
        std::size_t n = 0;
        try {
          // A bounded wait, so that an outbox closed while the socket is
          // full (over its limits, or the connection ending) ends it.
          n = conn.write(chunk.data() + done, chunk.size() - done,
                         weft::Deadline::after(std::chrono::milliseconds(100)));
        } catch (const weft::TimedOut&) {
          if (box.closed() || (box.draining() && ++stalls > 50)) {
            client.omem.store(0, std::memory_order_relaxed);
            return;
          }
          continue;
        }
        stalls = 0;
        done += n;
        box.wrote(n);
        stats_.net_out.fetch_add(n, std::memory_order_relaxed);
      }
      client.omem.store(box.pending(), std::memory_order_relaxed);
    }
  } catch (const weft::Cancelled&) {
    // The connection's scope ends.
  } catch (const std::system_error&) {
    // The peer is gone: end the connection's reads too.
    box.close();
    try {
      conn.shutdown(weft::net::Shutdown::both);
    } catch (const std::system_error&) {
    }
  }
  client.omem.store(0, std::memory_order_relaxed);
}

void Server::wait_logged(std::string& out, std::vector<Logged>& logged, std::uint64_t seq) {
  for (;;) {
    try {
      aof_->wait_durable(seq);
      return;
    } catch (const AofWriteError&) {
      // Some records of this batch were discarded, their effects rolled
      // back: their commands are answered with the MISCONF error instead.
    }
    const std::string refusal = "-" + write_refusal() + "\r\n";
    std::string rewritten;
    std::size_t from = 0;
    std::uint64_t keep = 0;  // the last record of the batch still to wait for
    for (Logged& l : logged) {
      rewritten.append(out, from, l.begin - from);  // replies of other commands
      const std::size_t at = rewritten.size();
      if (l.seq != 0 && aof_->lost(l.seq)) {
        rewritten += refusal;
        l.seq = 0;
      } else {
        rewritten.append(out, l.begin, l.end - l.begin);
        if (l.seq != 0) keep = l.seq;
      }
      from = l.end;
      l.begin = at;
      l.end = rewritten.size();
    }
    rewritten.append(out, from, std::string::npos);
    out.swap(rewritten);
    if (keep == 0) return;
    seq = keep;
  }
}

void Server::roll_back_unlogged() {
  // One roll-back at a time; each one covers every record discarded so far.
  weft::ShieldGuard shield;  // half a roll-back would leave memory ahead of the file
  std::lock_guard serial(rollback_mu_);
  const auto start = std::chrono::steady_clock::now();
  // Every shard, in index order (as multi-key commands lock them): no
  // command runs, so nothing is appended, until memory is the file again.
  std::array<std::unique_lock<ShardMutex>, Keyspace::kShards> locks;
  for (std::size_t i = 0; i < Keyspace::kShards; ++i)
    locks[i] = std::unique_lock<ShardMutex>(keyspace_.shard(i).mu);
  aof_->discard_unwritten();
  // Replay the file into a fresh keyspace through a host of its own (the
  // command layer needs nothing else), then swap it in shard by shard.
  auto fresh = std::make_unique<Keyspace>();
  ReplayHost host(*fresh, options_, settings_);
  std::string sink;
  const ReplayResult r = aof_->reread([&](std::span<const std::string_view> argv) {
    sink.clear();
    Context ctx{host, nullptr, argv, sink, unix_ms()};
    execute(ctx);
  });
  for (std::size_t i = 0; i < Keyspace::kShards; ++i) keyspace_.shard(i).swap(fresh->shard(i));
  for (auto& l : locks) l.unlock();
  std::fprintf(stderr,
               "weft-kv: AOF: writes that could not be logged were rolled back: memory reloaded "
               "from the file (%llu records, %lld keys) in %lld ms\n",
               static_cast<unsigned long long>(r.commands),
               static_cast<long long>(keyspace_.keys()),
               static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - start)
                                          .count()));
  // `fresh` (now the old contents) is freed here, after the locks.
}

bool Server::write_replies(weft::net::TcpStream& conn, Client& client, std::string_view out) {
  // Redis's client-output-buffer-limit for normal clients
  // (checkClientOutputBufferLimits): over the hard limit at once, or over
  // the soft one for soft_seconds. The pending bytes are what is left of
  // this batch of replies while it is written.
  const Options::OutputLimit& lim = options_.output_limit;
  if (lim.hard != 0 && out.size() > lim.hard) {
    stats_.output_limit_closed.fetch_add(1, std::memory_order_relaxed);
    std::fprintf(stderr,
                 "weft-kv: client %llu closed for overcoming of output buffer limits (%zu bytes "
                 "pending, hard limit %llu)\n",
                 static_cast<unsigned long long>(client.id), out.size(),
                 static_cast<unsigned long long>(lim.hard));
    return false;
  }
  // Without --write-timeout, the idle timeout (CONFIG SET timeout included).
  const std::uint64_t write_timeout = options_.write_timeout_s != 0
                                          ? options_.write_timeout_s
                                          : settings_.timeout_s.load(std::memory_order_relaxed);
  weft::Deadline soft_deadline = weft::Deadline::none();
  std::size_t done = 0;
  while (done < out.size()) {
    const std::size_t pending = out.size() - done;
    client.omem.store(pending, std::memory_order_relaxed);
    // The write deadline restarts with every byte of progress.
    weft::Deadline d = write_timeout != 0
                           ? weft::Deadline::after(std::chrono::seconds(write_timeout))
                           : weft::Deadline::none();
    bool soft = false;
    if (lim.soft != 0 && pending > lim.soft) {
      if (soft_deadline.is_none())
        soft_deadline = weft::Deadline::after(std::chrono::seconds(lim.soft_seconds));
      if (soft_deadline.when() <= d.when()) {
        d = soft_deadline;
        soft = true;
      }
    } else {
      soft_deadline = weft::Deadline::none();
    }
    try {
      done += conn.write(out.data() + done, pending, d);
    } catch (const weft::TimedOut&) {
      (soft ? stats_.output_limit_closed : stats_.write_timeout_closed)
          .fetch_add(1, std::memory_order_relaxed);
      client.omem.store(0, std::memory_order_relaxed);
      return false;
    }
  }
  client.omem.store(0, std::memory_order_relaxed);
  return true;
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
  // Peaks since the last release of free memory (see below).
  std::int64_t peak_bytes = 0, peak_clients = 0;
  for (;;) {
    weft::this_fiber::sleep_for(std::chrono::milliseconds(100));
    const std::int64_t start = unix_ms();
    // No active expiry while clients are paused (CLIENT PAUSE): the data
    // set stays as it is, as Redis's activeExpireCycle. This also ends a
    // pause whose time has passed when no command looks meanwhile.
    const bool expire = !client_pause().paused(start);
    for (std::size_t i = 0; expire && i < Keyspace::kShards; ++i) {
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
    rdb_.cron(unix_ms(), used_memory());
    aof_rewriter_.cron(unix_ms(),
                       settings_.auto_aof_rewrite_percentage.load(std::memory_order_relaxed),
                       settings_.auto_aof_rewrite_min_size.load(std::memory_order_relaxed));
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
    // When load drops - the dataset halves (FLUSHALL, mass DEL) or most
    // connections go (after a storm) - hand freed memory back at once
    // instead of waiting for the allocator's decay (jemalloc: ~1 s;
    // glibc: never, without malloc_trim).
    const std::int64_t bytes = keyspace_.bytes();
    const std::int64_t clients = active_.count();
    peak_bytes = std::max(peak_bytes, bytes);
    peak_clients = std::max(peak_clients, clients);
    if ((peak_bytes > (8 << 20) && bytes < peak_bytes / 2) ||
        (peak_clients > 100 && clients < peak_clients / 2)) {
      release_free_memory();
      peak_bytes = bytes;
      peak_clients = clients;
    }
  }
}

}  // namespace kv
