// weft-kv commands: helpers shared by the handler groups — Redis's number
// parsing, common replies and error texts, and shard locking.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "command.hpp"
#include "keyspace.hpp"
#include "resp.hpp"

namespace kv::cmd {

/// a == b ignoring ASCII case, where `b` is lower case.
bool eq_ci(std::string_view a, std::string_view b) noexcept;

/// Redis's string2ll: no spaces, no '+', no leading zeros, no "-0", at
/// most 20 characters, no overflow. False (out unchanged) otherwise.
bool parse_ll(std::string_view s, long long& out) noexcept;

/// Decimal text of v.
std::string ll_to_string(long long v);

inline constexpr std::string_view kOk = "+OK\r\n";
inline constexpr std::string_view kNotInt = "ERR value is not an integer or out of range";
inline constexpr std::string_view kSyntax = "ERR syntax error";
inline constexpr std::string_view kOverflow = "ERR increment or decrement would overflow";
inline constexpr std::string_view kWrongType =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
inline constexpr std::size_t kMaxString = std::size_t{512} << 20;  ///< proto-max-bulk-len

/// +OK.
inline void ok(Context& c) {
  c.out += kOk;
}
/// An error reply; `e` without the '-'.
inline void err(Context& c, std::string_view e) {
  Reply::error(c.out, e);
}
/// Redis's arity error for command (or "container|sub") `name`.
void arity_error(Context& c, std::string_view name);
/// "ERR invalid expire time in '<cmd>' command".
void expire_error(Context& c, const char* cmd);
/// Records the subcommand as CLIENT LIST shows it ("client|setname").
void note_subcommand(Context& c, const char* full_name) noexcept;

/// Locks the shards of several keys (every `step`-th of `keys`), or of all
/// shards, in index order: two multi-key commands never deadlock. Unlocks
/// on destruction. @throws weft::Cancelled while waiting (what was taken
/// is released).
class MultiLock {
 public:
  MultiLock(Keyspace& ks, std::span<const std::string_view> keys, std::size_t step = 1);
  /// Every shard (FLUSHALL, KEYS-like sweeps that must be atomic).
  explicit MultiLock(Keyspace& ks);
  ~MultiLock();
  MultiLock(const MultiLock&) = delete;
  MultiLock& operator=(const MultiLock&) = delete;

 private:
  void lock(Keyspace& ks);
  std::array<bool, Keyspace::kShards> want_{};
  std::array<weft::Mutex*, Keyspace::kShards> held_{};
  std::size_t n_ = 0;
};

/// One key, its hash and its shard, locked for the object's lifetime.
struct Locked {
  Locked(Keyspace& ks, std::string_view k)
      : key(k), h(Keyspace::hash(k)), shard(ks.shard_of(h)), lock(shard.mu) {}
  std::string_view key;
  std::uint64_t h;
  Shard& shard;
  std::lock_guard<weft::Mutex> lock;

  /// The live entry (lazily expiring it), or nullptr.
  Entry* find(std::int64_t now) noexcept { return shard.find(key, h, now); }
};

/// Sets key (in its locked shard) to a string value, dropping any TTL
/// unless keep_ttl and any value of another type. @throws std::bad_alloc.
Entry* store(Shard& sh, std::string_view key, std::uint64_t h, std::string_view value,
             std::int64_t now, bool keep_ttl);

}  // namespace kv::cmd
