// Replies whose content varies from run to run, checked structurally over
// raw RESP: INFO (sections, fields, keyspace line, counters), CLIENT LIST
// (line format, addresses, names, the last command), COMMAND COUNT, CONFIG
// GET; and connection behaviour: QUIT (reply, close, nothing after it runs),
// inline commands, deep pipelines.
#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "kv/kv_harness.hpp"

namespace {

using namespace std::chrono_literals;
using kv::itest::Client;
using kv::itest::Reply;
using kv::itest::SharedServerTest;
using weft::test::eventually;

class ServerInfo : public SharedServerTest {};

TEST_F(ServerInfo, HasTheRedisSectionsAndFields) {
  Client c(port());
  const auto info = kv::itest::info(c);
  for (const char* s : {"Server", "Clients", "Memory", "Stats", "Keyspace"}) {
    EXPECT_NE(std::find(info.sections.begin(), info.sections.end(), s), info.sections.end())
        << "INFO has no '# " << s << "' section";
  }
  ASSERT_TRUE(info.has("redis_version"));
  EXPECT_TRUE(std::regex_match(info.fields.at("redis_version"), std::regex(R"(\d+\.\d+\.\d+)")))
      << info.fields.at("redis_version");
  EXPECT_GE(info.integer("connected_clients"), 1);
  // Intentional difference: Redis counts its allocator's bytes, never 0;
  // weft-kv's used_memory estimates data and buffered input only, so an
  // empty server reports 0. Both must count data: see UsedMemoryCountsData.
  EXPECT_TRUE(info.has("used_memory"));
  EXPECT_TRUE(info.has("total_commands_processed"));
}

// total_commands_processed counts every command: between two INFOs, five
// PINGs and the first INFO itself (a command counts once it has run).
TEST_F(ServerInfo, TotalCommandsProcessedCountsEachCommand) {
  Client c(port());
  const std::int64_t before = kv::itest::info(c, "stats").integer("total_commands_processed");
  for (int i = 0; i < 5; ++i) ASSERT_EQ(c.call({"PING"}).describe(), "+PONG");
  const std::int64_t after = kv::itest::info(c, "stats").integer("total_commands_processed");
  EXPECT_EQ(after - before, 6);
}

TEST_F(ServerInfo, UsedMemoryCountsData) {
  Client c(port());
  const std::int64_t before = kv::itest::info(c, "memory").integer("used_memory");
  const std::string value(100000, 'v');
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(c.call({"SET", "mem:" + std::to_string(i), value}).describe(), "+OK");
  }
  const std::int64_t after = kv::itest::info(c, "memory").integer("used_memory");
  EXPECT_GE(after - before, 1000000) << "before " << before << ", after " << after;
}

TEST_F(ServerInfo, IsBulkTextWithCrlfLines) {
  Client c(port());
  const Reply r = c.call({"INFO"});
  ASSERT_EQ(r.type, Reply::Type::bulk) << r;
  // Every line ends with CRLF, as redis-cli and client libraries expect.
  for (const auto& line : kv::itest::split_lines(r.str)) {
    EXPECT_TRUE(!line.empty() && line.back() == '\r') << "line without CR: '" << line << "'";
  }
}

TEST_F(ServerInfo, SectionArgumentSelectsOneSection) {
  Client c(port());
  const auto server = kv::itest::info(c, "server");
  EXPECT_EQ(server.sections, std::vector<std::string>{"Server"});
  EXPECT_TRUE(server.has("redis_version"));
  const auto keyspace = kv::itest::info(c, "keyspace");
  EXPECT_EQ(keyspace.sections, std::vector<std::string>{"Keyspace"});
}

TEST_F(ServerInfo, SeveralSectionArguments) {
  Client c(port());
  const Reply r = c.call({"INFO", "server", "clients"});
  ASSERT_EQ(r.type, Reply::Type::bulk) << r;
  EXPECT_EQ(kv::itest::parse_info(r.str).sections, (std::vector<std::string>{"Server", "Clients"}));
  // Section names are case-insensitive.
  EXPECT_EQ(kv::itest::info(c, "KEYSPACE").sections, std::vector<std::string>{"Keyspace"});
}

