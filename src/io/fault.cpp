// Fault injection for the I/O layer (fault.hpp).
#include "io/fault.hpp"

#include <fnmatch.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <stdexcept>
#include <vector>

namespace weft::detail::io::fault {
namespace {

struct OpName {
  const char* name;
  std::uint32_t ops;
};

constexpr OpName kOps[] = {
    {"read", bit(Op::read) | bit(Op::readv)},
    {"write", bit(Op::write) | bit(Op::writev)},
    {"recv", bit(Op::recv) | bit(Op::recvmsg)},
    {"send", bit(Op::send) | bit(Op::sendmsg)},
    {"accept", bit(Op::accept)},
    {"connect", bit(Op::connect)},
    {"poll", bit(Op::poll)},
    {"fsync", bit(Op::fsync)},
    {"truncate", bit(Op::truncate)},
    {"openat", bit(Op::openat)},
    {"statx", bit(Op::statx)},
    {"mkdirat", bit(Op::mkdirat)},
    {"renameat", bit(Op::renameat)},
    {"unlinkat", bit(Op::unlinkat)},
    {"any", ~std::uint32_t{0}},
};

struct ErrnoName {
  const char* name;
  int value;
};

constexpr ErrnoName kErrnos[] = {
    {"ENOSPC", ENOSPC},
    {"EIO", EIO},
    {"EDQUOT", EDQUOT},
    {"ECONNRESET", ECONNRESET},
    {"EPIPE", EPIPE},
    {"EMFILE", EMFILE},
    {"ENFILE", ENFILE},
    {"EAGAIN", EAGAIN},
    {"EINTR", EINTR},
    {"ENOMEM", ENOMEM},
    {"ENOBUFS", ENOBUFS},
    {"EACCES", EACCES},
    {"ECONNREFUSED", ECONNREFUSED},
    {"ETIMEDOUT", ETIMEDOUT},
    {"EROFS", EROFS},
    {"EFBIG", EFBIG},
};

std::uint64_t parse_u64(std::string_view key, std::string_view v) {
  std::uint64_t n = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size())
    throw std::invalid_argument("weft: WEFT_FAULTS: " + std::string(key) +
                                " wants a number, got '" + std::string(v) + "'");
  return n;
}

// One installed rule and how often it has matched and fired.
struct Installed {
  Rule rule;
  std::uint64_t matched = 0;
  std::uint64_t fired = 0;
};

struct State {
  std::mutex mu;  // guards everything here
  std::vector<Installed> rules;
  std::minstd_rand rng{1};
};

State& state() {
  static auto* s = new State();  // never destroyed: I/O may run during exit
  return *s;
}

std::atomic<std::uint64_t> g_injected{0};

// The path of descriptor fd, for path= rules ("" if unknown).
std::string fd_path(int fd) {
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  char buf[4096];
  const ssize_t n = ::readlink(link, buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

bool transfers(Op op) noexcept {
  return op == Op::read || op == Op::write || op == Op::recv || op == Op::send;
}

}  // namespace

#if WEFT_FAULT_INJECTION
namespace internal {
std::atomic<bool> armed{false};

void load_environment() noexcept {
  static const bool loaded = [] {
    const char* spec = std::getenv("WEFT_FAULTS");
    if (const char* seed = std::getenv("WEFT_FAULTS_SEED"))
      state().rng.seed(static_cast<unsigned>(std::strtoul(seed, nullptr, 10)));
    if (spec == nullptr || *spec == '\0') return true;
    std::string_view rest(spec);
    while (!rest.empty()) {
      const std::size_t semi = rest.find(';');
      const std::string_view one = rest.substr(0, semi);
      rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
      if (one.empty()) continue;
      try {
        add(parse_rule(one));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "%s (rule ignored)\n", e.what());
      }
    }
    std::fprintf(stderr, "weft: fault injection armed from WEFT_FAULTS=\"%s\"\n", spec);
    return true;
  }();
  (void)loaded;
}
}  // namespace internal
#endif

Rule parse_rule(std::string_view text) {
  Rule r;
  bool have_op = false;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view field = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const std::size_t eq = field.find('=');
    if (eq == std::string_view::npos)
      throw std::invalid_argument("weft: WEFT_FAULTS: '" + std::string(field) +
                                  "' is not key=value");
    const std::string_view key = field.substr(0, eq);
    const std::string_view v = field.substr(eq + 1);
    if (key == "op") {
      for (std::string_view names = v; !names.empty();) {
        const std::size_t bar = names.find('|');
        const std::string_view name = names.substr(0, bar);
        names = bar == std::string_view::npos ? std::string_view() : names.substr(bar + 1);
        bool found = false;
        for (const OpName& o : kOps) {
          if (name == o.name) {
            r.ops |= o.ops;
            found = true;
          }
        }
        if (!found)
          throw std::invalid_argument("weft: WEFT_FAULTS: unknown op '" + std::string(name) + "'");
      }
      have_op = true;
    } else if (key == "errno") {
      r.error = 0;
      for (const ErrnoName& e : kErrnos)
        if (v == e.name) r.error = e.value;
      if (r.error == 0) r.error = static_cast<int>(parse_u64(key, v));
    } else if (key == "short") {
      r.short_max = parse_u64(key, v);
    } else if (key == "path") {
      r.path = v;
    } else if (key == "fd") {
      r.fd = static_cast<int>(parse_u64(key, v));
    } else if (key == "after") {
      r.after = parse_u64(key, v);
    } else if (key == "count") {
      r.count = parse_u64(key, v);
    } else if (key == "prob") {
      r.probability = std::strtod(std::string(v).c_str(), nullptr);
    } else {
      throw std::invalid_argument("weft: WEFT_FAULTS: unknown field '" + std::string(key) + "'");
    }
  }
  if (!have_op) throw std::invalid_argument("weft: WEFT_FAULTS: a rule needs op=");
  if (r.error == 0 && r.short_max == 0)
    throw std::invalid_argument("weft: WEFT_FAULTS: a rule needs errno= or short=N (N > 0)");
  return r;
}

