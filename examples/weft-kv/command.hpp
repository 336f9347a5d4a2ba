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

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "client.hpp"
#include "keyspace.hpp"
#include "options.hpp"
#include "pause.hpp"
#include "pubsub.hpp"
#include "settings.hpp"
#include "slowlog.hpp"

namespace kv {

struct Context;
class RdbSaver;     // rdb_save.hpp
class AofRewriter;  // aof_rewrite.hpp
class Evictor;

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

  /// The parameters CONFIG SET changes (initialised from options()).
  virtual Settings& settings() noexcept = 0;

  /// Called by CONFIG SET after it stored a new value of parameter `name`
  /// (its Redis name, e.g. "appendfsync"), for the server to apply what
  /// it does not read afresh on each use. The default does nothing.
  virtual void settings_changed(std::string_view name) { (void)name; }

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
  /// CLIENT KILL: closes every connection whose client `match` selects
  /// (called under the server's connection registry lock, so it must not
  /// block; it may read the immutable id/addr/laddr and the atomics) and
  /// returns how many. A closed connection's blocked read or write ends at
  /// once. The default (no connections) closes none.
  virtual std::size_t kill_clients(const std::function<bool(const Client&)>& match) {
    (void)match;
    return 0;
  }

  /// The publish/subscribe registry; null where there is none (AOF
  /// replay, tests without one): PUBLISH then reaches nobody.
  virtual PubSub* pubsub() noexcept { return nullptr; }
  /// Called after each command a client ran (its handler returned, with a
  /// reply or an error; not for a command refused before it ran, queued by
  /// MULTI or replayed from the AOF), before its reply is sent: the server
  /// counts it per command (/metrics, as INFO commandstats) and offers it
  /// to the slow log. `cmd` is the subcommand's row for a container.
  /// `duration_us`: the handler's time, without the time a blocking
  /// command waited for a key (Client::parked_ns). The default does nothing.
  virtual void command_done(const Context& ctx, const Command& cmd,
                            std::int64_t duration_us) noexcept {
    (void)ctx, (void)cmd, (void)duration_us;
  }
  /// The slow log (SLOWLOG); null where there is none (AOF replay, tests
  /// without one): SLOWLOG then shows an empty log.
  virtual SlowLog* slowlog() noexcept { return nullptr; }
  /// The RDB saver (SAVE, BGSAVE, LASTSAVE; rdb_save.hpp); null where
  /// there is none (AOF replay, tests without one).
  virtual RdbSaver* rdb() noexcept { return nullptr; }
  /// The AOF rewriter (BGREWRITEAOF; aof_rewrite.hpp); null where there
  /// is none (AOF replay, tests without one).
  virtual AofRewriter* aof_rewriter() noexcept { return nullptr; }
  /// Eviction under maxmemory (evict.hpp); null where there is none (AOF
  /// replay, tests without one): memory above maxmemory then refuses
  /// writes as noeviction does.
  virtual Evictor* evictor() noexcept { return nullptr; }

  /// CLIENT PAUSE's state (pause.hpp): every host has one (one that never
  /// pauses reads kOff). Not virtual, so that execute()'s check while no
  /// pause is on stays one load and one branch.
  ClientPause& client_pause() noexcept { return client_pause_; }

 private:
  ClientPause client_pause_;
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
  /// Keys this command made ready for clients blocked on them (a push to
  /// a list BLPOP waits on): served, in this order, once the command's
  /// changes are complete (Redis's ready keys; commands/blocking.hpp).
  std::vector<std::string> ready = {};
  /// True while EXEC runs the queued commands: every shard is locked by
  /// this fiber, and the replies are parts of EXEC's.
  bool in_exec = false;
  /// True while this fiber holds the pubsub registry's lock exclusively
  /// (an EXEC with pubsub commands): they must not take it again.
  bool pubsub_locked = false;
  /// `notify-keyspace-events` as execute() found it (notify.hpp's flags):
  /// the classes of keyspace events this command publishes.
  unsigned notify = 0;
};

