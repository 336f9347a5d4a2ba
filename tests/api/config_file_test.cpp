// The configuration schema's three sources (API > environment > TOML file),
// the exact errors of the file parser, Config::describe(), the settings a
// running Runtime can change, and docs/configuration.md against the schema.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "api/config_util.hpp"
#include "common/io_util.hpp"
#include "common/test_util.hpp"
#include "obs/capture.hpp"
#include "sched/cpu_budget.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::Config;
using weft::ConfigError;
using weft::test::message_of;

/// A fixture with a clean environment and a scratch directory for TOML files.
class ConfigFile : public weft::test::CleanEnvTest {
 protected:
  /// Writes `text` to a fresh file in the scratch directory; returns its path.
  std::string write(const std::string& text) {
    const std::string path = (dir_.path() / ("c" + std::to_string(files_++) + ".toml")).string();
    std::ofstream(path) << text;
    return path;
  }
  /// The ConfigError of Config::from_file(path) (fails the test if none).
  static ConfigError error_of(const std::string& path) {
    try {
      (void)Config::from_file(path);
    } catch (const ConfigError& e) {
      return e;
    }
    ADD_FAILURE() << "Config::from_file(" << path << ") did not throw ConfigError";
    return ConfigError("", "", "", "");
  }
  /// Config::from_file of a file holding `text` must fail with the message
  /// "weft: <path>" + `after_path`.
  void expect_error(const std::string& text, const std::string& after_path) {
    const std::string path = write(text);
    EXPECT_STREQ(error_of(path).what(), ("weft: " + path + after_path).c_str()) << text;
  }

 private:
  weft::test::TempDir dir_;
  int files_ = 0;
};

TEST_F(ConfigFile, ReadsEveryKind) {
  const std::string path = write(
      "workers = 3\n"
      "pin_workers = true\n"
      "stack_size = \"64K\"\n"
      "guard_pages = false\n"
      "max_fibers = 5000\n"
      "max_stack_memory = \"512M\"\n"
      "default_operation_timeout = \"2s\"\n"
      "network_timeout = 30000\n"  // ms
      "io_timeout = \"500ms\"\n"
      "preemption_interval = \"5ms\"\n"
      "stall_warning = 250\n"  // bare number: the setting's unit, ms
      "deadlock_report = \"2s\"\n"
      "deadlock_abort = true\n"
      "strategy = \"work_stealing\"\n"
      "max_blocking_threads = 7\n"
      "blocking_keep_alive = \"2s\"\n"
      "spin_before_park = 50\n"  // us
      "wake_backstop = false\n"
      "io_backend = \"epoll\"\n"
      "io_uring_entries = 64\n"
      "trace_buffer_events = 4096\n"
      "memory_limit = \"128M\"\n"
      "memory_pressure_fraction = 0.75\n");
  const Config c = Config::from_file(path);
  EXPECT_EQ(c.workers, 3u);
  EXPECT_TRUE(c.pin_workers);
  EXPECT_EQ(c.stack_size, 64u * 1024);
  EXPECT_FALSE(c.guard_pages);
  EXPECT_EQ(c.max_fibers, 5000u);
  EXPECT_EQ(c.max_stack_memory, 512u * 1024 * 1024);
  EXPECT_EQ(c.default_operation_timeout, 2s);
  EXPECT_EQ(c.network_timeout, 30s);
  EXPECT_EQ(c.io_timeout, 500ms);
  EXPECT_EQ(c.preemption_interval, 5ms);
  EXPECT_EQ(c.stall_warning, 250ms);
  EXPECT_EQ(c.deadlock_report, 2s);
  EXPECT_TRUE(c.deadlock_abort);
  EXPECT_EQ(c.strategy, weft::Strategy::work_stealing);
  EXPECT_EQ(c.max_blocking_threads, 7u);
  EXPECT_EQ(c.blocking_keep_alive, 2s);
  EXPECT_EQ(c.spin_before_park, 50us);
  EXPECT_FALSE(c.wake_backstop);
  EXPECT_EQ(c.io_backend, weft::IoBackend::epoll);
  EXPECT_EQ(c.io_uring_entries, 64u);
  EXPECT_EQ(c.trace_buffer_events, 4096u);
  EXPECT_EQ(c.memory_limit, 128u * 1024 * 1024);
  EXPECT_DOUBLE_EQ(c.memory_pressure_fraction, 0.75);
  EXPECT_EQ(
      c.describe(),
      "workers = 3  (file " + path + ":1)\n" + "pin_workers = true  (file " + path + ":2)\n" +
          "stack_size = \"64K\"  (file " + path + ":3)\n" + "guard_pages = false  (file " + path +
          ":4)\n" + "max_fibers = 5000  (file " + path + ":5)\n" +
          "max_stack_memory = \"512M\"  (file " + path + ":6)\n" +
          "memory_limit = \"128M\"  (file " + path + ":22)\n" +
          "memory_pressure_fraction = 0.75  (file " + path + ":23)\n" +
          "default_operation_timeout = \"2s\"  (file " + path + ":7)\n" +
          "network_timeout = \"30s\"  (file " + path + ":8)\n" + "io_timeout = \"500ms\"  (file " +
          path + ":9)\n" + "preemption_interval = \"5ms\"  (file " + path + ":10)\n" +
          "stall_warning = \"250ms\"  (file " + path + ":11)\n" +
          "deadlock_report = \"2s\"  (file " + path + ":12)\n" + "deadlock_abort = true  (file " +
          path + ":13)\n" + "strategy = \"work_stealing\"  (file " + path + ":14)\n" +
          "max_blocking_threads = 7  (file " + path + ":15)\n" +
          "blocking_keep_alive = \"2s\"  (file " + path + ":16)\n" +
          "spin_before_park = \"50us\"  (file " + path + ":17)\n" +
          "wake_backstop = false  (file " + path + ":18)\n" + "io_backend = \"epoll\"  (file " +
          path + ":19)\n" + "io_uring_entries = 64  (file " + path + ":20)\n" +
          "trace_buffer_events = 4096  (file " + path + ":21)\n");
}

