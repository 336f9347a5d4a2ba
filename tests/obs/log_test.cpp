// weft/log.hpp: levels, the text and JSON formats with their context
// (worker, fiber id and name), the environment, and whole lines under
// concurrent writers.
#include "weft/log.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/test_util.hpp"
#include "obs/capture.hpp"
#include "weft/weft.hpp"

namespace weft {
namespace {

using test::CaptureFd2;

/// Restores the process-wide settings after a test.
struct SettingsGuard {
  log::Level level = log::level();
  log::Format format = log::format();
  ~SettingsGuard() {
    log::set_level(level);
    log::set_format(format);
  }
};

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(Log, LevelNamesRoundTrip) {
  for (log::Level l : {log::Level::trace, log::Level::debug, log::Level::info, log::Level::warn,
                       log::Level::error, log::Level::off}) {
    EXPECT_EQ(log::parse_level(log::to_string(l)), l);
  }
  EXPECT_EQ(log::parse_level("WARN"), std::nullopt);
  EXPECT_EQ(log::parse_level(""), std::nullopt);
  EXPECT_EQ(log::parse_level("warning"), std::nullopt);
}

TEST(Log, ThresholdDropsLowerLevelsAndOffSilencesAll) {
  SettingsGuard guard;
  log::set_format(log::Format::text);
  log::set_level(log::Level::warn);
  EXPECT_FALSE(log::enabled(log::Level::info));
  EXPECT_TRUE(log::enabled(log::Level::warn));
  EXPECT_TRUE(log::enabled(log::Level::error));
  std::vector<std::string> lines;
  {
    CaptureFd2 cap;
    log::write(log::Level::info, "dropped");
    log::write(log::Level::warn, "kept warn");
    log::logf(log::Level::error, "kept %s %d", "error", 42);
    log::set_level(log::Level::off);
    log::write(log::Level::error, "silenced");
    lines = cap.lines();
  }
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(contains(lines[0], " WARN  worker=- fiber=- kept warn")) << lines[0];
  EXPECT_TRUE(contains(lines[1], " ERROR worker=- fiber=- kept error 42")) << lines[1];
  // The time: RFC 3339 UTC with microseconds.
  EXPECT_EQ(lines[0].size() > 27 ? lines[0][4] : '?', '-');
  EXPECT_EQ(lines[0][10], 'T');
  EXPECT_EQ(lines[0][26], 'Z');
}

TEST(Log, FiberLinesCarryWorkerFiberIdAndName) {
  SettingsGuard guard;
  log::set_level(log::Level::info);
  log::set_format(log::Format::text);
  std::vector<std::string> lines;
  FiberId id = 0;
  {
    CaptureFd2 cap;
    Runtime rt(test::workers_config(1));
    rt.spawn(FiberOptions{.name = "logger"}, [&id] {
        id = this_fiber::id();
        log::write(log::Level::info, "from a fiber");
      }).join();
    lines = cap.lines();
  }
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(
      contains(lines[0], " INFO  worker=0 fiber=" + std::to_string(id) + " 'logger' from a fiber"))
      << lines[0];
}

TEST(Log, JsonLinesAreObjectsWithEscapedStrings) {
  SettingsGuard guard;
  log::set_level(log::Level::trace);
  log::set_format(log::Format::json);
  std::vector<std::string> lines;
  FiberId id = 0;
  {
    CaptureFd2 cap;
    log::write(log::Level::debug, "plain \"quoted\" back\\slash\ttab\nnewline");
    Runtime rt(test::workers_config(1));
    rt.spawn(FiberOptions{.name = "j\"son"}, [&id] {
        id = this_fiber::id();
        log::write(log::Level::trace, "x");
      }).join();
    lines = cap.lines();
  }
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].rfind("{\"time\":\"", 0), 0u) << lines[0];
  EXPECT_TRUE(contains(lines[0],
                       "\"level\":\"debug\",\"worker\":null,\"fiber\":null,\"fiber_name\":null,"
                       "\"msg\":\"plain \\\"quoted\\\" back\\\\slash\\ttab\\nnewline\"}"))
      << lines[0];
  EXPECT_EQ(lines[0].back(), '}');
  EXPECT_TRUE(
      contains(lines[1], "\"level\":\"trace\",\"worker\":0,\"fiber\":" + std::to_string(id) +
                             ",\"fiber_name\":\"j\\\"son\",\"msg\":\"x\"}"))
      << lines[1];
}

