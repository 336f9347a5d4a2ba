// weft-kv: eviction under maxmemory, as Redis 7.0's src/evict.c.
//
// Before a command runs while used memory is above maxmemory, the server
// deletes keys chosen by maxmemory-policy until it has freed the excess
// (Redis's performEvictions), or, when it cannot (noeviction, or no
// candidate), refuses commands that may grow memory with the OOM error.
//
// The choice is Redis's approximation: sample `maxmemory-samples` keys,
// give each an "idle" score (LRU: ms since its last access; LFU: 255 minus
// its decayed logarithmic counter; volatile-ttl: the sooner it expires the
// higher), merge them into a 16-entry pool kept sorted by score ascending
// (evictionPoolPopulate), and evict the highest-scored key still present.
// The pool outlives one eviction, so good candidates from earlier samples
// compete with new ones. Redis samples `maxmemory-samples` keys of each
// database per round (dictGetSomeKeys: consecutive buckets from a random
// one); weft-kv takes them from the shards in turn, starting after the
// last one sampled, as many from each as it has (keys spread evenly over
// shards by hash), so one round looks at as many keys as Redis's does with
// one database. Only the sampled shard's lock
// is held while sampling, and only the victim's while deleting it: an
// eviction never holds two shard locks. Lock order: the pool's lock (one
// eviction at a time, as Redis's single thread) first, then one shard's;
// nothing takes the pool's lock while holding a shard's.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "keyspace.hpp"
#include "policy.hpp"
#include "weft/sync.hpp"

namespace kv {

struct Context;

// --- Redis's LFU (src/evict.c, "LFU (Least Frequently Used) implementation") --

/// A new key's counter (Redis's LFU_INIT_VAL): new keys are not evicted at
/// once for having no history.
inline constexpr std::uint8_t kLfuInitVal = 5;

/// Redis's LFUGetTimeInMinutes: Unix minutes, 16 bits.
inline std::uint32_t lfu_minutes(std::int64_t unix_ms) noexcept {
  return static_cast<std::uint32_t>(unix_ms / 1000 / 60) & 0xFFFFu;
}

/// Redis's LFUTimeElapsed: minutes from `ldt` to `now`, both 16-bit
/// minute clocks (one wrap assumed).
inline std::uint32_t lfu_elapsed(std::uint32_t ldt, std::uint32_t now) noexcept {
  return now >= ldt ? now - ldt : 65535 - ldt + now;
}

/// Redis's LFULogIncr: increments `counter` with probability
/// 1 / ((counter - LFU_INIT_VAL) * log_factor + 1) (a base below 0 counts
/// as 0); `r` is a uniform draw in [0, 1] (Redis: rand()/RAND_MAX).
/// Saturates at 255.
inline std::uint8_t lfu_log_incr(std::uint8_t counter, std::int64_t log_factor, double r) noexcept {
  if (counter == 255) return 255;
  double base = static_cast<double>(counter) - kLfuInitVal;
  if (base < 0) base = 0;
  const double p = 1.0 / (base * static_cast<double>(log_factor) + 1);
  return r < p ? static_cast<std::uint8_t>(counter + 1) : counter;
}

/// Redis's LFUDecrAndReturn: the counter in an LFU access clock (low 8
/// bits) less one per `decay_time` minutes elapsed since its minutes (high
/// 16 bits), at least 0; decay_time 0 never decays. Does not store.
inline std::uint8_t lfu_decr_and_return(std::uint32_t clock, std::uint32_t now_minutes,
                                        std::int64_t decay_time) noexcept {
  const std::uint32_t ldt = clock >> 8;
  std::uint32_t counter = clock & 255u;
  const std::uint64_t periods =
      decay_time > 0 ? lfu_elapsed(ldt, now_minutes) / static_cast<std::uint64_t>(decay_time) : 0;
  if (periods != 0) counter = periods > counter ? 0 : counter - static_cast<std::uint32_t>(periods);
  return static_cast<std::uint8_t>(counter);
}

/// An LFU access clock: minutes in the high 16 bits, counter in the low 8.
inline std::uint32_t lfu_clock(std::uint32_t minutes, std::uint8_t counter) noexcept {
  return ((minutes & 0xFFFFu) << 8) | counter;
}

/// Redis's estimateObjectIdleTime: ms since an LRU access clock `then`, at
/// the LRU clock `now` (one wrap of the 24-bit clock assumed; 1 s steps).
inline std::uint64_t lru_idle_ms(std::uint32_t then, std::uint32_t now) noexcept {
  const std::uint64_t s = now >= then ? now - then : now + (0xFFFFFFu - then);
  return s * 1000;
}

// --- the eviction pool --------------------------------------------------------

/// Redis's eviction pool (evictionPoolEntry[EVPOOL_SIZE]): at most 16
/// candidates sorted by score ascending, empty slots at the end. Not
/// thread-safe (the Evictor's lock guards it).
class EvictionPool {
 public:
  static constexpr std::size_t kSize = 16;  ///< Redis's EVPOOL_SIZE

