// weft-kv: the maxmemory policies (Redis 7.0's maxmemory-policy), their
// names and the flags eviction dispatches on. A leaf header: options.hpp,
// settings.hpp and evict.hpp use it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace kv {

/// What happens when a command would run with used memory above maxmemory
/// (Redis's MAXMEMORY_* constants, src/server.h): refuse writes with the
/// OOM error (noeviction), or delete keys chosen by the policy first. The
/// volatile-* policies choose only among keys with a TTL; allkeys-* among
/// all keys.
enum class MaxmemoryPolicy : std::uint8_t {
  volatile_lru,
  volatile_lfu,
  volatile_random,
  volatile_ttl,
  allkeys_lru,
  allkeys_lfu,
  allkeys_random,
  noeviction,
};

/// Every policy in Redis's configuration order (config.c's
/// maxmemory_policy_enum), which its CONFIG SET error lists.
inline constexpr MaxmemoryPolicy kMaxmemoryPolicies[] = {
    MaxmemoryPolicy::volatile_lru,    MaxmemoryPolicy::volatile_lfu,
    MaxmemoryPolicy::volatile_random, MaxmemoryPolicy::volatile_ttl,
    MaxmemoryPolicy::allkeys_lru,     MaxmemoryPolicy::allkeys_lfu,
    MaxmemoryPolicy::allkeys_random,  MaxmemoryPolicy::noeviction,
};

/// Redis's name for a policy ("allkeys-lru", ...).
constexpr const char* policy_name(MaxmemoryPolicy p) noexcept {
  switch (p) {
    case MaxmemoryPolicy::volatile_lru:
      return "volatile-lru";
    case MaxmemoryPolicy::volatile_lfu:
      return "volatile-lfu";
    case MaxmemoryPolicy::volatile_random:
      return "volatile-random";
    case MaxmemoryPolicy::volatile_ttl:
      return "volatile-ttl";
    case MaxmemoryPolicy::allkeys_lru:
      return "allkeys-lru";
    case MaxmemoryPolicy::allkeys_lfu:
      return "allkeys-lfu";
    case MaxmemoryPolicy::allkeys_random:
      return "allkeys-random";
    case MaxmemoryPolicy::noeviction:
      return "noeviction";
  }
  return "noeviction";
}

/// The policy called `name` (any ASCII case, as Redis's enum configs), or
/// nullopt.
inline std::optional<MaxmemoryPolicy> parse_policy(std::string_view name) noexcept {
  for (const MaxmemoryPolicy p : kMaxmemoryPolicies) {
    const std::string_view n = policy_name(p);
    if (n.size() != name.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < n.size() && same; ++i) {
      char c = name[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      same = c == n[i];
    }
    if (same) return p;
  }
  return std::nullopt;
}

/// Redis's MAXMEMORY_FLAG_LFU: keys keep a frequency counter, not an
/// access time.
constexpr bool policy_is_lfu(MaxmemoryPolicy p) noexcept {
  return p == MaxmemoryPolicy::volatile_lfu || p == MaxmemoryPolicy::allkeys_lfu;
}
/// Redis's MAXMEMORY_FLAG_LRU.
constexpr bool policy_is_lru(MaxmemoryPolicy p) noexcept {
  return p == MaxmemoryPolicy::volatile_lru || p == MaxmemoryPolicy::allkeys_lru;
}
/// Redis's MAXMEMORY_FLAG_ALLKEYS negated: candidates are the keys with a TTL.
constexpr bool policy_is_volatile(MaxmemoryPolicy p) noexcept {
  return p == MaxmemoryPolicy::volatile_lru || p == MaxmemoryPolicy::volatile_lfu ||
         p == MaxmemoryPolicy::volatile_random || p == MaxmemoryPolicy::volatile_ttl;
}

}  // namespace kv
