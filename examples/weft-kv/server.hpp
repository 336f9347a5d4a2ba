// weft-kv: the server core — connections, the AOF, the cron and shutdown.
// It implements the Host interface the command layer (command.hpp) uses
// and knows nothing of individual commands.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "aof.hpp"
#include "aof_rewrite.hpp"
#include "client.hpp"
#include "command.hpp"
#include "evict.hpp"
#include "keyspace.hpp"
#include "notify.hpp"
#include "options.hpp"
#include "pubsub.hpp"
#include "rdb_save.hpp"
#include "slowlog.hpp"
#include "weft/net.hpp"
#include "weft/weft.hpp"

namespace kv {

/// The server. Create on a fiber of the runtime that serves it; run() until
/// it shuts down.
class Server final : public Host {
 public:
  Server(Options options, weft::Runtime& runtime);
  ~Server() override;

  /// Replays the AOF (when enabled), binds, serves until SIGINT/SIGTERM or
  /// SHUTDOWN, then shuts down cleanly: stops accepting, lets each
  /// connection finish the commands it has read (at most 5 s), fsyncs the
  /// AOF. Call on a fiber. @throws std::system_error if the port cannot be
  /// bound or the AOF cannot be opened; weft::Cancelled if cancelled.
  void run();

  // Host (command.hpp).
  Keyspace& keyspace() noexcept override { return keyspace_; }
  void propagate(Context& ctx, std::span<const std::string_view> argv) override;
  bool loading() const noexcept override { return loading_; }
  const Options& options() const noexcept override { return options_; }
  Settings& settings() noexcept override { return settings_; }
  void settings_changed(std::string_view name) override;
  std::int64_t used_memory() const noexcept override;
  bool writes_allowed() const noexcept override { return aof_ == nullptr || aof_->healthy(); }
  std::string write_refusal() const override;
  std::string info(std::string_view section) override;
  std::string client_list(const Client* self) override;
  void reset_stats() noexcept override;
  void request_shutdown() noexcept override;
  std::size_t kill_clients(const std::function<bool(const Client&)>& match) override;
  PubSub* pubsub() noexcept override { return &pubsub_; }
  void command_done(const Context& ctx, const Command& cmd,
                    std::int64_t duration_us) noexcept override;
  SlowLog* slowlog() noexcept override { return &slowlog_; }
  RdbSaver* rdb() noexcept override { return &rdb_; }
  AofRewriter* aof_rewriter() noexcept override { return &aof_rewriter_; }
  Evictor* evictor() noexcept override { return &evictor_; }

  /// The /metrics page: the runtime's registry (weft::metrics) followed by
  /// the server's own metrics (README.md, "Observability"), Prometheus text
  /// format 0.0.4. Any fiber or thread. @throws std::bad_alloc.
  std::string metrics_text();

 private:
  /// Counters INFO shows; relaxed atomics (statistics, ordered by nothing).
  struct Stats {
    std::atomic<std::uint64_t> connections{0};
    std::atomic<std::uint64_t> rejected{0};
    std::atomic<std::uint64_t> commands{0};
    std::atomic<std::uint64_t> hits{0};
    std::atomic<std::uint64_t> misses{0};
    std::atomic<std::uint64_t> net_in{0};
    std::atomic<std::uint64_t> net_out{0};
    std::atomic<std::int64_t> client_buffers{0};
    std::atomic<std::uint64_t> ops_per_sec{0};
    std::atomic<std::uint64_t> output_limit_closed{0};   ///< client-output-buffer-limit
    std::atomic<std::uint64_t> write_timeout_closed{0};  ///< reply writes without progress
  };

  /// Calls and time of one command (INFO commandstats' calls and usec);
  /// relaxed atomics, statistics.
  struct CommandStat {
    std::atomic<std::uint64_t> calls{0};
    std::atomic<std::uint64_t> usec{0};
  };

  /// A reply in a connection's output that logged an AOF record: where it
  /// is and the record (0 once answered with MISCONF instead).
  struct Logged {
    std::size_t begin, end;
    std::uint64_t seq;
  };

