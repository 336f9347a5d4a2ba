// weft-kv: publish/subscribe — the registry of channel and pattern
// subscriptions and each subscriber's outbox (Redis's src/pubsub.c).
//
// A publisher never waits for a subscriber's socket: PUBLISH appends the
// encoded message to the outbox of every subscriber (a byte buffer under a
// short std::mutex) and wakes that connection's writer fiber, which does
// the writing. A subscriber that does not read lets its outbox grow until
// Redis's client-output-buffer-limit for class pubsub closes it (over the
// hard limit at once, over the soft limit for longer than its seconds;
// Redis's checkClientOutputBufferLimits), logged and counted. So a stalled
// subscriber costs memory up to the hard limit, never time.
//
// Order: the registry's lock (a weft::SharedMutex) is held shared while a
// message is appended to its receivers and exclusively while a
// subscription changes, and a (un)subscribe confirmation is appended to the
// client's outbox under the exclusive lock. So every message on a channel
// that a client receives comes after the confirmation of its subscription
// and before the confirmation of its unsubscription, and one publisher's
// messages reach each subscriber in the order they were published.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "options.hpp"
#include "weft/sync.hpp"
#include "weft/this_fiber.hpp"

namespace kv {

/// The bytes waiting to be written to one subscribed client, in order
/// (replies and messages alike once the client has subscribed), with
/// Redis's pubsub output buffer limits. push() may be called from any
/// fiber or thread; take() and wrote() only by the client's writer fiber.
class Outbox {
 public:
  /// `limit`: the pubsub class's limits (0 disables one); `on_limit` is
  /// called once, by the fiber whose push went over a limit (outside the
  /// outbox's lock), to end the connection (it must not block).
  Outbox(Options::OutputLimit limit, std::function<void()> on_limit)
      : limit_(limit), on_limit_(std::move(on_limit)) {}

  /// Appends `bytes` and wakes the writer. Returns false (and drops the
  /// bytes) when the outbox is closed, or this push took it over a limit:
  /// then it closes the outbox, discards what was pending and calls
  /// on_limit. `now_ms` is a monotonic or Unix ms time (the soft limit's
  /// clock). @throws std::bad_alloc (nothing appended).
  bool push(std::string_view bytes, std::int64_t now_ms);

  /// Writer side: waits until bytes are pending or the outbox is closed;
  /// moves every pending byte into `into` (cleared first) and counts them
  /// in flight until wrote() reports them. False once closed.
  /// @throws weft::Cancelled.
  bool take(std::string& into);
  /// Writer side: `n` bytes of what take() returned reached the socket.
  void wrote(std::size_t n) noexcept;

  /// Closes the outbox: push() drops from now on; take() returns false at
  /// once, or with `drain` once it has handed out what was queued (the
  /// connection ends after its last replies). Idempotent.
  void close(bool drain = false) noexcept;
  /// True after close() without drain, or a limit: nothing more is written.
  bool closed() const noexcept;
  /// True after close(drain = true).
  bool draining() const noexcept;
  /// True when a limit closed it.
  bool over_limit() const noexcept { return over_limit_.load(std::memory_order_acquire); }
  /// Bytes pending: queued plus in flight (CLIENT LIST's omem).
  std::size_t pending() const noexcept;