/// Command flags: Redis 7.0's (src/server.h CMD_*), in the order COMMAND
/// INFO prints them. kMovableKeys is not written in rows: Command::flags()
/// derives it from the key specs, as Redis does.
enum CommandFlags : unsigned {
  kWrite = 1u << 0,
  kReadonly = 1u << 1,
  kDenyOom = 1u << 2,
  kAdmin = 1u << 3,
  kPubSub = 1u << 4,
  kNoScript = 1u << 5,
  kBlocking = 1u << 6,
  kLoading = 1u << 7,
  kStale = 1u << 8,
  kSkipMonitor = 1u << 9,
  kSkipSlowlog = 1u << 10,
  kAsking = 1u << 11,
  kFast = 1u << 12,
  kNoAuth = 1u << 13,
  kMayReplicate = 1u << 14,  ///< not printed (Redis hides it)
  kNoMandatoryKeys = 1u << 15,
  kNoAsyncLoading = 1u << 16,
  kNoMulti = 1u << 17,
  kMovableKeys = 1u << 18,
  kAllowBusy = 1u << 19,
};

/// One key specification (Redis 7 key specs, src/server.h keySpec): where
/// the search for keys begins (an argument index, or the argument after a
/// keyword) and how the keys are found from there (a range, or a count
/// argument). Rows write the common form positionally: {"RO access", 1, 0}
/// is "index 1, range lastkey 0"; the other forms use keynum() and
/// after_keyword() (e.g. ZUNIONSTORE's numkeys, `KeySpec::keynum("RO access", 2,
/// 0, 1, 1)`).
struct KeySpec {
  /// begin_search types.
  enum class Begin : std::uint8_t { index, keyword, unknown };
  /// find_keys types.
  enum class Find : std::uint8_t { range, keynum, unknown };

  /// Redis's key-spec flags, blank-separated, in COMMAND INFO's order
  /// (RO RW OW RM access update insert delete not_key incomplete
  /// variable_flags): "RW access delete".
  const char* flags = "";
  /// Begin::index: the argument index where the search begins (0: the
  /// KeySpecs is empty). Begin::keyword: startfrom (negative: from the end).
  int first = 0;
  /// Find::range: lastkey, relative to the first key (-1: the last argument).
  int last_key = 0;
  /// Find::range and Find::keynum: the distance between two keys.
  int step = 1;
  /// Find::range: limit (0: none; n: the keys are 1/n of what is left).
  int limit = 0;
  /// A note COMMAND INFO prints, or nullptr.
  const char* notes = nullptr;
  /// Find::keynum: where the key count is and where the first key is, both
  /// relative to the begin_search index; keynum_index -1: not keynum. (So
  /// `{"RO access", 2, 0, 1, 0, nullptr, 0, 1}` is ZUNIONSTORE's inputs.)
  int keynum_index = -1;
  int keynum_first = 0;
  Begin begin = Begin::index;
  const char* keyword = nullptr;  ///< Begin::keyword: the keyword
  bool find_unknown = false;      ///< Find::unknown

  constexpr Find find() const noexcept {
    return find_unknown ? Find::unknown : keynum_index >= 0 ? Find::keynum : Find::range;
  }
  /// True for the keynum form.
  constexpr bool keynum() const noexcept { return find() == Find::keynum; }

