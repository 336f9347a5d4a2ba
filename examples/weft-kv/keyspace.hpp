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
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dict.hpp"
#include "weft/sync.hpp"
#include "weft/this_fiber.hpp"

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
  /// A deep copy with the same encoding (COPY; Redis's *TypeDup).
  /// @throws std::bad_alloc.
  virtual std::unique_ptr<Object> clone() const = 0;
  /// A set (Type::set) calls visit(member) for each member, in any order;
  /// other types visit nothing. The sorted-set operations (ZUNIONSTORE,
  /// ZINTER, ...) read a set as a sorted set whose scores are all 1, as
  /// Redis does.
  virtual void for_each_member(const std::function<void(std::string_view)>& visit) const {
    (void)visit;
  }
};

/// How a string value came to be, which decides what OBJECT ENCODING and
/// OBJECT REFCOUNT report for it, as Redis's object.c would (Redis keeps
/// the encoding in the object; weft-kv keeps the text and this tag).
enum class StringForm : std::uint8_t {
  /// Stored through tryObjectEncoding (SET, MSET, GETSET, APPEND to a new
  /// key, INCR...): "int" for a canonical integer of at most 20 characters
  /// (shared, refcount INT_MAX, when 0..9999), else "embstr" up to 44
  /// bytes, else "raw".
  encoded,
  /// Created as a plain string (INCRBYFLOAT's result): "embstr" up to 44
  /// bytes, else "raw".
  plain,
  /// Changed in place (APPEND to an existing value, SETRANGE, SETBIT,
  /// BITOP's result, BITFIELD): "raw".
  raw,
  /// A copy of an "int" value (COPY): "int", never shared (refcount 1).
  unshared_int,
};

/// The clients blocked on keys of one shard (BLPOP, BZPOPMIN, ...): the
/// command layer's registry (commands/blocking.hpp) derives from it; the
/// shard only holds it, guarded by its lock like everything else there, and
/// keeps it across FLUSHALL (blocked clients stay blocked, as in Redis).
class BlockedKeys {
 public:
  virtual ~BlockedKeys() = default;
};

/// Where a shard reports each key it deletes because it expired (lazily in
/// find(), actively in expire_sample()), with the shard's lock held and
/// before the entry goes: the `expired` keyspace event (notify.hpp). Must
/// not take a shard lock.
class ExpiryListener {
 public:
  virtual void expired(std::string_view key) noexcept = 0;

 protected:
  ~ExpiryListener() = default;
};

/// One key and its value. Owned by a Shard.
struct Entry {
  Entry* next = nullptr;          // bucket chain
  std::uint64_t hash = 0;         // Keyspace::hash(key)
  std::int64_t expire_at = -1;    // Unix ms; -1: no expiry
  std::uint32_t expire_slot = 0;  // index in Shard::expires_ while expire_at >= 0
  /// Redis's LRU clock at the last access (lru_clock(); OBJECT IDLETIME).
  std::uint32_t access_clock : 24 = 0;
  /// StringForm of `value` while type() == Type::string.
  std::uint32_t string_form : 8 = 0;
  std::int64_t charged = 0;  // bytes counted in ShardCounters::bytes for it
  std::string key;
  std::string value;               ///< the value while type() == Type::string
  std::unique_ptr<Object> object;  ///< the value of any other type, else null

  Type type() const noexcept { return object ? object->type() : Type::string; }
  StringForm form() const noexcept { return static_cast<StringForm>(string_form); }
  void set_form(StringForm f) noexcept { string_form = static_cast<std::uint32_t>(f); }
};

/// Redis's LRU clock (LRU_CLOCK): seconds, 24 bits, wrapping every ~194 days.
inline std::uint32_t lru_clock(std::int64_t unix_ms) noexcept {
  return static_cast<std::uint32_t>(unix_ms / 1000) & 0xFFFFFFu;
}

/// What Entry::access_clock holds and how an access updates it, as Redis's
/// robj.lru (evict.hpp has the formulas): the LRU clock, or under an LFU
/// policy 16 bits of minutes (the last decay) and an 8-bit logarithmic
/// access counter. The server copies these from its Settings; relaxed
/// atomics, read by shards under their own locks (nothing else is
/// published through them).
struct AccessClock {
  std::atomic<bool> lfu{false};                  ///< an LFU maxmemory-policy
  std::atomic<std::int64_t> lfu_log_factor{10};  ///< `lfu-log-factor`
  std::atomic<std::int64_t> lfu_decay_time{1};   ///< `lfu-decay-time`, minutes
};

