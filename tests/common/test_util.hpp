// Shared helpers for the weft test suite.
//
// Rules every test follows (DESIGN.md "Conventions"): a test asserts
// behaviour, never an upper bound on elapsed time. Waits for something that
// must eventually happen are bounded by generous deadlines (kPatience) only so
// that a broken runtime fails instead of hanging. Every test runs under a
// watchdog that names it if it hangs (common/test_main.cpp, the main() of
// every test binary); a Watchdog here guards one call that cannot be bounded
// otherwise (a join that never returns, a destructor that never ends) with a
// message of its own.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "weft/weft.hpp"

namespace weft::test {

/// True in a ThreadSanitizer build (g++ defines __SANITIZE_THREAD__; clang
/// answers __has_feature).
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif
#else
inline constexpr bool kThreadSanitizer = false;
#endif

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

/// Divisor for heavy loops: sanitizers make everything 5-15x slower.
inline constexpr int kScaleDown = kSanitized ? 10 : 1;

/// Scales an iteration count down under sanitizers (never below `min`).
constexpr long scaled(long n, long min = 1) {
  long v = n / kScaleDown;
  return v < min ? min : v;
}

/// How long to wait for something that must eventually happen before
/// declaring failure. Not a performance bound: only a hang detector.
inline constexpr std::chrono::seconds kPatience{kSanitized ? 120 : 30};

/// std::this_thread::get_id(), re-read on every call. glibc declares
/// pthread_self() __attribute__((const)), so GCC may reuse one call's result
/// for a later call in the same function even across a yield that moved the
/// fiber to another thread (DESIGN.md, TLS hazard). The volatile asm makes
/// this accessor impure, so every call really reads the current thread.
[[gnu::noinline]] inline std::thread::id current_thread_id() {
  asm volatile("" ::: "memory");
  return std::this_thread::get_id();
}

/// Message of the exception currently being handled, or "<none>".
inline std::string current_message() {
  std::exception_ptr e = std::current_exception();
  if (!e) return "<none>";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "<not a std::exception>";
  }
}

/// The what() of the exception fn throws, or "<no exception>": for tests
/// of exact error messages.
inline std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no exception>";
}

/// Thread-safe collector of failed checks made inside fibers, reported once
/// at the end (keeps a broken runtime from printing a million failures).
class Checker {
 public:
  /// Records a failure described by `what` unless `ok`. Returns ok.
  bool check(bool ok, const std::string& what) {
    if (ok) return true;
    std::lock_guard lock(mu_);
    if (++failures_ <= 10) first_.push_back(what);
    return false;
  }
  template <class A, class B>
  bool equal(const A& got, const B& want, const std::string& what) {
    if (got == want) return true;
    std::ostringstream os;
    os << what << ": got " << got << ", want " << want;
    return check(false, os.str());
  }
  long failures() const {
    std::lock_guard lock(mu_);
    return failures_;
  }
  std::string report() const {
    std::lock_guard lock(mu_);
    std::string r = std::to_string(failures_) + " failed checks; first ones:";
    for (const auto& f : first_) r += "\n  " + f;
    return r;
  }

 private:
  mutable std::mutex mu_;
  long failures_ = 0;
  std::vector<std::string> first_;
};

#define WEFT_EXPECT_NO_FAILURES(checker) EXPECT_EQ((checker).failures(), 0) << (checker).report()