 private:
  const Options::OutputLimit limit_;
  const std::function<void()> on_limit_;
  mutable std::mutex mu_;        // guards the fields below
  std::string buf_;              // queued, not yet taken
  std::size_t in_flight_ = 0;    // taken, not yet written
  std::int64_t soft_since_ = 0;  // when pending first went over the soft limit; 0: not over
  bool closed_ = false;
  bool draining_ = false;
  weft::Event ready_;  // set while buf_ is non-empty, closed_ or draining_ (under mu_)
  /// Set once by the push that went over a limit; read by the connection
  /// (release/acquire: it pairs with that push's store).
  std::atomic<bool> over_limit_{false};
};

/// One client's subscriptions. Owned by the client (kv::Client::sub); the
/// registry points at it while it has subscriptions.
struct Subscriber {
  std::uint64_t client_id = 0;
  Outbox* box = nullptr;  ///< where its messages go
  /// The client's protocol version (Client::resp): RESP3 receives its
  /// messages as push replies. Null: RESP2.
  const std::atomic<int>* resp = nullptr;
  /// 2 or 3, as `resp` says now.
  int proto() const noexcept { return resp != nullptr ? resp->load(std::memory_order_relaxed) : 2; }
  /// Channels and patterns, in the order subscribed (UNSUBSCRIBE without
  /// arguments answers in this order). Changed under the registry's
  /// exclusive lock; read by its own connection.
  std::vector<std::string> channels, patterns;
  /// Subscriptions of both kinds (the RESP2 subscribed mode while > 0).
  std::size_t count() const noexcept { return channels.size() + patterns.size(); }
};

/// The publishing client, when it may be a subscriber itself (PubSub::
/// publish): its messages go to `out` (its pending replies, at the place
/// the command has reached) rather than to its outbox, so that they keep
/// Redis's place among its replies (a keyspace event of its own command).
struct PublishSelf {
  std::uint64_t client_id = 0;  ///< 0: none
  std::string* out = nullptr;
};

/// The registry's lock: a weft::SharedMutex that also knows which fiber
/// holds it exclusively, so that a fiber holding it (EXEC with pubsub
/// commands, which then runs writes that publish keyspace events) does not
/// wait for itself. Only the holding fiber can see its own id in `owner_`,
/// so a relaxed load is enough (as kv::ShardMutex). Meets std's Lockable
/// and SharedLockable.
class RegistryMutex {
 public:
  /// @throws weft::Cancelled while waiting.
  void lock() {
    m_.lock();
    owner_.store(weft::this_fiber::id(), std::memory_order_relaxed);
  }
  void unlock() noexcept {
    owner_.store(0, std::memory_order_relaxed);
    m_.unlock();
  }
  void lock_shared() { m_.lock_shared(); }
  void unlock_shared() noexcept { m_.unlock_shared(); }
  /// True when the calling fiber holds the lock exclusively.
  bool held() const noexcept {
    const weft::FiberId me = weft::this_fiber::id();
    return me != 0 && owner_.load(std::memory_order_relaxed) == me;
  }

 private:
  weft::SharedMutex m_;
  std::atomic<weft::FiberId> owner_{0};  // the exclusive holder's fiber (0: none, or a thread)
};

/// The registry: channel -> subscribers, pattern -> subscribers.
/// Thread- and fiber-safe: `mu` as described in the file comment; every
/// member but publish() and the introspection calls requires `mu` held
/// exclusively by the caller (the commands hold it across a whole
/// SUBSCRIBE so its confirmations are ordered with the messages).
class PubSub {
 public:
  /// Readers (publish, PUBSUB) share it; (un)subscribing takes it alone.
  RegistryMutex mu;

  /// Adds a subscription; false if `s` had it already. @throws std::bad_alloc.
  bool subscribe(Subscriber& s, std::string_view channel);
  bool psubscribe(Subscriber& s, std::string_view pattern);
  /// Removes a subscription; false if `s` did not have it.
  bool unsubscribe(Subscriber& s, std::string_view channel);
  bool punsubscribe(Subscriber& s, std::string_view pattern);

  /// Removes every subscription of `s` (its connection ends), taking `mu`
  /// itself: after it returns no publisher touches `s` or its outbox.
  void remove_all(Subscriber& s);

  /// Delivers `message` on `channel` to its subscribers, then to the
  /// clients of each matching pattern (Redis's order), with `mu` held
  /// shared unless `locked` or this fiber holds it exclusively. Returns
  /// the receivers counted as Redis counts them (one per subscription).
  /// @throws std::bad_alloc.
  std::size_t publish(std::string_view channel, std::string_view message, std::int64_t now_ms,
                      bool locked = false, PublishSelf self = {});

  /// Active channels matching `pattern` (all when empty), any order.
  std::vector<std::string> channels(std::string_view pattern, bool locked = false);
  /// Subscribers of `channel`.
  std::size_t numsub(std::string_view channel, bool locked = false);
  /// Distinct patterns subscribed to (Redis 7.0's PUBSUB NUMPAT).
  std::size_t numpat(bool locked = false);

  /// Totals INFO shows (relaxed snapshots).
  std::size_t channel_count() const noexcept { return nchannels_.load(std::memory_order_relaxed); }
  std::size_t pattern_count() const noexcept { return npatterns_.load(std::memory_order_relaxed); }

 private:
  std::unordered_map<std::string, std::vector<Subscriber*>> channels_;
  std::unordered_map<std::string, std::vector<Subscriber*>> patterns_;
  std::atomic<std::size_t> nchannels_{0}, npatterns_{0};  // sizes of the maps, for INFO
};

/// The message a subscriber of `channel` receives: ["message", channel,
/// message]; with a pattern, ["pmessage", pattern, channel, message]; an
/// array in RESP2, a push in RESP3 (`proto` 3).
std::string encode_message(std::string_view channel, std::string_view message, int proto = 2);
std::string encode_pmessage(std::string_view pattern, std::string_view channel,
                            std::string_view message, int proto = 2);

}  // namespace kv