TEST_F(ConfigFile, LimitsFromTheEnvironmentAndTheirErrors) {
  set("WEFT_MAX_FIBERS", "100000");
  set("WEFT_MAX_STACK_MEMORY", "2G");
  set("WEFT_PIN_WORKERS", "1");
  Config c = Config::from_env();
  EXPECT_EQ(c.max_fibers, 100000u);
  EXPECT_EQ(c.max_stack_memory, 2u * 1024 * 1024 * 1024);
  EXPECT_TRUE(c.pin_workers);
  set("WEFT_MAX_FIBERS", "-1");
  EXPECT_EQ(message_of([] { (void)Config::from_env(); }),
            "weft: WEFT_MAX_FIBERS: must be an integer in 0..1000000000 (0 = no limit), got '-1'");
  set("WEFT_MAX_FIBERS", "0");
  set("WEFT_MAX_STACK_MEMORY", "65537G");
  EXPECT_EQ(message_of([] { (void)Config::from_env(); }),
            "weft: WEFT_MAX_STACK_MEMORY: must be a size in 0..65536G bytes (suffixes K, M, G) "
            "(0 = no limit), got '65537G'");
  c = Config{};
  c.max_fibers = 1'000'000'001;
  EXPECT_EQ(message_of([&] { c.validate(); }),
            "weft: Config::max_fibers: must be an integer in 0..1000000000 (0 = no limit), got "
            "1000000001");
}

// --- memory_limit and memory_pressure_fraction ----------------------------------

constexpr const char* kMemoryLimitAllowed =
    "a size in 1M..65536G bytes (suffixes K, M, G) (none = off; auto = 90 % of the tightest "
    "cgroup memory limit)";

TEST_F(ConfigFile, MemoryLimitFromEveryForm) {
  set("WEFT_MEMORY_LIMIT", "64M");
  set("WEFT_MEMORY_PRESSURE_FRACTION", "0.75");
  Config c = Config::from_env();
  EXPECT_EQ(c.memory_limit, 64u << 20);
  EXPECT_DOUBLE_EQ(c.memory_pressure_fraction, 0.75);
  set("WEFT_MEMORY_LIMIT", "none");
  EXPECT_EQ(Config::from_env().memory_limit, 0u);
  set("WEFT_MEMORY_LIMIT", "auto");
  c = Config::from_env();
  EXPECT_EQ(c.memory_limit, Config::memory_limit_auto);
  EXPECT_NE(c.describe().find("memory_limit = \"auto\"  (env WEFT_MEMORY_LIMIT)\n"),
            std::string::npos)
      << c.describe();
  CleanEnvTest::clear();
  const std::string path = write("memory_limit = \"2G\"\nmemory_pressure_fraction = 0.5\n");
  c = Config::from_file(path);
  EXPECT_EQ(c.memory_limit, 2u << 30);
  EXPECT_DOUBLE_EQ(c.memory_pressure_fraction, 0.5);
  EXPECT_NE(c.describe().find("memory_limit = \"2G\"  (file " + path + ":1)\n"), std::string::npos)
      << c.describe();
  EXPECT_NE(c.describe().find("memory_pressure_fraction = 0.5  (file " + path + ":2)\n"),
            std::string::npos)
      << c.describe();
  EXPECT_EQ(Config::from_file(write("memory_limit = 1048576\nmemory_pressure_fraction = 1\n"))
                .memory_limit,
            1u << 20);
}