TEST_F(ServerInfo, PersistenceSection) {
  Client c(port());
  const auto info = kv::itest::info(c, "persistence");
  EXPECT_EQ(info.sections, std::vector<std::string>{"Persistence"});
  ASSERT_TRUE(info.has("aof_enabled"));
  EXPECT_EQ(info.fields.at("aof_enabled"), "0");
}

TEST_F(ServerInfo, KeyspaceLineCountsKeysAndExpires) {
  Client c(port());
  auto info = kv::itest::info(c, "keyspace");
  EXPECT_FALSE(info.has("db0")) << "an empty database has no keyspace line: " << info.fields["db0"];

  ASSERT_EQ(c.call({"MSET", "a", "1", "b", "2", "c", "3"}).describe(), "+OK");
  ASSERT_EQ(c.call({"EXPIRE", "c", "100"}).describe(), ":1");
  info = kv::itest::info(c, "keyspace");
  ASSERT_TRUE(info.has("db0"));
  EXPECT_TRUE(std::regex_match(info.fields["db0"], std::regex(R"(keys=3,expires=1,avg_ttl=\d+)")))
      << info.fields["db0"];
}

TEST_F(ServerInfo, CountsClientsAndCommands) {
  Client c(port());
  // Connections of earlier tests may still be on their way out.
  EXPECT_TRUE(eventually([&] { return kv::itest::info(c).integer("connected_clients") == 1; }))
      << kv::itest::info(c).integer("connected_clients");
  {
    Client other(port());
    ASSERT_EQ(other.call({"PING"}).describe(), "+PONG");
    EXPECT_EQ(kv::itest::info(c).integer("connected_clients"), 2);
  }
  EXPECT_TRUE(eventually([&] { return kv::itest::info(c).integer("connected_clients") == 1; }));

  const std::int64_t before = kv::itest::info(c, "stats").integer("total_commands_processed");
  for (int i = 0; i < 5; ++i) ASSERT_EQ(c.call({"PING"}).describe(), "+PONG");
  const std::int64_t after = kv::itest::info(c, "stats").integer("total_commands_processed");
  // 5 PINGs, plus the first INFO if it is counted after it ran (Redis).
  EXPECT_GE(after - before, 5);
  EXPECT_LE(after - before, 7);
}

TEST_F(ServerInfo, WeftSection) {
  KV_WEFT_KV_ONLY("INFO weft is weft-kv's own section");
  Client c(port());
  const auto info = kv::itest::info(c, "weft");
  EXPECT_EQ(info.sections, std::vector<std::string>{"Weft"});
}

class ClientList : public SharedServerTest {};

// CLIENT LIST: one line per connection, "id=.. addr=.. laddr=.. fd=..
// name=.. ... cmd=..", each ending with '\n'.
TEST_F(ClientList, LineFormat) {
  Client a(port());
  Client b(port());
  ASSERT_EQ(a.call({"CLIENT", "SETNAME", "itest-a"}).describe(), "+OK");
  ASSERT_EQ(b.call({"CLIENT", "SETNAME", "itest-b"}).describe(), "+OK");
  const Reply r = a.call({"CLIENT", "LIST"});
  ASSERT_EQ(r.type, Reply::Type::bulk) << r;
  ASSERT_FALSE(r.str.empty());
  EXPECT_EQ(r.str.back(), '\n') << "every line ends with a newline";

  const std::regex line_re(
      R"(^id=(\d+) addr=127\.0\.0\.1:(\d+) laddr=127\.0\.0\.1:(\d+) fd=(\d+) name=(\S*) (?:\S+ )*cmd=(\S+)(?: \S+)*$)");
  int seen_a = 0;
  int seen_b = 0;
  std::vector<std::string> ids;
  for (const auto& line : kv::itest::split_lines(r.str)) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, line_re)) << "CLIENT LIST line: '" << line << "'";
    ids.push_back(m[1]);
    EXPECT_EQ(m[3], std::to_string(port())) << line;
    if (m[5] == "itest-a") {
      ++seen_a;
      EXPECT_EQ(m[2], std::to_string(a.local_port())) << line;
      EXPECT_EQ(m[6], "client|list") << line;
    } else if (m[5] == "itest-b") {
      ++seen_b;
      EXPECT_EQ(m[2], std::to_string(b.local_port())) << line;
      EXPECT_EQ(m[6], "client|setname") << "the last command the client ran: " << line;
    }
  }
  EXPECT_EQ(seen_a, 1) << r.str;
  // CLIENT ID is the id= of the caller's line.
  const Reply id = a.call({"CLIENT", "ID"});
  ASSERT_EQ(id.type, Reply::Type::integer) << id;
  EXPECT_NE(r.str.find("id=" + std::to_string(id.integer) +
                       " addr=127.0.0.1:" + std::to_string(a.local_port()) + " "),
            std::string::npos)
      << "CLIENT ID " << id.integer << " not in:\n"
      << r.str;
  EXPECT_EQ(seen_b, 1) << r.str;
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end()) << "ids are unique: " << r.str;
}

