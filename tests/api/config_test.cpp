// Config validation, Config::from_env parsing, and the errors the public API
// reports for bad arguments.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "api/config_util.hpp"
#include "common/test_util.hpp"
#include "sched/cpu_budget.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::Config;
using weft::test::message_of;

constexpr std::size_t KiB = 1024;
constexpr std::size_t MiB = 1024 * KiB;
constexpr std::size_t GiB = 1024 * MiB;

#define EXPECT_INVALID_MENTIONING(expr, word)                                    \
  do {                                                                           \
    std::string msg_ = message_of<std::invalid_argument>([&] { (void)(expr); }); \
    EXPECT_NE(msg_.find(word), std::string::npos)                                \
        << "message \"" << msg_ << "\" should name " << (word);                  \
  } while (0)

// ---------------------------------------------------------------------------
// Config::validate

TEST(ConfigValidate, DefaultsAreValid) {
  Config c;
  EXPECT_NO_THROW(c.validate());
  EXPECT_EQ(c.workers, 0u);
  EXPECT_EQ(c.stack_size, 256 * KiB);
  EXPECT_TRUE(c.guard_pages);
  EXPECT_EQ(c.strategy, weft::Strategy::work_stealing);
  EXPECT_TRUE(c.wake_backstop);  // off only in tests
}

TEST(ConfigValidate, Workers) {
  Config c;
  c.workers = 100000;
  EXPECT_INVALID_MENTIONING(c.validate(), "workers");
  c.workers = 1025;
  EXPECT_THROW(c.validate(), std::invalid_argument);
  c.workers = 1024;
  EXPECT_NO_THROW(c.validate());
  c.workers = 1;
  EXPECT_NO_THROW(c.validate());
  c.workers = 0;
  EXPECT_NO_THROW(c.validate());
}

TEST(ConfigValidate, StackSize) {
  Config c;
  c.stack_size = 1000;
  EXPECT_INVALID_MENTIONING(c.validate(), "stack_size");
  c.stack_size = 16 * KiB - 1;
  EXPECT_THROW(c.validate(), std::invalid_argument);
  c.stack_size = 2 * GiB;
  EXPECT_INVALID_MENTIONING(c.validate(), "stack_size");
  c.stack_size = GiB + 1;
  EXPECT_THROW(c.validate(), std::invalid_argument);
  c.stack_size = 16 * KiB;
  EXPECT_NO_THROW(c.validate());
  c.stack_size = GiB;
  EXPECT_NO_THROW(c.validate());
}

TEST(ConfigValidate, PreemptionInterval) {
  Config c;
  c.preemption_interval = 0ns;
  EXPECT_INVALID_MENTIONING(c.validate(), "preemption_interval");
  c.preemption_interval = 999us;
  EXPECT_THROW(c.validate(), std::invalid_argument);
  c.preemption_interval = 61s;
  EXPECT_THROW(c.validate(), std::invalid_argument);
  c.preemption_interval = 1ms;
  EXPECT_NO_THROW(c.validate());
  c.preemption_interval = 60s;
  EXPECT_NO_THROW(c.validate());
}

TEST(ConfigValidate, OtherRanges) {
  {
    Config c;
    c.stall_warning = 1ms;
    EXPECT_INVALID_MENTIONING(c.validate(), "stall_warning");
  }
  {
    Config c;
    c.max_blocking_threads = 0;
    EXPECT_INVALID_MENTIONING(c.validate(), "max_blocking_threads");
    c.max_blocking_threads = 10001;
    EXPECT_THROW(c.validate(), std::invalid_argument);
    c.max_blocking_threads = 1;
    EXPECT_NO_THROW(c.validate());
  }
  {
    Config c;
    c.blocking_keep_alive = 0ns;
    EXPECT_INVALID_MENTIONING(c.validate(), "blocking_keep_alive");
  }
  {
    Config c;
    c.spin_before_park = 11ms;
    EXPECT_INVALID_MENTIONING(c.validate(), "spin_before_park");
    c.spin_before_park = 0ns;
    EXPECT_NO_THROW(c.validate());
  }
}