TEST_F(ConfigFile, MemoryLimitErrors) {
  const std::string allowed = kMemoryLimitAllowed;
  set("WEFT_MEMORY_LIMIT", "-5");
  EXPECT_EQ(message_of<ConfigError>([] { (void)Config::from_env(); }),
            "weft: WEFT_MEMORY_LIMIT: must be " + allowed + ", got '-5'");
  set("WEFT_MEMORY_LIMIT", "lots");
  EXPECT_EQ(message_of<ConfigError>([] { (void)Config::from_env(); }),
            "weft: WEFT_MEMORY_LIMIT: must be " + allowed + ", got 'lots'");
  set("WEFT_MEMORY_LIMIT", "512K");
  EXPECT_EQ(message_of<ConfigError>([] { (void)Config::from_env(); }),
            "weft: WEFT_MEMORY_LIMIT: must be " + allowed + ", got '512K'");
  CleanEnvTest::clear();
  set("WEFT_MEMORY_PRESSURE_FRACTION", "80%");
  EXPECT_EQ(message_of<ConfigError>([] { (void)Config::from_env(); }),
            "weft: WEFT_MEMORY_PRESSURE_FRACTION: must be a fraction in 0.001..1, got '80%'");
  CleanEnvTest::clear();
  expect_error("memory_limit = -1\n", ":1: memory_limit: must be " + allowed + ", got -1");
  expect_error("memory_limit = \"huge\"\n",
               ":1: memory_limit: must be " + allowed + ", got \"huge\"");
  expect_error("memory_limit = true\n", ":1: memory_limit: must be " + allowed + ", got a boolean");
  expect_error("memory_pressure_fraction = 1.5\n",
               ":1: memory_pressure_fraction: must be a fraction in 0.001..1, got 1.5");
  expect_error("memory_pressure_fraction = -0.5\n",
               ":1: memory_pressure_fraction: must be a fraction in 0.001..1, got -0.5");
  expect_error("memory_pressure_fraction = \"0.8\"\n",
               ":1: memory_pressure_fraction: must be a fraction in 0.001..1, got a string");
  Config c;
  c.memory_limit = 5;
  EXPECT_EQ(message_of<ConfigError>([&] { c.validate(); }),
            "weft: Config::memory_limit: must be " + allowed + ", got 5");
  c = Config{};
  c.memory_pressure_fraction = 2;
  EXPECT_EQ(message_of<ConfigError>([&] { c.validate(); }),
            "weft: Config::memory_pressure_fraction: must be a fraction in 0.001..1, got a value "
            "outside 0..1");
}

// auto takes 90 % of the cgroup limit, or fails naming where auto came
// from. Which one this machine shows depends on its cgroups (the fake-tree
// tests in weft_test_sched cover both); here the runtime must agree with
// memory_budget() either way.
TEST_F(ConfigFile, MemoryLimitAutoAtRuntimeStart) {
  set("WEFT_MEMORY_LIMIT", "auto");
  set("WEFT_WORKERS", "1");
  const auto budget = weft::detail::memory_budget();
  if (!budget) {
    const std::string msg = message_of<ConfigError>([] { weft::Runtime rt; });
    EXPECT_EQ(msg,
              "weft: WEFT_MEMORY_LIMIT: memory_limit: auto needs a cgroup memory limit, and "
              "neither the process's cgroup nor an ancestor sets one (memory.max, "
              "memory.limit_in_bytes); set a size instead");
    weft::Runtime rt(weft::test::workers_config(1));
    EXPECT_THROW(rt.set_memory_limit(Config::memory_limit_auto), ConfigError);
    EXPECT_EQ(rt.memory_limit(), 0u);
  } else {
    weft::Runtime rt;
    EXPECT_EQ(rt.memory_limit(), budget->limit_bytes);
    EXPECT_NE(rt.describe().find("(derived: 90 % of cgroup "), std::string::npos) << rt.describe();
  }
}