  struct Slot {
    std::uint64_t score = 0;  ///< Redis's `idle`: the higher, the sooner evicted
    std::string key;
    std::uint32_t shard = 0;
    bool used = false;
  };

  /// evictionPoolPopulate's insertion of one sampled key: placed before
  /// the first slot with a higher or equal score (or the first empty one);
  /// dropped when the pool is full and it scores below every entry; when
  /// full, the lowest-scored entry leaves to make room. A key already in
  /// the pool (sampled twice) is not added again. @throws std::bad_alloc
  /// (the pool is unchanged).
  void insert(std::uint64_t score, std::string_view key, std::uint32_t shard);
  /// The slot i (0: lowest score).
  const Slot& operator[](std::size_t i) const noexcept { return slots_[i]; }
  /// Empties slot i and closes the gap (Redis leaves the hole; closing it
  /// keeps "empty slots at the end" true for insert()).
  void remove(std::size_t i) noexcept;
  /// Occupied slots (they are slots 0 .. size()-1).
  std::size_t size() const noexcept;
  void clear() noexcept;

 private:
  std::array<Slot, kSize> slots_;
};

// --- the evictor --------------------------------------------------------------

/// Runs eviction for one server: the pool, the next shard to sample, and
/// the count of keys evicted. Thread- and fiber-safe.
class Evictor {
 public:
  /// Redis's performEvictions as processCommand calls it, for the command
  /// in `c` with the limit `maxmemory` (> 0): when used memory is above
  /// it, evicts keys by the policy until the excess is freed. Returns true
  /// when memory is still above the limit (the policy is noeviction, or no
  /// key is left to evict): commands that may grow memory are then
  /// refused with the OOM error. Each evicted key is deleted under its
  /// shard's lock, propagated as DEL (the AOF; c.aof_seq), and announced
  /// (evicted_key). Must be called with no shard locked by this fiber.
  /// @throws weft::Cancelled while waiting for a lock.
  bool out_of_memory(Context& c, std::uint64_t maxmemory);

  /// Keys evicted since start or reset_stats() (INFO's evicted_keys).
  std::uint64_t evicted() const noexcept { return evicted_.load(std::memory_order_relaxed); }
  void reset_stats() noexcept { evicted_.store(0, std::memory_order_relaxed); }

  /// The pool's score for e under `policy` at `now` (unix ms): LRU idle ms,
  /// 255 - the decayed LFU counter, or UINT64_MAX - expire time for
  /// volatile-ttl; 0 for the random policies (never pooled).
  static std::uint64_t score(const Entry& e, MaxmemoryPolicy policy, std::int64_t now,
                             std::int64_t lfu_decay_time) noexcept;

 private:
  /// Picks and evicts one key; the bytes it freed, or -1 when no
  /// candidate is left.
  std::int64_t evict_one(Context& c, MaxmemoryPolicy policy);
  /// The one place an evicted key is announced: counts it (INFO's
  /// evicted_keys) and publishes the `evicted` keyspace event (class e,
  /// notify.hpp) with its shard still locked.
  void evicted_key(Context& c, std::string_view key) noexcept;

  weft::Mutex mu_;  // guards everything below; taken before any shard's lock
  EvictionPool pool_;
  std::minstd_rand rng_{0xe51c7};
  std::size_t next_shard_ = 0;
  std::atomic<std::uint64_t> evicted_{0};  // relaxed: a statistic
};

}  // namespace kv
