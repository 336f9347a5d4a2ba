// weft-kv integration tests: publish/subscribe. The byte-exact tests send a
// pipeline ending in QUIT and compare every byte the server sent with what
// redis-server 7.0.15 sends (the reference twin runs them against it, so a
// wrong expectation fails there). Then fan-out (1,000 subscribers x 100
// messages from 2 publishers: each delivered once, in each publisher's
// order) and the pubsub output buffer limits (a stalled subscriber is
// closed while the others keep receiving).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kv/kv_harness.hpp"
#include "weft/weft.hpp"

namespace {

using kv::itest::Client;
using kv::itest::encode;
using kv::itest::exchange;
using kv::itest::Reply;
using kv::itest::Server;
using kv::itest::ServerConfig;
using kv::itest::SharedServerTest;
using weft::test::Checker;

class PubSub : public SharedServerTest {};

std::string message(const std::string& channel, const std::string& msg) {
  return "*3\r\n$7\r\nmessage\r\n$" + std::to_string(channel.size()) + "\r\n" + channel + "\r\n$" +
         std::to_string(msg.size()) + "\r\n" + msg + "\r\n";
}

TEST_F(PubSub, SubscribedModeRepliesAndRestrictions) {
  Client c(port());
  const std::string got = exchange(c, {{"UNSUBSCRIBE"},
                                       {"PUNSUBSCRIBE"},
                                       {"SUBSCRIBE", "a", "b", "a"},
                                       {"PSUBSCRIBE", "h*"},
                                       {"PING"},
                                       {"PING", "x"},
                                       {"PING", "x", "y"},
                                       {"GET", "a"},
                                       {"CONFIG", "GET", "x"},
                                       {"FOO"},
                                       {"MULTI"},
                                       {"SUBSCRIBE"},
                                       {"UNSUBSCRIBE", "a", "zz"},
                                       {"PUNSUBSCRIBE"},
                                       {"UNSUBSCRIBE"},
                                       {"PING"},
                                       {"GET", "a"}});
  const std::string want =
      "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"
      "*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n"
      "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
      "*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
      "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:2\r\n"
      "*3\r\n$10\r\npsubscribe\r\n$2\r\nh*\r\n:3\r\n"
      "*2\r\n$4\r\npong\r\n$0\r\n\r\n"
      "*2\r\n$4\r\npong\r\n$1\r\nx\r\n"
      "-ERR wrong number of arguments for 'ping' command\r\n"
      "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
      "are allowed in this context\r\n"
      "-ERR Can't execute 'config|get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
      "RESET are allowed in this context\r\n"
      "-ERR unknown command 'FOO', with args beginning with: \r\n"
      "-ERR Can't execute 'multi': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
      "are allowed in this context\r\n"
      "-ERR wrong number of arguments for 'subscribe' command\r\n"
      "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n"
      "*3\r\n$11\r\nunsubscribe\r\n$2\r\nzz\r\n:2\r\n"
      "*3\r\n$12\r\npunsubscribe\r\n$2\r\nh*\r\n:1\r\n"
      "*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n"
      "+PONG\r\n"
      "$-1\r\n"
      "+OK\r\n";
  EXPECT_EQ(got, want);
}

TEST_F(PubSub, PublishAndIntrospection) {
  Client sub(port());
  sub.send(encode({"SUBSCRIBE", "news", "sport"}) + encode({"PSUBSCRIBE", "n*", "x?"}));
  for (int i = 0; i < 4; ++i) ASSERT_EQ(sub.read_reply().type, Reply::Type::array);
  Client c(port());
  const std::string got =
      exchange(c, {{"PUBLISH", "news", "hello"},  // the channel and the pattern n*
                   {"PUBLISH", "nothing", "x"},   // n* only
                   {"PUBLISH", "other", "x"},
                   {"PUBLISH", "a"},
                   {"PUBSUB", "NUMSUB", "news", "other"},
                   {"PUBSUB", "NUMSUB"},
                   {"PUBSUB", "NUMPAT"},
                   {"PUBSUB", "NUMPAT", "x"},
                   {"PUBSUB", "CHANNELS", "s*"},
                   {"PUBSUB", "CHANNELS", "a", "b"},
                   {"PUBSUB", "SHARDCHANNELS"},
                   {"PUBSUB", "SHARDNUMSUB", "news"},
                   {"PUBSUB", "FOO"},
                   {"PUBSUB"},
                   {"PUBSUB", "HELP"}});
  const std::string want =
      ":2\r\n:1\r\n:0\r\n"
      "-ERR wrong number of arguments for 'publish' command\r\n"
      "*4\r\n$4\r\nnews\r\n:1\r\n$5\r\nother\r\n:0\r\n"
      "*0\r\n"
      ":2\r\n"
      "-ERR wrong number of arguments for 'pubsub|numpat' command\r\n"
      "*1\r\n$5\r\nsport\r\n"
      "-ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP.\r\n"
      "*0\r\n"
      "*2\r\n$4\r\nnews\r\n:0\r\n"
      "-ERR unknown subcommand 'FOO'. Try PUBSUB HELP.\r\n"
      "-ERR wrong number of arguments for 'pubsub' command\r\n"
      "*14\r\n+PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n"
      "+CHANNELS [<pattern>]\r\n"
      "+    Return the currently active channels matching a <pattern> (default: '*').\r\n"
      "+NUMPAT\r\n+    Return number of subscriptions to patterns.\r\n"
      "+NUMSUB [<channel> ...]\r\n"
      "+    Return the number of subscribers for the specified channels, excluding\r\n"
      "+    pattern subscriptions(default: no channels).\r\n"
      "+SHARDCHANNELS [<pattern>]\r\n"
      "+    Return the currently active shard level channels matching a <pattern> (default: "
      "'*').\r\n"
      "+SHARDNUMSUB [<shardchannel> ...]\r\n"
      "+    Return the number of subscribers for the specified shard level channel(s)\r\n"
      "+HELP\r\n+    Prints this help.\r\n"
      "+OK\r\n";
  EXPECT_EQ(got, want);
  // What the subscriber received, in publication order: the channel's
  // message, then the pattern's.
  sub.send(encode({"UNSUBSCRIBE"}) + encode({"PUNSUBSCRIBE", "n*", "x?"}) + encode({"QUIT"}));
  const std::string received = sub.read_until_close();
  const std::string pm = "*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n";
  const std::string want_received = message("news", "hello") + pm +
                                    "$4\r\nnews\r\n$5\r\nhello\r\n" + pm +
                                    "$7\r\nnothing\r\n$1\r\nx\r\n";
  ASSERT_EQ(received.substr(0, want_received.size()), want_received);
  // Then the unsubscriptions (the two channels in either order: Redis keeps
  // them in a dict).
  const std::string rest = received.substr(want_received.size());
  const std::string u_news = "*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n";
  const std::string u_sport = "*3\r\n$11\r\nunsubscribe\r\n$5\r\nsport\r\n";
  EXPECT_TRUE(rest == u_news + ":3\r\n" + u_sport + ":2\r\n" +
                          "*3\r\n$12\r\npunsubscribe\r\n$2\r\nn*\r\n:1\r\n"
                          "*3\r\n$12\r\npunsubscribe\r\n$2\r\nx?\r\n:0\r\n+OK\r\n" ||
              rest == u_sport + ":3\r\n" + u_news + ":2\r\n" +
                          "*3\r\n$12\r\npunsubscribe\r\n$2\r\nn*\r\n:1\r\n"
                          "*3\r\n$12\r\npunsubscribe\r\n$2\r\nx?\r\n:0\r\n+OK\r\n")
      << rest;
}

// The subscription ends with the connection: nothing is left registered.
TEST_F(PubSub, ClosedSubscribersAreForgotten) {
  {
    Client sub(port());
    ASSERT_EQ(sub.call({"SUBSCRIBE", "gone"}).describe(), "[\"subscribe\", \"gone\", :1]");
    ASSERT_EQ(sub.call({"PSUBSCRIBE", "g*"}).describe(), "[\"psubscribe\", \"g*\", :2]");
  }
  Client c(port());
  for (int i = 0; i < 500; ++i) {
    const Reply n = c.call({"PUBSUB", "NUMSUB", "gone"});
    ASSERT_EQ(n.elements.size(), 2u);
    if (n.elements[1].integer == 0 && c.call({"PUBSUB", "NUMPAT"}).integer == 0) break;
    weft::this_fiber::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(c.call({"PUBLISH", "gone", "x"}).describe(), ":0");
  EXPECT_EQ(c.call({"PUBSUB", "NUMPAT"}).describe(), ":0");
}

// 1,000 subscribers, 2 publishers x 100 messages at once: every subscriber
// gets all 200, each once, each publisher's in its order.
TEST_F(PubSub, FanOutToAThousandSubscribersInOrder) {
  constexpr int kSubscribers = 1000;
  constexpr int kMessages = 100;
  constexpr int kPublishers = 2;
  Checker check;
  weft::Runtime rt(weft::test::workers_config(2));
  rt.block_on([&] {
    std::vector<std::unique_ptr<Client>> subs;
    subs.reserve(kSubscribers);
    for (int i = 0; i < kSubscribers; ++i) {
      subs.push_back(std::make_unique<Client>(port()));
      subs.back()->send_command({"SUBSCRIBE", "fan"});
    }
    for (auto& s : subs) ASSERT_EQ(s->read_reply().describe(), "[\"subscribe\", \"fan\", :1]");
    std::vector<weft::JoinHandle<void>> pubs;
    for (int p = 0; p < kPublishers; ++p) {
      pubs.push_back(weft::spawn([&, p] {
        try {
          Client c(port());
          for (int m = 0; m < kMessages; ++m) {
            const Reply r = c.call({"PUBLISH", "fan", std::to_string(p) + ":" + std::to_string(m)});
            check.check(r.integer == kSubscribers, "PUBLISH reached " + r.describe());
          }
        } catch (const std::exception& e) {
          check.check(false, std::string("publisher: ") + e.what());
        }
      }));
    }
    for (auto& f : pubs) f.join();
    for (int i = 0; i < kSubscribers; ++i) {
      int next[kPublishers] = {};
      for (int m = 0; m < kMessages * kPublishers; ++m) {
        const Reply r = subs[static_cast<std::size_t>(i)]->read_reply();
        ASSERT_EQ(r.elements.size(), 3u) << r.describe();
        ASSERT_EQ(r.elements[0].str, "message");
        const std::string& body = r.elements[2].str;
        const int p = body[0] - '0';
        ASSERT_TRUE(p >= 0 && p < kPublishers) << body;
        ASSERT_EQ(body, std::to_string(p) + ":" + std::to_string(next[p]))
            << "subscriber " << i << ": out of order or repeated";
        ++next[p];
      }
    }
  });
  WEFT_EXPECT_NO_FAILURES(check);
}

std::int64_t numsub(Client& c, const std::string& channel) {
  return c.call({"PUBSUB", "NUMSUB", channel}).elements.at(1).integer;
}

// A subscriber that stops reading is closed at the hard limit, while one
// that reads gets every message and the publisher never waits for the
// stalled one.
TEST(PubSubLimits, StalledSubscriberIsClosedAtTheHardLimit) {
  KV_REQUIRE_SERVER();
  Server server(ServerConfig{{{"client-output-buffer-limit", "pubsub 1mb 0 0"}}, {}});
  Checker check;
  weft::Runtime rt(weft::test::workers_config(2));
  rt.block_on([&] {
    Client stalled(server.port());
    ASSERT_EQ(stalled.call({"SUBSCRIBE", "feed"}).type, Reply::Type::array);
    Client control(server.port());
    std::atomic<int> received{0};
    weft::Event subscribed;
    auto reader = weft::spawn([&] {
      try {
        Client live(server.port());
        check.check(live.call({"SUBSCRIBE", "feed"}).type == Reply::Type::array, "subscribe");
        subscribed.set();
        for (;;) {
          const Reply r = live.read_reply();
          if (r.elements.size() == 3 && r.elements[2].str == "end") break;
          received.fetch_add(1);
        }
      } catch (const std::exception& e) {
        check.check(false, std::string("live subscriber: ") + e.what());
        subscribed.set();
      }
    });
    subscribed.wait();
    Client pub(server.port());
    // 64 KiB messages, up to 64 MiB: far past what the socket buffers take.
    // Each is published once the live subscriber has the one before it, so
    // only the stalled one falls behind.
    const std::string body(64 << 10, 'm');
    int published = 0;
    const auto publish = [&] {
      const Reply r = pub.call({"PUBLISH", "feed", body});
      check.check(r.type == Reply::Type::integer, "PUBLISH: " + r.describe());
      ++published;
      while (received.load() < published && !reader.is_finished())
        weft::this_fiber::sleep_for(std::chrono::microseconds(50));
    };
    while (published < 1024 && numsub(control, "feed") == 2) publish();
    // A few more after the close: the live subscriber still gets them.
    for (int i = 0; i < 16; ++i) publish();
    EXPECT_EQ(numsub(control, "feed"), 1) << "the stalled subscriber is still subscribed";
    pub.call({"PUBLISH", "feed", "end"});
    reader.join();
    EXPECT_LT(published, 1024 + 16) << "never closed";
    EXPECT_EQ(received.load(), published) << "the live subscriber missed messages";
    EXPECT_TRUE(stalled.closed_by(weft::Deadline::after(std::chrono::seconds(10))));
    if (!kv::itest::reference_mode()) {
      EXPECT_GE(
          kv::itest::info(control, "stats").integer("client_output_buffer_limit_disconnections"),
          1);
      EXPECT_NE(server.log().find("overcoming of output buffer limits"), std::string::npos);
    }
  });
  WEFT_EXPECT_NO_FAILURES(check);
}

// The soft limit: pending above it for longer than its seconds closes the
// subscriber at the next message.
TEST(PubSubLimits, StalledSubscriberIsClosedAfterTheSoftLimitsSeconds) {
  KV_REQUIRE_SERVER();
  Server server(ServerConfig{{{"client-output-buffer-limit", "pubsub 0 256kb 1"}}, {}});
  weft::Runtime rt(weft::test::workers_config(2));
  rt.block_on([&] {
    Client stalled(server.port());
    ASSERT_EQ(stalled.call({"SUBSCRIBE", "feed"}).type, Reply::Type::array);
    Client control(server.port());
    Client pub(server.port());
    const auto start = std::chrono::steady_clock::now();
    // 16 KiB every 20 ms: past the socket buffers and the soft limit in a
    // few seconds, then held there.
    int n = 0;
    for (; n < 3000 && numsub(control, "feed") > 0; ++n) {
      ASSERT_EQ(pub.call({"PUBLISH", "feed", std::string(16 << 10, 's')}).type,
                Reply::Type::integer);
      weft::this_fiber::sleep_for(std::chrono::milliseconds(20));
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(numsub(control, "feed"), 0) << "not closed after " << n << " messages";
    EXPECT_GT(secs, 1.0) << "closed before the soft limit's seconds";
    std::printf("[ info ] soft limit: closed after %d messages, %.2f s\n", n, secs);
  });
}

}  // namespace
