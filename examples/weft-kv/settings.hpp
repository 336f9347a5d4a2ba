// weft-kv: the parameters CONFIG SET changes while the server runs.
//
// Options (options.hpp) are what the server was started with; Settings are
// the subset Redis lets CONFIG SET change and weft-kv honours: maxmemory,
// timeout, appendfsync, the thresholds that decide the encodings OBJECT
// ENCODING reports, and the slowlog parameters. The server core creates one from its Options;
// commands read it through Host::settings() at the moment they run. CONFIG's parameter table
// (names, aliases, parsing, error texts) is the command layer's (commands/config.cpp).
#pragma once

#include <atomic>
#include <cstdint>

#include "aof.hpp"
#include "auth.hpp"
#include "options.hpp"

namespace kv {

/// Run-time parameters. Every field is a relaxed atomic: a reader sees
/// some value a CONFIG SET stored, and nothing else is published through
/// them (no other data depends on which value a reader sees). The
/// thresholds are Redis 7.0.15's compiled-in defaults (what redis-server
/// uses without a configuration file; redis.conf's shipped copy lowers
/// hash-max-listpack-entries to 128).
struct Settings {
  explicit Settings(const Options& o)
      : maxmemory(o.maxmemory),
        maxmemory_policy(o.maxmemory_policy),
        maxmemory_samples(o.maxmemory_samples),
        lfu_log_factor(o.lfu_log_factor),
        lfu_decay_time(o.lfu_decay_time),
        timeout_s(o.timeout_s),
        appendfsync(o.appendfsync),
        slowlog_log_slower_than(o.slowlog_log_slower_than),
        slowlog_max_len(o.slowlog_max_len),
        notify_keyspace_events(o.notify_keyspace_events),
        requirepass(o.requirepass) {}
  Settings(const Settings&) = delete;
  Settings& operator=(const Settings&) = delete;

  /// Bytes; 0: no limit (`maxmemory`).
  std::atomic<std::uint64_t> maxmemory;
  /// Eviction above maxmemory (evict.hpp): `maxmemory-policy`,
  /// `maxmemory-samples` (keys per sample, >= 1), `lfu-log-factor`,
  /// `lfu-decay-time` (minutes; 0: no decay). The server copies the LFU
  /// ones into the keyspace's AccessClock through Host::settings_changed.
  std::atomic<MaxmemoryPolicy> maxmemory_policy;
  std::atomic<std::int64_t> maxmemory_samples;
  std::atomic<std::int64_t> lfu_log_factor;
  std::atomic<std::int64_t> lfu_decay_time;
  /// Close clients idle this long, seconds; 0: never (`timeout`).
  std::atomic<std::uint64_t> timeout_s;
  /// When the AOF is fsynced (`appendfsync`); the server applies a change
  /// through Host::settings_changed.
  std::atomic<FsyncPolicy> appendfsync;

  /// A hash is a listpack while it has at most this many fields and every
  /// field and value is at most hash_max_listpack_value bytes, else a
  /// hashtable (`hash-max-listpack-entries`, alias `-ziplist-`).
  std::atomic<std::int64_t> hash_max_listpack_entries{512};
  std::atomic<std::int64_t> hash_max_listpack_value{64};
  /// A set of integers is an intset up to this many members
  /// (`set-max-intset-entries`).
  std::atomic<std::int64_t> set_max_intset_entries{512};
  /// Sorted sets: listpack up to these limits, else skiplist
  /// (`zset-max-listpack-entries`, `zset-max-listpack-value`).
  std::atomic<std::int64_t> zset_max_listpack_entries{128};
  std::atomic<std::int64_t> zset_max_listpack_value{64};
  /// Lists: listpack node size (negative: -1..-5 = 4..64 KiB per node;
  /// positive: entries per node) and compress depth (`list-max-listpack-size`,
  /// `list-compress-depth`).
  std::atomic<std::int64_t> list_max_listpack_size{-2};
  std::atomic<std::int64_t> list_compress_depth{0};
  /// The automatic AOF rewrite (aof_rewrite.hpp): when the AOF has grown
  /// by this many percent since the last rewrite (0: never) and is larger
  /// than the minimum, bytes (`auto-aof-rewrite-percentage`,
  /// `auto-aof-rewrite-min-size`; Redis's defaults).
  std::atomic<std::int64_t> auto_aof_rewrite_percentage{100};
  std::atomic<std::int64_t> auto_aof_rewrite_min_size{std::int64_t{64} << 20};
  /// Microseconds to sleep per key written by BGSAVE and BGREWRITEAOF
  /// (`rdb-key-save-delay`, Redis's testing aid; 0: none).
  std::atomic<std::int64_t> rdb_key_save_delay{0};
  /// The SLOWLOG (slowlog.hpp): commands that take at least this many
  /// microseconds are logged, -1 logs none (`slowlog-log-slower-than`);
  /// the log keeps the newest `slowlog-max-len` entries.
  std::atomic<std::int64_t> slowlog_log_slower_than;
  std::atomic<std::int64_t> slowlog_max_len;
  /// `notify-keyspace-events`: notify.hpp's NotifyFlags.
  std::atomic<unsigned> notify_keyspace_events;
  /// `requirepass` (auth.hpp; not an atomic: a string under its own lock).
  Password requirepass;
};

}  // namespace kv
