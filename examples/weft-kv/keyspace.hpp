// weft-kv: the keyspace — a hash map of string keys to values of any
// Redis type with optional expiry, split into shards that each have a
// weft::Mutex.
//
// Each shard is a chained hash table with a power-of-two bucket array, so
// SCAN can use Redis's reverse-binary cursor (src/dict.c, dictScan): a key
// present during a whole scan is returned at least once even if the table
// grows or shrinks between calls. Expiry follows Redis (src/expire.c): lazy,
// on access, plus active: a cron samples keys that have a TTL and deletes the
// expired ones, repeating while more than 10% of a sample had expired
// (Redis 7's ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE; the loop is
// Server::cron's).
//
// Values. A string lives in Entry::value, inline (the common case costs no
// extra allocation). Every other type is an Object subclass that the
// command group owning the type defines (a list, a hash, ...), held by
// Entry::object; the keyspace only stores, accounts and deletes it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "weft/sync.hpp"

namespace kv {

/// Milliseconds since the Unix epoch (CLOCK_REALTIME), as Redis's mstime():
/// expiry times are absolute Unix ms so that they survive a restart (AOF).
std::int64_t unix_ms() noexcept;

/// The type of a value, as TYPE names it (type_name()).
enum class Type : std::uint8_t { string, list, set, zset, hash };

/// TYPE's reply for a type: "string", "list", "set", "zset", "hash".
const char* type_name(Type t) noexcept;

/// A value of a type other than string. The command group that owns the
/// type subclasses it; the keyspace deletes it with its entry and charges
/// bytes() to used_memory (see Shard::recharge). Accessed only with its
/// shard's lock held.
class Object {
 public:
  virtual ~Object() = default;
  /// The Redis type (never Type::string).
  virtual Type type() const noexcept = 0;
  /// Estimated bytes held beyond the Entry (elements, nodes, headers).
  virtual std::int64_t bytes() const noexcept = 0;
  /// OBJECT ENCODING's name for the current representation ("listpack",
  /// "quicklist", "hashtable", "skiplist", "intset").
  virtual const char* encoding() const noexcept = 0;
};

/// One key and its value. Owned by a Shard.
struct Entry {
  Entry* next = nullptr;          // bucket chain
  std::uint64_t hash = 0;         // Keyspace::hash(key)
  std::int64_t expire_at = -1;    // Unix ms; -1: no expiry
  std::uint32_t expire_slot = 0;  // index in Shard::expires_ while expire_at >= 0
  std::int64_t charged = 0;       // bytes counted in ShardCounters::bytes for it
  std::string key;
  std::string value;               ///< the value while type() == Type::string
  std::unique_ptr<Object> object;  ///< the value of any other type, else null

  Type type() const noexcept { return object ? object->type() : Type::string; }
};

/// A chained hash table with 2^k buckets (k >= 2). Not thread-safe: its
/// Shard's mutex guards it.
class Table {
 public:
  Table();
  ~Table();
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;

  /// The entry for `key` (whose hash is `h`), or nullptr.
  Entry* find(std::string_view key, std::uint64_t h) const noexcept;
  /// Adds a new entry; `key` must be absent. May grow the bucket array
  /// (doubling at load factor 1). @throws std::bad_alloc (table unchanged).
  Entry* insert(std::string_view key, std::uint64_t h);
  /// Unlinks and returns `e` (the caller deletes it). May shrink the array
  /// (halving at load factor 1/8).
  std::unique_ptr<Entry> unlink(Entry* e) noexcept;
  /// Number of entries.
  std::size_t size() const noexcept { return size_; }
  /// Deletes every entry and shrinks to the initial size.
  void clear() noexcept;
  /// Exchanges the contents with `other`.
  void swap(Table& other) noexcept {
    buckets_.swap(other.buckets_);
    std::swap(size_, other.size_);
  }

  /// Calls fn(Entry&) for the entries of the buckets that cursor `v` covers
  /// and returns the next cursor, 0 when the scan is complete (Redis's
  /// dictScan: reverse-binary increment of the masked bits).
  template <class F>
  std::uint64_t scan(std::uint64_t v, F&& fn) {
    const std::uint64_t mask = buckets_.size() - 1;
    for (Entry* e = buckets_[v & mask]; e != nullptr; e = e->next) fn(*e);
    v |= ~mask;
    v = reverse_bits(v);
    ++v;
    return reverse_bits(v);
  }
  /// Calls fn(Entry&) for every entry; fn must not change the table.
  template <class F>
  void for_each(F&& fn) const {
    for (Entry* head : buckets_)
      for (Entry* e = head; e != nullptr; e = e->next) fn(*e);
  }