  /// The command layer's view of a keyspace being rebuilt from the AOF
  /// (roll_back_unlogged): loading, nothing propagated.
  class ReplayHost final : public Host {
   public:
    /// `s`: the server's run-time parameters (the encoding thresholds a
    /// rebuilt value follows, as one rebuilt at start-up would).
    ReplayHost(Keyspace& ks, const Options& o, Settings& s) : ks_(ks), options_(o), settings_(s) {}
    Keyspace& keyspace() noexcept override { return ks_; }
    void propagate(Context&, std::span<const std::string_view>) override {}
    bool loading() const noexcept override { return true; }
    const Options& options() const noexcept override { return options_; }
    Settings& settings() noexcept override { return settings_; }
    std::int64_t used_memory() const noexcept override { return ks_.bytes(); }
    bool writes_allowed() const noexcept override { return true; }
    std::string write_refusal() const override { return {}; }
    std::string info(std::string_view) override { return {}; }
    std::string client_list(const Client*) override { return {}; }
    void reset_stats() noexcept override {}
    void request_shutdown() noexcept override {}

   private:
    Keyspace& ks_;
    const Options& options_;
    Settings& settings_;
  };

  /// A connection being served: its client state and its stream (so that
  /// shutdown can end its reads). Registered in connections_ while served.
  struct Connection {
    Client client;
    weft::net::TcpStream* stream = nullptr;
  };

  void serve(weft::net::TcpStream conn);
  /// Writes `out` to the client under the write deadline and the output
  /// limits. Returns false when the client was closed for them (counted).
  bool write_replies(weft::net::TcpStream& conn, Client& client, std::string_view out);
  /// A subscribed client's writer fiber: writes what its outbox gathers
  /// until the outbox closes or the peer goes.
  void write_outbox(weft::net::TcpStream& conn, Client& client, Outbox& box);
  void accept_loop(weft::net::TcpListener& listener, weft::Scope& scope);
  /// Binds --metrics-port (on --bind's address), logs where, and serves
  /// the endpoint (metrics_http.hpp) on fibers of `scope` until cancelled.
  void serve_metrics(weft::net::TcpListener& listener, weft::Scope& scope);
  weft::net::TcpListener bind_listener(const weft::net::BindOptions& bo);
  void cron();
  void load_aof();
  /// Loads the RDB file (rdb_save.hpp's path) when it exists and the AOF
  /// is off, as Redis's loadDataFromDisk. @throws std::runtime_error
  /// naming the file and the fault for a malformed one (nothing loaded).
  void load_rdb();
  /// Waits until the batch's records up to `seq` are durable; replies of
  /// records a failed write discarded become the MISCONF error in `out`.
  void wait_logged(std::string& out, std::vector<Logged>& logged, std::uint64_t seq);
  /// After a failed AOF write: discards what was not written and rebuilds
  /// memory from the file, every shard locked meanwhile, so that no effect
  /// that could not be logged stays applied.
  void roll_back_unlogged();

  Options options_;
  Settings settings_{options_};
  weft::Runtime& runtime_;
  Keyspace keyspace_;
  PubSub pubsub_;
  /// Publishes the keyspace's `expired` events (notify.hpp).
  ExpiryNotifier expiry_notifier_{settings_.notify_keyspace_events, pubsub_};
  std::unique_ptr<Aof> aof_;
  bool loading_ = false;
  std::int64_t start_ms_ = 0;
  std::uint16_t bound_port_ = 0;
  Stats stats_;
  /// Every command and subcommand of the table, built in the constructor
  /// and never changed after (so read without a lock); the values count.
  std::unordered_map<const Command*, CommandStat> command_stats_;
  SlowLog slowlog_;
  RdbSaver rdb_{keyspace_, options_.dir, options_.dbfilename, parse_save_schedule(options_.save)};
  AofRewriter aof_rewriter_{rdb_, options_.dir};
  Evictor evictor_;

  std::mutex connections_mu_;  // guards connections_ (short critical sections only)
  std::vector<Connection*> connections_;
  std::atomic<std::uint64_t> next_client_id_{1};
  /// Connections served, by the worker their fiber started on
  /// (weft_kv_connections_by_worker_total); runtime_.workers() entries,
  /// relaxed counters.
  std::unique_ptr<std::atomic<std::uint64_t>[]> served_by_worker_;
  /// thread_per_core: the worker the next connection's fiber is placed on
  /// (round-robin; only the accept fiber touches it).
  std::size_t next_worker_ = 0;
  /// Connections accepted and not yet finished (served or being set up):
  /// maxclients counts them, shutdown waits for them.
  weft::WaitGroup active_;

  weft::Mutex rollback_mu_;  // one roll_back_unlogged() at a time
  weft::Event shutdown_;
  std::atomic<bool> stopping_{false};
};

}  // namespace kv
