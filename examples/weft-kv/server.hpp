// weft-kv: the server — options, clients, command execution, cron, shutdown.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "aof.hpp"
#include "keyspace.hpp"
#include "resp.hpp"
#include "weft/net.hpp"
#include "weft/weft.hpp"

namespace kv {

/// Command-line options (see main.cpp's --help).
struct Options {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 6380;
  std::size_t workers = 0;  ///< 0: weft's default (one per core)
  weft::IoBackend io = weft::IoBackend::auto_detect;
  bool appendonly = false;
  FsyncPolicy appendfsync = FsyncPolicy::everysec;
  std::filesystem::path dir = ".";
  std::size_t maxclients = 10000;
  std::uint64_t maxmemory = 0;  ///< bytes; 0: no limit
  std::uint64_t timeout_s = 0;  ///< client idle timeout, seconds; 0: none
  ParseLimits limits;
};

/// Parses argv into Options. On a bad flag or value throws
/// std::invalid_argument with a message naming the flag; `--help` sets
/// `*help` and returns.
Options parse_options(std::span<char* const> args, bool* help);

/// The --help text.
extern const char* const kUsage;

/// One connected client, as CLIENT LIST shows it. Fields other fibers read
/// are atomics or guarded by `mu`.
struct Client {
  std::uint64_t id = 0;
  std::string addr;   ///< peer ip:port
  std::string laddr;  ///< local ip:port
  int fd = -1;
  std::int64_t created_ms = 0;
  std::atomic<std::int64_t> last_ms{0};  ///< last command, Unix ms
  std::atomic<int> last_cmd{-1};         ///< index into the command table
  std::atomic<std::uint64_t> qbuf{0};    ///< bytes buffered, not yet parsed
  std::mutex mu;                         ///< guards name
  std::string name;
};

class Server;

/// What a command handler sees.
struct Context {
  Server& server;
  Client* client;  ///< nullptr during AOF replay
  std::span<const std::string_view> argv;
  std::string& out;           ///< the reply goes here
  std::int64_t now;           ///< unix_ms() at dispatch
  std::uint64_t aof_seq = 0;  ///< highest AOF record this command appended
  bool close = false;         ///< close the connection after the reply (QUIT)
  std::uint64_t hits = 0, misses = 0;
};

/// Flags of a command (Redis's command flags, the ones we use).
enum CommandFlags : unsigned {
  kWrite = 1,
  kReadonly = 2,
  kDenyOom = 4,
  kFast = 8,
  kAdmin = 16,
  kLoading = 32,  ///< allowed while loading
  kStale = 64,
  kNoScript = 128,
};

/// One entry of the command table.
struct Command {
  const char* name;  ///< lower case
  int arity;         ///< Redis arity: N exact, -N at least N (argv[0] counted)
  unsigned flags;
  int first_key, last_key, key_step;
  void (*run)(Context&);
};

/// The command table, in a stable order (COMMAND's output and last_cmd).
std::span<const Command> commands() noexcept;

/// The server. Create on a fiber of the runtime that serves it; run() until
/// it shuts down.
class Server {
 public:
  Server(Options options, weft::Runtime& runtime);
  ~Server();

  /// Replays the AOF (when enabled), binds, serves until SIGINT/SIGTERM or
  /// SHUTDOWN, then shuts down cleanly: stops accepting, lets each
  /// connection finish the commands it has read, fsyncs the AOF. Call on a
  /// fiber. @throws std::system_error if the port cannot be bound or the AOF
  /// cannot be opened; weft::Cancelled if cancelled.
  void run();

  /// Executes one command (argv[0] is its name, any case) and appends its
  /// reply to ctx.out. Thread/fiber-safe.
  void execute(Context& ctx);

  /// Asks run() to shut down (SHUTDOWN, signals). Thread-safe.
  void request_shutdown() noexcept;

  Keyspace& keyspace() noexcept { return keyspace_; }
  const Options& options() const noexcept { return options_; }
  weft::Runtime& runtime() noexcept { return runtime_; }
  Aof* aof() noexcept { return aof_.get(); }
  bool loading() const noexcept { return loading_; }

  /// Appends `argv` to the AOF if enabled and not loading; call with the
  /// affected shard locks held. Records the sequence in ctx.
  void propagate(Context& ctx, std::span<const std::string_view> argv);

  /// Used memory estimate, bytes (keyspace + clients' buffers).
  std::int64_t used_memory() const noexcept;

  /// Text of INFO [section].
  std::string info(std::string_view section);
  /// Text of CLIENT LIST.
  std::string client_list();

  /// Statistics (INFO stats), relaxed atomics.
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
  } stats;

 private:
  void serve(weft::net::TcpStream conn);
  void accept_loop(weft::net::TcpListener& listener, weft::Scope& scope);
  void cron();
  void load_aof();

  Options options_;
  weft::Runtime& runtime_;
  Keyspace keyspace_;
  std::unique_ptr<Aof> aof_;
  bool loading_ = false;
  std::int64_t start_ms_ = 0;
  std::uint16_t bound_port_ = 0;

  std::mutex clients_mu_;  // guards clients_ (short critical sections only)
  std::vector<Client*> clients_;
  std::atomic<std::uint64_t> next_client_id_{1};
  std::atomic<std::size_t> nclients_{0};

  weft::Event shutdown_;
  std::atomic<bool> stopping_{false};
};

}  // namespace kv
