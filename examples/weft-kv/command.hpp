// weft-kv: the command layer's interface — what a handler sees (Context),
// what it may ask of the server (Host), and the command table (Command).
//
// Dependencies run one way: handlers (commands/*.cpp) include this header,
// keyspace.hpp, resp.hpp and client.hpp, never server.hpp. The server core
// implements Host and calls execute(); nothing in the command layer knows
// how connections, the AOF or the cron are run. A new data type adds its
// Object subclass (keyspace.hpp), a file of handlers and a group in
// commands/table.cpp; the server core does not change.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

#include "client.hpp"
#include "keyspace.hpp"
#include "options.hpp"

namespace kv {

struct Context;

/// What commands may ask of the server that runs them. Implemented by
/// kv::Server; tests implement it to run handlers without a server.
/// Every member is thread- and fiber-safe.
class Host {
 public:
  virtual ~Host() = default;

  /// The data.
  virtual Keyspace& keyspace() noexcept = 0;

  /// Propagation: logs a write in its deterministic form (the AOF). Call
  /// after the change is applied, with the affected shards still locked,
  /// so the log order agrees with the order of changes to each key. The
  /// reply waits until the record is durable (ctx.aof_seq). Does nothing
  /// while loading.
  /// @throws std::bad_alloc; std::invalid_argument for an argv the AOF
  /// cannot hold (see Aof::append).
  virtual void propagate(Context& ctx, std::span<const std::string_view> argv) = 0;

  /// True while the AOF is being replayed (commands then come from the
  /// file, not from a client).
  virtual bool loading() const noexcept = 0;

  /// The configuration the server was started with.
  virtual const Options& options() const noexcept = 0;

  /// Bytes of memory in use, as INFO's used_memory and maxmemory see it.
  virtual std::int64_t used_memory() const noexcept = 0;

  /// False while write commands are refused (the AOF cannot be written).
  /// Called for every write, so it is cheap (an atomic load).
  virtual bool writes_allowed() const noexcept = 0;
  /// Why writes are refused, as the error reply without its '-' (Redis's
  /// "MISCONF Errors writing to the AOF file: <strerror>").
  virtual std::string write_refusal() const = 0;

  /// Introspection and administration (INFO, CLIENT LIST, CONFIG
  /// RESETSTAT, SHUTDOWN).
  virtual std::string info(std::string_view section) = 0;
  virtual std::string client_list(const Client* self) = 0;
  virtual void reset_stats() noexcept = 0;
  virtual void request_shutdown() noexcept = 0;
};

/// What a command handler sees: its arguments, where its reply goes, the
/// client that sent it and the server it runs in.
struct Context {
  Host& host;
  Client* client;  ///< nullptr during AOF replay
  std::span<const std::string_view> argv;
  std::string& out;           ///< the reply goes here (resp.hpp's Reply)
  std::int64_t now;           ///< unix_ms() at dispatch
  std::uint64_t aof_seq = 0;  ///< highest AOF record this command appended
  bool close = false;         ///< close the connection after the reply (QUIT)
  std::uint64_t hits = 0, misses = 0;
};

/// Command flags: Redis 7.0's (src/commands.def), the ones weft-kv has.
enum CommandFlags : unsigned {
  kWrite = 1u << 0,
  kReadonly = 1u << 1,
  kDenyOom = 1u << 2,
  kAdmin = 1u << 3,
  kNoScript = 1u << 4,
  kLoading = 1u << 5,
  kStale = 1u << 6,
  kFast = 1u << 7,
  kNoAuth = 1u << 8,
  kNoMulti = 1u << 9,
  kAllowBusy = 1u << 10,
};

/// One key specification (Redis 7 key specs, the "index" begin-search and
/// "range" find-keys forms): the keys are the arguments from `first`, every
/// `step`-th, up to `last_key` relative to `first` (>= 0), or counted from
/// the end (-1: the last argument). Other forms (keyword, keynum: ZUNION's
/// numkeys) extend this struct when their commands arrive.
struct KeySpec {
  const char* flags = "";  ///< Redis's key-spec flags, blank-separated: "RO access"
  int first = 0;           ///< begin_search index; 0: the command has no keys
  int last_key = 0;        ///< find_keys range lastkey
  int step = 1;            ///< find_keys range keystep
  int limit = 0;           ///< find_keys range limit
  const char* notes = nullptr;
};

/// One entry of the command table. All texts are Redis 7.0.15's, so that
/// COMMAND and clients' hints see what redis-server reports.
struct Command {
  const char* name;  ///< lower case
  int arity;         ///< N: exactly N arguments; -N: at least N (argv[0] counted)
  unsigned flags;    ///< CommandFlags
  const char* acl;   ///< ACL categories, blank-separated: "@read @string @fast"
  const char* tips;  ///< command tips, blank-separated; "" for none
  KeySpec keys;      ///< keys.first == 0: no keys
  void (*run)(Context&);

  /// The legacy (first, last, step) key positions COMMAND reports.
  int first_key() const noexcept { return keys.first; }
  int last_key() const noexcept {
    return keys.first == 0 ? 0 : keys.last_key < 0 ? keys.last_key : keys.first + keys.last_key;
  }
  int key_step() const noexcept { return keys.first == 0 ? 0 : keys.step; }
};

/// Every command, in a stable order (COMMAND's output).
std::span<const Command> command_table() noexcept;

/// The command called `name` (any case), or nullptr.
const Command* find_command(std::string_view name) noexcept;

/// Executes one command (argv[0] is its name, any case) as Redis's
/// processCommand does: lookup, arity, the write and memory checks, then
/// the handler. Appends exactly one reply to ctx.out. Thread/fiber-safe.
/// @throws std::bad_alloc; weft::Cancelled (a handler waiting for a lock).
void execute(Context& ctx);

}  // namespace kv