bool add(Rule rule) {
#if WEFT_FAULT_INJECTION
  State& s = state();
  std::lock_guard g(s.mu);
  s.rules.push_back(Installed{std::move(rule)});
  internal::armed.store(true, std::memory_order_relaxed);
  return true;
#else
  (void)rule;
  return false;
#endif
}

void clear() noexcept {
#if WEFT_FAULT_INJECTION
  State& s = state();
  std::lock_guard g(s.mu);
  s.rules.clear();
  internal::armed.store(false, std::memory_order_relaxed);
#endif
}

std::uint64_t injected() noexcept {
  return g_injected.load(std::memory_order_relaxed);
}

std::int64_t intercept(const Request& r) noexcept {
  State& s = state();
  std::string path;  // resolved once, only if a rule asks
  bool have_path = false;
  std::lock_guard g(s.mu);
  for (Installed& in : s.rules) {
    const Rule& rule = in.rule;
    if ((rule.ops & bit(r.op)) == 0) continue;
    if (rule.fd >= 0 && (!r.on_fd() || r.fd != rule.fd)) continue;
    if (!rule.path.empty()) {
      if (!have_path) {
        try {
          path = r.on_fd() ? fd_path(r.fd) : std::string(r.path != nullptr ? r.path : "");
        } catch (...) {
          return 0;  // out of memory: run the operation as asked
        }
        have_path = true;
      }
      if (::fnmatch(rule.path.c_str(), path.c_str(), 0) != 0) continue;
    }
    if (rule.error == 0 && !transfers(r.op)) continue;  // short= applies to transfers only
    if (in.matched++ < rule.after || in.fired >= rule.count) continue;
    if (rule.probability < 1.0 &&
        std::uniform_real_distribution<double>(0.0, 1.0)(s.rng) >= rule.probability)
      continue;
    ++in.fired;
    g_injected.fetch_add(1, std::memory_order_relaxed);
    if (rule.error != 0) return -rule.error;
    return static_cast<std::int64_t>(rule.short_max < r.len ? rule.short_max : r.len);
  }
  return 0;
}

}  // namespace weft::detail::io::fault
