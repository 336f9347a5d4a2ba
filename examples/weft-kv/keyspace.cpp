// weft-kv keyspace: see keyspace.hpp.
#include "keyspace.hpp"

#include <chrono>
#include <functional>
#include <memory>

namespace kv {

std::int64_t unix_ms() noexcept {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// --- Table ------------------------------------------------------------------

namespace {
constexpr std::size_t kMinBuckets = 4;
}

Table::Table() : buckets_(kMinBuckets, nullptr) {}

Table::~Table() {
  clear();
}

std::uint64_t Table::reverse_bits(std::uint64_t v) noexcept {
  v = ((v >> 1) & 0x5555555555555555ull) | ((v & 0x5555555555555555ull) << 1);
  v = ((v >> 2) & 0x3333333333333333ull) | ((v & 0x3333333333333333ull) << 2);
  v = ((v >> 4) & 0x0F0F0F0F0F0F0F0Full) | ((v & 0x0F0F0F0F0F0F0F0Full) << 4);
  return __builtin_bswap64(v);
}

Entry* Table::find(std::string_view key, std::uint64_t h) const noexcept {
  for (Entry* e = buckets_[h & (buckets_.size() - 1)]; e != nullptr; e = e->next) {
    if (e->hash == h && e->key == key) return e;
  }
  return nullptr;
}

Entry* Table::insert(std::string_view key, std::uint64_t h) {
  if (size_ + 1 > buckets_.size()) rehash(buckets_.size() * 2);
  auto e = std::make_unique<Entry>();
  e->hash = h;
  e->key.assign(key);
  Entry*& head = buckets_[h & (buckets_.size() - 1)];
  e->next = head;
  head = e.release();
  ++size_;
  return head;
}

std::unique_ptr<Entry> Table::unlink(Entry* e) noexcept {
  Entry** link = &buckets_[e->hash & (buckets_.size() - 1)];
  while (*link != e) link = &(*link)->next;
  *link = e->next;
  e->next = nullptr;
  --size_;
  if (buckets_.size() > kMinBuckets && size_ * 8 < buckets_.size()) {
    try {
      rehash(buckets_.size() / 2);
    } catch (const std::bad_alloc&) {
      // Keep the larger array: shrinking is an optimisation.
    }
  }
  return std::unique_ptr<Entry>(e);
}

void Table::clear() noexcept {
  for (Entry*& head : buckets_) {
    while (head != nullptr) {
      Entry* next = head->next;
      delete head;
      head = next;
    }
  }
  size_ = 0;
  std::vector<Entry*> small(kMinBuckets, nullptr);
  buckets_.swap(small);
}

void Table::rehash(std::size_t n) {
  std::vector<Entry*> fresh(n, nullptr);  // may throw: table unchanged
  for (Entry* head : buckets_) {
    while (head != nullptr) {
      Entry* next = head->next;
      Entry*& slot = fresh[head->hash & (n - 1)];
      head->next = slot;
      slot = head;
      head = next;
    }
  }
  buckets_.swap(fresh);
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

Entry* Shard::find(std::string_view key, std::uint64_t h, std::int64_t now) noexcept {
  Entry* e = table_.find(key, h);
  if (e != nullptr && e->expire_at >= 0 && e->expire_at <= now) {
    erase(e);
    counters_.expired.store(counters_.expired.load(std::memory_order_relaxed) + 1,
                            std::memory_order_relaxed);
    return nullptr;
  }
  return e;
}

std::int64_t Shard::cost(const Entry& e) noexcept {
  return kEntryOverhead + static_cast<std::int64_t>(e.key.size() + e.value.size()) +
         (e.object ? e.object->bytes() : 0);
}

void Shard::recharge(Entry* e) noexcept {
  const std::int64_t now = cost(*e);
  bump(counters_.bytes, now - e->charged);
  e->charged = now;
}

Entry* Shard::insert(std::string_view key, std::uint64_t h) {
  Entry* e = table_.insert(key, h);
  bump(counters_.keys, 1);
  recharge(e);
  return e;
}

void Shard::assign(Entry* e, std::string_view value) {
  e->value.assign(value);
  e->object.reset();
  recharge(e);
}

void Shard::assign(Entry* e, std::unique_ptr<Object> object) noexcept {
  std::string().swap(e->value);
  e->object = std::move(object);
  recharge(e);
}

void Shard::append(Entry* e, std::string_view tail) {
  e->value.append(tail);
  recharge(e);
}

void Shard::set_expire(Entry* e, std::int64_t at) {
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

std::size_t Shard::clear() noexcept {
  const std::size_t n = table_.size();
  table_.clear();
  expires_.clear();
  expires_.shrink_to_fit();
  counters_.keys.store(0, std::memory_order_relaxed);
  counters_.expires.store(0, std::memory_order_relaxed);
  counters_.bytes.store(0, std::memory_order_relaxed);
  return n;
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
  return std::hash<std::string_view>{}(key);
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

std::uint64_t Keyspace::expired() const noexcept {
  std::uint64_t n = 0;
  for (const Shard& s : shards_) n += s.counters().expired.load(std::memory_order_relaxed);
  return n;
}

// --- glob -------------------------------------------------------------------

bool glob_match(std::string_view p, std::string_view s) noexcept {
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
        const auto ch = static_cast<unsigned char>(s[si]);
        while (q < p.size() && p[q] != ']') {
          if (p[q] == '\\' && q + 1 < p.size()) {
            ++q;
            if (static_cast<unsigned char>(p[q]) == ch) matched = true;
            ++q;
          } else if (q + 2 < p.size() && p[q + 1] == '-') {  // even [a-]: a range to ']'
            auto lo = static_cast<unsigned char>(p[q]);
            auto hi = static_cast<unsigned char>(p[q + 2]);
            if (lo > hi) std::swap(lo, hi);
            if (ch >= lo && ch <= hi) matched = true;
            q += 3;
          } else {
            if (static_cast<unsigned char>(p[q]) == ch) matched = true;
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
        if (p[q] == s[si]) {
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
