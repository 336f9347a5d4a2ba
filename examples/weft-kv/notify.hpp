// weft-kv: keyspace notifications, as Redis 7.0.15's src/notify.c.
//
// A change to a key publishes, when `notify-keyspace-events` selects its
// class, "<event>" on `__keyspace@0__:<key>` (flag K) and "<key>" on
// `__keyevent@0__:<event>` (flag E) through the ordinary pub/sub registry
// (pubsub.hpp), so RESP2 subscribers get messages and RESP3 ones pushes.
// The events and their classes are Redis's, command by command (the
// handlers call notify() where Redis calls notifyKeyspaceEvent); expiry
// (lazy and active) reports through Keyspace's ExpiryListener, eviction
// through Evictor::evicted_key.
//
// Cost when disabled: execute() copies the flags into Context::notify once
// per command, and notify() is one branch on them.
//
// Locking. An event is published where Redis publishes it: inside the
// command, with the key's shard locked, so that the events of one key reach
// a subscriber in the order of the key's changes. The lock order is shard
// locks, then the registry's lock (shared to publish, exclusive to
// (un)subscribe), then an outbox's std::mutex (never held across a
// suspension). Nothing takes a shard lock while holding the registry: the
// (un)subscribe commands touch no key, a subscriber's writer fiber takes
// only its outbox, and EXEC locks every shard before it takes the registry.
// So publishing under a shard lock cannot deadlock with a subscriber or the
// registry. A fiber that holds the registry exclusively (EXEC with a
// SUBSCRIBE queued) publishes under its own lock (RegistryMutex::held()).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "command.hpp"
#include "keyspace.hpp"

namespace kv {

/// Event classes and channel kinds: Redis 7.0's NOTIFY_* (src/server.h),
/// same bits.
enum NotifyFlags : unsigned {
  kNotifyKeyspace = 1u << 0,  ///< K: __keyspace@0__:<key> channels
  kNotifyKeyevent = 1u << 1,  ///< E: __keyevent@0__:<event> channels
  kNotifyGeneric = 1u << 2,   ///< g: del, expire, rename_from, ...
  kNotifyString = 1u << 3,    ///< $
  kNotifyList = 1u << 4,      ///< l
  kNotifySet = 1u << 5,       ///< s
  kNotifyHash = 1u << 6,      ///< h
  kNotifyZset = 1u << 7,      ///< z
  kNotifyExpired = 1u << 8,   ///< x
  kNotifyEvicted = 1u << 9,   ///< e
  kNotifyStream = 1u << 10,   ///< t (no stream type in weft-kv: never emitted)
  kNotifyKeyMiss = 1u << 11,  ///< m: keymiss, a read lookup's miss (commands/util.hpp key_miss)
  kNotifyLoaded = 1u << 12,   ///< modules only in Redis: no character
  kNotifyModule = 1u << 13,   ///< d (no modules: never emitted)
  kNotifyNew = 1u << 14,      ///< n (modules only in Redis 7.0: never published)
  /// A: every class but m and n (NOTIFY_ALL).
  kNotifyAll = kNotifyGeneric | kNotifyString | kNotifyList | kNotifySet | kNotifyHash |
               kNotifyZset | kNotifyExpired | kNotifyEvicted | kNotifyStream | kNotifyModule,
};

/// Parses a `notify-keyspace-events` value as Redis's
/// keyspaceEventsStringToFlags: each character a class or kind
/// ("Ag$lshzxeKEtmdn"); empty when a character is none of them.
std::optional<unsigned> parse_notify_flags(std::string_view text) noexcept;

/// The value CONFIG GET prints for `flags` (keyspaceEventsFlagsToString):
/// "A" for all of NOTIFY_ALL, else its classes in "g$lshzxetdn" order;
/// then K, E, m.
std::string notify_flags_string(unsigned flags);

/// The error text CONFIG SET gives for a value parse_notify_flags refuses.
inline constexpr std::string_view kNotifyFlagsError =
    "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";

/// Publishes event `event` of class `type` on `key` to `ps` as `flags`
/// selects (Redis's notifyKeyspaceEvent, database 0). Takes the registry's
/// lock shared unless this fiber holds it. Never throws: an allocation
/// failure, or a cancellation while waiting for the registry, drops the
/// event (Redis would abort on the first; it has no second).
/// Fiber- and thread-safe.
/// `self`: as PubSub::publish's.
void publish_keyspace_event(PubSub& ps, unsigned flags, unsigned type, std::string_view event,
                            std::string_view key, std::int64_t now_ms,
                            PublishSelf self = {}) noexcept;

/// The slow path of notify(): publishes through ctx.host.pubsub().
void notify_slow(Context& ctx, unsigned type, std::string_view event,
                 std::string_view key) noexcept;

/// Reports a command's event on `key` (call with the key's shard locked,
/// after the change, as Redis calls notifyKeyspaceEvent). One branch when
/// `ctx.notify` does not select `type`.
inline void notify(Context& ctx, unsigned type, std::string_view event,
                   std::string_view key) noexcept {
  if ((ctx.notify & type) != 0) [[unlikely]]
    notify_slow(ctx, type, event, key);
}

/// The keyspace's expiry events (`expired`, class x), for the server to
/// install with Keyspace::set_expiry_listener: it reads the flags from
/// `flags` (Settings::notify_keyspace_events) at each expiry.
class ExpiryNotifier final : public ExpiryListener {
 public:
  ExpiryNotifier(const std::atomic<unsigned>& flags, PubSub& ps) : flags_(flags), ps_(ps) {}
  void expired(std::string_view key) noexcept override;

 private:
  const std::atomic<unsigned>& flags_;
  PubSub& ps_;
};

}  // namespace kv
