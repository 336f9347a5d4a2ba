// weft-kv integration tests: the client handshake and RESP3 (HELLO, AUTH,
// requirepass). Byte-exact exchanges, as pubsub_itest.cpp's: a pipeline
// ending in QUIT, every byte the server sent compared with what
// redis-server 7.0.15 sends (the reference twin runs the same tests against
// it). The case files (cases/resp3.txt, cases/auth.txt) cover each reply
// through redis-cli; these cover what redis-cli cannot drive line by line:
// RESP3 push messages, MULTI/EXEC, and NOAUTH on fresh connections.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kv/kv_harness.hpp"

namespace {

using kv::itest::Client;
using kv::itest::encode;
using kv::itest::exchange;
using kv::itest::Reply;
using kv::itest::Server;
using kv::itest::ServerConfig;
using kv::itest::SharedServerTest;

class Resp3 : public SharedServerTest {};

std::string bulk(const std::string& s) {
  return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
}

// HELLO's reply map in RESP3 for client `id`.
std::string hello3(std::int64_t id) {
  return "%7\r\n" + bulk("server") + bulk("redis") + bulk("version") + bulk("7.0.15") +
         bulk("proto") + ":3\r\n" + bulk("id") + ":" + std::to_string(id) + "\r\n" + bulk("mode") +
         bulk("standalone") + bulk("role") + bulk("master") + bulk("modules") + "*0\r\n";
}

TEST_F(Resp3, ByteExactReplies) {
  Client c(port());
  const std::int64_t id = c.call({"CLIENT", "ID"}).integer;
  Client other(port());
  other.call({"DEL", "r3:w", "r3:h", "r3:z", "r3:s"});
  other.call({"HSET", "r3:h", "f", "v"});
  other.call({"ZADD", "r3:z", "1.5", "m"});
  // WATCH, then another client's write: EXEC answers RESP3's null.
  ASSERT_EQ(c.call({"WATCH", "r3:w"}).describe(), "+OK");
  other.call({"SET", "r3:w", "x"});
  const std::string got = exchange(c, {{"HELLO", "3"},
                                       {"MULTI"},
                                       {"GET", "r3:w"},
                                       {"EXEC"},
                                       {"MULTI"},
                                       {"HGETALL", "r3:h"},
                                       {"ZSCORE", "r3:z", "m"},
                                       {"SMEMBERS", "r3:s"},
                                       {"GET", "r3:nosuch"},
                                       {"EXEC"},
                                       {"HELLO", "2"},
                                       {"HGETALL", "r3:h"},
                                       {"GET", "r3:nosuch"}});
  const std::string want = hello3(id) + "+OK\r\n+QUEUED\r\n_\r\n" +  // the aborted EXEC
                           "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n" + "*4\r\n%1\r\n" +
                           bulk("f") + bulk("v") + ",1.5\r\n~0\r\n_\r\n" +
                           // HELLO 2: a flat array of 14, then RESP2 shapes.
                           "*14\r\n" + bulk("server") + bulk("redis") + bulk("version") +
                           bulk("7.0.15") + bulk("proto") + ":2\r\n" + bulk("id") + ":" +
                           std::to_string(id) + "\r\n" + bulk("mode") + bulk("standalone") +
                           bulk("role") + bulk("master") + bulk("modules") + "*0\r\n" + "*2\r\n" +
                           bulk("f") + bulk("v") + "$-1\r\n" + "+OK\r\n";
  EXPECT_EQ(got, want);
}

TEST_F(Resp3, PubSubMessagesArePushes) {
  Client sub(port());
  const std::int64_t id = sub.call({"CLIENT", "ID"}).integer;
  std::string batch =
      encode({"HELLO", "3"}) + encode({"SUBSCRIBE", "r3:a"}) + encode({"PSUBSCRIBE", "r3:*"});
  sub.send(batch);
  std::string want = hello3(id) + ">3\r\n" + bulk("subscribe") + bulk("r3:a") + ":1\r\n" +
                     ">3\r\n" + bulk("psubscribe") + bulk("r3:*") + ":2\r\n";
  // Wait for both subscriptions: PUBSUB NUMPAT from another client.
  Client pub(port());
  for (int i = 0; i < 1000 && pub.call({"PUBSUB", "NUMSUB", "r3:a"}).elements.at(1).integer == 0;
       ++i)
    ;
  for (int i = 0; i < 1000 && pub.call({"PUBSUB", "NUMPAT"}).integer == 0; ++i)
    ;
  EXPECT_EQ(pub.call({"PUBLISH", "r3:a", "hi"}).integer, 2);
  want += ">3\r\n" + bulk("message") + bulk("r3:a") + bulk("hi") + ">4\r\n" + bulk("pmessage") +
          bulk("r3:*") + bulk("r3:a") + bulk("hi");
  // RESP3's subscribed client runs any command; PING is a plain PONG.
  const std::string got = exchange(
      sub, {{"GET", "r3:nosuch"}, {"PING"}, {"UNSUBSCRIBE"}, {"PUNSUBSCRIBE"}, {"UNSUBSCRIBE"}});
  want += "_\r\n+PONG\r\n>3\r\n" + bulk("unsubscribe") + bulk("r3:a") + ":1\r\n>3\r\n" +
          bulk("punsubscribe") + bulk("r3:*") + ":0\r\n>3\r\n" + bulk("unsubscribe") +
          "_\r\n:0\r\n+OK\r\n";
  EXPECT_EQ(got, want);
}

// --- AUTH and requirepass --------------------------------------------------------------

class Auth : public ::testing::Test {
 protected:
  void SetUp() override {
    KV_REQUIRE_SERVER();
    server_ = std::make_unique<Server>(ServerConfig{{{"requirepass", "pw"}}, {}});
  }
  std::unique_ptr<Server> server_;
};

TEST_F(Auth, NoauthBeforeOkAfter) {
  Client c(server_->port());
  EXPECT_EQ(c.call({"GET", "k"}).describe(), "-NOAUTH Authentication required.");
  EXPECT_EQ(c.call({"PING"}).describe(), "-NOAUTH Authentication required.");
  EXPECT_EQ(c.call({"CLIENT", "ID"}).describe(), "-NOAUTH Authentication required.");
  // Lookup and arity come first, as in Redis's processCommand.
  EXPECT_EQ(c.call({"NOSUCH"}).describe(),
            "-ERR unknown command 'NOSUCH', with args beginning with: ");
  EXPECT_EQ(c.call({"GET"}).describe(), "-ERR wrong number of arguments for 'get' command");
  EXPECT_EQ(c.call({"HELLO", "2"}).describe(),
            "-NOAUTH HELLO must be called with the client already authenticated, otherwise the "
            "HELLO AUTH <user> <pass> option can be used to authenticate the client and "
            "select the RESP protocol version at the same time");
  EXPECT_EQ(c.call({"AUTH", "wrong"}).describe(),
            "-WRONGPASS invalid username-password pair or user is disabled.");
  // MULTI is refused too (it is not no-auth).
  EXPECT_EQ(c.call({"MULTI"}).describe(), "-NOAUTH Authentication required.");
  EXPECT_EQ(c.call({"AUTH", "pw"}).describe(), "+OK");
  EXPECT_EQ(c.call({"GET", "k"}).describe(), "(nil)");
  EXPECT_EQ(c.call({"PING"}).describe(), "+PONG");

  // HELLO AUTH authenticates and chooses the protocol in one command.
  Client h(server_->port());
  const Reply hello = h.call({"HELLO", "2", "AUTH", "default", "pw", "SETNAME", "n1"});
  ASSERT_EQ(hello.type, Reply::Type::array) << hello;
  EXPECT_EQ(hello.elements.size(), 14u);
  EXPECT_EQ(h.call({"CLIENT", "GETNAME"}).describe(), "\"n1\"");

  // QUIT needs no password.
  Client q(server_->port());
  EXPECT_EQ(q.call({"QUIT"}).describe(), "+OK");

  // A client that connected while a password was required keeps needing
  // AUTH for HELLO even once it is removed; other commands run again.
  Client before(server_->port());
  EXPECT_EQ(c.call({"CONFIG", "SET", "requirepass", ""}).describe(), "+OK");
  EXPECT_EQ(before.call({"GET", "k"}).describe(), "(nil)");
  Client fresh(server_->port());
  EXPECT_EQ(fresh.call({"GET", "k"}).describe(), "(nil)");
  // A password set later binds new connections only.
  EXPECT_EQ(c.call({"CONFIG", "SET", "requirepass", "pw2"}).describe(), "+OK");
  EXPECT_EQ(fresh.call({"GET", "k"}).describe(), "(nil)");
  Client later(server_->port());
  EXPECT_EQ(later.call({"GET", "k"}).describe(), "-NOAUTH Authentication required.");
  EXPECT_EQ(later.call({"AUTH", "default", "pw2"}).describe(), "+OK");
}

TEST_F(Auth, FailedHelloAuthLeavesTheClientUnauthenticated) {
  Client c(server_->port());
  ASSERT_EQ(c.call({"AUTH", "pw"}).describe(), "+OK");
  ASSERT_EQ(c.call({"CONFIG", "SET", "requirepass", "pw"}).describe(), "+OK");
  Client u(server_->port());
  const std::string got = exchange(u, {{"HELLO", "3", "AUTH", "default", "bad"}, {"PING"}});
  EXPECT_EQ(got,
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
            "-NOAUTH Authentication required.\r\n+OK\r\n");
}

}  // namespace

