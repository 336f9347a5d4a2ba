// weft-kv commands: helpers shared by the handler groups — Redis's number
// parsing, common replies and error texts, and shard locking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "command.hpp"
#include "keyspace.hpp"
#include "notify.hpp"
#include "numbers.hpp"
#include "resp.hpp"

namespace kv::cmd {

/// a == b ignoring ASCII case, where `b` is lower case.
bool eq_ci(std::string_view a, std::string_view b) noexcept;

using kv::parse_ll;  // numbers.hpp: Redis's string2ll

/// Redis's getRangeLongFromObjectOrReply for an int (DB indexes): on
/// failure replies kNotInt or "value is out of range, value must between
/// <INT_MIN> and <INT_MAX>" and returns false.
bool parse_int(Context& c, std::string_view s, int& out);

/// Redis's getRangeLongFromObjectOrReply: an integer in [min, max]. On
/// failure replies `msg` when given (both for a non-integer and out of
/// range), else kNotInt or "value is out of range, value must between
/// <min> and <max>", and returns false.
bool parse_range(Context& c, std::string_view s, long long min, long long max, const char* msg,
                 long long& out);

/// The random generator of the calling thread (SPOP, SRANDMEMBER,
/// HRANDFIELD, RANDOMKEY), seeded from std::random_device.
std::mt19937_64& random_engine() noexcept;

/// `count` distinct items, at random, of a collection of `size` > count
/// (SRANDMEMBER, HRANDFIELD, SPOP with a count), as Redis picks them: when
/// the collection is large against count (count * 3 <= size), random draws
/// until `count` distinct ones came (O(count)); otherwise every item, then
/// a partial shuffle. `draw()` returns a random Item, `each(fn)` calls
/// fn(Item) for every item, and `id(item)` is what tells two items apart.
template <class Item, class Draw, class Each, class Id>
std::vector<Item> pick_distinct(std::size_t size, std::size_t count, Draw draw, Each each, Id id) {
  std::vector<Item> out;
  out.reserve(count * 3 <= size ? count : size);
  auto& rng = random_engine();
  if (count * 3 <= size) {
    std::unordered_set<std::string_view> seen;  // views of the items in `out`
    while (out.size() < count) {
      Item item = draw();
      if (seen.count(id(item)) != 0) continue;
      out.push_back(std::move(item));  // no reallocation: reserved
      seen.insert(id(out.back()));
    }
    return out;
  }
  each([&](Item item) { out.push_back(std::move(item)); });
  for (std::size_t i = 0; i < count; ++i)
    std::swap(out[i], out[i + static_cast<std::size_t>(rng() % (out.size() - i))]);
  out.resize(count);
  return out;
}

/// SCAN-family arguments (Redis's parseScanCursorOrReply and the options
/// step of scanGenericCommand).
struct ScanArgs {
  std::uint64_t cursor = 0;
  long long count = 10;
  std::string_view pattern;  ///< used when use_pattern
  bool use_pattern = false;  ///< MATCH given and not "*"
  std::string_view type;     ///< SCAN's TYPE, when has_type
  bool has_type = false;
};
/// Parses a cursor (strtoul's rules: "invalid cursor" otherwise).
bool parse_scan_cursor(Context& c, std::string_view arg, std::uint64_t& cursor);
/// Parses COUNT, MATCH and (when `allow_type`) TYPE from argv[first] on.
bool parse_scan_options(Context& c, std::size_t first, bool allow_type, ScanArgs& args);
/// The reply [cursor, [items...]].
void scan_reply(Context& c, std::uint64_t cursor, const std::vector<std::string>& items);

/// Redis's string2d: the whole of s is a double as strtod reads it
/// (decimal, exponent, hex, "inf"), no leading space, not NaN, no overflow
/// or underflow to 0. False (out unchanged) otherwise.
bool parse_double(std::string_view s, double& out);

/// Redis's index sanitising for ranges by position (LRANGE, LTRIM, ZRANGE,
/// ZREMRANGEBYRANK): negative indexes count from the end, [start, end] is
/// clipped to [0, len). False when the range is empty.
bool clip_range(long long& start, long long& end, long long len) noexcept;

/// Decimal text of v.
std::string ll_to_string(long long v);

/// Redis's string2ld: strtold over the whole text (at most 5 KiB), no
/// leading space, no NaN, no overflow to infinity or underflow to zero
/// from a non-zero text ("inf" itself is accepted). False otherwise.
bool parse_ld(std::string_view s, long double& out) noexcept;

/// Redis's ld2string in LD_STR_HUMAN mode (INCRBYFLOAT, HINCRBYFLOAT):
/// "%.17Lf" without trailing zeros (nor a trailing '.'), "-0" as "0",
/// "inf"/"-inf" for infinities.
std::string ld_to_string_human(long double v);

/// An expiry argument (SET, GETEX, SETEX, ...) as an absolute Unix ms time,
/// as Redis's getExpireMillisecondsOrReply: an integer, > 0, not
/// overflowing when scaled from seconds or made absolute (`relative`: add
/// `now`). On failure replies (kNotInt or "invalid expire time in
/// '<name>' command") and returns false.
bool parse_expire(Context& c, std::string_view arg, bool seconds, bool relative, const char* name,
                  std::int64_t& at);

inline constexpr std::string_view kOk = "+OK\r\n";
inline constexpr std::string_view kNotInt = "ERR value is not an integer or out of range";
inline constexpr std::string_view kNotFloat = "ERR value is not a valid float";
inline constexpr std::string_view kSyntax = "ERR syntax error";
inline constexpr std::string_view kOverflow = "ERR increment or decrement would overflow";
inline constexpr std::string_view kWrongType =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
inline constexpr std::string_view kEmptyArray = "*0\r\n";
inline constexpr std::size_t kMaxString = std::size_t{512} << 20;  ///< proto-max-bulk-len

/// +OK.
inline void ok(Context& c) {
  c.out += kOk;
}
/// An error reply; `e` without the '-'.
inline void err(Context& c, std::string_view e) {
  Reply::error(c.out, e);
}
/// The protocol version of the client the reply goes to (2 without a
/// client: AOF replay).
inline int proto(const Context& c) noexcept {
  return c.client != nullptr ? c.client->resp.load(std::memory_order_relaxed) : 2;
}
/// A missing string: RESP2 `$-1`, RESP3 null.
inline void null_bulk(Context& c) {
  Reply::null_bulk(c.out, proto(c));
}
/// A missing array: RESP2 `*-1`, RESP3 null.
inline void null_array(Context& c) {
  Reply::null_array(c.out, proto(c));
}
/// The header of n field-value pairs: RESP3 map, RESP2 flat array.
inline void map_header(Context& c, std::size_t n) {
  Reply::map_header(c.out, n, proto(c));
}
/// The header of n distinct members: RESP3 set, RESP2 array.
inline void set_header(Context& c, std::size_t n) {
  Reply::set_header(c.out, n, proto(c));
}

/// Sets the client's name (CLIENT SETNAME, HELLO SETNAME) after Redis's
/// validateClientName; on a bad name replies its error and returns false.
bool set_client_name(Context& c, std::string_view name);

/// Redis's arity error for command (or "container|sub") `name`.
void arity_error(Context& c, std::string_view name);
/// "ERR invalid expire time in '<cmd>' command".
void expire_error(Context& c, const char* cmd);
/// A HELP reply: the lines as an array of simple strings (Redis's
/// addReplyHelp, whose first and last lines the caller includes).
void help_reply(Context& c, std::span<const std::string_view> lines);
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

/// A read lookup of `key` found nothing (Redis's lookupKeyRead miss): counts
/// it (INFO keyspace_misses) and publishes the `keymiss` event when
/// `notify-keyspace-events` has `m` (one branch when it has not). Call with
/// the key's shard locked, where the lookup is, so that the event comes in
/// Redis's order among the command's others (SET k v GET: keymiss, then set).
inline void key_miss(Context& c, std::string_view key) noexcept {
  ++c.misses;
  notify(c, kNotifyKeyMiss, "keymiss", key);
}

/// One key, its hash and its shard, locked for the object's lifetime.
struct Locked {
  Locked(Keyspace& ks, std::string_view k)
      : key(k), h(Keyspace::hash(k)), shard(ks.shard_of(h)), lock(shard.mu) {}
  std::string_view key;
  std::uint64_t h;
  Shard& shard;
  std::lock_guard<ShardMutex> lock;

