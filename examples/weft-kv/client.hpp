// weft-kv: one connected client's state, as the command layer and CLIENT
// LIST see it.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace kv {

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
};

}  // namespace kv