TEST(ConfigValidate, SingleThreadedNeedsOneWorker) {
  Config c;
  c.strategy = weft::Strategy::single_threaded;
  c.workers = 2;
  EXPECT_THROW(c.validate(), std::invalid_argument);
  c.workers = 1;
  EXPECT_NO_THROW(c.validate());
  c.workers = 0;
  EXPECT_NO_THROW(c.validate());
}

TEST(ConfigValidate, ResolvedWorkers) {
  Config c;
  c.workers = 3;
  EXPECT_EQ(c.resolved_workers(), 3u);
  c.workers = 0;
  const std::size_t hw = weft::detail::cpu_budget().workers;  // affinity and cgroup limits
  EXPECT_EQ(c.resolved_workers(), hw);
}

// ---------------------------------------------------------------------------
// Config::from_env

class ConfigFromEnv : public weft::test::CleanEnvTest {};

TEST_F(ConfigFromEnv, NothingSetGivesDefaults) {
  Config c = Config::from_env();
  Config d;
  EXPECT_EQ(c.workers, d.workers);
  EXPECT_EQ(c.stack_size, d.stack_size);
  EXPECT_EQ(c.guard_pages, d.guard_pages);
  EXPECT_EQ(c.preemption_interval, d.preemption_interval);
  EXPECT_EQ(c.stall_warning, d.stall_warning);
  EXPECT_EQ(c.strategy, d.strategy);
  EXPECT_EQ(c.max_blocking_threads, d.max_blocking_threads);
  EXPECT_EQ(c.spin_before_park, d.spin_before_park);
  EXPECT_EQ(c.wake_backstop, d.wake_backstop);
}

TEST_F(ConfigFromEnv, Workers) {
  set("WEFT_WORKERS", "3");
  EXPECT_EQ(Config::from_env().workers, 3u);
  set("WEFT_WORKERS", "0");  // 0 = hardware concurrency: allowed
  EXPECT_EQ(Config::from_env().workers, 0u);
  set("WEFT_WORKERS", "abc");
  EXPECT_INVALID_MENTIONING(Config::from_env(), "WEFT_WORKERS");
  set("WEFT_WORKERS", "99999");
  EXPECT_INVALID_MENTIONING(Config::from_env(), "WEFT_WORKERS");
  set("WEFT_WORKERS", "-1");
  EXPECT_INVALID_MENTIONING(Config::from_env(), "WEFT_WORKERS");
  set("WEFT_WORKERS", "4x");
  EXPECT_INVALID_MENTIONING(Config::from_env(), "WEFT_WORKERS");
}

TEST_F(ConfigFromEnv, StackSize) {
  set("WEFT_STACK_SIZE", "64K");
  EXPECT_EQ(Config::from_env().stack_size, 64 * KiB);
  set("WEFT_STACK_SIZE", "2M");
  EXPECT_EQ(Config::from_env().stack_size, 2 * MiB);
  set("WEFT_STACK_SIZE", "1G");
  EXPECT_EQ(Config::from_env().stack_size, GiB);
  set("WEFT_STACK_SIZE", "65536");
  EXPECT_EQ(Config::from_env().stack_size, 65536u);
  set("WEFT_STACK_SIZE", "12");
  EXPECT_INVALID_MENTIONING(Config::from_env(), "WEFT_STACK_SIZE");
  set("WEFT_STACK_SIZE", "2G");
  EXPECT_INVALID_MENTIONING(Config::from_env(), "WEFT_STACK_SIZE");
  set("WEFT_STACK_SIZE", "lots");
  EXPECT_INVALID_MENTIONING(Config::from_env(), "WEFT_STACK_SIZE");
  // (2^54 + 64) K overflows 64 bits and would wrap around to a valid 64 KiB.
  set("WEFT_STACK_SIZE", "18014398509482048K");
  EXPECT_INVALID_MENTIONING(Config::from_env(), "WEFT_STACK_SIZE");
}

