// weft-kv commands: shared helpers (util.hpp).
#include "commands/util.hpp"

#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdlib>

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

namespace {
// strtod / strtold over the whole of s with Redis's checks (string2d,
// string2ld).
template <class T, class Parse>
bool parse_float(std::string_view s, std::size_t max_len, T& out, Parse parse) {
  if (s.empty() || s.size() >= max_len) return false;
  const std::string buf(s);  // NUL-terminated; an embedded NUL stops the parse short
  if (std::isspace(static_cast<unsigned char>(buf[0]))) return false;
  char* end = nullptr;
  errno = 0;
  const T v = parse(buf.c_str(), &end);
  if (end != buf.c_str() + buf.size() || std::isnan(v)) return false;
  if (errno == ERANGE && (std::isinf(v) || v == 0)) return false;
  out = v;
  return true;
}
}  // namespace

bool parse_double(std::string_view s, double& out) {
  return parse_float(s, std::string::npos, out,
                     [](const char* p, char** e) { return std::strtod(p, e); });
}

bool parse_long_double(std::string_view s, long double& out) {
  return parse_float(s, 5 * 1024, out, [](const char* p, char** e) { return std::strtold(p, e); });
}

bool parse_at_least(Context& c, std::string_view arg, long long min, long long& out,
                    std::string_view msg) {
  if (!parse_ll(arg, out) || out < min) {
    err(c, msg);
    return false;
  }
  return true;
}

bool clip_range(long long& start, long long& end, long long len) noexcept {
  if (start < 0) start += len;
  if (end < 0) end += len;
  if (start < 0) start = 0;
  if (start > end || start >= len) return false;
  if (end >= len) end = len - 1;
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

MultiLock::MultiLock(Keyspace& ks, std::span<const std::string_view> keys, std::size_t step)
    : ks_(ks) {
  std::uint64_t want = 0;
  for (std::size_t i = 0; i < keys.size(); i += step)
    want |= std::uint64_t{1} << Keyspace::shard_index(Keyspace::hash(keys[i]));
  lock(want);
}

MultiLock::MultiLock(Keyspace& ks) : ks_(ks) {
  lock(~std::uint64_t{0});
}

MultiLock::MultiLock(Keyspace& ks, std::uint64_t shards) : ks_(ks) {
  lock(shards);
}

MultiLock::~MultiLock() {
  unlock();
}

void MultiLock::unlock() noexcept {
  for (std::uint64_t m = held_; m != 0; m &= m - 1)
    ks_.shard(static_cast<std::size_t>(__builtin_ctzll(m))).mu.unlock();
  held_ = 0;
}

void MultiLock::lock(std::uint64_t want) {
  try {
    for (; want != 0; want &= want - 1) {  // lowest index first
      const auto i = static_cast<std::size_t>(__builtin_ctzll(want));
      ks_.shard(i).mu.lock();
      held_ |= std::uint64_t{1} << i;
    }
  } catch (...) {
    // Cancelled while waiting: a constructor that throws runs no
    // destructor, so release what was taken here.
    unlock();
    throw;
  }
}

bool MultiLock::extend(std::size_t i) {
  const std::uint64_t bit = std::uint64_t{1} << i;
  if (held_ & bit) return true;
  weft::Mutex& m = ks_.shard(i).mu;
  if (held_ < bit) {
    m.lock();  // after every shard held: the order allows waiting
  } else if (!m.try_lock()) {
    return false;
  }
  held_ |= bit;
  return true;
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