/// Polls pred() (from a plain thread or a fiber: it sleeps the OS thread in
/// small steps only outside fibers, and yields/sleeps the fiber inside) until
/// it is true or `patience` has passed. Returns the final pred().
inline bool eventually(const std::function<bool()>& pred,
                       std::chrono::nanoseconds patience = kPatience) {
  auto deadline = std::chrono::steady_clock::now() + patience;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return pred();
    if (weft::this_fiber::in_fiber()) {
      weft::this_fiber::sleep_for(std::chrono::milliseconds(1));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  return true;
}

/// Aborts the process with a message if not destroyed within `limit`. Use
/// around calls that would otherwise hang forever on a broken runtime.
class Watchdog {
 public:
  explicit Watchdog(std::string what, std::chrono::seconds limit = kPatience * 4)
      : what_(std::move(what)), thread_([this, limit] {
          std::unique_lock lock(mu_);
          if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
            std::fprintf(stderr, "\nWATCHDOG: '%s' still running after %lld s: aborting\n",
                         what_.c_str(), static_cast<long long>(limit.count()));
            std::fflush(stderr);
            std::abort();
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  std::string what_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

/// Waits until at least n fibers of rt are parked, then a little more.
/// Checked again after the pause: the count is a racy snapshot in which a
/// fiber in transit between run queues also looks parked.
inline void settle_parked(const Runtime& rt, std::uint64_t n) {
  for (int pass = 0; pass < 2; ++pass) {
    EXPECT_TRUE(eventually([&] { return rt.stats().fibers_parked >= n; }))
        << "parked: " << rt.stats().fibers_parked << ", want " << n;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

/// True in the binaries of the suites that test wake-up paths (sched, chan,
/// sync, io, cancel, scope): tests/CMakeLists.txt defines
/// WEFT_TEST_BACKSTOP_FREE for them.
#ifdef WEFT_TEST_BACKSTOP_FREE
inline constexpr bool kBackstopFreeSuite = true;
#else
inline constexpr bool kBackstopFreeSuite = false;
#endif

/// Config::wake_backstop for the runtimes of this binary: off in the
/// backstop-free suites, so that a lost wake-up hangs (and the per-test
/// watchdog of tests/common/test_main.cpp names the test) instead of costing
/// the monitor's 5 ms; WEFT_WAKE_BACKSTOP=0/1 overrides it either way.
inline bool test_wake_backstop() {
  if (std::getenv("WEFT_WAKE_BACKSTOP") != nullptr) return weft::Config::from_env().wake_backstop;
  return !kBackstopFreeSuite;
}

/// The config every test starts from: defaults (never the other WEFT_*
/// variables of the environment), with test_wake_backstop(), and with the
/// strategy WEFT_TEST_STRATEGY names (work_stealing, thread_per_core), so
/// that a whole suite can be run on another strategy by hand (e.g.
/// WEFT_TEST_STRATEGY=thread_per_core build/tests/weft_test_chan); an
/// unknown name fails the test.
inline weft::Config base_config() {
  weft::Config c;
  c.wake_backstop = test_wake_backstop();
  if (const char* s = std::getenv("WEFT_TEST_STRATEGY")) {
    const std::string name = s;
    if (name == "thread_per_core") {
      c.strategy = weft::Strategy::thread_per_core;
    } else if (name != "work_stealing") {
      ADD_FAILURE() << "WEFT_TEST_STRATEGY=" << name << ": not work_stealing or thread_per_core";
    }
  }
  return c;
}

/// base_config() with `workers` workers.
inline weft::Config workers_config(std::size_t workers) {
  weft::Config c = base_config();
  c.workers = workers;
  return c;
}

/// FiberOptions with only the stack size set. (GCC 12's -Wextra warns about
/// designated initializers that skip leading members, so tests build options
/// through helpers.)
inline weft::FiberOptions with_stack(std::size_t bytes) {
  weft::FiberOptions o;
  o.stack_size = bytes;
  return o;
}

/// FiberOptions with only the priority set.
inline weft::FiberOptions with_priority(weft::Priority p) {
  weft::FiberOptions o;
  o.priority = p;
  return o;
}

/// Fixture for tests parameterised over the worker count.
class WorkersTest : public ::testing::TestWithParam<std::size_t> {
 protected:
  std::size_t workers() const { return GetParam(); }
  weft::Config config() const { return workers_config(GetParam()); }
};

inline std::string workers_name(const ::testing::TestParamInfo<std::size_t>& info) {
  return "workers_" + std::to_string(info.param);
}

/// Waits (bounded) until the runtime reports no live fibers: every fiber a
/// test spawned has ended and been accounted for.
inline void expect_no_live_fibers(const weft::Runtime& rt) {
  bool drained = eventually([&] { return rt.stats().fibers_alive == 0; });
  EXPECT_TRUE(drained) << "fibers_alive = " << rt.stats().fibers_alive;
}

/// Number of lines in /proc/self/maps: the process's kernel mappings (VMAs).
inline std::size_t map_count() {
  std::ifstream maps("/proc/self/maps");
  std::size_t n = 0;
  std::string line;
  while (std::getline(maps, line)) ++n;
  return n;
}

/// A "<key>: <n> kB" line of /proc/self/status, in KiB; -1 if absent.
inline long status_kib(const std::string& key) {
  std::ifstream status("/proc/self/status");
  std::string k;
  while (status >> k) {
    if (k == key) {
      long v = 0;
      status >> v;
      return v;
    }
  }
  return -1;
}

/// Resident set size in KiB.
inline long rss_kib() {
  return status_kib("VmRSS:");
}

/// Mapped address space in KiB. Unlike the mapping count it sees leaked
/// stacks: adjacent stacks guarded with MADV_GUARD_INSTALL merge into one VMA.
inline long vm_size_kib() {
  return status_kib("VmSize:");
}

/// Test name suffix for a Strategy parameter.
inline std::string strategy_name(const ::testing::TestParamInfo<weft::Strategy>& info) {
  using weft::Strategy;
  if (info.param == Strategy::single_threaded) return "single_threaded";
  return info.param == Strategy::thread_per_core ? "thread_per_core" : "work_stealing";
}

}  // namespace weft::test

/// Instantiates a WorkersTest-derived suite over 1, 2 and 4 workers.
#define WEFT_INSTANTIATE_WORKERS(Suite) \
  INSTANTIATE_TEST_SUITE_P(Workers, Suite, ::testing::Values(1, 2, 4), ::weft::test::workers_name)

/// Instantiates a TestWithParam<weft::Strategy> suite over the strategies
/// (auto is work_stealing, so it is not repeated).
#define WEFT_INSTANTIATE_STRATEGIES(Suite)                                                  \
  INSTANTIATE_TEST_SUITE_P(                                                                 \
      Strategies, Suite,                                                                    \
      ::testing::Values(::weft::Strategy::work_stealing, ::weft::Strategy::single_threaded, \
                        ::weft::Strategy::thread_per_core),                                 \
      ::weft::test::strategy_name)
