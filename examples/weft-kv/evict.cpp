// weft-kv eviction: see evict.hpp (Redis 7.0's src/evict.c).
#include "evict.hpp"

#include <algorithm>
#include <limits>
#include <mutex>

#include "command.hpp"
#include "notify.hpp"

namespace kv {

// --- EvictionPool -------------------------------------------------------------

void EvictionPool::insert(std::uint64_t score, std::string_view key, std::uint32_t shard) {
  for (const Slot& s : slots_)
    if (s.used && s.shard == shard && s.key == key) return;
  // evictionPoolPopulate: the first empty slot, or the first whose score
  // is not below ours.
  std::size_t k = 0;
  while (k < kSize && slots_[k].used && slots_[k].score < score) ++k;
  // Full and we score below every entry: not worth keeping.
  if (k == 0 && slots_[kSize - 1].used) return;
  std::string copy(key);  // may throw: nothing moved yet
  if (k < kSize && !slots_[k].used) {
    // An empty slot: ours.
  } else if (!slots_[kSize - 1].used) {
    // Room on the right: shift k.. one to the right.
    std::move_backward(slots_.begin() + static_cast<std::ptrdiff_t>(k), slots_.end() - 1,
                       slots_.end());
  } else {
    // Full: the lowest-scored entry (slot 0) leaves; insert at k - 1.
    --k;
    std::move(slots_.begin() + 1, slots_.begin() + static_cast<std::ptrdiff_t>(k) + 1,
              slots_.begin());
  }
  slots_[k] = Slot{score, std::move(copy), shard, true};
}

void EvictionPool::remove(std::size_t i) noexcept {
  std::move(slots_.begin() + static_cast<std::ptrdiff_t>(i) + 1, slots_.end(),
            slots_.begin() + static_cast<std::ptrdiff_t>(i));
  slots_[kSize - 1] = Slot{};
}

std::size_t EvictionPool::size() const noexcept {
  std::size_t n = 0;
  while (n < kSize && slots_[n].used) ++n;
  return n;
}

void EvictionPool::clear() noexcept {
  for (Slot& s : slots_) s = Slot{};
}

// --- Evictor ------------------------------------------------------------------

std::uint64_t Evictor::score(const Entry& e, MaxmemoryPolicy policy, std::int64_t now,
                             std::int64_t lfu_decay_time) noexcept {
  if (policy_is_lru(policy)) return lru_idle_ms(e.access_clock, lru_clock(now));
  if (policy_is_lfu(policy))
    return 255u - lfu_decr_and_return(e.access_clock, lfu_minutes(now), lfu_decay_time);
  if (policy == MaxmemoryPolicy::volatile_ttl)
    return std::numeric_limits<std::uint64_t>::max() - static_cast<std::uint64_t>(e.expire_at);
  return 0;
}

bool Evictor::out_of_memory(Context& c, std::uint64_t maxmemory) {
  const auto over = [&] {
    return static_cast<std::uint64_t>(std::max<std::int64_t>(c.host.used_memory(), 0)) > maxmemory;
  };
  if (!over()) return false;
  const MaxmemoryPolicy policy = c.host.settings().maxmemory_policy.load(std::memory_order_relaxed);
  if (policy == MaxmemoryPolicy::noeviction) return true;
  std::lock_guard lk(mu_);
  // Measured again under the lock: another fiber may have evicted enough
  // while this one waited. Like Redis, free the excess seen now, not
  // whatever writers add meanwhile (which the next command frees).
  const std::int64_t used = c.host.used_memory();
  const std::int64_t to_free = used - static_cast<std::int64_t>(maxmemory);
  std::int64_t freed = 0;
  while (freed < to_free) {
    const std::int64_t n = evict_one(c, policy);
    if (n < 0) return over();
    freed += n;
  }
  return false;
}

std::int64_t Evictor::evict_one(Context& c, MaxmemoryPolicy policy) {
  Keyspace& ks = c.host.keyspace();
  const bool with_ttl = policy_is_volatile(policy);
  const auto candidates = [&](const Shard& sh) {
    return (with_ttl ? sh.counters().expires : sh.counters().keys).load(std::memory_order_relaxed);
  };
  // Deletes e (its shard `sh` locked): propagated as DEL, announced.
  const auto evict = [&](Shard& sh, Entry* e) -> std::int64_t {
    const std::int64_t bytes = e->charged;
    const std::string key = e->key;  // may throw: nothing deleted yet
    sh.erase(e);
    const std::string_view argv[] = {"DEL", key};
    c.host.propagate(c, argv);
    evicted_key(c, key);
    return bytes;
  };
  if (policy == MaxmemoryPolicy::allkeys_random || policy == MaxmemoryPolicy::volatile_random) {
    for (std::size_t tried = 0; tried < Keyspace::kShards; ++tried) {
      Shard& sh = ks.shard(next_shard_++ % Keyspace::kShards);
      if (candidates(sh) == 0) continue;
      std::lock_guard lk(sh.mu);
      if (Entry* e = sh.random_candidate(with_ttl)) return evict(sh, e);
    }
    return -1;
  }
  const auto samples =
      static_cast<std::size_t>(c.host.settings().maxmemory_samples.load(std::memory_order_relaxed));
  const std::int64_t decay = c.host.settings().lfu_decay_time.load(std::memory_order_relaxed);
  // Each round samples one shard into the pool, then takes the best
  // candidate still present (performEvictions' `while (bestkey == NULL)`).
  // Bounded: keys deleted by others between the sample and the eviction
  // can make a round find nothing, but not forever.
  for (std::size_t round = 0; round < 2 * Keyspace::kShards; ++round) {
    // `samples` keys, from as many shards (in turn) as it takes to find
    // them: with fewer keys than that per shard, still as many as Redis's
    // dictGetSomeKeys would return from one dictionary.
    std::size_t sampled = 0;
    for (std::size_t tried = 0; tried < Keyspace::kShards && sampled < samples; ++tried) {
      const std::size_t idx = next_shard_++ % Keyspace::kShards;
      Shard& sh = ks.shard(idx);
      if (candidates(sh) == 0) continue;
      std::lock_guard lk(sh.mu);
      sh.sample(with_ttl, samples - sampled, [&](const Entry& e) {
        ++sampled;
        pool_.insert(score(e, policy, c.now, decay), e.key, static_cast<std::uint32_t>(idx));
      });
    }
    // From the best down: a key gone (or no longer volatile) since it was
    // pooled leaves the pool.
    for (std::size_t i = pool_.size(); i-- > 0;) {
      const std::string key = pool_[i].key;
      Shard& sh = ks.shard(pool_[i].shard);
      pool_.remove(i);
      std::lock_guard lk(sh.mu);
      Entry* e = sh.find_raw(key, Keyspace::hash(key));
      if (e == nullptr || (with_ttl && e->expire_at < 0)) continue;
      return evict(sh, e);
    }
    if (sampled == 0) return -1;
  }
  return -1;
}

void Evictor::evicted_key(Context& c, std::string_view key) noexcept {
  evicted_.fetch_add(1, std::memory_order_relaxed);
  notify(c, kNotifyEvicted, "evicted", key);
}

}  // namespace kv
