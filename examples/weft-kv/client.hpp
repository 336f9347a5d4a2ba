// weft-kv: one connected client's state, as the command layer and CLIENT
// LIST see it.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "weft/deadline.hpp"
#include "weft/sync.hpp"

namespace kv {

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
  /// How a blocked command waits on this connection; null where no
  /// connection can wait (AOF replay, tests): blocking commands then
  /// answer as if their timeout had passed, as Redis does in MULTI.
  BlockWatch* watch = nullptr;
};

}  // namespace kv