TEST_F(ConfigFile, MemoryLimitChangesAtRunTime) {
  weft::Runtime rt(weft::test::workers_config(1));
  EXPECT_EQ(rt.memory_limit(), 0u);
  rt.set_memory_limit(256u << 20);
  EXPECT_EQ(rt.memory_limit(), 256u << 20);
  EXPECT_NE(rt.describe().find("memory_limit = \"256M\"  (api)\n"), std::string::npos)
      << rt.describe();
  EXPECT_EQ(
      message_of<ConfigError>([&] { rt.set_memory_limit(1000); }),
      std::string("weft: Config::memory_limit: must be ") + kMemoryLimitAllowed + ", got 1000");
  EXPECT_EQ(rt.memory_limit(), 256u << 20);  // unchanged by the refused value
  rt.set_memory_limit(0);
  EXPECT_EQ(rt.memory_usage().limit, 0u);
}

TEST_F(ConfigFile, PrecedenceApiOverEnvOverFile) {
  const std::string path = write("workers = 3\nstack_size = \"64K\"\nspin_before_park = 50\n");
  set("WEFT_WORKERS", "2");  // env beats the file's 3
  Config c = Config::from_file(path);
  EXPECT_EQ(c.workers, 2u);
  EXPECT_EQ(c.stack_size, 64u * 1024);  // only in the file
  EXPECT_EQ(c.spin_before_park, 50us);
  c.spin_before_park = 70us;  // the API beats both
  const std::string d = c.describe();
  EXPECT_NE(d.find("workers = 2  (env WEFT_WORKERS)\n"), std::string::npos) << d;
  EXPECT_NE(d.find("stack_size = \"64K\"  (file " + path + ":2)\n"), std::string::npos) << d;
  EXPECT_NE(d.find("spin_before_park = \"70us\"  (api)\n"), std::string::npos) << d;
  EXPECT_NE(d.find("guard_pages = true  (default)\n"), std::string::npos) << d;
}

TEST_F(ConfigFile, WeftConfigVariableNamesTheFileOfFromEnv) {
  const std::string path = write("max_blocking_threads = 9\nworkers = 1\n");
  set("WEFT_CONFIG", path.c_str());
  set("WEFT_WORKERS", "2");
  const Config c = Config::from_env();
  EXPECT_EQ(c.max_blocking_threads, 9u);
  EXPECT_EQ(c.workers, 2u);
  weft::Runtime rt;  // the default constructor reads the same sources
  EXPECT_EQ(rt.workers(), 2u);
  EXPECT_EQ(rt.config().max_blocking_threads, 9u);
  set("WEFT_CONFIG", "");
  EXPECT_EQ(message_of<ConfigError>([] { (void)Config::from_env(); }),
            "weft: WEFT_CONFIG: must be the path of a TOML file, got ''");
}

TEST_F(ConfigFile, DescribeOfCodeBuiltConfig) {
  Config c;
  c.workers = 2;
  const std::string d = c.describe();
  EXPECT_EQ(d.rfind("workers = 2  (api)\npin_workers = false  (default)\n"
                    "stack_size = \"256K\"  (default)\n",
                    0),
            0u)
      << d;
}

// --- every error path of the file parser, with the exact message -------------

TEST_F(ConfigFile, UnreadableFile) {
  const std::string path = write("") + ".missing";
  const ConfigError e = error_of(path);
  EXPECT_STREQ(e.what(),
               ("weft: " + path + ": cannot read the configuration file: No such file or directory")
                   .c_str());
  EXPECT_EQ(e.where(), path);
}

TEST_F(ConfigFile, InvalidToml) {
  const std::string path = write("workers = 2\nstack_size = = 3\n");
  const ConfigError e = error_of(path);
  const std::string msg = e.what();
  EXPECT_EQ(msg.rfind("weft: " + path + ":2:", 0), 0u) << msg;
  EXPECT_NE(msg.find(": invalid TOML: "), std::string::npos) << msg;
  EXPECT_EQ(e.where(), path + ":2");
  EXPECT_EQ(e.key(), "");
}