/// The keyspace's table: a Dict of Entries (dict.hpp: power-of-two
/// buckets, Redis's scan cursor). Not thread-safe: its Shard's mutex
/// guards it.
class Table : public Dict<Entry> {
 public:
  using Dict<Entry>::insert;
  /// Adds a new entry for `key` (hash `h`, absent), with an empty string
  /// value and no TTL. @throws std::bad_alloc (table unchanged).
  Entry* insert(std::string_view key, std::uint64_t h);
};

/// Counters a shard keeps (read by INFO without the lock, hence relaxed
/// atomics; written only under the shard's lock).
struct ShardCounters {
  std::atomic<std::int64_t> keys{0};
  std::atomic<std::int64_t> expires{0};   ///< keys with a TTL
  std::atomic<std::int64_t> bytes{0};     ///< estimated memory of the entries
  std::atomic<std::uint64_t> expired{0};  ///< keys deleted by expiry, lazily or actively
  /// Clients blocked on keys, counted in their first key's shard; changed
  /// by fetch_add without the lock (count_blocked).
  std::atomic<std::int64_t> blocked{0};
};

/// A shard's lock: a weft::Mutex that the fiber holding it may lock again
/// (it counts the depth). EXEC holds every shard while the queued commands
/// run, and each of them locks its shards as it would alone; only the
/// owning fiber can see its own id in `owner_`, so a relaxed load is
/// enough to tell (another fiber reads either 0 or some other id).
class ShardMutex {
 public:
  /// What the next lock() or try_lock() that acquires the mutex (not a
  /// re-entry) runs, once, with the lock held: BGSAVE's copy of the shard
  /// as it was when the snapshot began (rdb_save.hpp).
  class FirstLock {
   public:
    virtual void on_first_lock() noexcept = 0;

   protected:
    ~FirstLock() = default;
  };
  /// Arms `hook` (null disarms); call with the lock held.
  void arm(FirstLock* hook) noexcept { hook_ = hook; }

  /// Locks (or re-enters, on the owning fiber). @throws weft::Cancelled
  /// while waiting.
  void lock() {
    if (reenter()) return;
    m_.lock();
    own();
  }
  /// Locks if free now (or re-enters); false otherwise.
  bool try_lock() noexcept {
    if (reenter()) return true;
    if (!m_.try_lock()) return false;
    own();
    return true;
  }
  /// Leaves one level; the last unlocks.
  void unlock() noexcept {
    if (--depth_ != 0) return;
    owner_.store(0, std::memory_order_relaxed);
    m_.unlock();
  }

 private:
  bool reenter() noexcept {
    const weft::FiberId me = weft::this_fiber::id();
    if (me == 0 || owner_.load(std::memory_order_relaxed) != me) return false;
    ++depth_;
    return true;
  }
  void own() noexcept {
    owner_.store(weft::this_fiber::id(), std::memory_order_relaxed);
    depth_ = 1;
    if (hook_ != nullptr) [[unlikely]] {
      FirstLock* h = hook_;
      hook_ = nullptr;
      h->on_first_lock();
    }
  }
  weft::Mutex m_;
  FirstLock* hook_ = nullptr;            // guarded by m_
  std::atomic<weft::FiberId> owner_{0};  // the holder's fiber id (0: none, or a thread)
  std::uint32_t depth_ = 0;              // guarded by m_
};

/// One shard: a table, the list of its keys with a TTL (for active expiry
/// sampling) and a weft::Mutex. Every member function requires `mu` held.
class Shard {
 public:
  /// Guards everything below.
  ShardMutex mu;
  /// Clients blocked on this shard's keys; null until the first blocks.
  std::unique_ptr<BlockedKeys> blocked;

