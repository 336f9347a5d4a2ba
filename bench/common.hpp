// Helpers shared by the weft benchmarks: timing, median of repetitions,
// "name value unit" output, VmRSS, key=value arguments, runtime shape.
//
// Conventions follow the peer programs in ../shared/peers (Go, Boost):
// one "name value unit" line per result, "#" lines for context, every timing
// is the median of `reps` runs (default 5) after one warm-up run, and a wrong
// result exits non-zero.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <string>
#include <vector>
#include <weft/weft.hpp>

namespace wb {

using clock = std::chrono::steady_clock;

inline double ns_since(clock::time_point t0) {
  return std::chrono::duration<double, std::nano>(clock::now() - t0).count();
}

inline void line(const std::string& name, double value, const char* unit) {
  std::printf("%s %.3f %s\n", name.c_str(), value, unit);
  std::fflush(stdout);
}

/// Prints a "# ..." context line.
inline void comment(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fputs("# ", stdout);
  std::vprintf(fmt, ap);
  std::fputc('\n', stdout);
  va_end(ap);
  std::fflush(stdout);
}

/// Reports a failure and ends the process with status 1 at once. _Exit, not
/// exit: it may be called from a fiber while worker threads still run, and
/// static destructors must not race with them.
[[noreturn]] inline void die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fflush(stdout);
  std::fputs("FAILED: ", stderr);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  va_end(ap);
  std::fflush(stderr);
  std::_Exit(1);
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// Spread of the measured runs, for the "#" lines.
struct Series {
  double med = 0, min = 0, max = 0;
  std::vector<double> all;
};

/// Runs f once as warm-up, then reps times; f returns elapsed nanoseconds.
inline Series repeat(int reps, const std::function<double()>& f) {
  f();
  Series s;
  for (int i = 0; i < reps; ++i) s.all.push_back(f());
  s.med = median(s.all);
  s.min = *std::min_element(s.all.begin(), s.all.end());
  s.max = *std::max_element(s.all.begin(), s.all.end());
  return s;
}

/// "min..max" of a series divided by `div`, e.g. for ns per op.
inline std::string spread(const Series& s, double div, const char* unit) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "runs %.3f..%.3f %s", s.min / div, s.max / div, unit);
  return buf;
}

/// A "kB" field of /proc/self/status (VmRSS, VmHWM, ...) in bytes.
inline long status_bytes(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string key;
  const std::string want = std::string(field) + ":";
  while (in >> key) {
    if (key == want) {
      long kb = 0;
      in >> kb;
      return kb * 1024;
    }
    std::getline(in, key);
  }
  die("no %s in /proc/self/status", field);
}

inline long rss_bytes() {
  return status_bytes("VmRSS");
}

/// Number of lines of /proc/self/maps (= mappings, compared with
/// vm.max_map_count).
inline long map_count() {
  std::ifstream in("/proc/self/maps");
  std::string l;
  long n = 0;
  while (std::getline(in, l)) ++n;
  return n;
}

/// Arguments of the form key=value (as the Boost peers take them).
struct Args {
  int argc;
  char** argv;
  std::string str(const char* key, const char* def) const {
    const std::size_t k = std::strlen(key);
    for (int i = 1; i < argc; ++i)
      if (!std::strncmp(argv[i], key, k) && argv[i][k] == '=') return argv[i] + k + 1;
    return def;
  }
  long num(const char* key, long def) const {
    const std::string s = str(key, "");
    return s.empty() ? def : std::strtol(s.c_str(), nullptr, 0);
  }
  /// Rejects arguments that are not key=value with a known key.
  void check(std::initializer_list<const char*> keys) const {
    for (int i = 1; i < argc; ++i) {
      bool ok = false;
      for (const char* k : keys) {
        const std::size_t n = std::strlen(k);
        if (!std::strncmp(argv[i], k, n) && argv[i][n] == '=') ok = true;
      }
      if (!ok) {
        std::string known;
        for (const char* k : keys) known += std::string(" ") + k + "=";
        die("unknown argument '%s' (known:%s)", argv[i], known.c_str());
      }
    }
  }
};

// Runs body(config, suffix) once per worker count: by default with all
// workers (suffix "") and then with 1 worker (suffix "_1w"); `workers=N`
// on the command line runs just that count (suffix "_Nw", or "" for 0).
inline void for_each_worker_pass(
    const Args& a, const std::function<void(const weft::Config&, const char* suffix)>& body) {
  const long only = a.num("workers", -1);
  const std::vector<long> passes = only >= 0 ? std::vector<long>{only} : std::vector<long>{0, 1};
  for (long workers : passes) {
    weft::Config cfg = weft::Config::from_env();
    if (workers > 0) cfg.workers = static_cast<std::size_t>(workers);
    const std::string sfx = workers == 0 ? "" : "_" + std::to_string(workers) + "w";
    body(cfg, sfx.c_str());
  }
}

inline const char* strategy_name(weft::Strategy s) {
  switch (s) {
    case weft::Strategy::single_threaded:
      return "single_threaded";
    case weft::Strategy::thread_per_core:
      return "thread_per_core";
    default:
      return "work_stealing";
  }
}

/// The shape of a runtime as it is configured, for the "#" lines.
inline std::string shape(const weft::Runtime& rt) {
  const weft::Config& c = rt.config();
  char buf[256];
  std::snprintf(
      buf, sizeof buf,
      "workers=%zu strategy=%s stack=%zuKiB guard_pages=%d spin_before_park=%lldus", rt.workers(),
      strategy_name(c.strategy), c.stack_size / 1024, c.guard_pages ? 1 : 0,
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::microseconds>(c.spin_before_park).count()));
  return buf;
}

/// Runs body, turning an escaping exception into "FAILED: ..." and status 2.
inline int run_main(const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "FAILED: exception: %s\n", e.what());
    return 2;
  }
}

}  // namespace wb
