// weft-kv commands: the command table and the dispatcher (Redis 7.0's
// lookupCommand and processCommand, the checks weft-kv has).
#include <algorithm>
#include <cctype>
#include <chrono>
#include <climits>
#include <cstdio>
#include <string>
#include <unordered_map>
#include <vector>

#include "commands/blocking.hpp"
#include "commands/groups.hpp"
#include "commands/transaction.hpp"
#include "commands/util.hpp"
#include "evict.hpp"
#include "weft/cancel.hpp"

namespace kv {
namespace {

using cmd::err;

struct Table {
  std::vector<Command> all;
  std::unordered_map<std::string_view, const Command*> by_name;  // lower-case names
};

const Table& table() {
  // Built once, on first use (thread-safe static initialisation); never
  // destroyed, so a command running during exit still finds it. A new
  // type's group goes in this list (one per line).
  static const Table* t = [] {
    auto* tab = new Table;
    for (const auto group : {
             cmd::connection_commands(),
             cmd::handshake_commands(),
             cmd::string_commands(),
             cmd::bitmap_commands(),
             cmd::key_commands(),
             cmd::list_commands(),
             cmd::hash_commands(),
             cmd::set_commands(),
             cmd::zset_commands(),
             cmd::server_commands(),
             cmd::config_commands(),
             cmd::pubsub_commands(),
             cmd::transaction_commands(),
             cmd::slowlog_commands(),
             cmd::persistence_commands(),
         }) {
      tab->all.insert(tab->all.end(), group.begin(), group.end());
    }
    for (const Command& c : tab->all) {
      tab->by_name.emplace(c.name, &c);
      for (const Command& sub : c.subcommands) tab->by_name.emplace(sub.name, &sub);
    }
    return tab;
  }();
  return *t;
}

// A subcommand of `container` by its own name (argv[1], any case), or nullptr.
const Command* find_subcommand(const Command& container, std::string_view sub) noexcept {
  const std::size_t prefix = std::char_traits<char>::length(container.name) + 1;  // "object|"
  for (const Command& s : container.subcommands)
    if (cmd::eq_ci(sub, std::string_view(s.name).substr(prefix))) return &s;
  return nullptr;
}

constexpr std::string_view kOom = "OOM command not allowed when used memory > 'maxmemory'.";

void unknown_command(Context& c) {
  // Redis: "unknown command '%.128s', with args beginning with: " then
  // "'%.*s' " per argument while fewer than 128 characters were added,
  // newlines in the text replaced by spaces.
  // Redis formats with printf's %s, which stops at a NUL byte: so does
  // this text.
  const auto c_string = [](std::string_view s) { return s.substr(0, s.find('\0')); };
  std::string args;
  for (std::size_t i = 1; i < c.argv.size() && args.size() < 128; ++i) {
    const std::size_t room = 128 - args.size();
    args += '\'';
    args += c_string(c.argv[i]).substr(0, room);
    args += "' ";
  }
  std::string msg = "ERR unknown command '" + std::string(c_string(c.argv[0]).substr(0, 128)) +
                    "', with args beginning with: " + args;
  for (char& ch : msg)
    if (ch == '\r' || ch == '\n') ch = ' ';
  err(c, msg);
}

}  // namespace

std::span<const Command> command_table() noexcept {
  return table().all;
}

LegacyKeyRange legacy_key_range(const KeySpecs& keys) noexcept {
  // Redis 7.0's populateCommandLegacyRangeSpec, step for step.
  LegacyKeyRange r;
  if (keys.empty()) return r;
  if (keys.size() == 1 && keys[0].plain_range()) {
    r.first = keys[0].first;
    r.last = keys[0].last_key < 0 ? keys[0].last_key : keys[0].first + keys[0].last_key;
    r.step = keys[0].step;
    r.movable = keys[0].has_flag("incomplete");
    return r;
  }
  int first = INT_MAX;
  unsigned last = 0;  // unsigned, as Redis: a negative (from the end) last key wins the max
  int prev_last = 0;
  for (const KeySpec& k : keys) {
    if (!k.plain_range() || k.step != 1 || (prev_last != 0 && prev_last != k.first - 1)) {
      r.movable = true;
      continue;
    }
    if (k.has_flag("incomplete")) r.movable = true;
    first = std::min(first, k.first);
    const int abs_last = k.last_key >= 0 ? k.last_key + k.first : k.last_key;
    last = std::max(last, static_cast<unsigned>(abs_last));
    prev_last = static_cast<int>(last);
  }
  if (first == INT_MAX) {
    r.movable = true;
    return r;
  }
  r.first = first;
  r.last = static_cast<int>(last);
  r.step = 1;
  return r;
}

const Command* find_command(std::string_view name) noexcept {
  char lower[40];
  if (name.size() >= sizeof lower) return nullptr;  // longer than any name
  for (std::size_t i = 0; i < name.size(); ++i)
    lower[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
  const auto& idx = table().by_name;
  const auto it = idx.find(std::string_view(lower, name.size()));
  return it == idx.end() ? nullptr : it->second;
}

bool key_positions(const Command& cmd, std::span<const std::string_view> argv,
                   std::vector<std::size_t>& out) {
  // Redis 7.0's getKeysUsingKeySpecs (db.c), without its partial mode.
  out.clear();
  const int argc = static_cast<int>(argv.size());
  for (const KeySpec& spec : cmd.key_specs()) {
    if (spec.has_flag("not_key")) continue;
    int first = 0;
    if (spec.begin == KeySpec::Begin::index) {
      first = spec.first;
    } else if (spec.begin == KeySpec::Begin::keyword) {
      const int start = spec.first > 0 ? spec.first : argc + spec.first;
      const int end = spec.first > 0 ? argc - 1 : 1;
      for (int i = start; i != end; i = start <= end ? i + 1 : i - 1) {
        if (i >= argc || i < 1) break;
        if (cmd::eq_ci(argv[static_cast<std::size_t>(i)], spec.keyword)) {
          first = i + 1;
          break;
        }
      }
      if (first == 0) continue;  // keyword not found: no keys from this spec
    } else {
      out.clear();
      return false;
    }
    int last = 0;
    int step = spec.step;
    if (spec.find() == KeySpec::Find::range) {
      if (spec.last_key >= 0)
        last = first + spec.last_key;
      else if (spec.limit == 0)
        last = argc + spec.last_key;
      else
        last = first + ((argc - first) / spec.limit + spec.last_key);
    } else if (spec.find() == KeySpec::Find::keynum) {
      long long numkeys = 0;
      const int at = first + spec.keynum_index;
      if (spec.keynum_index >= argc || at >= argc ||
          !cmd::parse_ll(argv[static_cast<std::size_t>(at)], numkeys) || numkeys < 0 ||
          numkeys > argc) {
        out.clear();
        return false;
      }
      first += spec.keynum_first;
      last = first + static_cast<int>(numkeys) - 1;
    } else {
      out.clear();
      return false;
    }
    if (last >= argc || last < first || first >= argc) {
      out.clear();
      return false;
    }
    for (int i = first; i <= last; i += step) out.push_back(static_cast<std::size_t>(i));
    if (spec.has_flag("incomplete")) {
      out.clear();
      return false;
    }
  }
  return true;
}

namespace {

/// What hold_while_paused() did with a command.
enum class Held {
  no,        ///< no pause holds it: run it now
  released,  ///< it waited, and the pause has let it go: check it again
  dropped,   ///< its connection ended while it waited (ctx.close set): no reply
};

// Parks the connection's fiber while a CLIENT PAUSE holds the command whose
// flags are `flags` (EXEC's with its queued commands'): every command under
// a pause ALL, writes and the commands that may replicate (PUBLISH) under a
// pause WRITE (Redis's is_may_replicate_command). The wait is the blocking
// commands' (BlockWatch::park): the replies before it are sent and the
// connection is read meanwhile, so a peer that goes (or CLIENT KILL) ends
// it. Not for EXEC's queued commands (EXEC itself waited), replay or a
// client that cannot wait (tests): they run. @throws as BlockWatch::park.
Held hold_while_paused(Context& c, unsigned flags) {
  if (c.client == nullptr || c.client->watch == nullptr || c.in_exec || c.host.loading())
    return Held::no;
  ClientPause& pause = c.host.client_pause();
  const bool writes = (flags & (kWrite | kMayReplicate)) != 0;
  bool waited = false;
  for (;;) {
    weft::Event wake;
    std::int64_t end_ms = 0;
    const std::int64_t now = unix_ms();
    if (!pause.enter(writes, now, wake, end_ms)) return waited ? Held::released : Held::no;
    struct Leave {
      ClientPause& p;
      weft::Event& e;
      ~Leave() { p.leave(e); }
    } leave{pause, wake};
    waited = true;
    // At most an hour at a time (a far end would overflow the deadline's
    // nanoseconds); the waiter then looks again.
    const std::int64_t wait_ms = std::min<std::int64_t>(end_ms - now, 3'600'000);
    if (!c.client->watch->park(c.aof_seq, wake,
                               weft::Deadline::after(std::chrono::milliseconds(wait_ms)))) {
      c.close = true;
      return Held::dropped;
    }
  }
}

}  // namespace

void execute(Context& c) {
  c.notify = c.host.settings().notify_keyspace_events.load(std::memory_order_relaxed);
  Client* const cl = c.client;
  // In MULTI, a command refused before it is queued fails the transaction
  // (Redis's flagTransaction): EXEC then answers EXECABORT.
  const bool queuing = cl != nullptr && cl->in_multi && !c.in_exec;
  const Command* cmd = find_command(c.argv[0]);
  if (cmd == nullptr || c.argv[0].find('|') != std::string_view::npos) {
    if (queuing) cl->multi_failed = true;
    return unknown_command(c);
  }
  const bool is_exec = std::string_view(cmd->name) == "exec";
  // Redis's rejectCommand: EXEC itself refused discards the transaction
  // and answers EXECABORT with the reason (without its "ERR ").
  const auto refuse = [&](std::string_view e) {
    if (is_exec) {
      if (cl != nullptr) cmd::transaction::discard(c.host, *cl);
      if (e.substr(0, 4) == "ERR ") e.remove_prefix(4);
      return err(c, "EXECABORT Transaction discarded because of: " + std::string(e));
    }
    if (queuing) cl->multi_failed = true;
    err(c, e);
  };
  if (!cmd->subcommands.empty() && c.argv.size() > 1) {
    // A container (Redis's lookupCommand): argv[1] names the subcommand.
    const Command* sub = find_subcommand(*cmd, c.argv[1]);
    if (sub == nullptr) {
      std::string upper(c.argv[0]);
      for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      return refuse("ERR unknown subcommand '" + std::string(c.argv[1].substr(0, 128)) + "'. Try " +
                    upper + " HELP.");
    }
    cmd = sub;
  }
  const auto argc = static_cast<int>(c.argv.size());
  if ((cmd->arity > 0 && argc != cmd->arity) || argc < -cmd->arity) {
    if (is_exec) return refuse("ERR wrong number of arguments for 'exec' command");
    if (queuing) cl->multi_failed = true;
    return cmd::arity_error(c, cmd->name);
  }
  if (cl != nullptr) cl->last_cmd.store(cmd->name, std::memory_order_relaxed);
  const std::string_view name(cmd->name);
  // Redis's processCommand: before AUTH, only the no-auth commands run.
  if (cl != nullptr && !cl->authenticated && !(cmd->flags & kNoAuth) &&
      c.host.settings().requirepass.required())
    return refuse("NOAUTH Authentication required.");
  if (queuing && (cmd->flags & kNoMulti))
    return refuse("ERR Command not allowed inside a transaction");
  // EXEC is refused as its queued commands would be (Redis's processCommand
  // folds their flags in).
  const unsigned flags = cmd->flags | (is_exec && cl != nullptr ? cl->multi_flags : 0u);
  const std::uint64_t maxmemory = c.host.settings().maxmemory.load(std::memory_order_relaxed);
  // In MULTI every queued command counts as one that uses memory (the queue
  // does), but DISCARD, EXEC and QUIT are never refused for it.
  const bool oom_checked =
      (flags & kDenyOom) || (queuing && !is_exec && name != "discard" && name != "quit");
  // Redis's processCommand: performEvictions before every command while a
  // limit is set (not inside EXEC, whose shards are all locked here: EXEC
  // itself evicted first), then the OOM refusal if memory is still over.
  if (maxmemory != 0 && !c.host.loading() && !c.in_exec) {
    Evictor* ev = c.host.evictor();
    // While clients are paused the data set stays as it is: no eviction,
    // and no refusal for memory either (Redis's isSafeToPerformEvictions
    // answers EVICT_OK then); a held write is checked again when it runs.
    const bool out_of_memory = c.host.client_pause().paused(c.now) ? false
                               : ev != nullptr                     ? ev->out_of_memory(c, maxmemory)
                                               : static_cast<std::uint64_t>(std::max<std::int64_t>(
                                                     c.host.used_memory(), 0)) > maxmemory;
    if (oom_checked && out_of_memory) return refuse(kOom);
  }
  // Redis refuses writes, and PING, while persisting fails (processCommand:
  // writeCommandsDeniedByDiskError): nothing is applied that could not be
  // logged.
  if (((flags & kWrite) || name == "ping") && !c.host.loading() && !c.in_exec &&
      !c.host.writes_allowed())
    return refuse(c.host.write_refusal());
  // RESP2's subscribed mode (processCommand): only these, until the last
  // subscription goes.
  if (cl != nullptr && cl->subscriptions > 0 && cmd::proto(c) == 2 && !c.in_exec &&
      name != "ping" && name != "subscribe" && name != "unsubscribe" && name != "psubscribe" &&
      name != "punsubscribe" && name != "quit")
    return refuse("ERR Can't execute '" + std::string(name) +
                  "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed "
                  "in this context");
  // CLIENT PAUSE (Redis's processCommand: after every refusal, before
  // MULTI's queue): while no pause is on, one load and one branch. A held
  // command runs through every check again once the pause lets it go, as
  // Redis processes a postponed client's command afresh.
  if (c.host.client_pause().mode() != ClientPause::kOff) [[unlikely]] {
    switch (hold_while_paused(c, flags)) {
      case Held::no:
        break;
      case Held::released:
        c.now = unix_ms();
        return execute(c);
      case Held::dropped:
        return;
    }
  }
  if (queuing && !is_exec && name != "discard" && name != "multi" && name != "watch" &&
      name != "quit") {
    cl->queued.push_back({cmd, std::vector<std::string>(c.argv.begin(), c.argv.end())});
    cl->multi_flags |= cmd->flags;
    c.out += "+QUEUED\r\n";
    return;
  }
  run_command(c, *cmd);
}

void client_closed(Host& host, Client& client) noexcept {
  // Shielded: a connection ending while the server stops still lets go of
  // what other clients' commands would otherwise touch.
  weft::ShieldGuard shield;
  try {
    cmd::transaction::discard(host, client);
    if (client.pubsub != nullptr && host.pubsub() != nullptr)
      if (Subscriber* sub = client.pubsub->subscriber(false)) host.pubsub()->remove_all(*sub);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft-kv: client %llu: cleanup failed: %s\n",
                 static_cast<unsigned long long>(client.id), e.what());
  }
  client.subscriptions = 0;
  client.subscribed.store(false, std::memory_order_relaxed);
}

void signal_modified_keys(Keyspace& ks, std::span<const std::string_view> argv) noexcept {
  if (ks.watchers().load(std::memory_order_relaxed) == 0) return;
  const Command* cmd = find_command(argv[0]);
  if (cmd == nullptr) return;
  try {
    std::vector<std::size_t> at;
    if (!key_positions(*cmd, argv, at)) return;
    for (const std::size_t i : at) ks.shard_of(Keyspace::hash(argv[i])).signal_modified(argv[i]);
  } catch (const std::bad_alloc&) {
    // No room to list the keys: a watcher might miss this change. Mark
    // nothing rather than fail a write that is already applied.
  }
}

void run_command(Context& c, const Command& cmd) {
  // Timed as Redis's call(): the handler and the serving of the keys it made
  // ready, without the time a blocking command waited for a key.
  const std::int64_t parked_before = c.client != nullptr ? c.client->parked_ns : 0;
  const auto start = std::chrono::steady_clock::now();
  cmd.run(c);
  // Keys the command made ready that it could not serve under its own locks
  // (blocking.hpp): served now, before the next command.
  if (!c.ready.empty()) cmd::blocking::serve_ready(c);
  if (c.client == nullptr) return;
  const std::int64_t ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count() -
      (c.client->parked_ns - parked_before);
  c.host.command_done(c, cmd, std::max<std::int64_t>(ns, 0) / 1000);
}

}  // namespace kv