  /// The live entry for key, or nullptr. An expired entry is deleted
  /// (lazy expiry) and nullptr returned. `now` is unix_ms(). A found entry
  /// counts as accessed (OBJECT IDLETIME) unless `touch` is false (Redis's
  /// LOOKUP_NOTOUCH: TYPE, TTL, EXISTS, OBJECT).
  Entry* find(std::string_view key, std::uint64_t h, std::int64_t now, bool touch = true) noexcept;
  /// Like find() but without expiring (for replay and EXISTS-like peeks).
  Entry* find_raw(std::string_view key, std::uint64_t h) const noexcept {
    return table_.find(key, h);
  }
  /// Inserts key with an empty value and no TTL, accessed now; key must be
  /// absent. @throws std::bad_alloc.
  Entry* insert(std::string_view key, std::uint64_t h);
  /// Makes e a string with this value (keeps its TTL; drops an object).
  /// @throws std::bad_alloc (unchanged).
  void assign(Entry* e, std::string_view value, StringForm form = StringForm::encoded);
  /// Makes e hold `object` (keeps its TTL; drops the string value).
  void assign(Entry* e, std::unique_ptr<Object> object) noexcept;
  /// Appends to e's string value (now StringForm::raw). @throws
  /// std::bad_alloc (unchanged).
  void append(Entry* e, std::string_view tail);
  /// Charges e's current size to the shard's byte count: call after
  /// changing e->object in place (an element added or removed).
  void recharge(Entry* e) noexcept;
  /// Sets (at >= 0, Unix ms) or removes (at = -1) e's expiry.
  void set_expire(Entry* e, std::int64_t at);
  /// Deletes e.
  void erase(Entry* e) noexcept;
  /// Counts clients that block (+1) or stop blocking (-1) with their first
  /// key in this shard (INFO's blocked_clients). The one member that does
  /// not need `mu`.
  void count_blocked(std::int64_t delta) noexcept;
  /// Deletes every entry; returns how many there were.
  std::size_t clear() noexcept;
  /// The bytes its entries cost now, summed afresh: what counters().bytes
  /// must equal if recharge() followed every change in place (a check for
  /// tests and the fuzz target).
  std::int64_t recount() const noexcept;
  /// Exchanges the contents (entries, TTL list, counters) with `other`;
  /// both locked (or unshared). The clients blocked on keys (`blocked`)
  /// stay where they are: they wait on key names, not on values.
  void swap(Shard& other) noexcept;

  /// WATCH: from now on `dirty` is set whenever `key` changes (written,
  /// deleted, expired, given or cleared a TTL, flushed while present),
  /// until unwatch(). A flag may watch a key once.
  /// @throws std::bad_alloc.
  void watch(std::string_view key, std::atomic<bool>* dirty);
  void unwatch(std::string_view key, std::atomic<bool>* dirty) noexcept;
  /// Sets the dirty flags watching `key` (Redis's touchWatchedKey). insert,
  /// assign, append, set_expire, erase and clear call it; a change in place
  /// (an element added to a set) is signalled when it is propagated
  /// (kv::signal_modified_keys), as only real changes are.
  void signal_modified(std::string_view key) noexcept {
    if (!watched_.empty()) [[unlikely]]
      touch_watchers(key);
  }

  /// Active expiry: samples up to `n` keys with a TTL and deletes the
  /// expired ones; returns {sampled, deleted}.
  std::pair<std::size_t, std::size_t> expire_sample(std::size_t n, std::int64_t now);