  /// Index `index`, then a count of keys at `index + keynum_index`, the
  /// first key at `index + first_key`, every `step`-th after it.
  static constexpr KeySpec keynum(const char* flags, int index, int keynum_index, int first_key,
                                  int step, const char* notes = nullptr) {
    return KeySpec{flags, index, 0, step, 0, notes, keynum_index, first_key};
  }
  /// The keys follow `kw`, searched for from argument `startfrom` on (from
  /// the end when negative), found by a range.
  static constexpr KeySpec after_keyword(const char* flags, const char* kw, int startfrom,
                                         int last_key, int step, int limit,
                                         const char* notes = nullptr) {
    KeySpec k{flags, startfrom, last_key, step, limit, notes};
    k.begin = Begin::keyword;
    k.keyword = kw;
    return k;
  }
  /// Redis's "unknown" key spec (both parts unknown).
  static constexpr KeySpec unknown(const char* flags, const char* notes = nullptr) {
    KeySpec k{flags, 0, 0, 1, 0, notes};
    k.begin = Begin::unknown;
    k.find_unknown = true;
    return k;
  }
  /// True for the "index" + "range" form (the one the legacy first/last/
  /// step positions can describe).
  constexpr bool plain_range() const noexcept {
    return begin == Begin::index && find() == Find::range;
  }
  /// True when `flag` (e.g. "incomplete") is one of the flags.
  constexpr bool has_flag(std::string_view flag) const noexcept {
    const std::string_view all(flags);
    for (std::size_t i = 0; i < all.size();) {
      std::size_t j = all.find(' ', i);
      if (j == std::string_view::npos) j = all.size();
      if (all.substr(i, j - i) == flag) return true;
      i = j + 1;
    }
    return false;
  }
};

/// The key specs of one command, in order (at most kMax). A row writes
///   {}                                         no keys
///   {"RO access", 1, 0}                        one index+range spec
///   {{"RW access delete", 1, 0}, {"OW update", 2, 0}}   several
///   {KeySpec::keynum("RO access", 1, 0, 1, 1)}  any other form
/// or names a `static constexpr KeySpec` (one spec).
class KeySpecs {
 public:
  static constexpr std::size_t kMax = 3;

  /// No key specs (a command without keys).
  constexpr KeySpecs() = default;
  /// One index spec written positionally (KeySpec's leading fields): a
  /// range, or a keynum spec when `keynum_index` >= 0 (so a row may write
  /// `{"RW access delete", 2, 0, 1, 0, nullptr, 0, 1}` for BLMPOP's keys).
  constexpr KeySpecs(const char* flags, int first, int last_key, int step = 1, int limit = 0,
                     const char* notes = nullptr, int keynum_index = -1, int keynum_first = 0)
      : specs_{KeySpec{flags, first, last_key, step, limit, notes, keynum_index, keynum_first}},
        n_(1) {}
  /// One spec of any form.
  constexpr KeySpecs(const KeySpec& one) : specs_{one}, n_(1) {}  // NOLINT: implicit by design
  /// Several specs, in order.
  constexpr KeySpecs(std::initializer_list<KeySpec> specs) {
    for (const KeySpec& k : specs) push_back(k);
  }
  /// Appends a spec (in a constant expression, more than kMax does not
  /// compile).
  constexpr void push_back(const KeySpec& k) {
    if (n_ == kMax) throw "KeySpecs: more than kMax key specs";
    specs_[n_++] = k;
  }

  /// Access, in order.
  constexpr std::size_t size() const noexcept { return n_; }
  constexpr bool empty() const noexcept { return n_ == 0; }
  constexpr const KeySpec& operator[](std::size_t i) const noexcept { return specs_[i]; }
  constexpr const KeySpec* begin() const noexcept { return specs_; }
  constexpr const KeySpec* end() const noexcept { return specs_ + n_; }

 private:
  KeySpec specs_[kMax] = {};
  std::size_t n_ = 0;
};

/// The legacy (first, last, step) key positions COMMAND prints, derived
/// from the key specs as Redis 7.0's populateCommandLegacyRangeSpec does:
/// the consecutive plain ranges merged; {0, 0, 0} when there is none.
/// `movable` is set when some keys are not covered (Redis's movablekeys).
struct LegacyKeyRange {
  int first = 0;
  int last = 0;
  int step = 0;
  bool movable = false;
};
LegacyKeyRange legacy_key_range(const KeySpecs& keys) noexcept;

