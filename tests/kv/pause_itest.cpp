// weft-kv integration tests: CLIENT PAUSE and UNPAUSE, what a pause holds
// and what ends it, as redis-server 7.0.15 does (the reference twin runs
// the same tests against it). The arguments and error texts are in
// cases/client.txt.
//
// What is checked, and how without timing guesses: a held command has not
// run (another client reads the key it writes), its reply has not come
// (a bounded read times out: a short wait can only make a broken server
// look correct, never a correct one look broken), and it runs and answers
// once the pause ends. The only time bound asserted is a lower one: a
// command held by a pause of T ms is not answered before T ms have passed
// since the pause began, which no scheduling delay can violate.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "kv/kv_harness.hpp"
#include "weft/errors.hpp"

namespace {

using kv::itest::Client;
using kv::itest::Reply;
using kv::itest::SharedServerTest;
using weft::Deadline;
using namespace std::chrono_literals;

// How long a read waits to show that a held command has not answered yet.
constexpr auto kHeldProbe = 200ms;

class ClientPause : public SharedServerTest {
 protected:
  void TearDown() override {
    // Whatever a failed test left, the next one starts unpaused (a pause
    // ALL holds this too, until its short timeout).
    try {
      Client c(port());
      c.call({"CLIENT", "UNPAUSE"});
    } catch (const std::exception&) {
      // The next SetUp reports a server that no longer answers.
    }
  }
};

// True when `c` has a reply within kHeldProbe (false: it is still held).
bool answers_soon(Client& c, Reply& reply) {
  try {
    reply = c.read_reply(Deadline::after(kHeldProbe));
    return true;
  } catch (const weft::TimedOut&) {
    return false;
  }
}

TEST_F(ClientPause, WriteHoldsWritesUntilUnpauseAndLetsReadsThrough) {
  Client admin(port()), writer(port()), reader(port());
  ASSERT_EQ(admin.call({"SET", "k", "old"}).describe(), "+OK");
  ASSERT_EQ(admin.call({"CLIENT", "PAUSE", "60000", "WRITE"}).describe(), "+OK");
  writer.send_command({"SET", "k", "new"});
  Reply r;
  EXPECT_FALSE(answers_soon(writer, r)) << "a SET during a pause WRITE answered: " << r;
  // Reads run at once, and see the write has not happened.
  EXPECT_EQ(reader.call({"GET", "k"}, Deadline::after(kv::itest::kPatience)).describe(), "\"old\"");
  EXPECT_EQ(reader.call({"EXISTS", "k"}).describe(), ":1");
  // The pausing client itself is held for writes too, but not for reads.
  EXPECT_EQ(admin.call({"GET", "k"}).describe(), "\"old\"");
  ASSERT_EQ(admin.call({"CLIENT", "UNPAUSE"}).describe(), "+OK");
  EXPECT_EQ(writer.read_reply().describe(), "+OK");
  EXPECT_EQ(reader.call({"GET", "k"}).describe(), "\"new\"");
}

TEST_F(ClientPause, WriteHoldsPublishAndQueuedWritesButNotReadOnlyExec) {
  Client admin(port()), pub(port()), tx(port());
  ASSERT_EQ(admin.call({"CLIENT", "PAUSE", "60000", "WRITE"}).describe(), "+OK");
  // PUBLISH may replicate: held (Redis's is_may_replicate_command).
  pub.send_command({"PUBLISH", "ch", "m"});
  Reply r;
  EXPECT_FALSE(answers_soon(pub, r)) << "PUBLISH during a pause WRITE answered: " << r;
  // A read-only transaction runs; queuing a write is held.
  EXPECT_EQ(tx.call({"MULTI"}).describe(), "+OK");
  EXPECT_EQ(tx.call({"GET", "k"}).describe(), "+QUEUED");
  EXPECT_EQ(tx.call({"EXEC"}).describe(), "[(nil)]");
  EXPECT_EQ(tx.call({"MULTI"}).describe(), "+OK");
  tx.send_command({"SET", "k", "v"});
  EXPECT_FALSE(answers_soon(tx, r)) << "a SET queued during a pause WRITE answered: " << r;
  ASSERT_EQ(admin.call({"CLIENT", "UNPAUSE"}).describe(), "+OK");
  EXPECT_EQ(pub.read_reply().describe(), ":0");
  EXPECT_EQ(tx.read_reply().describe(), "+QUEUED");
  EXPECT_EQ(tx.call({"EXEC"}).describe(), "[+OK]");
}

TEST_F(ClientPause, AHeldCommandHoldsTheRestOfItsPipelineButNotWhatCameBefore) {
  Client admin(port()), c(port());
  ASSERT_EQ(admin.call({"SET", "k", "1"}).describe(), "+OK");
  ASSERT_EQ(admin.call({"CLIENT", "PAUSE", "60000", "WRITE"}).describe(), "+OK");
  c.send(kv::itest::encode({"GET", "k"}) + kv::itest::encode({"INCR", "k"}) +
         kv::itest::encode({"GET", "k"}));
  EXPECT_EQ(c.read_reply().describe(), "\"1\"");  // before the held INCR: sent at once
  Reply r;
  EXPECT_FALSE(answers_soon(c, r)) << "the held INCR, or the GET after it, answered: " << r;
  ASSERT_EQ(admin.call({"CLIENT", "UNPAUSE"}).describe(), "+OK");
  EXPECT_EQ(c.read_reply().describe(), ":2");
  EXPECT_EQ(c.read_reply().describe(), "\"2\"");
}

TEST_F(ClientPause, AllHoldsReadsUntilTheTimeout) {
  Client admin(port()), reader(port());
  ASSERT_EQ(admin.call({"SET", "k", "v"}).describe(), "+OK");
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(admin.call({"CLIENT", "PAUSE", "700", "ALL"}).describe(), "+OK");
  reader.send_command({"GET", "k"});
  Reply r;
  EXPECT_FALSE(answers_soon(reader, r)) << "a GET during a pause ALL answered: " << r;
  // Under ALL even UNPAUSE waits (Redis holds every command): the timeout
  // ends the pause, and then both answer.
  EXPECT_EQ(admin.call({"CLIENT", "UNPAUSE"}).describe(), "+OK");
  EXPECT_GE(std::chrono::steady_clock::now() - start, 690ms);
  EXPECT_EQ(reader.read_reply().describe(), "\"v\"");
  EXPECT_GE(std::chrono::steady_clock::now() - start, 690ms);
}

TEST_F(ClientPause, TheTimeoutEndsAWritePause) {
  Client admin(port()), writer(port());
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(admin.call({"CLIENT", "PAUSE", "500", "WRITE"}).describe(), "+OK");
  writer.send_command({"SET", "k", "v"});
  Reply r;
  EXPECT_FALSE(answers_soon(writer, r)) << "a SET during a pause WRITE answered: " << r;
  EXPECT_EQ(writer.read_reply().describe(), "+OK");
  EXPECT_GE(std::chrono::steady_clock::now() - start, 490ms);
}

TEST_F(ClientPause, ASecondPauseNeitherShortensNorWeakensTheFirst) {
  Client admin(port()), writer(port()), reader(port());
  ASSERT_EQ(admin.call({"CLIENT", "PAUSE", "60000", "WRITE"}).describe(), "+OK");
  ASSERT_EQ(admin.call({"CLIENT", "PAUSE", "1", "WRITE"}).describe(), "+OK");
  writer.send_command({"SET", "k", "v"});
  Reply r;
  EXPECT_FALSE(answers_soon(writer, r)) << "a shorter second pause ended the first: " << r;
  ASSERT_EQ(admin.call({"CLIENT", "UNPAUSE"}).describe(), "+OK");
  EXPECT_EQ(writer.read_reply().describe(), "+OK");
  // A pause WRITE, then a shorter pause ALL: reads are held too, until the
  // first one's end (the later end stays, the stronger mode wins).
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(admin.call({"CLIENT", "PAUSE", "500", "WRITE"}).describe(), "+OK");
  ASSERT_EQ(admin.call({"CLIENT", "PAUSE", "1", "ALL"}).describe(), "+OK");
  reader.send_command({"GET", "k"});
  EXPECT_FALSE(answers_soon(reader, r)) << "a GET after a pause ALL answered: " << r;
  EXPECT_EQ(reader.read_reply().describe(), "\"v\"");
  EXPECT_GE(std::chrono::steady_clock::now() - start, 490ms);
}

TEST_F(ClientPause, KillingAHeldClientDropsItsCommand) {
  Client admin(port()), writer(port());
  const std::string id = std::to_string(writer.call({"CLIENT", "ID"}).integer);
  ASSERT_EQ(admin.call({"CLIENT", "PAUSE", "60000", "WRITE"}).describe(), "+OK");
  writer.send_command({"SET", "k", "v"});
  Reply r;
  EXPECT_FALSE(answers_soon(writer, r)) << r;
  EXPECT_EQ(admin.call({"CLIENT", "KILL", "ID", id}).describe(), ":1");
  EXPECT_TRUE(writer.closed_by(kv::itest::kPatience));
  ASSERT_EQ(admin.call({"CLIENT", "UNPAUSE"}).describe(), "+OK");
  EXPECT_EQ(admin.call({"GET", "k"}).describe(), "(nil)");
}

TEST_F(ClientPause, AHeldClientThatDisconnectsIsGoneBeforeThePauseEnds) {
  Client admin(port());
  const std::int64_t before = kv::itest::info(admin, "clients").integer("connected_clients");
  {
    Client writer(port());
    ASSERT_EQ(admin.call({"CLIENT", "PAUSE", "60000", "WRITE"}).describe(), "+OK");
    writer.send_command({"SET", "k", "v"});
    Reply r;
    EXPECT_FALSE(answers_soon(writer, r)) << r;
    writer.close();
  }
  // Its connection goes while the pause is still on.
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  std::int64_t now = -1;
  while ((now = kv::itest::info(admin, "clients").integer("connected_clients")) != before &&
         std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(now, before);
  ASSERT_EQ(admin.call({"CLIENT", "UNPAUSE"}).describe(), "+OK");
  EXPECT_EQ(admin.call({"GET", "k"}).describe(), "(nil)");
}

TEST_F(ClientPause, ActiveExpiryStopsDuringAPause) {
  Client admin(port());
  ASSERT_EQ(admin.call({"SET", "k", "v", "PX", "50"}).describe(), "+OK");
  ASSERT_EQ(admin.call({"CLIENT", "PAUSE", "60000", "WRITE"}).describe(), "+OK");
  // Several expiry cycles (10 Hz) pass: the expired key is not deleted
  // (DBSIZE counts it, without looking it up).
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(admin.call({"DBSIZE"}).describe(), ":1");
  ASSERT_EQ(admin.call({"CLIENT", "UNPAUSE"}).describe(), "+OK");
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (admin.call({"DBSIZE"}).describe() != ":0" && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(admin.call({"DBSIZE"}).describe(), ":0");
}

}  // namespace