TEST_F(ConfigFromEnv, GuardPages) {
  set("WEFT_GUARD_PAGES", "0");
  EXPECT_FALSE(Config::from_env().guard_pages);
  set("WEFT_GUARD_PAGES", "1");
  EXPECT_TRUE(Config::from_env().guard_pages);
  set("WEFT_GUARD_PAGES", "maybe");
  EXPECT_INVALID_MENTIONING(Config::from_env(), "WEFT_GUARD_PAGES");
}

TEST_F(ConfigFromEnv, WakeBackstop) {
  set("WEFT_WAKE_BACKSTOP", "0");
  EXPECT_FALSE(Config::from_env().wake_backstop);
  set("WEFT_WAKE_BACKSTOP", "off");
  EXPECT_FALSE(Config::from_env().wake_backstop);
  set("WEFT_WAKE_BACKSTOP", "1");
  EXPECT_TRUE(Config::from_env().wake_backstop);
  set("WEFT_WAKE_BACKSTOP", "2");
  EXPECT_INVALID_MENTIONING(Config::from_env(), "WEFT_WAKE_BACKSTOP");
}

TEST_F(ConfigFromEnv, Strategy) {
  set("WEFT_STRATEGY", "single_threaded");
  EXPECT_EQ(Config::from_env().strategy, weft::Strategy::single_threaded);
  set("WEFT_STRATEGY", "work_stealing");
  EXPECT_EQ(Config::from_env().strategy, weft::Strategy::work_stealing);
  set("WEFT_STRATEGY", "thread_per_core");
  EXPECT_EQ(Config::from_env().strategy, weft::Strategy::thread_per_core);
  set("WEFT_STRATEGY", "auto");
  EXPECT_EQ(Config::from_env().strategy, weft::Strategy::auto_select);
  set("WEFT_STRATEGY", "bogus");
  EXPECT_INVALID_MENTIONING(Config::from_env(), "WEFT_STRATEGY");
}

TEST_F(ConfigFromEnv, PreemptMs) {
  set("WEFT_PREEMPT_MS", "5");
  EXPECT_EQ(Config::from_env().preemption_interval, 5ms);
  set("WEFT_PREEMPT_MS", "0");
  EXPECT_INVALID_MENTIONING(Config::from_env(), "WEFT_PREEMPT_MS");
}

TEST_F(ConfigFromEnv, OtherVariables) {
  set("WEFT_STALL_WARN_MS", "250");
  EXPECT_EQ(Config::from_env().stall_warning, 250ms);
  set("WEFT_MAX_BLOCKING_THREADS", "7");
  EXPECT_EQ(Config::from_env().max_blocking_threads, 7u);
  set("WEFT_SPIN_US", "0");
  EXPECT_EQ(Config::from_env().spin_before_park, 0us);
  set("WEFT_MAX_BLOCKING_THREADS", "0");
  EXPECT_INVALID_MENTIONING(Config::from_env(), "WEFT_MAX_BLOCKING_THREADS");
}

TEST_F(ConfigFromEnv, DeadlockReport) {
  EXPECT_EQ(Config::from_env().deadlock_report, 0ms);  // off by default
  set("WEFT_DEADLOCK_REPORT_MS", "200");
  set("WEFT_DEADLOCK_ABORT", "1");
  EXPECT_EQ(Config::from_env().deadlock_report, 200ms);
  EXPECT_TRUE(Config::from_env().deadlock_abort);
  set("WEFT_DEADLOCK_REPORT_MS", "-1");
  EXPECT_INVALID_MENTIONING(Config::from_env(), "WEFT_DEADLOCK_REPORT_MS");
}

TEST_F(ConfigFromEnv, RuntimeDefaultConstructorReadsEnvironment) {
  set("WEFT_WORKERS", "2");
  weft::Runtime rt;
  EXPECT_EQ(rt.workers(), 2u);
  EXPECT_EQ(rt.config().workers, 2u);
}

