// weft-kv: command-line options.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "aof.hpp"
#include "policy.hpp"
#include "resp.hpp"
#include "weft/config.hpp"

namespace kv {

/// Command-line options (see kUsage).
struct Options {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 6380;
  std::size_t workers = 0;  ///< 0: weft's default (one per core)
  weft::IoBackend io = weft::IoBackend::auto_detect;
  bool appendonly = false;
  FsyncPolicy appendfsync = FsyncPolicy::everysec;
  std::filesystem::path dir = ".";
  /// The RDB file's name in `dir` (SAVE, BGSAVE, loading at start).
  std::string dbfilename = "dump.rdb";
  /// Redis's `save` schedule as given ("3600 1 300 100"; "" for none);
  /// parse_save_schedule() reads it.
  std::string save;
  std::size_t maxclients = 10000;
  std::uint64_t maxmemory = 0;  ///< bytes; 0: no limit
  /// Eviction (evict.hpp): what happens above maxmemory, keys sampled per
  /// choice, and the LFU counter's growth and decay (minutes); Redis's
  /// defaults.
  MaxmemoryPolicy maxmemory_policy = MaxmemoryPolicy::noeviction;
  std::int64_t maxmemory_samples = 5;
  std::int64_t lfu_log_factor = 10;
  std::int64_t lfu_decay_time = 1;
  std::uint64_t timeout_s = 0;  ///< client idle timeout, seconds; 0: none
  /// Redis's client-output-buffer-limit for normal clients: a client whose
  /// pending replies exceed `hard` bytes, or stay above `soft` bytes for
  /// `soft_seconds`, is closed. 0 disables a limit (Redis's default for
  /// normal clients is 0 0 0).
  struct OutputLimit {
    std::uint64_t hard = 0, soft = 0, soft_seconds = 0;
  } output_limit;
  /// The same limits for clients subscribed to a channel or pattern
  /// (Redis's class pubsub; its default 32mb 8mb 60). Messages queue for
  /// such a client without stalling the publisher; over the limits the
  /// client is closed, logged and counted.
  OutputLimit pubsub_limit{32ull << 20, 8ull << 20, 60};
  /// A reply write that makes no progress for this long closes the client
  /// (seconds; 0: --timeout's value, and none when that is 0 too).
  std::uint64_t write_timeout_s = 0;
  /// Bind retries on EADDRINUSE (a killed predecessor's socket still being
  /// torn down), 10 ms apart.
  std::size_t bind_retries = 100;
  /// --metrics-port: the HTTP port of /metrics and /debug/fibers
  /// (metrics_http.hpp); 0 picks a free port (logged), -1 (the default)
  /// serves none. Bound on the same address as the Redis port.
  int metrics_port = -1;
  /// The slowlog's parameters at start (CONFIG SET changes them later):
  /// microseconds (-1: log nothing, 0: every command) and entries kept.
  std::int64_t slowlog_log_slower_than = 10000;
  std::int64_t slowlog_max_len = 128;
  /// --notify-keyspace-events: the keyspace event classes published
  /// (notify.hpp's NotifyFlags, parsed from Redis's letters); 0: none.
  unsigned notify_keyspace_events = 0;
  /// --requirepass: the password clients must give (AUTH); "" for none.
  std::string requirepass;
  ParseLimits limits;
};

/// Parses argv (without the program name) into Options. On a bad flag or
/// value throws std::invalid_argument with a message naming the flag;
/// `--help` sets `*help` and returns.
Options parse_options(std::span<char* const> args, bool* help);

/// The --help text.
extern const char* const kUsage;

/// Redis's name for an fsync policy ("always", "everysec", "no").
const char* fsync_policy_name(FsyncPolicy p) noexcept;

}  // namespace kv
