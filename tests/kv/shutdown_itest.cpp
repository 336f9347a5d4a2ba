// Shutdown: SIGTERM or SIGINT while clients are in the middle of
// pipelines, and the SHUTDOWN command; each ends the server with exit
// status 0.
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include "kv/kv_harness.hpp"

namespace {

using namespace std::chrono_literals;
using kv::itest::Client;
using kv::itest::Server;
using weft::test::eventually;

class ShutdownSignal : public ::testing::TestWithParam<int> {};

TEST_P(ShutdownSignal, MidPipelineExitsZero) {
  KV_SKIP_EXTERNAL_SIGNALS_UNDER_TSAN();
  KV_REQUIRE_SERVER();
  Server server;
  constexpr int kClients = 4;
  constexpr int kDepth = 500;
  std::atomic<long> replies{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      try {
        Client c(server.port());
        for (long round = 0; !stop.load(); ++round) {
          std::string batch;
          for (int i = 0; i < kDepth; ++i) {
            batch += kv::itest::encode(
                {"SET", "k:" + std::to_string(t) + ":" + std::to_string(i), std::to_string(round)});
          }
          c.send(batch);
          for (int i = 0; i < kDepth; ++i) {
            c.read_reply();
            replies.fetch_add(1);
          }
        }
      } catch (const std::exception&) {
        // The server went away mid-pipeline: expected.
      }
    });
  }
  // Clients are well into their pipelines before the signal.
  EXPECT_TRUE(eventually([&] { return replies.load() >= 4 * kDepth; }));
  server.kill(GetParam());
  const auto status = server.wait_exit();
  stop = true;
  for (auto& t : clients) t.join();
  ASSERT_TRUE(status.has_value()) << "still running " << kv::itest::kPatience.count()
                                  << " s after the signal; log:\n"
                                  << server.log();
  EXPECT_TRUE(status->success()) << status->to_string() << "; log:\n" << server.log();
}

INSTANTIATE_TEST_SUITE_P(Signals, ShutdownSignal, ::testing::Values(SIGTERM, SIGINT),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param == SIGTERM ? std::string("SIGTERM")
                                                        : std::string("SIGINT");
                         });

TEST(Shutdown, ShutdownCommandExitsZero) {
  KV_REQUIRE_SERVER();
  Server server;
  Client c(server.port());
  ASSERT_EQ(c.call({"SET", "k", "v"}).describe(), "+OK");
  // redis-server: NOSAVE, since snapshots are off in reference mode anyway.
  if (kv::itest::reference_mode()) {
    c.send_command({"SHUTDOWN", "NOSAVE"});
  } else {
    c.send_command({"SHUTDOWN"});
  }
  // On success SHUTDOWN sends no reply: the connection just closes.
  EXPECT_EQ(c.read_until_close(), "");
  const auto status = server.wait_exit();
  ASSERT_TRUE(status.has_value()) << "still running after SHUTDOWN; log:\n" << server.log();
  EXPECT_TRUE(status->success()) << status->to_string() << "; log:\n" << server.log();
}

TEST(Shutdown, ThroughRedisCli) {
  KV_REQUIRE_SERVER();
  const std::string cli = kv::itest::redis_cli();
  if (cli.empty()) GTEST_SKIP() << "redis-cli is not installed";
  Server server;
  std::vector<std::string> args = {"-p", std::to_string(server.port()), "SHUTDOWN"};
  if (kv::itest::reference_mode()) args.push_back("NOSAVE");
  // redis-cli expects the connection to close and prints nothing.
  const auto r = kv::itest::run_tool(cli, args);
  EXPECT_TRUE(r.status.success()) << r.status.to_string() << r.out << r.err;
  EXPECT_EQ(r.out, "");
  const auto status = server.wait_exit();
  ASSERT_TRUE(status.has_value()) << "still running after SHUTDOWN; log:\n" << server.log();
  EXPECT_TRUE(status->success()) << status->to_string() << "; log:\n" << server.log();
}

}  // namespace
