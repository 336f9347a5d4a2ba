// weft-kv commands: helpers shared by the handler groups — Redis's number
// parsing, common replies and error texts, and shard locking.
#pragma once

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

/// Redis's string2d: the whole of s is a double as strtod reads it
/// (decimal, exponent, hex, "inf"), no leading space, not NaN, no overflow
/// or underflow to 0. False (out unchanged) otherwise.
bool parse_double(std::string_view s, double& out);

/// Redis's string2ld: the same for a long double (strtold), at most 5 KiB.
bool parse_long_double(std::string_view s, long double& out);

/// An integer argument of at least `min` (Redis's
/// getRangeLongFromObjectOrReply(min, LONG_MAX) with a message): on a
/// non-integer or a smaller value replies with `msg` and returns false.
bool parse_at_least(Context& c, std::string_view arg, long long min, long long& out,
                    std::string_view msg);

/// Redis's index sanitising for ranges by position (LRANGE, LTRIM, ZRANGE,
/// ZREMRANGEBYRANK): negative indexes count from the end, [start, end] is
/// clipped to [0, len). False when the range is empty.
bool clip_range(long long& start, long long& end, long long len) noexcept;

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
  /// The shards whose bits are set in `shards` (bit i: shard i).
  MultiLock(Keyspace& ks, std::uint64_t shards);
  ~MultiLock();
  MultiLock(const MultiLock&) = delete;
  MultiLock& operator=(const MultiLock&) = delete;

  /// The shards held (bit i: shard i).
  std::uint64_t held() const noexcept { return held_; }
  /// Adds shard i to the held set when the lock order allows it: waits for
  /// it if it comes after every shard held, else only takes it if it is
  /// free now. Returns whether shard i is held (serving blocked clients
  /// needs a destination shard it learns of late; commands/blocking.hpp).
  /// @throws weft::Cancelled while waiting (the set is unchanged).
  bool extend(std::size_t i);
  /// Releases every shard now (a blocking command before it waits).
  void unlock() noexcept;

 private:
  static_assert(Keyspace::kShards == 64, "the shard sets are 64-bit masks");
  void lock(std::uint64_t want);
  Keyspace& ks_;
  std::uint64_t held_ = 0;
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
