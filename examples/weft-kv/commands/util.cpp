// weft-kv commands: shared helpers (util.hpp).
#include "commands/util.hpp"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace kv::cmd {

bool eq_ci(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
  }
  return true;
}

bool parse_int(Context& c, std::string_view s, int& out) {
  long long v = 0;
  if (!parse_ll(s, v)) return err(c, kNotInt), false;
  if (v < INT_MIN || v > INT_MAX)  // Redis 7.0's text, verbatim
    return err(c, "ERR value is out of range, value must between -2147483648 and 2147483647"),
           false;
  out = static_cast<int>(v);
  return true;
}

bool parse_range(Context& c, std::string_view s, long long min, long long max, const char* msg,
                 long long& out) {
  long long v = 0;
  if (!parse_ll(s, v)) return err(c, msg != nullptr ? std::string("ERR ") + msg : kNotInt), false;
  if (v < min || v > max) {
    if (msg != nullptr) return err(c, std::string("ERR ") + msg), false;
    return err(c, "ERR value is out of range, value must between " + std::to_string(min) + " and " +
                      std::to_string(max)),
           false;
  }
  out = v;
  return true;
}

std::mt19937_64& random_engine() noexcept {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

bool parse_scan_cursor(Context& c, std::string_view arg, std::uint64_t& cursor) {
  // strtoul: optional blanks (refused by Redis's isspace check), sign,
  // digits; an overflow is ERANGE.
  std::string text(arg);
  errno = 0;
  char* end = nullptr;
  const unsigned long v = std::strtoul(text.c_str(), &end, 10);
  if ((!text.empty() && std::isspace(static_cast<unsigned char>(text[0]))) || *end != '\0' ||
      errno == ERANGE || end != text.c_str() + text.size())
    return err(c, "ERR invalid cursor"), false;
  cursor = v;
  return true;
}

bool parse_scan_options(Context& c, std::size_t first, bool allow_type, ScanArgs& args) {
  for (std::size_t i = first; i < c.argv.size();) {
    const std::size_t left = c.argv.size() - i;
    const std::string_view o = c.argv[i];
    if (eq_ci(o, "count") && left >= 2) {
      if (!parse_ll(c.argv[i + 1], args.count)) return err(c, kNotInt), false;
      if (args.count < 1) return err(c, kSyntax), false;
    } else if (eq_ci(o, "match") && left >= 2) {
      args.pattern = c.argv[i + 1];
      args.use_pattern = args.pattern != "*";
    } else if (eq_ci(o, "type") && allow_type && left >= 2) {
      args.type = c.argv[i + 1];
      args.has_type = true;
    } else {
      return err(c, kSyntax), false;
    }
    i += 2;
  }
  return true;
}

void scan_reply(Context& c, std::uint64_t cursor, const std::vector<std::string>& items) {
  Reply::array_header(c.out, 2);
  Reply::bulk(c.out, std::to_string(cursor));
  Reply::array_header(c.out, items.size());
  for (const std::string& s : items) Reply::bulk(c.out, s);
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

bool parse_ld(std::string_view s, long double& out) noexcept {
  char buf[5 * 1024];  // Redis's MAX_LONG_DOUBLE_CHARS
  if (s.empty() || s.size() >= sizeof buf) return false;
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  errno = 0;
  char* end = nullptr;
  const long double v = std::strtold(buf, &end);
  if (std::isspace(static_cast<unsigned char>(buf[0])) || *end != '\0' ||
      static_cast<std::size_t>(end - buf) != s.size() ||
      (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || std::fpclassify(v) == FP_ZERO)) ||
      errno == EINVAL || std::isnan(v))
    return false;
  out = v;
  return true;
}

std::string ld_to_string_human(long double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[5 * 1024];
  const int n = std::snprintf(buf, sizeof buf, "%.17Lf", v);
  if (n <= 0 || static_cast<std::size_t>(n) + 1 > sizeof buf) return "";  // as Redis: no room
  std::size_t l = static_cast<std::size_t>(n);
  if (std::memchr(buf, '.', l) != nullptr) {
    while (buf[l - 1] == '0') --l;
    if (buf[l - 1] == '.') --l;
  }
  if (l == 2 && buf[0] == '-' && buf[1] == '0') return "0";
  return std::string(buf, l);
}

bool parse_expire(Context& c, std::string_view arg, bool seconds, bool relative, const char* name,
                  std::int64_t& at) {
  long long v = 0;
  if (!parse_ll(arg, v)) return err(c, kNotInt), false;
  if (v <= 0 || (seconds && v > LLONG_MAX / 1000)) return expire_error(c, name), false;
  if (seconds) v *= 1000;
  if (relative) {
    if (v > LLONG_MAX - c.now) return expire_error(c, name), false;
    v += c.now;
  }
  at = v;
  return true;
}

void arity_error(Context& c, std::string_view name) {
  err(c, "ERR wrong number of arguments for '" + std::string(name) + "' command");
}

void expire_error(Context& c, const char* cmd) {
  err(c, std::string("ERR invalid expire time in '") + cmd + "' command");
}

void help_reply(Context& c, std::span<const std::string_view> lines) {
  Reply::array_header(c.out, lines.size());
  for (std::string_view l : lines) Reply::simple(c.out, l);
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

namespace {
constexpr std::size_t kEmbstrMax = 44;        // OBJ_ENCODING_EMBSTR_SIZE_LIMIT
constexpr long long kSharedIntegers = 10000;  // OBJ_SHARED_INTEGERS

bool int_like(const std::string& v, long long& n) noexcept {
  return v.size() <= 20 && parse_ll(v, n);
}
}  // namespace

const char* string_encoding(const Entry& e) noexcept {
  long long n = 0;
  switch (e.form()) {
    case StringForm::raw:
      return "raw";
    case StringForm::unshared_int:
      return "int";
    case StringForm::encoded:
      if (int_like(e.value, n)) return "int";
      break;
    case StringForm::plain:
      break;
  }
  return e.value.size() <= kEmbstrMax ? "embstr" : "raw";
}

bool string_shared(const Entry& e) noexcept {
  long long n = 0;
  return !e.object && e.form() == StringForm::encoded && int_like(e.value, n) && n >= 0 &&
         n < kSharedIntegers;
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
             std::int64_t now, bool keep_ttl, StringForm form) {
  Entry* e = sh.find(key, h, now);
  if (e == nullptr) {
    e = sh.insert(key, h);
  } else if (!keep_ttl && e->expire_at >= 0) {
    sh.set_expire(e, -1);
  }
  sh.assign(e, value, form);
  return e;
}

}  // namespace kv::cmd
