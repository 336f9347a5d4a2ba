// weft-kv: the slow log (Redis's slowlog.c), the commands that took at
// least `slowlog-log-slower-than` microseconds, newest first, at most
// `slowlog-max-len` of them. SLOWLOG GET/LEN/RESET read it
// (commands/admin.cpp); the command layer records into it after each
// command (Host::command_done).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kv {

/// One logged command, as SLOWLOG GET shows it.
struct SlowLogEntry {
  std::uint64_t id = 0;           ///< 0, 1, 2, ... in logging order; RESET does not restart it
  std::int64_t timestamp = 0;     ///< Unix seconds when it was logged
  std::int64_t duration_us = 0;   ///< the command's execution time, microseconds
  std::vector<std::string> argv;  ///< truncated as Redis does (slowlog_argv)
  std::string addr;               ///< the client's ip:port
  std::string name;               ///< the client's name (CLIENT SETNAME), "" for none
};

/// Redis's truncation of a logged command (slowlogCreateEntry): at most
/// kSlowLogMaxArgc arguments, the last of them replaced by "... (N more
/// arguments)" when there were more; each argument at most
/// kSlowLogMaxString bytes followed by "... (N more bytes)".
inline constexpr std::size_t kSlowLogMaxArgc = 32;
inline constexpr std::size_t kSlowLogMaxString = 128;
std::vector<std::string> slowlog_argv(std::span<const std::string_view> argv);

/// The log. Thread- and fiber-safe: a short std::mutex guards it (held to
/// copy an entry in or out, never across I/O or a park).
class SlowLog {
 public:
  /// Logs the command when `duration_us` >= `slower_than` (and
  /// `slower_than` >= 0), then drops the oldest entries beyond `max_len`
  /// (Redis's slowlogPushEntryIfNeeded). @throws std::bad_alloc.
  void record(std::span<const std::string_view> argv, std::int64_t duration_us,
              std::int64_t slower_than, std::int64_t max_len, std::int64_t now_s,
              std::string_view addr, std::string_view name);
  /// The newest `count` entries, newest first; count < 0: all.
  std::vector<SlowLogEntry> get(std::int64_t count) const;
  /// Entries held.
  std::size_t size() const;
  /// Drops every entry (ids go on from where they were).
  void reset();

 private:
  mutable std::mutex mu_;
  std::deque<SlowLogEntry> entries_;  // newest at the front
  std::uint64_t next_id_ = 0;
};

}  // namespace kv