TEST_F(ConfigFile, UnknownKey) {
  const std::string path = write("workers = 2\n\nwrokers = 3\n");
  const ConfigError e = error_of(path);
  EXPECT_STREQ(e.what(), ("weft: " + path +
                          ":3: unknown key 'wrokers' (docs/configuration.md lists the keys)")
                             .c_str());
  EXPECT_EQ(e.key(), "wrokers");
  EXPECT_EQ(e.where(), path + ":3");
}

TEST_F(ConfigFile, UnknownTableIsAnUnknownKey) {
  const std::string path = write("[runtime]\nworkers = 2\n");
  EXPECT_STREQ(
      error_of(path).what(),
      ("weft: " + path + ":1: unknown key 'runtime' (docs/configuration.md lists the keys)")
          .c_str());
}

TEST_F(ConfigFile, WrongType) {
  expect_error("workers = \"four\"\n",
               ":1: workers: must be an integer in 0..1024 (0 = one per allowed CPU), "
               "got a string");
  expect_error("guard_pages = 1\n",
               ":1: guard_pages: must be true or false (in the environment also 1/0, on/off, "
               "yes/no), got an integer");
  expect_error(
      "strategy = 1\n",
      ":1: strategy: must be work_stealing, single_threaded, thread_per_core or auto, got an "
      "integer");
  expect_error("stack_size = 1.5\n",
               ":1: stack_size: must be a size in 16K..1G bytes (suffixes K, M, G), got a "
               "floating-point number");
  expect_error("io_uring_entries = [8]\n",
               ":1: io_uring_entries: must be a power of two in 8..32768, got an array");
}

TEST_F(ConfigFile, OutOfRange) {
  expect_error("\nworkers = 5000\n",
               ":2: workers: must be an integer in 0..1024 (0 = one per allowed CPU), got 5000");
  expect_error("workers = -1\n",
               ":1: workers: must be an integer in 0..1024 (0 = one per allowed CPU), got -1");
  expect_error("stack_size = \"2G\"\n",
               ":1: stack_size: must be a size in 16K..1G bytes (suffixes K, M, G), got \"2G\"");
  expect_error("stack_size = 1000\n",
               ":1: stack_size: must be a size in 16K..1G bytes (suffixes K, M, G), got 1000");
  expect_error("preemption_interval = \"61s\"\n",
               ":1: preemption_interval: must be a duration in 1ms..60s (a bare number is ms; "
               "suffixes ns, us, ms, s), got \"61s\"");
  expect_error("spin_before_park = \"20 parsecs\"\n",
               ":1: spin_before_park: must be a duration in 0us..10ms (a bare number is us; "
               "suffixes ns, us, ms, s), got \"20 parsecs\"");
  expect_error("io_uring_entries = 100\n",
               ":1: io_uring_entries: must be a power of two in 8..32768, got 100");
  expect_error("io_backend = \"kqueue\"\n",
               ":1: io_backend: must be auto, io_uring or epoll, got \"kqueue\"");
}

TEST_F(ConfigFile, CombinationNamesTheLine) {
  expect_error("strategy = \"single_threaded\"\nworkers = 2\n",
               ":2: workers: must be 0 or 1 with strategy single_threaded, got 2");
}

TEST_F(ConfigFile, ErrorCarriesKeyWhereAndAllowed) {
  const std::string path = write("max_blocking_threads = 0\n");
  const ConfigError e = error_of(path);
  EXPECT_EQ(e.key(), "max_blocking_threads");
  EXPECT_EQ(e.where(), path + ":1");
  EXPECT_EQ(e.allowed(), "an integer in 1..10000");
}

TEST_F(ConfigFile, EnvironmentErrorsNameTheVariable) {
  set("WEFT_WORKERS", "abc");
  EXPECT_EQ(message_of<ConfigError>([] { (void)Config::from_env(); }),
            "weft: WEFT_WORKERS: must be an integer in 0..1024 (0 = one per allowed CPU), got "
            "'abc'");
  CleanEnvTest::clear();
  set("WEFT_BLOCKING_KEEP_ALIVE_MS", "0");
  EXPECT_EQ(message_of<ConfigError>([] { (void)Config::from_env(); }),
            "weft: WEFT_BLOCKING_KEEP_ALIVE_MS: must be a duration in 1ms..3600s (a bare number "
            "is ms; suffixes ns, us, ms, s), got '0'");
  set("WEFT_BLOCKING_KEEP_ALIVE_MS", "1500");
  EXPECT_EQ(Config::from_env().blocking_keep_alive, 1500ms);
}

