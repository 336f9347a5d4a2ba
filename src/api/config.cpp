// The configuration schema and its three sources: Config fields (the API),
// WEFT_* environment variables, and a TOML file (toml++).
//
// Every setting is one Entry of entries(): its key, variable, kind, unit,
// range and description. Everything else works from that table: parsing
// (one parser per kind serves the environment and TOML strings alike),
// validate(), describe(), and the generated docs/configuration.md, so a
// setting cannot be documented, parsed and checked in three different ways.
//
// Values travel as a std::int64_t per kind: a count, bytes, nanoseconds,
// 0/1 for a flag, or the index of a choice. Each Entry converts between its
// Config field and that number (get/set), and the kind converts between the
// number and text (parse_text/format_text).
#include "weft/config.hpp"

#include <toml++/toml.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sched/cpu_budget.hpp"

namespace weft {
namespace {

constexpr std::int64_t KiB = 1024;
constexpr std::int64_t MiB = 1024 * KiB;
constexpr std::int64_t GiB = 1024 * MiB;
constexpr std::int64_t kUs = 1000;
constexpr std::int64_t kMs = 1000 * kUs;
constexpr std::int64_t kSec = 1000 * kMs;

// fraction: parts per million (0.8 is 800000), written as a decimal.
enum class Kind { count, bytes, duration, flag, choice, fraction };
constexpr std::int64_t kPpm = 1'000'000;

struct Choice {
  const char* name;
  std::int64_t value;
};

struct Entry {
  const char* key;
  const char* env;
  Kind kind;
  std::int64_t unit_ns;  // duration: nanoseconds of a bare number (kMs or kUs)
  std::int64_t lo, hi;   // inclusive range (count, bytes, duration in ns)
  bool power_of_two;
  // choice: names (the first name of a value is canonical); bytes: words
  // allowed besides sizes ("none", "auto"), outside lo..hi.
  std::vector<Choice> choices;
  const char* note;  // appended to the allowed text, e.g. "(0 = one per core)"
  const char* description;
  bool runtime_changeable;
  std::int64_t (*get)(const Config&);
  void (*set)(Config&, std::int64_t);
};

std::int64_t clamp_size(std::size_t v) {
  return v > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())
             ? std::numeric_limits<std::int64_t>::max()
             : static_cast<std::int64_t>(v);
}

const std::vector<Entry>& entries() {
  using ns = std::chrono::nanoseconds;
  static const std::vector<Entry> table = {
      {"workers",
       "WEFT_WORKERS",
       Kind::count,
       0,
       0,
       1024,
       false,
       {},
       "(0 = one per allowed CPU)",
       "Worker threads running fibers. 0 picks one per CPU the process may use: the CPUs of "
       "its affinity mask, bounded by the tightest CPU bandwidth limit (cgroup v2 cpu.max, v1 "
       "cpu.cfs_quota_us) of its cgroup and every ancestor, rounded up. Config::describe() says "
       "which.",
       false,
       [](const Config& c) { return clamp_size(c.workers); },
       [](Config& c, std::int64_t v) { c.workers = static_cast<std::size_t>(v); }},
      {"pin_workers",
       "WEFT_PIN_WORKERS",
       Kind::flag,
       0,
       0,
       1,
       false,
       {},
       "",
       "Pin worker i to the i-th CPU of the affinity mask the runtime started with (ascending, "
       "wrapping when there are more workers than CPUs). The blocking pool's threads stay on "
       "the whole mask.",
       false,
       [](const Config& c) { return std::int64_t{c.pin_workers}; },
       [](Config& c, std::int64_t v) { c.pin_workers = v != 0; }},
      {"stack_size",
       "WEFT_STACK_SIZE",
       Kind::bytes,
       0,
       16 * KiB,
       GiB,
       false,
       {},
       "",
       "Default fiber stack size (a spawn may override it). Reserved with MAP_NORESERVE, so only "
       "touched pages cost memory; rounded up to the page size.",
       false,
       [](const Config& c) { return clamp_size(c.stack_size); },
       [](Config& c, std::int64_t v) { c.stack_size = static_cast<std::size_t>(v); }},
      {"guard_pages",
       "WEFT_GUARD_PAGES",
       Kind::flag,
       0,
       0,
       1,
       false,
       {},
       "",
       "An inaccessible guard page below every stack, so that an overflow is reported (naming the "
       "fiber) instead of corrupting memory.",
       false,
       [](const Config& c) { return std::int64_t{c.guard_pages}; },
       [](Config& c, std::int64_t v) { c.guard_pages = v != 0; }},
      {"max_fibers",
       "WEFT_MAX_FIBERS",
       Kind::count,
       0,
       0,
       1'000'000'000,
       false,
       {},
       "(0 = no limit)",
       "At most this many fibers alive at once. A spawn past it throws weft::ResourceExhausted "
       "(a std::system_error with EAGAIN naming the limit) and starts nothing. A fiber stops "
       "counting when its function has returned.",
       false,
       [](const Config& c) { return clamp_size(c.max_fibers); },
       [](Config& c, std::int64_t v) { c.max_fibers = static_cast<std::size_t>(v); }},
      {"max_stack_memory",
       "WEFT_MAX_STACK_MEMORY",
       Kind::bytes,
       0,
       0,
       64 * 1024 * GiB,
       false,
       {},
       "(0 = no limit)",
       "At most this many bytes of stack for the fibers alive at once: the sum of their stack "
       "sizes, page-rounded, which bounds the stack memory they can commit (free stacks in the "
       "workers' caches are not counted). A spawn past it throws weft::ResourceExhausted and "
       "starts nothing.",
       false,
       [](const Config& c) { return clamp_size(c.max_stack_memory); },
       [](Config& c, std::int64_t v) { c.max_stack_memory = static_cast<std::size_t>(v); }},
      {"memory_limit",
       "WEFT_MEMORY_LIMIT",
       Kind::bytes,
       0,
       MiB,
       64 * 1024 * GiB,
       false,
       {{"none", 0}, {"auto", -1}},
       "(none = off; auto = 90 % of the tightest cgroup memory limit)",
       "A soft limit on the runtime's own memory: the stacks of its live fibers (whole sizes), "
       "the stacks its workers keep cached with pages resident, and the fibers' control blocks "
       "(channel and I/O buffers are not counted). Above it the runtime trims its caches, then "
       "refuses new fibers (weft::ResourceExhausted naming memory_limit and the usage) and new "
       "connections (accept waits) until usage is below 90 % of the limit. auto is resolved when "
       "the runtime starts; without a cgroup memory limit that is an error. Config::describe() "
       "names the cgroup file.",
       true,
       [](const Config& c) {
         return c.memory_limit == Config::memory_limit_auto ? std::int64_t{-1}
                                                            : clamp_size(c.memory_limit);
       },
       [](Config& c, std::int64_t v) {
         c.memory_limit = v < 0 ? Config::memory_limit_auto : static_cast<std::size_t>(v);
       }},
      {"memory_pressure_fraction",
       "WEFT_MEMORY_PRESSURE_FRACTION",
       Kind::fraction,
       0,
       kPpm / 1000,
       kPpm,
       false,
       {},
       "",
       "With a memory_limit: the memory-pressure callbacks (Runtime::on_memory_pressure) run "
       "once each time usage rises past this fraction of the limit, and again only after usage "
       "fell below it.",
       false,
       [](const Config& c) {
         const double f = c.memory_pressure_fraction;
         // Out of range (NaN, negative, huge) maps to -1, which validate() refuses.
         if (!(f >= 0 && f <= 1)) return std::int64_t{-1};
         return static_cast<std::int64_t>(std::llround(f * kPpm));
       },
       [](Config& c, std::int64_t v) {
         c.memory_pressure_fraction = static_cast<double>(v) / static_cast<double>(kPpm);
       }},
      {"default_operation_timeout",
       "WEFT_DEFAULT_TIMEOUT_MS",
       Kind::duration,
       kMs,
       0,
       86400 * kSec,
       false,
       {},
       "(0 = none)",
       "The deadline of a channel or synchronisation wait made without one (send, recv, select, "
       "Mutex, Semaphore, CondVar, Event...), from when it starts to wait; past it the call throws "
       "weft::TimedOut. A call's own deadline wins; weft::no_deadline opts out. join(), sleeps, "
       "process and signal waits are not covered.",
       false,
       [](const Config& c) { return std::int64_t{c.default_operation_timeout.count()}; },
       [](Config& c, std::int64_t v) { c.default_operation_timeout = ns(v); }},
      {"network_timeout",
       "WEFT_NETWORK_TIMEOUT_MS",
       Kind::duration,
       kMs,
       0,
       86400 * kSec,
       false,
       {},
       "(0 = none)",
       "The deadline of each wait of a weft::net call made without one (connect, read, write...; "
       "not accept), so it bounds how long a peer may stay silent; past it the call throws "
       "weft::TimedOut. A call's own deadline wins; weft::no_deadline opts out.",
       false,
       [](const Config& c) { return std::int64_t{c.network_timeout.count()}; },
       [](Config& c, std::int64_t v) { c.network_timeout = ns(v); }},
      {"io_timeout",
       "WEFT_IO_TIMEOUT_MS",
       Kind::duration,
       kMs,
       0,
       86400 * kSec,
       false,
       {},
       "(0 = none)",
       "The deadline of each wait of a weft::fs call made without one; past it the call throws "
       "weft::TimedOut. A call's own deadline wins; weft::no_deadline opts out. On the epoll "
       "backend file operations run on the blocking pool to completion: no deadline applies.",
       false,
       [](const Config& c) { return std::int64_t{c.io_timeout.count()}; },
       [](Config& c, std::int64_t v) { c.io_timeout = ns(v); }},
      {"preemption_interval",
       "WEFT_PREEMPT_MS",
       Kind::duration,
       kMs,
       kMs,
       60 * kSec,
       false,
       {},
       "",
       "A fiber running longer than this without switching is flagged; its next "
       "this_fiber::checkpoint() yields.",
       false,
       [](const Config& c) { return std::int64_t{c.preemption_interval.count()}; },
       [](Config& c, std::int64_t v) { c.preemption_interval = ns(v); }},
      {"stall_warning",
       "WEFT_STALL_WARN_MS",
       Kind::duration,
       kMs,
       10 * kMs,
       3600 * kSec,
       false,
       {},
       "",
       "A worker stuck on one fiber longer than this gets one warning on stderr naming "
       "the fiber.",
       true,
       [](const Config& c) { return std::int64_t{c.stall_warning.count()}; },
       [](Config& c, std::int64_t v) { c.stall_warning = ns(v); }},
      {"deadlock_report",
       "WEFT_DEADLOCK_REPORT_MS",
       Kind::duration,
       kMs,
       0,
       3600 * kSec,
       false,
       {},
       "(0 = off)",
       "When every fiber has been parked this long and nothing could wake one (no timer armed, "
       "no I/O in flight, no spawn_blocking task, no wake-up or spawn from a plain thread), "
       "report it once in the runtime log with the fiber dump (Go's \"all goroutines are "
       "asleep\"). Off by default: the handles plain threads hold are invisible to the runtime "
       "(docs/observability.md).",
       false,
       [](const Config& c) { return std::int64_t{c.deadlock_report.count()}; },
       [](Config& c, std::int64_t v) { c.deadlock_report = ns(v); }},
      {"deadlock_abort",
       "WEFT_DEADLOCK_ABORT",
       Kind::flag,
       0,
       0,
       1,
       false,
       {},
       "",
       "With deadlock_report on: abort the process (std::abort) after the report.",
       false,
       [](const Config& c) { return std::int64_t{c.deadlock_abort}; },
       [](Config& c, std::int64_t v) { c.deadlock_abort = v != 0; }},
      {"strategy",
       "WEFT_STRATEGY",
       Kind::choice,
       0,
       0,
       3,
       false,
       {{"work_stealing", static_cast<std::int64_t>(Strategy::work_stealing)},
        {"single_threaded", static_cast<std::int64_t>(Strategy::single_threaded)},
        {"thread_per_core", static_cast<std::int64_t>(Strategy::thread_per_core)},
        {"auto", static_cast<std::int64_t>(Strategy::auto_select)}},
       "",
       "How fibers are placed on workers: work_stealing (N workers stealing from each other), "
       "single_threaded (one worker; workers must be 0 or 1), thread_per_core (N workers; a "
       "fiber never leaves the worker it starts on; spawns from outside the workers are placed "
       "round-robin) or auto (work_stealing).",
       false,
       [](const Config& c) { return static_cast<std::int64_t>(c.strategy); },
       [](Config& c, std::int64_t v) { c.strategy = static_cast<Strategy>(v); }},
      {"max_blocking_threads",
       "WEFT_MAX_BLOCKING_THREADS",
       Kind::count,
       0,
       1,
       10'000,
       false,
       {},
       "",
       "Upper bound on the threads of the spawn_blocking pool (beyond it, tasks queue).",
       false,
       [](const Config& c) { return clamp_size(c.max_blocking_threads); },
       [](Config& c, std::int64_t v) { c.max_blocking_threads = static_cast<std::size_t>(v); }},
      {"blocking_keep_alive",
       "WEFT_BLOCKING_KEEP_ALIVE_MS",
       Kind::duration,
       kMs,
       kMs,
       3600 * kSec,
       false,
       {},
       "",
       "A blocking-pool thread idle this long exits.",
       false,
       [](const Config& c) { return std::int64_t{c.blocking_keep_alive.count()}; },
       [](Config& c, std::int64_t v) { c.blocking_keep_alive = ns(v); }},
      {"spin_before_park",
       "WEFT_SPIN_US",
       Kind::duration,
       kUs,
       0,
       10 * kMs,
       false,
       {},
       "",
       "How long an idle worker keeps looking for work before it sleeps on its futex "
       "(cross-core futex wake-ups cost ~25 us, so a short spin saves latency).",
       true,
       [](const Config& c) { return std::int64_t{c.spin_before_park.count()}; },
       [](Config& c, std::int64_t v) { c.spin_before_park = ns(v); }},
      {"wake_backstop",
       "WEFT_WAKE_BACKSTOP",
       Kind::flag,
       0,
       0,
       1,
       false,
       {},
       "",
       "For tests; leave it on in programs. On, the monitor thread wakes an idle worker when a "
       "fiber is queued or a timer is overdue and no worker searches (a backstop that also hides "
       "a lost wake-up as a few ms of latency); off, a lost wake-up hangs, which the runtime's "
       "wake-path tests want to see.",
       false,
       [](const Config& c) { return std::int64_t{c.wake_backstop}; },
       [](Config& c, std::int64_t v) { c.wake_backstop = v != 0; }},
      {"io_backend",
       "WEFT_IO_BACKEND",
       Kind::choice,
       0,
       0,
       2,
       false,
       {{"auto", static_cast<std::int64_t>(IoBackend::auto_detect)},
        {"io_uring", static_cast<std::int64_t>(IoBackend::io_uring)},
        {"epoll", static_cast<std::int64_t>(IoBackend::epoll)},
        {"uring", static_cast<std::int64_t>(IoBackend::io_uring)}},
       "",
       "The kernel interface of the reactor: auto (io_uring if a ring initialises, else "
       "epoll), io_uring (fail if unavailable) or epoll.",
       false,
       [](const Config& c) { return static_cast<std::int64_t>(c.io_backend); },
       [](Config& c, std::int64_t v) { c.io_backend = static_cast<IoBackend>(v); }},
      {"io_uring_entries",
       "WEFT_IO_URING_ENTRIES",
       Kind::count,
       0,
       8,
       32768,
       true,
       {},
       "",
       "Submission-queue entries of each worker's io_uring (the completion queue gets 4x); it "
       "bounds one submission batch, not the requests in flight.",
       false,
       [](const Config& c) { return std::int64_t{c.io_uring_entries}; },
       [](Config& c, std::int64_t v) { c.io_uring_entries = static_cast<std::uint32_t>(v); }},
      {"trace_buffer_events",
       "WEFT_TRACE_BUFFER_EVENTS",
       Kind::count,
       0,
       64,
       16 * 1024 * 1024,
       false,
       {},
       "",
       "Events each worker's trace buffer holds (64 bytes each, allocated when a trace starts: "
       "Runtime::start_trace or WEFT_TRACE); past it a worker drops its events and counts them.",
       false,
       [](const Config& c) { return clamp_size(c.trace_buffer_events); },
       [](Config& c, std::int64_t v) { c.trace_buffer_events = static_cast<std::size_t>(v); }},
  };
  return table;
}

// --- text <-> value, by kind -------------------------------------------------

// A decimal integer without sign; false on garbage or overflow. `rest` gets
// what follows the digits.
bool parse_digits(std::string_view text, std::int64_t& out, std::string_view& rest) {
  std::size_t i = 0;
  std::int64_t v = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    const int d = text[i] - '0';
    if (v > (std::numeric_limits<std::int64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
    ++i;
  }
  if (i == 0) return false;
  out = v;
  rest = text.substr(i);
  return true;
}

bool scale(std::int64_t v, std::int64_t mult, std::int64_t& out) {
  if (v > std::numeric_limits<std::int64_t>::max() / mult) return false;
  out = v * mult;
  return true;
}

std::optional<std::int64_t> parse_text(const Entry& e, std::string_view text) {
  std::int64_t v = 0;
  std::string_view rest;
  switch (e.kind) {
    case Kind::count:
      if (!parse_digits(text, v, rest) || !rest.empty()) return std::nullopt;
      return v;
    case Kind::bytes: {
      for (const Choice& c : e.choices) {
        if (text == c.name) return c.value;
      }
      if (!parse_digits(text, v, rest)) return std::nullopt;
      std::int64_t mult = 1;
      if (!rest.empty()) {
        switch (rest.front()) {
          case 'k':
          case 'K':
            mult = KiB;
            break;
          case 'm':
          case 'M':
            mult = MiB;
            break;
          case 'g':
          case 'G':
            mult = GiB;
            break;
          default:
            return std::nullopt;
        }
        rest.remove_prefix(1);
        if (!rest.empty() && (rest.front() == 'i' || rest.front() == 'I')) rest.remove_prefix(1);
        if (!rest.empty() && (rest.front() == 'b' || rest.front() == 'B')) rest.remove_prefix(1);
      }
      if (!rest.empty() || !scale(v, mult, v)) return std::nullopt;
      return v;
    }
    case Kind::duration: {
      if (!parse_digits(text, v, rest)) return std::nullopt;
      std::int64_t mult = e.unit_ns;
      if (rest == "ns") {
        mult = 1;
      } else if (rest == "us") {
        mult = kUs;
      } else if (rest == "ms") {
        mult = kMs;
      } else if (rest == "s") {
        mult = kSec;
      } else if (!rest.empty()) {
        return std::nullopt;
      }
      if (!scale(v, mult, v)) return std::nullopt;
      return v;
    }
    case Kind::fraction: {
      // digits[.digits], at most six decimals.
      if (!parse_digits(text, v, rest) || !scale(v, kPpm, v)) return std::nullopt;
      if (rest.empty()) return v;
      if (rest.front() != '.' || rest.size() < 2 || rest.size() > 7) return std::nullopt;
      std::int64_t place = kPpm;
      for (char ch : rest.substr(1)) {
        if (ch < '0' || ch > '9') return std::nullopt;
        place /= 10;
        v += (ch - '0') * place;
      }
      return v;
    }
    case Kind::flag:
      if (text == "1" || text == "on" || text == "true" || text == "yes") return 1;
      if (text == "0" || text == "off" || text == "false" || text == "no") return 0;
      return std::nullopt;
    case Kind::choice:
      for (const Choice& c : e.choices) {
        if (text == c.name) return c.value;
      }
      return std::nullopt;
  }
  return std::nullopt;
}

std::string format_duration(std::int64_t ns) {
  if (ns != 0 && ns % kSec == 0) return std::to_string(ns / kSec) + "s";
  if (ns != 0 && ns % kMs == 0) return std::to_string(ns / kMs) + "ms";
  if (ns % kUs == 0) return std::to_string(ns / kUs) + "us";
  return std::to_string(ns) + "ns";
}

std::string format_bytes(std::int64_t b) {
  if (b != 0 && b % GiB == 0) return std::to_string(b / GiB) + "G";
  if (b != 0 && b % MiB == 0) return std::to_string(b / MiB) + "M";
  if (b != 0 && b % KiB == 0) return std::to_string(b / KiB) + "K";
  return std::to_string(b);
}

// The value as written in a TOML file, without quotes.
std::string format_text(const Entry& e, std::int64_t v) {
  switch (e.kind) {
    case Kind::count:
      return std::to_string(v);
    case Kind::bytes:
      for (const Choice& c : e.choices) {
        if (c.value == v) return c.name;
      }
      return format_bytes(v);
    case Kind::duration:
      return format_duration(v);
    case Kind::fraction: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%g", static_cast<double>(v) / static_cast<double>(kPpm));
      return buf;
    }
    case Kind::flag:
      return v != 0 ? "true" : "false";
    case Kind::choice:
      for (const Choice& c : e.choices) {
        if (c.value == v) return c.name;
      }
      return "<invalid " + std::to_string(v) + ">";
  }
  return std::to_string(v);
}

// The value as a TOML right-hand side: strings quoted.
std::string toml_literal(const Entry& e, std::int64_t v) {
  const std::string text = format_text(e, v);
  if (e.kind == Kind::count || e.kind == Kind::flag || e.kind == Kind::fraction) return text;
  return "\"" + text + "\"";
}

const char* type_name(Kind k) {
  switch (k) {
    case Kind::count:
      return "count";
    case Kind::bytes:
      return "bytes";
    case Kind::duration:
      return "duration";
    case Kind::flag:
      return "bool";
    case Kind::choice:
      return "enum";
    case Kind::fraction:
      return "fraction";
  }
  return "";
}

std::string unit_name(const Entry& e) {
  if (e.kind == Kind::bytes) return "bytes";
  if (e.kind == Kind::duration) return e.unit_ns == kMs ? "ms" : "us";
  return "";
}

std::string allowed_text(const Entry& e) {
  std::string s;
  switch (e.kind) {
    case Kind::count:
      s = std::string(e.power_of_two ? "a power of two in " : "an integer in ") +
          std::to_string(e.lo) + ".." + std::to_string(e.hi);
      break;
    case Kind::bytes:
      s = "a size in " + format_bytes(e.lo) + ".." + format_bytes(e.hi) +
          " bytes (suffixes K, M, G)";
      break;
    case Kind::duration:
      s = "a duration in " + format_duration(e.lo) + ".." + format_duration(e.hi) +
          " (a bare number is " + unit_name(e) + "; suffixes ns, us, ms, s)";
      break;
    case Kind::fraction:
      s = "a fraction in " + format_text(e, e.lo) + ".." + format_text(e, e.hi);
      break;
    case Kind::flag:
      s = "true or false (in the environment also 1/0, on/off, yes/no)";
      break;
    case Kind::choice: {
      std::vector<std::string> names;
      for (const Choice& c : e.choices) {
        if (format_text(e, c.value) == c.name) names.emplace_back(c.name);
      }
      for (std::size_t i = 0; i < names.size(); ++i) {
        if (i > 0) s += i + 1 == names.size() ? " or " : ", ";
        s += names[i];
      }
      break;
    }
  }
  if (e.note[0] != '\0') s += std::string(" ") + e.note;
  return s;
}

bool in_range(const Entry& e, std::int64_t v) {
  if (e.kind == Kind::choice) return format_text(e, v).front() != '<';
  for (const Choice& c : e.choices) {
    if (c.value == v) return true;  // a bytes setting's word (none, auto)
  }
  if (v < e.lo || v > e.hi) return false;
  return !e.power_of_two || (v & (v - 1)) == 0;
}

// "weft: <where>[: <key>]: must be <allowed>, got <got>".
[[noreturn]] void fail_value(const Entry& e, const std::string& where, bool name_key,
                             const std::string& got) {
  const std::string allowed = allowed_text(e);
  std::string msg = "weft: " + where;
  if (name_key) msg += std::string(": ") + e.key;
  msg += ": must be " + allowed + ", got " + got;
  throw ConfigError(msg, e.key, where, allowed);
}

std::size_t index_of(const Entry& e) {
  return static_cast<std::size_t>(&e - entries().data());
}

std::vector<ConfigOrigin> default_origins() {
  const Config d;
  std::vector<ConfigOrigin> out;
  for (const Entry& e : entries()) {
    out.push_back({ConfigSource::default_value, "", format_text(e, e.get(d))});
  }
  return out;
}

// Sets e from text read at `where`; `got` is how the value is quoted in an
// error (the variable's text in '', a TOML string in "", a number bare).
void assign(Config& c, const Entry& e, std::string_view text, ConfigSource source,
            const std::string& where, bool name_key, const std::string& got) {
  const std::optional<std::int64_t> v = parse_text(e, text);
  if (!v || !in_range(e, *v)) fail_value(e, where, name_key, got);
  e.set(c, *v);
  if (c.origins.size() != entries().size()) c.origins = default_origins();
  c.origins[index_of(e)] = {source, where, format_text(e, *v)};
}

void read_env(Config& c) {
  for (const Entry& e : entries()) {
    const char* text = std::getenv(e.env);
    if (text == nullptr) continue;
    assign(c, e, text, ConfigSource::env, e.env, false, std::string("'") + text + "'");
  }
}

const char* toml_type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

void read_file(Config& c, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    throw ConfigError(
        "weft: " + path + ": cannot read the configuration file: " + std::strerror(err), "", path,
        "");
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  toml::table table;
  try {
    table = toml::parse(buf.str(), path);
  } catch (const toml::parse_error& err) {
    const auto& begin = err.source().begin;
    const std::string where = path + ":" + std::to_string(begin.line);
    throw ConfigError("weft: " + where + ":" + std::to_string(begin.column) +
                          ": invalid TOML: " + std::string(err.description()),
                      "", where, "");
  }
  for (auto&& [key, node] : table) {
    const std::string where = path + ":" + std::to_string(key.source().begin.line);
    const Entry* entry = nullptr;
    for (const Entry& e : entries()) {
      if (key.str() == e.key) entry = &e;
    }
    if (entry == nullptr) {
      throw ConfigError("weft: " + where + ": unknown key '" + std::string(key.str()) +
                            "' (docs/configuration.md lists the keys)",
                        std::string(key.str()), where, "");
    }
    const Entry& e = *entry;
    const bool numeric = e.kind == Kind::count || e.kind == Kind::bytes || e.kind == Kind::duration;
    const bool textual =
        e.kind == Kind::bytes || e.kind == Kind::duration || e.kind == Kind::choice;
    if (const auto* i = node.as_integer(); i != nullptr && numeric) {
      const std::int64_t v = i->get();
      const std::string text = std::to_string(v);
      // A negative number fails to parse and is reported as written.
      assign(c, e, text, ConfigSource::file, where, true, text);
    } else if (const auto* s = node.as_string(); s != nullptr && textual) {
      assign(c, e, s->get(), ConfigSource::file, where, true, "\"" + s->get() + "\"");
    } else if (const auto* f = node.as_floating_point(); f != nullptr && e.kind == Kind::fraction) {
      char text[64];
      std::snprintf(text, sizeof text, "%.6f", f->get());
      char got[64];
      std::snprintf(got, sizeof got, "%g", f->get());
      const bool negative = f->get() < 0;
      assign(c, e, negative ? std::string_view("-") : std::string_view(text), ConfigSource::file,
             where, true, got);
    } else if (const auto* i = node.as_integer(); i != nullptr && e.kind == Kind::fraction) {
      const std::string text = std::to_string(i->get());
      assign(c, e, text, ConfigSource::file, where, true, text);
    } else if (const auto* b = node.as_boolean(); b != nullptr && e.kind == Kind::flag) {
      assign(c, e, b->get() ? "true" : "false", ConfigSource::file, where, true,
             b->get() ? "true" : "false");
    } else {
      fail_value(e, where, true, toml_type_name(node));
    }
  }
}

// Rules over more than one setting, after each value is in range. Names the
// source of the offending value when it was loaded and not changed since.
void check_combinations(const Config& c) {
  if (c.strategy == Strategy::single_threaded && c.workers > 1) {
    const Entry& e = entries()[0];
    std::string where = "Config::workers";
    if (c.origins.size() == entries().size()) {
      const ConfigOrigin& o = c.origins[0];
      if ((o.source == ConfigSource::env || o.source == ConfigSource::file) &&
          o.loaded == format_text(e, e.get(c))) {
        where = o.where;
      }
    }
    const std::string allowed = "0 or 1 with strategy single_threaded";
    throw ConfigError(
        "weft: " + where + ": workers: must be " + allowed + ", got " + std::to_string(c.workers),
        "workers", where, allowed);
  }
}

std::string markdown_cell(std::string s) {
  std::string out;
  for (char ch : s) {
    if (ch == '|') out += '\\';
    out += ch;
  }
  return out;
}

}  // namespace

