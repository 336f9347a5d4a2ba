// --maxmemory 1000000: writes that fill it are refused with Redis's OOM
// error (the noeviction policy, Redis's default, given explicitly to
// redis-server); reads and deletes still work; once the data is flushed,
// writes are accepted again (weft-kv only, see below).
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "kv/kv_harness.hpp"

namespace {

using kv::itest::Client;
using kv::itest::Reply;
using kv::itest::Server;
using kv::itest::ServerConfig;
using weft::test::eventually;

TEST(MaxMemory, WritesBeyondTheLimitGetOom) {
  KV_REQUIRE_SERVER();
  ServerConfig config{{{"maxmemory", "1000000"}}, {}};
  if (kv::itest::reference_mode()) config.options.push_back({"maxmemory-policy", "noeviction"});
  Server server(config);
  Client c(server.port());

  const std::string value(10000, 'x');
  int stored = 0;
  Reply refused;
  // 1 MB is full long before 2,000 values of 10 KB (20 MB).
  for (; stored < 2000; ++stored) {
    const Reply r = c.call({"SET", "fill:" + std::to_string(stored), value});
    if (r.is_error()) {
      refused = r;
      break;
    }
    ASSERT_EQ(r.describe(), "+OK") << "SET fill:" << stored;
  }
  ASSERT_TRUE(refused.is_error()) << "2,000 x 10 KB stored under --maxmemory 1000000";
  EXPECT_EQ(refused.describe(), "-OOM command not allowed when used memory > 'maxmemory'.");
  EXPECT_GE(stored, 1) << "the limit refuses writes before anything is stored";
  RecordProperty("stored_before_oom", stored);

  // Still refused, also for other writes that grow memory.
  EXPECT_EQ(c.call({"SET", "another", value}).describe(),
            "-OOM command not allowed when used memory > 'maxmemory'.");
  EXPECT_EQ(c.call({"APPEND", "another", value}).describe(),
            "-OOM command not allowed when used memory > 'maxmemory'.");
  // Reads and deletes are allowed.
  EXPECT_EQ(c.call({"DBSIZE"}).describe(), ":" + std::to_string(stored));
  EXPECT_EQ(c.call({"PING"}).describe(), "+PONG");
  if (stored > 0) {
    EXPECT_EQ(c.call({"STRLEN", "fill:0"}).describe(), ":10000");
    EXPECT_EQ(c.call({"DEL", "fill:0"}).describe(), ":1");
  }
  // With the data gone, writes are accepted again (polled: accounting may
  // lag the free). Not checked against redis-server: its own overhead is
  // ~0.9 MB, and at a 1 MB limit allocator noise (query and reply buffers,
  // a DEL that raised used_memory by 40 KB when this was written) can keep
  // it above the limit after FLUSHALL. weft-kv is intentionally held to
  // more: its accounting must give the memory back.
  if (kv::itest::reference_mode()) return;
  ASSERT_EQ(c.call({"FLUSHALL"}).describe(), "+OK");
  c.close();
  Reply last;
  EXPECT_TRUE(eventually([&] {
    Client fresh(server.port());
    last = fresh.call({"SET", "small", "v"});
    if (last.describe() == "+OK") return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return false;
  })) << last
      << "\n"
      << Client(server.port()).call({"INFO", "memory"}).str;
}

}  // namespace