namespace {

// --- CLIENT KILL ---------------------------------------------------------------------

class ClientKill : public SharedServerTest {};

std::string addr_of(Client& c, const char* field) {
  // CLIENT INFO's `field=` value ("addr" or "laddr").
  const Reply info = c.call({"CLIENT", "INFO"});
  const std::string key = std::string(" ") + field + "=";
  const std::size_t at = info.str.find(key);
  if (at == std::string::npos) return {};
  const std::size_t from = at + key.size();
  return info.str.substr(from, info.str.find(' ', from) - from);
}

TEST_F(ClientKill, TheKilledClientsSocketCloses) {
  Client killer(port());
  Client by_id(port());
  Client by_addr(port());
  Client by_old_form(port());
  Client bystander(port());
  const Reply id = by_id.call({"CLIENT", "ID"});
  ASSERT_EQ(id.type, Reply::Type::integer);

  // ID, with LADDR too (both must match).
  const std::string laddr = addr_of(by_id, "laddr");
  ASSERT_FALSE(laddr.empty());
  EXPECT_EQ(
      killer.call({"CLIENT", "KILL", "ID", std::to_string(id.integer), "LADDR", laddr}).describe(),
      ":1");
  EXPECT_TRUE(by_id.closed_by(kv::itest::kPatience));

  // ADDR.
  EXPECT_EQ(killer.call({"CLIENT", "KILL", "ADDR", addr_of(by_addr, "addr")}).describe(), ":1");
  EXPECT_TRUE(by_addr.closed_by(kv::itest::kPatience));

  // The old form answers +OK.
  EXPECT_EQ(killer.call({"CLIENT", "KILL", addr_of(by_old_form, "addr")}).describe(), "+OK");
  EXPECT_TRUE(by_old_form.closed_by(kv::itest::kPatience));

  // Nobody else went.
  EXPECT_EQ(bystander.call({"PING"}).describe(), "+PONG");
  EXPECT_EQ(killer.call({"PING"}).describe(), "+PONG");

  // SKIPME (the default, yes) spares the caller; SKIPME no closes it after
  // its reply.
  const std::string own = std::to_string(killer.call({"CLIENT", "ID"}).integer);
  EXPECT_EQ(killer.call({"CLIENT", "KILL", "ID", own}).describe(), ":0");
  EXPECT_EQ(killer.call({"CLIENT", "KILL", "ID", own, "SKIPME", "no"}).describe(), ":1");
  EXPECT_TRUE(killer.closed_by(kv::itest::kPatience));
  EXPECT_EQ(bystander.call({"PING"}).describe(), "+PONG");
}

}  // namespace
