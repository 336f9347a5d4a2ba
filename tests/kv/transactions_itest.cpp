// weft-kv integration tests: transactions (MULTI, EXEC, DISCARD, WATCH,
// UNWATCH). Byte-exact replies against redis-server 7.0.15 (the reference
// twin runs the same expectations), WATCH aborting exactly when a watched
// key changed (written, deleted, expired, flushed; by another client or the
// watcher itself) and not otherwise, and random concurrent transfers under
// 50 clients that must preserve the total, seen atomically from outside.
#include <gtest/gtest.h>

#include <charconv>
#include <chrono>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kv/kv_harness.hpp"
#include "weft/weft.hpp"

namespace {

using kv::itest::Client;
using kv::itest::encode;
using kv::itest::Reply;
using kv::itest::SharedServerTest;
using weft::test::Checker;

// A decimal integer (0 if it is not one). std::from_chars, not std::stoll:
// stoll saves and restores errno, a thread-local that fibers moving between
// workers share with whatever else ran on that thread (TSan reports it).
long long to_ll(const std::string& s) {
  long long v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

class Transactions : public SharedServerTest {
 protected:
  void run_clients(int n, const std::function<void(Client&, int)>& body) {
    kv::itest::run_clients(port(), n, check_, body);
  }
  Checker check_;
};

TEST_F(Transactions, RepliesAndErrorsAsRedis) {
  Client c(port());
  std::string batch;
  for (const std::vector<std::string>& argv : std::vector<std::vector<std::string>>{
           {"EXEC"},
           {"DISCARD"},
           {"MULTI"},
           {"MULTI"},
           {"SET", "a", "1"},
           {"WATCH", "a"},
           {"FOO"},
           {"GET"},
           {"CONFIG", "FOO"},
           {"EXEC"},
           {"GET", "a"},
           // Errors while running do not stop the others; a blocking pop
           // does not wait; SUBSCRIBE inside a transaction subscribes.
           {"MULTI"},
           {"SET", "a", "1"},
           {"INCR", "a"},
           {"LPUSH", "a", "x"},
           {"BLPOP", "nol", "0"},
           {"SUBSCRIBE", "zz"},
           {"EXEC"},
           {"PING"},
           {"UNSUBSCRIBE"},
           {"MULTI"},
           {"SHUTDOWN"},
           {"DISCARD"},
           {"WATCH"},
           {"UNWATCH"},
           // The watcher's own write counts too.
           {"WATCH", "a", "b"},
           {"SET", "a", "2"},
           {"MULTI"},
           {"PING"},
           {"EXEC"},
           {"MULTI"},
           {"EXEC"},
           {"MULTI"},
           {"WATCH", "x"},
           {"DISCARD"},
           {"QUIT"}})
    batch += encode(argv);
  c.send(batch);
  EXPECT_EQ(c.read_until_close(),
            "-ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n+OK\r\n"
            "-ERR MULTI calls can not be nested\r\n+QUEUED\r\n"
            "-ERR WATCH inside MULTI is not allowed\r\n"
            "-ERR unknown command 'FOO', with args beginning with: \r\n"
            "-ERR wrong number of arguments for 'get' command\r\n"
            "-ERR unknown subcommand 'FOO'. Try CONFIG HELP.\r\n"
            "-EXECABORT Transaction discarded because of previous errors.\r\n"
            "$-1\r\n"
            "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n"
            "*5\r\n+OK\r\n:2\r\n-WRONGTYPE Operation against a key holding the wrong kind of "
            "value\r\n*-1\r\n*3\r\n$9\r\nsubscribe\r\n$2\r\nzz\r\n:1\r\n"
            "*2\r\n$4\r\npong\r\n$0\r\n\r\n"
            "*3\r\n$11\r\nunsubscribe\r\n$2\r\nzz\r\n:0\r\n"
            "+OK\r\n-ERR Command not allowed inside a transaction\r\n+OK\r\n"
            "-ERR wrong number of arguments for 'watch' command\r\n+OK\r\n"
            "+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*-1\r\n"
            "+OK\r\n*0\r\n"
            "+OK\r\n-ERR WATCH inside MULTI is not allowed\r\n+OK\r\n"
            "+OK\r\n");
}

// One WATCH scenario: `setup` runs first (on the watcher's connection),
// then WATCH key, then `meddle` on another connection, then MULTI/SET/EXEC.
// Returns EXEC's reply.
std::string watch_then(std::uint16_t port, const std::string& key,
                       const std::vector<std::vector<std::string>>& setup,
                       const std::vector<std::vector<std::string>>& meddle,
                       std::chrono::milliseconds pause = std::chrono::milliseconds(0)) {
  Client w(port);
  Client other(port);
  for (const auto& argv : setup) w.call(argv);
  weft::this_fiber::sleep_for(std::chrono::milliseconds(10));  // a PX 1 in setup has passed
  if (w.call({"WATCH", key}).describe() != "+OK") return "WATCH failed";
  for (const auto& argv : meddle) other.call(argv);
  weft::this_fiber::sleep_for(pause);
  w.call({"MULTI"});
  w.call({"SET", "result", "done"});
  const std::string r = w.call({"EXEC"}).describe();
  return r;
}

TEST_F(Transactions, WatchAbortsExactlyWhenTheKeyChanged) {
  const std::string kAbort = "(nil array)";
  const std::string kRan = "[+OK]";
  const auto p = port();
  // Changed: aborts.
  EXPECT_EQ(watch_then(p, "k", {{"SET", "k", "1"}}, {{"SET", "k", "2"}}), kAbort);
  EXPECT_EQ(watch_then(p, "k", {{"SET", "k", "1"}}, {{"SET", "k", "1"}}), kAbort)
      << "the same value is a change";
  EXPECT_EQ(watch_then(p, "k", {{"DEL", "k"}}, {{"SET", "k", "new"}}), kAbort) << "created";
  EXPECT_EQ(watch_then(p, "k", {{"SET", "k", "1"}}, {{"DEL", "k"}}), kAbort);
  EXPECT_EQ(watch_then(p, "k", {{"SET", "k", "1"}}, {{"EXPIRE", "k", "100"}}), kAbort);
  EXPECT_EQ(watch_then(p, "k", {{"SET", "k", "1", "EX", "100"}}, {{"PERSIST", "k"}}), kAbort);
  EXPECT_EQ(watch_then(p, "k", {{"SET", "k", "1"}}, {{"APPEND", "k", "x"}}), kAbort);
  EXPECT_EQ(watch_then(p, "k", {{"SET", "k", "1"}}, {{"INCR", "k"}}), kAbort);
  EXPECT_EQ(watch_then(p, "k", {{"DEL", "k"}}, {{"RPUSH", "k", "a"}}), kAbort);
  EXPECT_EQ(watch_then(p, "k", {{"DEL", "k"}, {"SADD", "k", "a"}}, {{"SADD", "k", "b"}}), kAbort);
  EXPECT_EQ(watch_then(p, "k", {{"DEL", "k"}, {"HSET", "k", "f", "v"}}, {{"HDEL", "k", "f"}}),
            kAbort);
  EXPECT_EQ(watch_then(p, "k", {{"SET", "k", "1"}}, {{"RENAME", "k", "k2"}}), kAbort);
  EXPECT_EQ(watch_then(p, "k", {{"SET", "k", "1"}}, {{"SETRANGE", "k", "0", "x"}}), kAbort);
  EXPECT_EQ(watch_then(p, "k", {{"SET", "k", "1"}}, {{"SETBIT", "k", "0", "1"}}), kAbort);
  EXPECT_EQ(watch_then(p, "k", {{"SET", "k", "1"}}, {{"FLUSHALL"}}), kAbort);
  EXPECT_EQ(watch_then(p, "k", {{"SET", "k", "1"}}, {{"MULTI"}, {"SET", "k", "2"}, {"EXEC"}}),
            kAbort)
      << "another client's transaction";
  // Expired between WATCH and EXEC (Redis 7.0: isWatchedKeyExpired).
  EXPECT_EQ(watch_then(p, "k", {{"SET", "k", "1", "PX", "50"}}, {}, std::chrono::milliseconds(150)),
            kAbort);
  // Not changed: runs.
  EXPECT_EQ(watch_then(p, "k", {{"SET", "k", "1"}}, {{"GET", "k"}}), kRan);
  EXPECT_EQ(watch_then(p, "k", {{"SET", "k", "1"}}, {{"SET", "other", "2"}}), kRan);
  EXPECT_EQ(watch_then(p, "k", {{"DEL", "k"}}, {{"DEL", "k"}}), kRan) << "deleting nothing";
  EXPECT_EQ(watch_then(p, "k", {{"DEL", "k"}}, {{"FLUSHALL"}}), kRan)
      << "FLUSHALL while the key did not exist";
  EXPECT_EQ(watch_then(p, "k", {{"SET", "k", "1"}}, {{"SET", "k", "2", "NX"}}), kRan)
      << "a SET NX that did nothing";
  EXPECT_EQ(watch_then(p, "k", {{"DEL", "k"}, {"SADD", "k", "a"}}, {{"SADD", "k", "a"}}), kRan)
      << "an SADD of a member already there";
  EXPECT_EQ(watch_then(p, "k", {{"SET", "k", "1"}}, {{"EXISTS", "k"}, {"TTL", "k"}}), kRan);
  // Already expired when watched: its deletion is no change.
  EXPECT_EQ(watch_then(p, "k", {{"SET", "k", "1", "PX", "1"}}, {{"GET", "k"}},
                       std::chrono::milliseconds(0)),
            kRan);
  // UNWATCH forgets; a new WATCH after an EXEC starts clean.
  {
    Client w(p);
    Client other(p);
    ASSERT_EQ(w.call({"WATCH", "u"}).describe(), "+OK");
    ASSERT_EQ(w.call({"UNWATCH"}).describe(), "+OK");
    other.call({"SET", "u", "1"});
    w.call({"MULTI"});
    w.call({"PING"});
    EXPECT_EQ(w.call({"EXEC"}).describe(), "[+PONG]");
    ASSERT_EQ(w.call({"WATCH", "u"}).describe(), "+OK");
    other.call({"SET", "u", "2"});
    w.call({"MULTI"});
    EXPECT_EQ(w.call({"EXEC"}).describe(), kAbort);
    w.call({"MULTI"});
    EXPECT_EQ(w.call({"EXEC"}).describe(), "[]") << "the next EXEC watches nothing";
  }
}

// 50 clients move random amounts between 16 accounts (in different
// shards) in MULTI/EXEC transactions, and with WATCH-guarded
// read-modify-write; observers read every balance in one transaction
// (and with MGET) and must always see the same total.
TEST_F(Transactions, ConcurrentTransfersPreserveTheTotal) {
  constexpr int kClients = 50;
  constexpr int kAccounts = 16;
  constexpr int kTransfers = 200;
  constexpr long long kInitial = 1000;
  {
    Client c(port());
    for (int i = 0; i < kAccounts; ++i)
      ASSERT_EQ(c.call({"SET", "acct:" + std::to_string(i), std::to_string(kInitial)}).describe(),
                "+OK");
  }
  const long long total = kInitial * kAccounts;
  std::atomic<int> watched_aborts{0};
  std::atomic<int> movers_left{kClients - kClients / 10};
  run_clients(kClients, [&](Client& c, int id) {
    std::mt19937 rng(static_cast<unsigned>(id) * 7919u + 1u);
    const auto acct = [&] { return "acct:" + std::to_string(rng() % kAccounts); };
    if (id % 10 == 9) {
      // Observers, until the last transfer: every balance in one
      // transaction, then in one MGET (atomic on its own, so it catches a
      // transaction that others can see half done).
      std::vector<std::string> mget = {"MGET"};
      for (int i = 0; i < kAccounts; ++i) mget.push_back("acct:" + std::to_string(i));
      const auto total_of = [&](const Reply& all) {
        long long sum = 0;
        for (const Reply& r : all.elements) sum += to_ll(r.str);
        check_.check(all.elements.size() == kAccounts && sum == total,
                     "saw a total of " + std::to_string(sum) + " in " + all.describe());
      };
      for (int round = 0; movers_left.load() > 0 || round < 10; ++round) {
        std::string batch = encode({"MULTI"});
        for (int i = 0; i < kAccounts; ++i) batch += encode({"GET", "acct:" + std::to_string(i)});
        batch += encode({"EXEC"});
        c.send(batch);
        for (int i = 0; i <= kAccounts; ++i) c.read_reply();  // +OK, QUEUED...
        total_of(c.read_reply());
        total_of(c.call(mget));
      }
      return;
    }
    struct Done {
      std::atomic<int>& left;
      ~Done() { left.fetch_sub(1); }
    } done{movers_left};
    for (int t = 0; t < kTransfers; ++t) {
      std::string from = acct(), to = acct();
      const std::string amount = std::to_string(rng() % 50);
      if (id % 2 == 0) {
        // Blind transfer: atomic by MULTI/EXEC alone.
        c.send(encode({"MULTI"}) + encode({"DECRBY", from, amount}) +
               encode({"INCRBY", to, amount}) + encode({"EXEC"}));
        for (int i = 0; i < 3; ++i) c.read_reply();
        const Reply r = c.read_reply();
        check_.check(r.elements.size() == 2, "EXEC: " + r.describe());
      } else {
        // Optimistic: read, then write only if nothing changed meanwhile.
        for (;;) {
          c.call({"WATCH", from, to});
          const long long a = to_ll(c.call({"GET", from}).str);
          const long long b = to_ll(c.call({"GET", to}).str);
          const long long x = to_ll(amount);
          c.send(encode({"MULTI"}) + encode({"SET", from, std::to_string(from == to ? a : a - x)}) +
                 encode({"SET", to, std::to_string(from == to ? b : b + x)}) + encode({"EXEC"}));
          for (int i = 0; i < 3; ++i) c.read_reply();
          const Reply r = c.read_reply();
          if (r.type == Reply::Type::nil_array) {
            watched_aborts.fetch_add(1);
            continue;
          }
          check_.check(r.elements.size() == 2, "EXEC: " + r.describe());
          break;
        }
      }
    }
  });
  WEFT_EXPECT_NO_FAILURES(check_);
  Client c(port());
  std::vector<std::string> mget = {"MGET"};
  for (int i = 0; i < kAccounts; ++i) mget.push_back("acct:" + std::to_string(i));
  long long sum = 0;
  for (const Reply& r : c.call(mget).elements) sum += to_ll(r.str);
  EXPECT_EQ(sum, total);
  std::printf("[ info ] %d WATCH aborts retried\n", watched_aborts.load());
}

}  // namespace