Config Config::from_env() {
  Config c;
  if (const char* path = std::getenv("WEFT_CONFIG")) {
    if (*path == '\0') {
      throw ConfigError("weft: WEFT_CONFIG: must be the path of a TOML file, got ''", "",
                        "WEFT_CONFIG", "the path of a TOML file");
    }
    read_file(c, path);
  }
  read_env(c);
  c.validate();
  return c;
}

Config Config::from_file(const std::string& path) {
  Config c;
  read_file(c, path);
  read_env(c);
  c.validate();
  return c;
}

void Config::validate() const {
  for (const Entry& e : entries()) {
    const std::int64_t v = e.get(*this);
    if (!in_range(e, v)) {
      std::string got = std::to_string(v);
      if (e.kind == Kind::duration) got += " ns";
      if (e.kind == Kind::fraction) got = v < 0 ? "a value outside 0..1" : format_text(e, v);
      fail_value(e, std::string("Config::") + e.key, false, got);
    }
  }
  check_combinations(*this);
}

std::size_t Config::resolved_workers() const {
  if (strategy == Strategy::single_threaded) return 1;
  if (workers != 0) return workers;
  return detail::cpu_budget().workers;
}

void Config::note_derived(std::string_view key, std::string why) {
  if (origins.size() != entries().size()) origins = default_origins();
  for (const Entry& e : entries()) {
    if (key == e.key) {
      origins[index_of(e)] = {ConfigSource::derived, std::move(why), format_text(e, e.get(*this))};
      return;
    }
  }
  throw std::invalid_argument("weft: Config::note_derived: no setting named '" + std::string(key) +
                              "'");
}