  /// Eviction's random pick (evict.hpp): a key chosen at random among all
  /// keys, or among those with a TTL when `with_ttl`; nullptr when there is
  /// none. Expired keys not yet deleted are candidates too, as in Redis.
  Entry* random_candidate(bool with_ttl) noexcept;
  /// Eviction's sample (Redis's dictGetSomeKeys): calls visit(const
  /// Entry&) for up to `n` distinct keys (all keys, or those with a TTL),
  /// read on from a random place; all of them when there are at most `n`.
  template <class F>
  void sample(bool with_ttl, std::size_t n, F&& visit) const {
    if (with_ttl) {
      const std::size_t size = expires_.size();
      if (size == 0) return;
      const std::size_t start = rng_() % size;
      for (std::size_t i = 0; i < n && i < size; ++i) visit(*expires_[(start + i) % size]);
      return;
    }
    // Consecutive buckets in cursor order from a random one: each bucket
    // once, so the keys are distinct.
    std::size_t seen = 0;
    std::uint64_t v = rng_();
    for (std::size_t b = 0; b < table_.buckets() && seen < n; ++b)
      v = table_.scan(v, [&](const Entry& e) {
        if (seen++ < n) visit(e);
      });
  }
  /// Records an access to e (Redis's lookupKey: the LRU clock, or under an
  /// LFU policy updateLFU's decay and logarithmic increment).
  void touch(Entry* e, std::int64_t now) noexcept;
  /// Where this shard reads the access-clock parameters; Keyspace points
  /// its shards at its own. Set before the shard is shared.
  void use_clock(const AccessClock* clock) noexcept { clock_ = clock; }
  const AccessClock& clock() const noexcept { return *clock_; }
  /// Where expired keys are reported (null: nowhere). Set before the
  /// shard is shared (Keyspace::set_expiry_listener).
  void use_expiry_listener(ExpiryListener* l) noexcept { on_expired_ = l; }

  Table& table() noexcept { return table_; }
  const ShardCounters& counters() const noexcept { return counters_; }

  /// Bytes e costs, as charged to counters().bytes: the allocator's
  /// usable size (malloc_usable_size) of the Entry node and of the key's
  /// and the string value's heap buffers (none for a short string kept
  /// inside the std::string), one bucket pointer, and a non-string
  /// value's estimate (Object::bytes(), not walked allocation by
  /// allocation: that would cost O(elements) on every change).
  static std::int64_t cost(const Entry& e) noexcept;

 private:
  void touch_watchers(std::string_view key) noexcept;
  Table table_;
  /// Watched keys of this shard and the flags watching them.
  std::unordered_map<std::string, std::vector<std::atomic<bool>*>> watched_;
  std::vector<Entry*> expires_;           // keys with a TTL, in no order
  mutable std::minstd_rand rng_{0x5eed};  // guarded by mu, like the rest
  ShardCounters counters_;
  const AccessClock* clock_ = &kLruClock;
  ExpiryListener* on_expired_ = nullptr;
  static const AccessClock kLruClock;  // a lone shard's: LRU, Redis's defaults
};

/// The whole keyspace: kShards shards chosen by the top bits of the key's
/// hash (the table uses the low bits). Thread- and fiber-safe through the
/// shards' mutexes.
class Keyspace {
 public:
  /// Empty shards that read this keyspace's AccessClock. @throws
  /// std::bad_alloc.
  Keyspace() {
    for (Shard& s : shards_) s.use_clock(&clock_);
  }
  Keyspace(const Keyspace&) = delete;
  Keyspace& operator=(const Keyspace&) = delete;

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
  /// Shard::recount() over all shards, each under its lock: equals bytes()
  /// when nothing runs meanwhile.
  std::int64_t recounted_bytes();
  /// Clients blocked on keys now (INFO's blocked_clients; Shard::count_blocked).
  std::int64_t blocked_clients() const noexcept;

  /// (key, client) pairs watched now (WATCH), kept by the command layer:
  /// while 0, a write need not look for watchers. Relaxed: WATCH counts
  /// with the key's shard locked and a write reads it with that shard
  /// locked, so the shard's mutex orders the two.
  std::atomic<std::int64_t>& watchers() noexcept { return watchers_; }

  /// How accesses are recorded in every shard (the server sets it from
  /// maxmemory-policy, lfu-log-factor and lfu-decay-time).
  AccessClock& access_clock() noexcept { return clock_; }

  /// Reports every shard's expired keys to `l` (the server's keyspace
  /// notifications). Call before the keyspace is shared.
  void set_expiry_listener(ExpiryListener* l) noexcept {
    for (Shard& s : shards_) s.use_expiry_listener(l);
  }

 private:
  AccessClock clock_;  // before shards_: they point at it
  Shard shards_[kShards];
  std::atomic<std::int64_t> watchers_{0};
};

/// Redis's glob match (src/util.c stringmatchlen): `*`, `?`, `[...]` with
/// `^` negation and `a-z` ranges, and `\` escapes. Case-sensitive unless
/// `nocase` (ASCII letters).
bool glob_match(std::string_view pattern, std::string_view text, bool nocase = false) noexcept;

}  // namespace kv