class Commands : public SharedServerTest {};

TEST_F(Commands, CommandCount) {
  Client c(port());
  const Reply r = c.call({"COMMAND", "COUNT"});
  ASSERT_EQ(r.type, Reply::Type::integer) << r;
  EXPECT_GT(r.integer, 0);
}

// redis-benchmark asks for these two at start.
TEST_F(Commands, ConfigGetSaveAndAppendonly) {
  Client c(port());
  const Reply save = c.call({"CONFIG", "GET", "save"});
  ASSERT_EQ(save.type, Reply::Type::array) << save;
  ASSERT_EQ(save.elements.size(), 2u) << save;
  EXPECT_EQ(save.elements[0].describe(), "\"save\"");
  EXPECT_EQ(save.elements[1].type, Reply::Type::bulk) << save;
  const Reply aof = c.call({"CONFIG", "GET", "appendonly"});
  EXPECT_EQ(aof.describe(), "[\"appendonly\", \"no\"]");
}

TEST_F(Commands, QuitRepliesOkClosesAndRunsNothingAfter) {
  Client c(port());
  // QUIT and a SET in one segment: the SET must not run.
  c.send(kv::itest::encode({"QUIT"}) + kv::itest::encode({"SET", "after-quit", "1"}));
  EXPECT_EQ(c.read_reply().describe(), "+OK");
  EXPECT_EQ(c.read_until_close(), "") << "nothing after QUIT's reply";
  Client check(port());
  EXPECT_EQ(check.call({"EXISTS", "after-quit"}).describe(), ":0");
}

TEST_F(Commands, QuitIgnoresArguments) {
  Client c(port());
  c.send("QUIT now please\r\n");
  EXPECT_EQ(c.read_until_close(), "+OK\r\n");
}

TEST_F(Commands, QuitThroughRedisCli) {
  const std::string cli = kv::itest::redis_cli();
  if (cli.empty()) GTEST_SKIP() << "redis-cli is not installed";
  const auto r = kv::itest::run_tool(cli, {"-p", std::to_string(port()), "QUIT"});
  EXPECT_TRUE(r.status.success()) << r.status.to_string() << r.err;
  EXPECT_EQ(r.out, "OK\n");
}

// Inline commands (telnet style, and redis-benchmark's PING_INLINE).
TEST_F(Commands, InlineCommands) {
  Client c(port());
  c.send("PING\r\nSET inline \"a b\"\r\nGET inline\nEXISTS inline nosuch\r\n");
  EXPECT_EQ(c.read_reply().describe(), "+PONG");
  EXPECT_EQ(c.read_reply().describe(), "+OK");
  EXPECT_EQ(c.read_reply().describe(), "\"a b\"");
  EXPECT_EQ(c.read_reply().describe(), ":1");
  // sdssplitargs: escapes in double quotes, \' in single quotes.
  c.send("ECHO \"\\x41\\x42\\n\"\r\nECHO 'it\\'s'\r\nECHO \"\" x\r\n");
  EXPECT_EQ(c.read_reply().describe(), "\"AB\\n\"");
  EXPECT_EQ(c.read_reply().describe(), "\"it's\"");
  EXPECT_EQ(c.read_reply().describe(), "-ERR wrong number of arguments for 'echo' command");
}