std::string Config::describe() const {
  const std::vector<ConfigOrigin> defaults = default_origins();
  const std::vector<ConfigOrigin>& loaded = origins.size() == entries().size() ? origins : defaults;
  std::string out;
  for (const Entry& e : entries()) {
    const std::int64_t v = e.get(*this);
    const ConfigOrigin& o = loaded[index_of(e)];
    std::string source;
    if (format_text(e, v) != o.loaded) {
      source = "api";
    } else {
      switch (o.source) {
        case ConfigSource::default_value:
          source = "default";
          break;
        case ConfigSource::file:
          source = "file " + o.where;
          break;
        case ConfigSource::env:
          source = "env " + o.where;
          break;
        case ConfigSource::api:
          source = "api";
          break;
        case ConfigSource::derived:
          source = "derived: " + o.where;
          break;
      }
    }
    out += std::string(e.key) + " = " + toml_literal(e, v) + "  (" + source + ")\n";
  }
  return out;
}

const std::vector<ConfigSetting>& Config::schema() {
  static const std::vector<ConfigSetting> settings = [] {
    const Config d;
    std::vector<ConfigSetting> out;
    for (const Entry& e : entries()) {
      out.push_back({e.key, e.env, type_name(e.kind), unit_name(e), format_text(e, e.get(d)),
                     allowed_text(e), e.description, e.runtime_changeable});
    }
    return out;
  }();
  return settings;
}

