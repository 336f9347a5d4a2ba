// Config validation and WEFT_* environment parsing.
#include "weft/config.hpp"

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

namespace weft {
namespace {

constexpr std::size_t kMaxWorkers = 1024;
constexpr std::size_t kMinStack = 16 * 1024;
constexpr std::size_t kMaxStack = std::size_t{1} << 30;

[[noreturn]] void bad(const std::string& what, const std::string& range, const std::string& got) {
  throw std::invalid_argument("weft: " + what + " must be " + range + ", got " + got);
}

// Parses an unsigned integer with an optional K/M/G (binary) suffix when
// allow_suffix; rejects signs, garbage and overflow.
bool parse_size(const char* text, bool allow_suffix, unsigned long long& out) {
  if (text == nullptr || *text == '\0' || *text == '-' || *text == '+') return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text) return false;
  unsigned long long mult = 1;
  if (*end != '\0' && allow_suffix) {
    switch (*end) {
      case 'k':
      case 'K':
        mult = 1ull << 10;
        break;
      case 'm':
      case 'M':
        mult = 1ull << 20;
        break;
      case 'g':
      case 'G':
        mult = 1ull << 30;
        break;
      default:
        return false;
    }
    ++end;
    if (*end == 'i' || *end == 'I') ++end;
    if (*end == 'b' || *end == 'B') ++end;
  }
  if (*end != '\0') return false;
  if (v > ~0ull / mult) return false;
  out = v * mult;
  return true;
}

unsigned long long env_number(const char* name, unsigned long long lo, unsigned long long hi,
                              const char* range, bool allow_suffix, unsigned long long fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr) return fallback;
  unsigned long long v = 0;
  if (!parse_size(text, allow_suffix, v) || v < lo || v > hi) {
    bad(std::string("environment variable ") + name, range, std::string("'") + text + "'");
  }
  return v;
}

// A boolean variable: 1/on/true/yes or 0/off/false/no; fallback if unset.
bool env_flag(const char* name, bool fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr) return fallback;
  const std::string v = text;
  if (v == "1" || v == "on" || v == "true" || v == "yes") return true;
  if (v == "0" || v == "off" || v == "false" || v == "no") return false;
  bad(std::string("environment variable ") + name, "0 or 1", "'" + v + "'");
}

}  // namespace

Config Config::from_env() {
  Config c;
  c.workers = env_number("WEFT_WORKERS", 0, kMaxWorkers, "an integer in 0..1024 (0 = one per core)",
                         false, c.workers);
  c.stack_size = env_number("WEFT_STACK_SIZE", kMinStack, kMaxStack,
                            "a size in 16K..1G bytes (suffixes K, M, G)", true, c.stack_size);
  c.guard_pages = env_flag("WEFT_GUARD_PAGES", c.guard_pages);
  c.wake_backstop = env_flag("WEFT_WAKE_BACKSTOP", c.wake_backstop);
  c.preemption_interval = std::chrono::milliseconds(env_number(
      "WEFT_PREEMPT_MS", 1, 60'000, "an integer in 1..60000 (ms)", false,
      static_cast<unsigned long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(c.preemption_interval).count())));
  c.stall_warning = std::chrono::milliseconds(env_number(
      "WEFT_STALL_WARN_MS", 10, 3'600'000, "an integer in 10..3600000 (ms)", false,
      static_cast<unsigned long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(c.stall_warning).count())));
  if (const char* s = std::getenv("WEFT_STRATEGY")) {
    const std::string v = s;
    if (v == "work_stealing") {
      c.strategy = Strategy::work_stealing;
    } else if (v == "single_threaded") {
      c.strategy = Strategy::single_threaded;
    } else {
      bad("environment variable WEFT_STRATEGY", "work_stealing or single_threaded", "'" + v + "'");
    }
  }
  c.max_blocking_threads = env_number("WEFT_MAX_BLOCKING_THREADS", 1, 10'000,
                                      "an integer in 1..10000", false, c.max_blocking_threads);
  c.spin_before_park = std::chrono::microseconds(env_number(
      "WEFT_SPIN_US", 0, 10'000, "an integer in 0..10000 (us)", false,
      static_cast<unsigned long long>(
          std::chrono::duration_cast<std::chrono::microseconds>(c.spin_before_park).count())));
  if (const char* s = std::getenv("WEFT_IO_BACKEND")) {
    const std::string v = s;
    if (v == "auto") {
      c.io_backend = IoBackend::auto_detect;
    } else if (v == "io_uring" || v == "uring") {
      c.io_backend = IoBackend::io_uring;
    } else if (v == "epoll") {
      c.io_backend = IoBackend::epoll;
    } else {
      bad("environment variable WEFT_IO_BACKEND", "auto, io_uring or epoll", "'" + v + "'");
    }
  }
  c.io_uring_entries = static_cast<std::uint32_t>(env_number(
      "WEFT_IO_URING_ENTRIES", 8, 32768, "a power of two in 8..32768", false, c.io_uring_entries));
  c.validate();
  return c;
}

void Config::validate() const {
  using std::chrono::hours;
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  if (workers > kMaxWorkers) bad("Config::workers", "in 0..1024", std::to_string(workers));
  if (stack_size < kMinStack || stack_size > kMaxStack) {
    bad("Config::stack_size", "in 16 KiB..1 GiB (bytes)", std::to_string(stack_size));
  }
  if (preemption_interval < milliseconds(1) || preemption_interval > seconds(60)) {
    bad("Config::preemption_interval", "in 1 ms..60 s",
        std::to_string(preemption_interval.count()) + " ns");
  }
  if (stall_warning < milliseconds(10) || stall_warning > hours(1)) {
    bad("Config::stall_warning", "in 10 ms..1 h", std::to_string(stall_warning.count()) + " ns");
  }
  if (strategy == Strategy::single_threaded && workers > 1) {
    bad("Config::workers", "0 or 1 with Strategy::single_threaded", std::to_string(workers));
  }
  if (max_blocking_threads < 1 || max_blocking_threads > 10'000) {
    bad("Config::max_blocking_threads", "in 1..10000", std::to_string(max_blocking_threads));
  }
  if (blocking_keep_alive < milliseconds(1) || blocking_keep_alive > hours(1)) {
    bad("Config::blocking_keep_alive", "in 1 ms..1 h",
        std::to_string(blocking_keep_alive.count()) + " ns");
  }
  if (io_uring_entries < 8 || io_uring_entries > 32768 ||
      (io_uring_entries & (io_uring_entries - 1)) != 0) {
    bad("Config::io_uring_entries", "a power of two in 8..32768", std::to_string(io_uring_entries));
  }
  if (io_backend != IoBackend::auto_detect && io_backend != IoBackend::io_uring &&
      io_backend != IoBackend::epoll) {
    bad("Config::io_backend", "auto_detect, io_uring or epoll",
        std::to_string(static_cast<int>(io_backend)));
  }
  if (spin_before_park.count() < 0 || spin_before_park > milliseconds(10)) {
    bad("Config::spin_before_park", "in 0..10 ms",
        std::to_string(spin_before_park.count()) + " ns");
  }
}

std::size_t Config::resolved_workers() const {
  if (strategy == Strategy::single_threaded) return 1;
  if (workers != 0) return workers;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : hw;
}

}  // namespace weft
