// weft-kv: one connected client's state, as the command layer and CLIENT
// LIST see it.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "weft/deadline.hpp"
#include "weft/sync.hpp"

namespace kv {

struct Command;
struct Context;
struct Subscriber;

/// The connection's side of a blocked command (BLPOP, BZPOPMIN, ...;
/// commands/blocking.hpp): what the server core does while the
/// connection's own fiber waits inside the command for a key to become
/// ready. Implemented by the server core for each connection.
class BlockWatch {
 public:
  virtual ~BlockWatch() = default;
  /// Sends the replies of the commands before this one (once their AOF
  /// records are durable: `aof_seq`, reset to 0), then parks the calling
  /// fiber until `wake` is set or `deadline` passes. Meanwhile the
  /// connection is read, as Redis reads a blocked client: the bytes are
  /// kept for the commands after this one, and if the connection ends
  /// (the peer closes or resets it, the server shuts down) `wake` is set
  /// and park returns false at once. True otherwise.
  /// @throws weft::Cancelled; std::system_error when the replies cannot
  /// be sent or the AOF failed.
  virtual bool park(std::uint64_t& aof_seq, weft::Event& wake, weft::Deadline deadline) = 0;
};

/// The connection's side of publish/subscribe (pubsub.hpp), implemented by
/// the server core for each connection: once a client subscribes, its
/// replies and the messages published to it share one outbox, written by a
/// fiber of the connection's own, so that a publisher never waits for it.
class PubSubLink {
 public:
  virtual ~PubSubLink() = default;
  /// The client's subscriptions; with `create`, its outbox and writer are
  /// made on the first call, else null until then. @throws std::bad_alloc.
  virtual Subscriber* subscriber(bool create) = 0;
  /// Moves the replies in ctx.out into the outbox (after their AOF
  /// records, ctx.aof_seq, are durable), so that what is appended to the
  /// outbox next comes after them. Does nothing before subscriber().
  /// @throws std::system_error when the AOF failed.
  virtual void sync(Context& ctx) = 0;
};

/// A command queued by MULTI: its table row (a subcommand's when it is one)
/// and its arguments.
struct QueuedCommand {
  const Command* cmd = nullptr;
  std::vector<std::string> argv;
};

/// One connected client. Created and owned by the connection's fiber (the
/// server core); commands read and change it through Context::client.
/// Fields other fibers read (CLIENT LIST, INFO) are atomics or guarded by
/// `mu`; the rest belong to the connection's fiber. State that later
/// features keep per client (a MULTI queue, subscriptions, the protocol
/// version) goes here, next to what the connection loop maintains.
struct Client {
  std::uint64_t id = 0;
  std::string addr;   ///< peer ip:port
  std::string laddr;  ///< local ip:port
  int fd = -1;        ///< for CLIENT LIST only: never used for I/O
  std::int64_t created_ms = 0;
  std::atomic<std::int64_t> last_ms{0};  ///< last command, Unix ms
  /// The last command's full name as CLIENT LIST shows it (a string
  /// literal: "get", "client|setname"), nullptr before the first.
  std::atomic<const char*> last_cmd{nullptr};
  std::atomic<std::uint64_t> qbuf{0};  ///< bytes buffered, not yet parsed
  std::atomic<std::uint64_t> omem{0};  ///< reply bytes not yet written
  std::mutex mu;                       ///< guards name
  std::string name;
  /// The protocol version HELLO chose (2 or 3): the shape of every reply
  /// (resp.hpp). Written by the connection's fiber, read by CLIENT LIST;
  /// relaxed, a value shown, ordered by nothing.
  std::atomic<int> resp{2};
  /// False until AUTH or HELLO AUTH gave the password while `requirepass`
  /// is set (commands/auth.cpp); connection fiber only.
  bool authenticated = false;
  /// How a blocked command waits on this connection; null where no
  /// connection can wait (AOF replay, tests): blocking commands then
  /// answer as if their timeout had passed, as Redis does in MULTI.
  BlockWatch* watch = nullptr;

  /// Publish/subscribe: how this connection receives messages (null where
  /// none can: AOF replay, tests) and its subscriptions, channels and
  /// patterns (> 0: RESP2's subscribed mode). Connection fiber only.
  PubSubLink* pubsub = nullptr;
  std::size_t subscriptions = 0;
  /// subscriptions > 0, for other fibers (CLIENT KILL TYPE); relaxed, a
  /// value shown, ordered by nothing.
  std::atomic<bool> subscribed{false};

  /// MULTI's state (connection fiber only): in a transaction, its queue,
  /// whether a command failed to queue (EXEC then answers EXECABORT) and
  /// the union of the queued commands' flags (EXEC's own checks).
  bool in_multi = false;
  bool multi_failed = false;
  unsigned multi_flags = 0;
  std::vector<QueuedCommand> queued;
  /// WATCH: the watched keys, and the flag their shards set when one of
  /// them changes (Shard::watch; read by EXEC under every shard lock).
  std::vector<std::string> watched;
  std::atomic<bool> watch_dirty{false};
  /// Nanoseconds this client's blocking commands have spent parked waiting
  /// for a key (BlockWatch::park adds them; connection fiber only), so a
  /// command's measured duration leaves the wait out, as Redis's does.
  std::int64_t parked_ns = 0;
};

}  // namespace kv