std::string Config::reference_markdown() {
  const Config d;
  std::string md =
      "# weft configuration\n\n"
      "<!-- Generated from the schema in src/api/config.cpp by `make config-doc`; do not edit.\n"
      "     weft_test_api (ConfigDoc.UpToDate) fails when this file is stale. -->\n\n"
      "Every setting has three sources. In order of precedence:\n\n"
      "1. the API: a field of `weft::Config` set in code (after `Config::from_env()` or\n"
      "   `Config::from_file()`), or a run-time setter of `weft::Runtime` for the settings\n"
      "   marked *run time*;\n"
      "2. the environment: the `WEFT_*` variable of the setting;\n"
      "3. a TOML file: top-level `key = value` pairs, read by `Config::from_file(path)` or,\n"
      "   through `Config::from_env()` (what `weft::Runtime` uses by default), from the file\n"
      "   named by `WEFT_CONFIG`.\n\n"
      "Sizes are bytes, or strings with a K, M or G suffix (`\"256K\"`); durations are\n"
      "strings with a unit suffix (`\"10ms\"`: ns, us, ms, s) or bare numbers in the\n"
      "setting's unit (the unit of its environment variable). An unknown key, a value of\n"
      "the wrong type or out of range is a `weft::ConfigError` (a `std::invalid_argument`)\n"
      "naming the key, the file and line or the variable, and the allowed values.\n"
      "`Config::describe()` lists every value with its source.\n\n"
      "| key | environment | type | default | allowed | run time |\n"
      "|---|---|---|---|---|---|\n";
  for (const Entry& e : entries()) {
    md += "| `" + std::string(e.key) + "` | `" + e.env + "` | " + type_name(e.kind) + " | `" +
          toml_literal(e, e.get(d)) + "` | " + markdown_cell(allowed_text(e)) + " | " +
          (e.runtime_changeable ? std::string("yes (`Runtime::set_") + e.key + "`)" : "no") +
          " |\n";
  }
  md += "\n## Settings\n";
  for (const Entry& e : entries()) {
    md += "\n### `" + std::string(e.key) + "`\n\n" + e.description + "\n";
  }
  md += "\n## Example\n\n```toml\n";
  for (const Entry& e : entries()) {
    md += std::string(e.key) + " = " + toml_literal(e, e.get(d)) + "\n";
  }
  md += "```\n";
  return md;
}

}  // namespace weft