TEST_F(ConfigFile, ApiErrorsNameTheField) {
  Config c;
  c.spin_before_park = -1ns;
  EXPECT_EQ(message_of<ConfigError>([&] { c.validate(); }),
            "weft: Config::spin_before_park: must be a duration in 0us..10ms (a bare number is "
            "us; suffixes ns, us, ms, s), got -1 ns");
}

// --- settings changed at run time -----------------------------------------------

TEST_F(ConfigFile, SchemaMarksRuntimeChangeableSettings) {
  std::vector<std::string> changeable;
  for (const weft::ConfigSetting& s : Config::schema()) {
    if (s.runtime_changeable) changeable.push_back(s.key);
  }
  EXPECT_EQ(changeable,
            (std::vector<std::string>{"memory_limit", "stall_warning", "spin_before_park"}));
}

TEST_F(ConfigFile, RuntimeSettersValidateAndShowInDescribe) {
  weft::Runtime rt(weft::test::workers_config(1));
  rt.set_spin_before_park(0ns);
  rt.set_stall_warning(20ms);
  EXPECT_THROW(rt.set_stall_warning(1ms), ConfigError);
  EXPECT_THROW(rt.set_spin_before_park(1s), ConfigError);
  const std::string d = rt.describe();
  EXPECT_NE(d.find("spin_before_park = \"0us\"  (api)\n"), std::string::npos) << d;
  EXPECT_NE(d.find("stall_warning = \"20ms\"  (api)\n"), std::string::npos) << d;
  EXPECT_NE(d.find("workers = 1  (api)\n"), std::string::npos) << d;
  // Work still runs with no spin at all.
  EXPECT_EQ(rt.block_on([] { return weft::spawn([] { return 7; }).join(); }), 7);
}

TEST_F(ConfigFile, WorkersResolvedByTheRuntimeAreDerived) {
  weft::Runtime rt(weft::test::workers_config(0));
  const std::string d = rt.describe();
  EXPECT_NE(d.find("workers = " + std::to_string(rt.workers()) + "  (derived: "), std::string::npos)
      << d;
}

TEST_F(ConfigFile, LoweredStallWarningTakesEffect) {
  // Built with a threshold the busy loop below never reaches (it is bounded
  // by kPatience), so only the lowered one can produce the report: with the
  // default (1 s) a runtime ignoring the setter would still report within
  // the loop (mutant api-config-stall-setter-ignored survived that way).
  weft::Config config = weft::test::workers_config(1);
  config.stall_warning = std::chrono::hours(1);
  weft::Runtime rt(config);
  rt.set_stall_warning(10ms);
  ::testing::internal::CaptureStderr();
  rt.block_on([] {
    // Busy until the report is written (bounded): the report is written
    // after its backtrace is symbolized, which under a sanitizer and load
    // can take longer than any fixed window.
    const auto until = std::chrono::steady_clock::now() + weft::test::kPatience;
    while (weft::test::fd2_so_far().find("stall") == std::string::npos &&
           std::chrono::steady_clock::now() < until) {
    }
  });
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("stall"), std::string::npos) << err;
}

// --- docs/configuration.md --------------------------------------------------------

TEST(ConfigDoc, UpToDate) {
  const std::string path = std::string(WEFT_SOURCE_DIR) + "/docs/configuration.md";
  const std::string fresh = Config::reference_markdown();
  if (std::getenv("WEFT_WRITE_CONFIG_DOC") != nullptr) {
    std::ofstream(path) << fresh;
  }
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), fresh) << path << " is stale: regenerate it with `make config-doc`";
}

}  // namespace

TEST_F(ConfigFile, StrategyThreadPerCoreAndAuto) {
  EXPECT_EQ(Config::from_file(write("strategy = \"thread_per_core\"\n")).strategy,
            weft::Strategy::thread_per_core);
  EXPECT_EQ(Config::from_file(write("strategy = \"auto\"\n")).strategy,
            weft::Strategy::auto_select);
}
