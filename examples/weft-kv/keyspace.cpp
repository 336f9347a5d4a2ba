// weft-kv keyspace: see keyspace.hpp.
#include "keyspace.hpp"

#include <malloc.h>

#include <cctype>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>

#include "evict.hpp"

namespace kv {

std::int64_t unix_ms() noexcept {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// --- Table ------------------------------------------------------------------

std::uint64_t hash_bytes(std::string_view s) noexcept {
  return std::hash<std::string_view>{}(s);
}

Entry* Table::insert(std::string_view key, std::uint64_t h) {
  auto e = std::make_unique<Entry>();
  e->hash = h;
  e->key.assign(key);
  return Dict<Entry>::insert(std::move(e));
}

// --- Shard ------------------------------------------------------------------

const char* type_name(Type t) noexcept {
  switch (t) {
    case Type::string:
      return "string";
    case Type::list:
      return "list";
    case Type::set:
      return "set";
    case Type::zset:
      return "zset";
    case Type::hash:
      return "hash";
  }
  return "none";
}

namespace {
void bump(std::atomic<std::int64_t>& c, std::int64_t d) noexcept {
  c.store(c.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
}
}  // namespace

Entry* Shard::find(std::string_view key, std::uint64_t h, std::int64_t now, bool touch) noexcept {
  Entry* e = table_.find(key, h);
  if (e == nullptr) return nullptr;
  if (e->expire_at >= 0 && e->expire_at <= now) {
    if (on_expired_ != nullptr) on_expired_->expired(e->key);
    erase(e);
    counters_.expired.store(counters_.expired.load(std::memory_order_relaxed) + 1,
                            std::memory_order_relaxed);
    return nullptr;
  }
  if (touch) this->touch(e, now);
  return e;
}

const AccessClock Shard::kLruClock{};

void Shard::touch(Entry* e, std::int64_t now) noexcept {
  if (!clock_->lfu.load(std::memory_order_relaxed)) {
    e->access_clock = lru_clock(now);
    return;
  }
  // Redis's updateLFU: decay for the minutes elapsed, then the
  // logarithmic increment, stamped with the current minutes.
  const std::uint32_t minutes = lfu_minutes(now);
  std::uint8_t counter = lfu_decr_and_return(
      e->access_clock, minutes, clock_->lfu_decay_time.load(std::memory_order_relaxed));
  const double r = static_cast<double>(rng_() - std::minstd_rand::min()) /
                   static_cast<double>(std::minstd_rand::max() - std::minstd_rand::min());
  counter = lfu_log_incr(counter, clock_->lfu_log_factor.load(std::memory_order_relaxed), r);
  e->access_clock = lfu_clock(minutes, counter);
}

Entry* Shard::random_candidate(bool with_ttl) noexcept {
  if (!with_ttl) return table_.random(rng_);
  return expires_.empty() ? nullptr : expires_[rng_() % expires_.size()];
}

namespace {
// The allocator's usable size of a string's heap buffer; 0 when the text
// lives in the std::string itself (the short-string buffer).
std::int64_t heap_bytes(const std::string& s) noexcept {
  const auto p = reinterpret_cast<std::uintptr_t>(s.data());
  const auto self = reinterpret_cast<std::uintptr_t>(&s);
  if (p >= self && p < self + sizeof s) return 0;
  return static_cast<std::int64_t>(::malloc_usable_size(const_cast<char*>(s.data())));
}
}  // namespace

std::int64_t Shard::cost(const Entry& e) noexcept {
  return static_cast<std::int64_t>(::malloc_usable_size(const_cast<Entry*>(&e)) + sizeof(Entry*)) +
         heap_bytes(e.key) + heap_bytes(e.value) + (e.object ? e.object->bytes() : 0);
}

void Shard::recharge(Entry* e) noexcept {
  const std::int64_t now = cost(*e);
  bump(counters_.bytes, now - e->charged);
  e->charged = now;
}

Entry* Shard::insert(std::string_view key, std::uint64_t h) {
  Entry* e = table_.insert(key, h);
  signal_modified(key);
  // Redis's createObject: the LRU clock, or LFU_INIT_VAL at the current minutes.
  const std::int64_t now = unix_ms();
  e->access_clock = clock_->lfu.load(std::memory_order_relaxed)
                        ? lfu_clock(lfu_minutes(now), kLfuInitVal)
                        : lru_clock(now);
  bump(counters_.keys, 1);
  recharge(e);
  return e;
}

void Shard::assign(Entry* e, std::string_view value, StringForm form) {
  signal_modified(e->key);
  e->value.assign(value);
  e->object.reset();
  e->set_form(form);
  recharge(e);
}

void Shard::assign(Entry* e, std::unique_ptr<Object> object) noexcept {
  signal_modified(e->key);
  std::string().swap(e->value);
  e->object = std::move(object);
  recharge(e);
}

void Shard::append(Entry* e, std::string_view tail) {
  signal_modified(e->key);
  e->value.append(tail);
  e->set_form(StringForm::raw);
  recharge(e);
}

void Shard::set_expire(Entry* e, std::int64_t at) {
  signal_modified(e->key);
  if (at >= 0 && e->expire_at < 0) {
    expires_.push_back(e);  // may throw: nothing changed yet
    e->expire_slot = static_cast<std::uint32_t>(expires_.size() - 1);
    bump(counters_.expires, 1);
  } else if (at < 0 && e->expire_at >= 0) {
    Entry* last = expires_.back();
    expires_[e->expire_slot] = last;
    last->expire_slot = e->expire_slot;
    expires_.pop_back();
    bump(counters_.expires, -1);
  }
  e->expire_at = at;
}

void Shard::erase(Entry* e) noexcept {
  signal_modified(e->key);
  if (e->expire_at >= 0) {
    Entry* last = expires_.back();
    expires_[e->expire_slot] = last;
    last->expire_slot = e->expire_slot;
    expires_.pop_back();
    bump(counters_.expires, -1);
  }
  bump(counters_.bytes, -e->charged);
  bump(counters_.keys, -1);
  table_.unlink(e);  // the unique_ptr deletes it
}

void Shard::count_blocked(std::int64_t delta) noexcept {
  // A read-modify-write: the server that serves a client counts it out
  // without holding this shard's lock. Relaxed: a statistic.
  counters_.blocked.fetch_add(delta, std::memory_order_relaxed);
}

std::size_t Shard::clear() noexcept {
  // Redis's touchAllWatchedKeysInDb: only the watched keys that existed.
  for (const auto& [key, flags] : watched_)
    if (table_.find(key, Keyspace::hash(key)) != nullptr)
      for (std::atomic<bool>* f : flags) f->store(true, std::memory_order_relaxed);
  const std::size_t n = table_.size();
  table_.clear();
  expires_.clear();
  expires_.shrink_to_fit();
  counters_.keys.store(0, std::memory_order_relaxed);
  counters_.expires.store(0, std::memory_order_relaxed);
  counters_.bytes.store(0, std::memory_order_relaxed);
  return n;
}

void Shard::watch(std::string_view key, std::atomic<bool>* dirty) {
  auto it = watched_.find(std::string(key));
  if (it == watched_.end())
    it = watched_.emplace(std::string(key), std::vector<std::atomic<bool>*>{}).first;
  it->second.push_back(dirty);
}

void Shard::unwatch(std::string_view key, std::atomic<bool>* dirty) noexcept {
  const auto it = watched_.find(std::string(key));
  if (it == watched_.end()) return;
  auto& v = it->second;
  std::erase(v, dirty);
  if (v.empty()) watched_.erase(it);
}

void Shard::touch_watchers(std::string_view key) noexcept {
  // The flags are read by their clients' EXEC under this shard's lock (EXEC
  // locks every shard), which orders them: relaxed is enough.
  const auto it = watched_.find(std::string(key));
  if (it == watched_.end()) return;
  for (std::atomic<bool>* f : it->second) f->store(true, std::memory_order_relaxed);
}

std::int64_t Shard::recount() const noexcept {
  std::int64_t sum = 0;
  table_.for_each([&](const Entry& e) { sum += cost(e); });
  return sum;
}

void Shard::swap(Shard& other) noexcept {
  table_.swap(other.table_);
  expires_.swap(other.expires_);
  const auto exchange = [](auto& a, auto& b) {
    const auto t = a.load(std::memory_order_relaxed);
    a.store(b.load(std::memory_order_relaxed), std::memory_order_relaxed);
    b.store(t, std::memory_order_relaxed);
  };
  exchange(counters_.keys, other.counters_.keys);
  exchange(counters_.expires, other.counters_.expires);
  exchange(counters_.bytes, other.counters_.bytes);
}

std::pair<std::size_t, std::size_t> Shard::expire_sample(std::size_t n, std::int64_t now) {
  std::size_t sampled = 0;
  std::size_t deleted = 0;
  while (sampled < n && !expires_.empty()) {
    ++sampled;
    Entry* e = expires_[rng_() % expires_.size()];
    if (e->expire_at <= now) {
      if (on_expired_ != nullptr) on_expired_->expired(e->key);
      erase(e);
      ++deleted;
    }
  }
  counters_.expired.store(counters_.expired.load(std::memory_order_relaxed) + deleted,
                          std::memory_order_relaxed);
  return {sampled, deleted};
}

// --- Keyspace ---------------------------------------------------------------

std::uint64_t Keyspace::hash(std::string_view key) noexcept {
  return hash_bytes(key);
}

std::int64_t Keyspace::keys() const noexcept {
  std::int64_t n = 0;
  for (const Shard& s : shards_) n += s.counters().keys.load(std::memory_order_relaxed);
  return n;
}

std::int64_t Keyspace::expires() const noexcept {
  std::int64_t n = 0;
  for (const Shard& s : shards_) n += s.counters().expires.load(std::memory_order_relaxed);
  return n;
}

std::int64_t Keyspace::bytes() const noexcept {
  std::int64_t n = 0;
  for (const Shard& s : shards_) n += s.counters().bytes.load(std::memory_order_relaxed);
  return n;
}

std::int64_t Keyspace::recounted_bytes() {
  std::int64_t n = 0;
  for (Shard& s : shards_) {
    std::lock_guard lk(s.mu);
    n += s.recount();
  }
  return n;
}

std::uint64_t Keyspace::expired() const noexcept {
  std::uint64_t n = 0;
  for (const Shard& s : shards_) n += s.counters().expired.load(std::memory_order_relaxed);
  return n;
}

std::int64_t Keyspace::blocked_clients() const noexcept {
  std::int64_t n = 0;
  for (const Shard& s : shards_) n += s.counters().blocked.load(std::memory_order_relaxed);
  return n;
}

// --- glob -------------------------------------------------------------------

bool glob_match(std::string_view p, std::string_view s, bool nocase) noexcept {
  const auto fold = [nocase](char c) {
    const auto u = static_cast<unsigned char>(c);
    return nocase ? static_cast<unsigned char>(std::tolower(u)) : u;
  };
  // Iterative matcher with single-star backtracking: on a mismatch, retry
  // from the last '*' one character further (linear in practice, no
  // recursion, so a hostile pattern cannot overflow the fiber's stack).
  std::size_t pi = 0, si = 0;
  std::size_t star_p = std::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size()) {
      const char c = p[pi];
      if (c == '*') {
        while (pi < p.size() && p[pi] == '*') ++pi;
        if (pi == p.size()) return true;
        star_p = pi;
        star_s = si;
        continue;
      }
      if (c == '?') {
        ++pi;
        ++si;
        continue;
      }
      if (c == '[') {
        std::size_t q = pi + 1;
        bool negate = false;
        if (q < p.size() && p[q] == '^') {
          negate = true;
          ++q;
        }
        bool matched = false;
        const auto ch = fold(s[si]);
        while (q < p.size() && p[q] != ']') {
          if (p[q] == '\\' && q + 1 < p.size()) {
            ++q;
            if (fold(p[q]) == ch) matched = true;
            ++q;
          } else if (q + 2 < p.size() && p[q + 1] == '-') {  // even [a-]: a range to ']'
            auto lo = fold(p[q]);
            auto hi = fold(p[q + 2]);
            if (lo > hi) std::swap(lo, hi);
            if (ch >= lo && ch <= hi) matched = true;
            q += 3;
          } else {
            if (fold(p[q]) == ch) matched = true;
            ++q;
          }
        }
        // An unterminated class ends at the pattern's end (as Redis).
        pi = q < p.size() ? q + 1 : q;
        if (negate) matched = !matched;
        if (matched) {
          ++si;
          continue;
        }
      } else {
        std::size_t q = pi;
        if (c == '\\' && q + 1 < p.size()) ++q;
        if (fold(p[q]) == fold(s[si])) {
          pi = q + 1;
          ++si;
          continue;
        }
      }
    }
    if (star_p == std::string_view::npos) return false;
    pi = star_p;
    si = ++star_s;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

}  // namespace kv