// 10,000 commands written before any reply is read: replies come back
// complete and in order.
TEST_F(Commands, DeepPipeline) {
  Client c(port());
  constexpr int kN = 5000;
  std::string batch;
  for (int i = 0; i < kN; ++i) {
    batch += kv::itest::encode({"SET", "p:" + std::to_string(i), std::to_string(i)});
    batch += kv::itest::encode({"GET", "p:" + std::to_string(i)});
  }
  c.send(batch);
  for (int i = 0; i < kN; ++i) {
    ASSERT_EQ(c.read_reply().describe(), "+OK") << i;
    ASSERT_EQ(c.read_reply().describe(), "\"" + std::to_string(i) + "\"") << i;
  }
  EXPECT_EQ(c.call({"DBSIZE"}).describe(), ":" + std::to_string(kN));
}

// A request arriving one byte per segment is the same request.
TEST_F(Commands, ByteAtATime) {
  Client c(port());
  c.stream().set_nodelay(true);
  const std::string req = kv::itest::encode({"SET", "slow", "a\r\nb"}) + "GET slow\r\n" +
                          kv::itest::encode({"STRLEN", "slow"});
  for (const char ch : req) {
    c.send(std::string_view(&ch, 1));
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  EXPECT_EQ(c.read_reply().describe(), "+OK");
  EXPECT_EQ(c.read_reply().describe(), "\"a\\r\\nb\"");
  EXPECT_EQ(c.read_reply().describe(), ":4");
}

// 30,000 GETs of a 1 KB value written while the replies (30 MB) are read
// by another thread: far more than the socket buffers hold, so the server
// must wait for the client to read without losing or reordering anything.
TEST_F(Commands, RepliesLargerThanTheSocketBuffers) {
  Client c(port());
  std::string value(1000, 'v');
  for (std::size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>('a' + i % 26);
  ASSERT_EQ(c.call({"SET", "kb", value}).describe(), "+OK");
  constexpr int kN = 30000;
  std::string error;
  std::thread writer([&] {
    try {
      std::string batch;
      for (int i = 0; i < 1000; ++i) batch += kv::itest::encode({"GET", "kb"});
      for (int i = 0; i < kN / 1000; ++i) c.send(batch);
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  int good = 0;
  for (int i = 0; i < kN; ++i) {
    const Reply r = c.read_reply();
    if (r.type != Reply::Type::bulk || r.str != value) {
      ADD_FAILURE() << "reply " << i << " is " << r.describe().substr(0, 80);
      break;
    }
    ++good;
  }
  writer.join();
  EXPECT_EQ(error, "");
  EXPECT_EQ(good, kN);
  EXPECT_EQ(c.call({"PING"}).describe(), "+PONG");
}

// A client that vanishes with replies pending does not disturb the server.
TEST_F(Commands, ClientGoneMidReply) {
  for (int i = 0; i < 20; ++i) {
    Client c(port());
    ASSERT_EQ(c.call({"SET", "big", std::string(1 << 20, 'x')}).describe(), "+OK");
    std::string batch;
    for (int j = 0; j < 50; ++j) batch += kv::itest::encode({"GET", "big"});
    c.send(batch);
    c.close();  // 50 MB of replies go nowhere
  }
  Client c(port());
  EXPECT_EQ(c.call({"STRLEN", "big"}).describe(), ":1048576");
}

// The empty command name is an unknown command (redis-cli cannot send it).
TEST_F(Commands, EmptyCommandName) {
  Client c(port());
  EXPECT_EQ(c.call({"", "a"}).describe(),
            "-ERR unknown command '', with args beginning with: 'a' ");
}

// Large values survive intact (multi-segment reads and writes).
TEST_F(Commands, LargeValue) {
  Client c(port());
  std::string big(3 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + (i * 7919) % 26);
  ASSERT_EQ(c.call({"SET", "big", big}).describe(), "+OK");
  const Reply r = c.call({"GET", "big"});
  ASSERT_EQ(r.type, Reply::Type::bulk);
  EXPECT_TRUE(r.str == big) << "GET big returned " << r.str.size() << " bytes, not the value set";
  EXPECT_EQ(c.call({"STRLEN", "big"}).describe(), ":" + std::to_string(big.size()));
}

}  // namespace