/// One entry of the command table. All texts are Redis 7.0.15's, so that
/// COMMAND and clients' hints see what redis-server reports.
struct Command {
  /// Lower case; a subcommand's is "container|sub" ("object|encoding").
  const char* name;
  int arity;              ///< N: exactly N arguments; -N: at least N (argv[0] counted)
  unsigned flags;         ///< CommandFlags written in the row (see all_flags())
  const char* acl;        ///< ACL categories, blank-separated, Redis's order: "@read @string @fast"
  const char* tips;       ///< command tips, blank-separated; "" for none
  KeySpecs keys;          ///< empty: the command has no keys
  void (*run)(Context&);  ///< nullptr for a container (it runs its subcommands)
  /// One more key spec, after `keys` (rows may name their second spec here,
  /// after the handler, as `{..., kPop, cmd_lmove, kMoveDst}`); first == 0:
  /// none.
  KeySpec keys2 = {};
  /// A container command's subcommands (OBJECT, CONFIG, COMMAND): execute()
  /// dispatches on argv[1], as Redis's lookupCommand.
  std::span<const Command> subcommands = {};

  /// Every key spec, in order: `keys`, then `keys2` if set.
  constexpr KeySpecs key_specs() const {
    if (keys2.first == 0 && keys2.begin == KeySpec::Begin::index) return keys;
    KeySpecs all = keys;
    all.push_back(keys2);
    return all;
  }
  /// The flags COMMAND INFO prints: the row's plus kMovableKeys when the
  /// key specs call for it.
  unsigned all_flags() const noexcept {
    return flags | (legacy_key_range(key_specs()).movable ? kMovableKeys : 0u);
  }
  /// The legacy key positions COMMAND prints (legacy_key_range).
  int first_key() const noexcept { return legacy_key_range(key_specs()).first; }
  int last_key() const noexcept { return legacy_key_range(key_specs()).last; }
  int key_step() const noexcept { return legacy_key_range(key_specs()).step; }
  bool movable_keys() const noexcept { return legacy_key_range(key_specs()).movable; }
};

/// Every command, in a stable order (COMMAND's output).
std::span<const Command> command_table() noexcept;

/// The command called `name` (any case), or nullptr. A subcommand is
/// found by its full name ("object|encoding"), as COMMAND INFO names it.
const Command* find_command(std::string_view name) noexcept;

/// The positions in argv (argv[0] the command's name) of the keys that
/// `cmd`'s key specs find, in spec order (Redis 7.0's getKeysUsingKeySpecs;
/// COMMAND GETKEYS). False, with `out` empty, when the arguments do not
/// fit the specs (a bad key count, too few arguments) or a spec is
/// incomplete or unknown. @throws std::bad_alloc.
bool key_positions(const Command& cmd, std::span<const std::string_view> argv,
                   std::vector<std::size_t>& out);

/// Executes one command (argv[0] is its name, any case) as Redis's
/// processCommand does: lookup, arity, the write and memory checks, then
/// the handler. Appends exactly one reply to ctx.out. Thread/fiber-safe.
/// @throws std::bad_alloc; weft::Cancelled (a handler waiting for a lock).
void execute(Context& ctx);

/// Signals the keys of a propagated write (`argv`, as Host::propagate
/// gets it, the shards still locked) to their watchers (WATCH): what a
/// command changed in place reaches them this way. Cheap while nobody
/// watches. Host implementations call it from propagate().
void signal_modified_keys(Keyspace& ks, std::span<const std::string_view> argv) noexcept;

/// Runs `cmd` (already looked up and checked: EXEC's queued commands) and
/// serves the keys it made ready. @throws as execute().
void run_command(Context& ctx, const Command& cmd);

/// What the command layer keeps for a client that must go when its
/// connection ends: its watched keys and its subscriptions. The server
/// core calls it once the connection's last command has run.
void client_closed(Host& host, Client& client) noexcept;

}  // namespace kv