 private:
  static std::uint64_t reverse_bits(std::uint64_t v) noexcept;
  void rehash(std::size_t n);
  std::vector<Entry*> buckets_;
  std::size_t size_ = 0;
};

/// Counters a shard keeps (read by INFO without the lock, hence relaxed
/// atomics; written only under the shard's lock).
struct ShardCounters {
  std::atomic<std::int64_t> keys{0};
  std::atomic<std::int64_t> expires{0};   ///< keys with a TTL
  std::atomic<std::int64_t> bytes{0};     ///< estimated memory of the entries
  std::atomic<std::uint64_t> expired{0};  ///< keys deleted by expiry, lazily or actively
};

/// One shard: a table, the list of its keys with a TTL (for active expiry
/// sampling) and a weft::Mutex. Every member function requires `mu` held.
class Shard {
 public:
  /// Guards everything below.
  weft::Mutex mu;

  /// The live entry for key, or nullptr. An expired entry is deleted
  /// (lazy expiry) and nullptr returned. `now` is unix_ms().
  Entry* find(std::string_view key, std::uint64_t h, std::int64_t now) noexcept;
  /// Like find() but without expiring (for replay and EXISTS-like peeks).
  Entry* find_raw(std::string_view key, std::uint64_t h) const noexcept {
    return table_.find(key, h);
  }
  /// Inserts key with an empty value and no TTL; key must be absent.
  /// @throws std::bad_alloc.
  Entry* insert(std::string_view key, std::uint64_t h);
  /// Makes e a string with this value (keeps its TTL; drops an object).
  /// @throws std::bad_alloc (unchanged).
  void assign(Entry* e, std::string_view value);
  /// Makes e hold `object` (keeps its TTL; drops the string value).
  void assign(Entry* e, std::unique_ptr<Object> object) noexcept;
  /// Appends to e's string value. @throws std::bad_alloc (unchanged).
  void append(Entry* e, std::string_view tail);
  /// Charges e's current size to the shard's byte count: call after
  /// changing e->object in place (an element added or removed).
  void recharge(Entry* e) noexcept;
  /// Sets (at >= 0, Unix ms) or removes (at = -1) e's expiry.
  void set_expire(Entry* e, std::int64_t at);
  /// Deletes e.
  void erase(Entry* e) noexcept;
  /// Deletes every entry; returns how many there were.
  std::size_t clear() noexcept;
  /// Exchanges the contents (entries, TTL list, counters) with `other`;
  /// both locked (or unshared).
  void swap(Shard& other) noexcept;

  /// Active expiry: samples up to `n` keys with a TTL and deletes the
  /// expired ones; returns {sampled, deleted}.
  std::pair<std::size_t, std::size_t> expire_sample(std::size_t n, std::int64_t now);

  Table& table() noexcept { return table_; }
  const ShardCounters& counters() const noexcept { return counters_; }

  /// Estimated bytes an entry costs beyond its key and value (node,
  /// bucket pointer, allocator headers).
  static constexpr std::int64_t kEntryOverhead = 96;

 private:
  static std::int64_t cost(const Entry& e) noexcept;
  Table table_;
  std::vector<Entry*> expires_;  // keys with a TTL, in no order
  std::minstd_rand rng_{0x5eed};
  ShardCounters counters_;
};

/// The whole keyspace: kShards shards chosen by the top bits of the key's
/// hash (the table uses the low bits). Thread- and fiber-safe through the
/// shards' mutexes.
class Keyspace {
 public:
  static constexpr std::size_t kShardBits = 6;
  static constexpr std::size_t kShards = std::size_t{1} << kShardBits;

  /// The hash of a key (64 bits; std::hash of the bytes).
  static std::uint64_t hash(std::string_view key) noexcept;
  static std::size_t shard_index(std::uint64_t h) noexcept { return h >> (64 - kShardBits); }
  Shard& shard(std::size_t i) noexcept { return shards_[i]; }
  Shard& shard_of(std::uint64_t h) noexcept { return shards_[shard_index(h)]; }

  /// Totals over all shards (racy snapshots, each field exact on its own).
  std::int64_t keys() const noexcept;
  std::int64_t expires() const noexcept;
  std::int64_t bytes() const noexcept;
  std::uint64_t expired() const noexcept;

 private:
  Shard shards_[kShards];
};

/// Redis's glob match (src/util.c stringmatchlen): `*`, `?`, `[...]` with
/// `^` negation and `a-z` ranges, and `\` escapes. Case-sensitive.
bool glob_match(std::string_view pattern, std::string_view text) noexcept;

}  // namespace kv