  /// The live entry (lazily expiring it), or nullptr.
  Entry* find(std::int64_t now) noexcept { return shard.find(key, h, now); }
  /// The same without counting as an access (Redis's LOOKUP_NOTOUCH).
  Entry* peek(std::int64_t now) noexcept { return shard.find(key, h, now, /*touch=*/false); }
  /// find() for a read (Redis's lookupKeyRead): a missing key is reported
  /// (key_miss).
  Entry* read(Context& c) noexcept {
    Entry* e = find(c.now);
    if (e == nullptr) key_miss(c, key);
    return e;
  }
  /// peek() for a read (lookupKeyReadWithFlags(LOOKUP_NOTOUCH)): the same.
  Entry* read_peek(Context& c) noexcept {
    Entry* e = peek(c.now);
    if (e == nullptr) key_miss(c, key);
    return e;
  }
};

/// OBJECT ENCODING's name for a string value ("int", "embstr", "raw"),
/// from its text and StringForm as Redis's tryObjectEncoding and
/// createStringObject decide it.
const char* string_encoding(const Entry& e) noexcept;

/// True when Redis would hold the value as one of its shared integer
/// objects (an "int" of 0..9999 stored through tryObjectEncoding), whose
/// OBJECT REFCOUNT is INT_MAX.
bool string_shared(const Entry& e) noexcept;

/// Sets key (in its locked shard) to a string value, dropping any TTL
/// unless keep_ttl and any value of another type. @throws std::bad_alloc.
Entry* store(Shard& sh, std::string_view key, std::uint64_t h, std::string_view value,
             std::int64_t now, bool keep_ttl, StringForm form = StringForm::encoded);

}  // namespace kv::cmd