TEST(Log, TextKeepsAMessagesFurtherLinesIndented) {
  SettingsGuard guard;
  log::set_level(log::Level::info);
  log::set_format(log::Format::text);
  std::vector<std::string> lines;
  {
    CaptureFd2 cap;
    log::write(log::Level::info, "first\nsecond\n");
    lines = cap.lines();
  }
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(contains(lines[0], " first")) << lines[0];
  EXPECT_EQ(lines[1], "  second");
}

TEST(Log, LongMessagesAreCutAndMarked) {
  SettingsGuard guard;
  log::set_level(log::Level::info);
  for (log::Format f : {log::Format::text, log::Format::json}) {
    log::set_format(f);
    std::vector<std::string> lines;
    {
      CaptureFd2 cap;
      log::write(log::Level::info, std::string(10000, 'a'));
      lines = cap.lines();
    }
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_LE(lines[0].size() + 1, 4096u);  // one write to a pipe stays whole
    const std::string end = f == log::Format::json ? "aaa...\"}" : "aaa...";
    EXPECT_EQ(lines[0].substr(lines[0].size() - end.size()), end);
  }
}

TEST(Log, ConcurrentWritersNeverInterleaveLines) {
  SettingsGuard guard;
  log::set_level(log::Level::info);
  log::set_format(log::Format::text);
  constexpr int kThreads = 4;
  const int per = static_cast<int>(test::scaled(300));
  std::vector<std::string> lines;
  {
    CaptureFd2 cap;
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t) {
      // An init-capture: clang 14 calls a plain capture of a constant unused.
      ts.emplace_back([t, n = per] {
        const std::string body(200, static_cast<char>('a' + t));
        for (int i = 0; i < n; ++i) log::logf(log::Level::info, "T%d %s", t, body.c_str());
      });
    }
    for (auto& th : ts) th.join();
    lines = cap.lines();
  }
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kThreads * per));
  for (const std::string& l : lines) {
    const auto p = l.find(" T");
    ASSERT_NE(p, std::string::npos) << l;
    const int t = l[p + 2] - '0';
    ASSERT_TRUE(t >= 0 && t < kThreads) << l;
    EXPECT_EQ(l.substr(p + 4), std::string(200, static_cast<char>('a' + t))) << l;
  }
}

TEST(LogDeathTest, BadEnvironmentIsReportedOnceAndDefaultsUsed) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::setenv("WEFT_LOG", "loud", 1);
        ::setenv("WEFT_LOG_FORMAT", "xml", 1);
        const bool ok = log::level() == log::Level::info && log::format() == log::Format::text;
        std::_Exit(ok ? 0 : 1);
      },
      ::testing::ExitedWithCode(0),
      "WEFT_LOG='loud' is not one of trace, debug, info, warn, error, off; using info(.|\n)*"
      "WEFT_LOG_FORMAT='xml' is not one of text, json; using text");
}

TEST(LogDeathTest, EnvironmentSetsLevelAndFormat) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::setenv("WEFT_LOG", "error", 1);
        ::setenv("WEFT_LOG_FORMAT", "json", 1);
        log::write(log::Level::warn, "not shown");
        log::write(log::Level::error, "shown");
        std::_Exit(log::level() == log::Level::error ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "^\\{\"time\":\"[^\n]*\"msg\":\"shown\"\\}\n$");
}

}  // namespace
}  // namespace weft
