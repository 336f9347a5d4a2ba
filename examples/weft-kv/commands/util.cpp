// weft-kv commands: shared helpers (util.hpp).
#include "commands/util.hpp"

#include <charconv>
#include <climits>

namespace kv::cmd {

bool eq_ci(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
  }
  return true;
}

// Redis's string2ll: no spaces, no '+', no leading zeros, no "-0", at most
// 20 characters, no overflow.
bool parse_ll(std::string_view s, long long& out) noexcept {
  if (s.empty() || s.size() > 20) return false;
  if (s.size() == 1 && s[0] == '0') {
    out = 0;
    return true;
  }
  std::size_t i = 0;
  const bool neg = s[0] == '-';
  if (neg) ++i;
  if (i >= s.size() || s[i] < '1' || s[i] > '9') return false;
  unsigned long long v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    const unsigned d = static_cast<unsigned>(s[i] - '0');
    if (v > (ULLONG_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  if (neg) {
    if (v > static_cast<unsigned long long>(LLONG_MAX) + 1) return false;
    out = v == static_cast<unsigned long long>(LLONG_MAX) + 1 ? LLONG_MIN
                                                              : -static_cast<long long>(v);
  } else {
    if (v > static_cast<unsigned long long>(LLONG_MAX)) return false;
    out = static_cast<long long>(v);
  }
  return true;
}

std::string ll_to_string(long long v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

void arity_error(Context& c, std::string_view name) {
  err(c, "ERR wrong number of arguments for '" + std::string(name) + "' command");
}

void expire_error(Context& c, const char* cmd) {
  err(c, std::string("ERR invalid expire time in '") + cmd + "' command");
}

void note_subcommand(Context& c, const char* full_name) noexcept {
  if (c.client != nullptr) c.client->last_cmd.store(full_name, std::memory_order_relaxed);
}

MultiLock::MultiLock(Keyspace& ks, std::span<const std::string_view> keys, std::size_t step) {
  for (std::size_t i = 0; i < keys.size(); i += step)
    want_[Keyspace::shard_index(Keyspace::hash(keys[i]))] = true;
  lock(ks);
}

MultiLock::MultiLock(Keyspace& ks) {
  want_.fill(true);
  lock(ks);
}

MultiLock::~MultiLock() {
  for (std::size_t i = n_; i-- > 0;) held_[i]->unlock();
}

void MultiLock::lock(Keyspace& ks) {
  for (std::size_t i = 0; i < Keyspace::kShards; ++i) {
    if (!want_[i]) continue;
    weft::Mutex& m = ks.shard(i).mu;
    m.lock();  // may throw Cancelled: the destructor releases the others
    held_[n_++] = &m;
  }
}

// Sets key to value, dropping any TTL unless keep_ttl. The shard is locked.
Entry* store(Shard& sh, std::string_view key, std::uint64_t h, std::string_view value,
             std::int64_t now, bool keep_ttl) {
  Entry* e = sh.find(key, h, now);
  if (e == nullptr) {
    e = sh.insert(key, h);
  } else if (!keep_ttl && e->expire_at >= 0) {
    sh.set_expire(e, -1);
  }
  sh.assign(e, value);
  return e;
}

}  // namespace kv::cmd