TEST_F(ConfigFromEnv, RuntimeDefaultConstructorRejectsBadEnvironment) {
  set("WEFT_WORKERS", "abc");
  EXPECT_INVALID_MENTIONING(weft::Runtime(), "WEFT_WORKERS");
}

// ---------------------------------------------------------------------------
// Errors from Runtime and spawn

TEST(RuntimeConfig, RejectsInvalidConfig) {
  EXPECT_INVALID_MENTIONING(weft::Runtime(weft::test::workers_config(5000)), "workers");
  Config c = weft::test::workers_config(1);
  c.stack_size = 1000;
  EXPECT_THROW(weft::Runtime{c}, std::invalid_argument);
}

TEST(RuntimeConfig, ReportsResolvedConfig) {
  {
    weft::Runtime rt(weft::test::workers_config(3));
    EXPECT_EQ(rt.workers(), 3u);
    EXPECT_EQ(rt.config().workers, 3u);
    EXPECT_EQ(rt.stats().workers.size(), 3u);
  }
  {
    weft::Runtime rt(weft::test::workers_config(0));
    const std::size_t hw = weft::detail::cpu_budget().workers;  // affinity and cgroup limits
    EXPECT_EQ(rt.workers(), hw);
    EXPECT_EQ(rt.config().workers, hw) << "config() must report the resolved worker count";
  }
  {
    Config c;
    c.workers = 0;
    c.strategy = weft::Strategy::single_threaded;
    weft::Runtime rt(c);
    EXPECT_EQ(rt.workers(), 1u);
  }
}

TEST(SpawnErrors, BadStackSizeThrowsInvalidArgument) {
  weft::Runtime rt(weft::test::workers_config(1));
  // From outside the runtime (Runtime::spawn) ...
  EXPECT_THROW((void)rt.spawn(weft::test::with_stack(100), [] {}), std::invalid_argument);
  EXPECT_THROW((void)rt.spawn(weft::test::with_stack(2 * GiB), [] {}), std::invalid_argument);
  // ... and from a fiber (weft::spawn).
  rt.block_on([] {
    EXPECT_THROW((void)weft::spawn(weft::test::with_stack(100), [] { return 1; }),
                 std::invalid_argument);
    EXPECT_THROW((void)weft::spawn(weft::test::with_stack(16 * KiB - 1), [] {}),
                 std::invalid_argument);
    // A valid explicit size works.
    EXPECT_EQ(weft::spawn(weft::test::with_stack(64 * KiB), [] { return 5; }).join(), 5);
  });
  weft::test::expect_no_live_fibers(rt);
}

TEST(SpawnErrors, FailedSpawnDoesNotRunOrLeakTheClosure) {
  weft::Runtime rt(weft::test::workers_config(1));
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> weak = token;
  bool ran = false;
  EXPECT_THROW(
      (void)rt.spawn(weft::test::with_stack(100), [t = std::move(token), &ran] { ran = true; }),
      std::invalid_argument);
  EXPECT_FALSE(ran);
  EXPECT_TRUE(weak.expired()) << "the closure of a failed spawn was leaked";
}

TEST(SpawnErrors, SpawnOutsideARuntimeThrowsLogicError) {
  EXPECT_THROW((void)weft::spawn([] {}), std::logic_error);
  EXPECT_THROW((void)weft::spawn_blocking([] {}), std::logic_error);
  // Also from a thread that merely coexists with a runtime.
  weft::Runtime rt(weft::test::workers_config(1));
  EXPECT_THROW((void)weft::spawn([] { return 1; }), std::logic_error);
}

}  // namespace

// auto resolves to work stealing, and says so in describe().
TEST(ConfigStrategy, AutoIsWorkStealing) {
  weft::Config c = weft::test::base_config();
  c.strategy = weft::Strategy::auto_select;
  c.workers = 2;
  weft::Runtime rt(c);
  EXPECT_EQ(rt.config().strategy, weft::Strategy::work_stealing);
  EXPECT_NE(rt.describe().find("auto: work_stealing"), std::string::npos) << rt.describe();
}
