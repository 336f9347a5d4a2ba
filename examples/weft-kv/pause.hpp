// weft-kv: CLIENT PAUSE — the server-wide pause of clients' commands, as
// Redis 7.0.15's pauseClients/unpauseClients (src/networking.c) and the
// check in processCommand (src/server.c).
//
// The problem: while a pause is on, a command it covers must wait, not be
// refused, and the clients waiting must not cost anything (no polling), must
// go at once when UNPAUSE comes or the pause's time ends, and must let go
// when their connection ends. And the request path must not pay for the
// feature while no pause is on.
//
// The design: one atomic word, the mode, is all a command reads while no
// pause is on (ClientPause::mode(): one load and one predictable branch in
// kv::execute). Everything else — the end time and the waiters — is behind
// a mutex and touched only while a pause is on. A held command parks its
// connection's fiber through the connection's BlockWatch (client.hpp), the
// same wait a BLPOP uses: the replies before it are sent, the connection is
// read meanwhile (so a peer that closes or a CLIENT KILL ends the wait) and
// the wait ends at the pause's end time or when its Event is set (UNPAUSE,
// or the pause extended: the waiter looks again). No timer fiber is needed:
// a lapsed pause is cleared by whoever sees it first (a waiter whose wait
// timed out, a command, the cron).
//
// Rejected: a weft::CondVar waited on under the mutex (the connection would
// not be read while waiting, so a held client that disconnects would stay
// until the pause ends); checking the pause after the handler started (a
// held command must not have taken its shard locks).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "weft/sync.hpp"

namespace kv {

/// CLIENT PAUSE's state: which commands are held and until when. One per
/// server (Host::client_pause()). Thread- and fiber-safe.
class ClientPause {
 public:
  /// What a pause holds, in Redis's order (a second pause never lowers it).
  enum Mode : int {
    kOff = 0,    ///< nothing
    kWrite = 1,  ///< writes and commands that may replicate (PUBLISH), and EXEC of them
    kAll = 2,    ///< every command of every client
  };

  /// The mode now (kOff: no pause, the only value a command sees on its
  /// fast path). A pause whose time has passed may still show its mode
  /// until someone clears it: callers that act on a pause call holds() or
  /// paused(), which look at the time. Acquire: pairs with the release
  /// store in pause(), so a command that sees the mode sees its end time
  /// too (they are read under mu_ anyway; the order costs nothing on x86).
  int mode() const noexcept { return mode_.load(std::memory_order_acquire); }

  /// Starts or extends the pause (CLIENT PAUSE): the mode becomes the
  /// higher of the current and `m`, the end the later of the current and
  /// `end_ms` (Unix ms), as Redis's pauseClients — a pause can be neither
  /// shortened nor weakened, only ended by unpause(). An `end_ms` already
  /// past ends it at once. Waiters look again (an extended pause holds them
  /// longer). Never throws.
  void pause(Mode m, std::int64_t end_ms) noexcept;

  /// Ends the pause (CLIENT UNPAUSE) and releases every held command. Never
  /// throws.
  void unpause() noexcept;

  /// True while a pause is on at `now_ms` (Unix ms); a lapsed pause is
  /// cleared (its waiters released). Expiry and eviction stop meanwhile,
  /// as Redis's checkClientPauseTimeoutAndReturnIfPaused.
  bool paused(std::int64_t now_ms) noexcept;

  /// For a command about to run at `now_ms`: when the pause holds it (mode
  /// kAll, or kWrite and `writes`), registers `wake` to be set when the
  /// pause ends or changes, stores the end time in `end_ms` and returns
  /// true; the caller waits for `wake` (or `end_ms`), then calls leave()
  /// and asks again. False when no pause holds the command (a lapsed one is
  /// cleared). @throws std::bad_alloc (nothing registered).
  bool enter(bool writes, std::int64_t now_ms, weft::Event& wake, std::int64_t& end_ms);
  /// Unregisters a `wake` enter() registered. Never throws.
  void leave(weft::Event& wake) noexcept;

 private:
  /// Ends the pause and sets every waiter's event; mu_ held.
  void clear_locked() noexcept;
  /// Sets every waiter's event (they look again); mu_ held.
  void wake_all_locked() noexcept;

  /// Written under mu_ (release), read without it on the request path.
  std::atomic<int> mode_{kOff};
  std::mutex mu_;  // guards end_ms_ and waiters_; never held while waiting
  std::int64_t end_ms_ = 0;
  /// The events of the commands held now (at most one per connection).
  std::vector<weft::Event*> waiters_;
};

}  // namespace kv
