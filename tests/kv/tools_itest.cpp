// redis-cli's modes beyond the prompt, which drive the server in their own
// ways: --pipe (mass insertion of raw RESP, with its ECHO end marker),
// --scan (a SCAN walk), -r (repeat), --bigkeys (SCAN, TYPE and STRLEN
// pipelined, DBSIZE).
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "kv/kv_harness.hpp"

namespace {

using kv::itest::Client;
using kv::itest::SharedServerTest;

class RedisCli : public SharedServerTest {
 protected:
  void SetUp() override {
    SharedServerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    cli_ = kv::itest::redis_cli();
    if (cli_.empty()) GTEST_SKIP() << "redis-cli is not installed";
  }
  kv::itest::ToolResult cli(std::vector<std::string> args, std::string_view input = {}) {
    args.insert(args.begin(), {"-p", std::to_string(port())});
    return kv::itest::run_tool(cli_, args, input);
  }
  std::string cli_;
};

TEST_F(RedisCli, PipeMassInsertion) {
  constexpr int kKeys = 10000;
  std::string input;
  for (int i = 0; i < kKeys; ++i) {
    input += kv::itest::encode({"SET", "pipe:" + std::to_string(i), std::to_string(i)});
  }
  input += kv::itest::encode({"INCR", "pipe:1"});  // :2
  input += kv::itest::encode({"INCR", "notnum"});  // :1
  input += kv::itest::encode({"APPEND", "notnum", "x"});
  input += kv::itest::encode({"INCR", "notnum"});  // an error
  const auto r = cli({"--pipe"}, input);
  // One error: redis-cli prints it and exits with 1.
  EXPECT_EQ(r.status.code(), std::optional<int>(1)) << r.status.to_string() << r.err;
  EXPECT_NE(r.err.find("ERR value is not an integer or out of range"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("errors: 1, replies: " + std::to_string(kKeys + 4)), std::string::npos)
      << r.out;
  Client c(port());
  EXPECT_EQ(c.call({"DBSIZE"}).describe(), ":" + std::to_string(kKeys + 1));
  EXPECT_EQ(c.call({"GET", "pipe:9999"}).describe(), "\"9999\"");
  EXPECT_EQ(c.call({"GET", "pipe:1"}).describe(), "\"2\"");
}

TEST_F(RedisCli, Scan) {
  Client c(port());
  std::vector<std::string> mset = {"MSET"};
  std::set<std::string> want;
  for (int i = 0; i < 500; ++i) {
    const std::string k = "scan:" + std::to_string(i);
    mset.insert(mset.end(), {k, "v"});
    if (k.rfind("scan:4", 0) == 0) want.insert(k);
  }
  mset.insert(mset.end(), {"other", "v"});
  ASSERT_EQ(c.call(mset).describe(), "+OK");
  const auto r = cli({"--scan", "--pattern", "scan:4*"});
  EXPECT_TRUE(r.status.success()) << r.status.to_string() << r.err;
  const auto lines = kv::itest::split_lines(r.out);
  EXPECT_EQ(std::set<std::string>(lines.begin(), lines.end()), want);
  const auto all = cli({"--scan"});
  const auto all_lines = kv::itest::split_lines(all.out);
  EXPECT_EQ(std::set<std::string>(all_lines.begin(), all_lines.end()).size(), 501u);
}

TEST_F(RedisCli, Repeat) {
  const auto r = cli({"-r", "5", "INCR", "repeat"});
  EXPECT_TRUE(r.status.success()) << r.status.to_string() << r.err;
  EXPECT_EQ(r.out, "1\n2\n3\n4\n5\n");
}

TEST_F(RedisCli, BigKeys) {
  Client c(port());
  std::vector<std::string> mset = {"MSET", "largest", std::string(5000, 'L'), "small", "s"};
  for (int i = 0; i < 100; ++i) mset.insert(mset.end(), {"ten:" + std::to_string(i), "0123456789"});
  ASSERT_EQ(c.call(mset).describe(), "+OK");
  const auto r = cli({"--bigkeys"});
  EXPECT_TRUE(r.status.success()) << r.status.to_string() << r.err;
  for (const char* want :
       {"Sampled 102 keys in the keyspace!", "Biggest string found '\"largest\"' has 5000 bytes",
        "102 strings with 6001 bytes (100.00% of keys, avg size 58.83)"}) {
    EXPECT_NE(r.out.find(want), std::string::npos) << "no '" << want << "' in:\n" << r.out;
  }
}

}  // namespace
