// Blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
// BZPOPMAX, BZMPOP) against the real server, as clients see them: waiters
// served in the order they blocked, a push serving several waiters and
// keeping the rest, serving before the next command, timeouts (0 = forever,
// fractions), a disconnect while blocked leaving nothing behind, 1,000
// blocked clients woken by pushes with nothing lost or duplicated, wake-ups
// racing timeouts, BLMOVE chains, types that do not match, pipelines around
// a blocked command. Every test runs against redis-server too (the
// reference twin), so the expectations are Redis's.
//
// A test that needs clients blocked in a known order waits, after each
// one, until INFO's blocked_clients counts it.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "kv/kv_harness.hpp"
#include "weft/weft.hpp"

namespace {

using kv::itest::Client;
using kv::itest::Reply;
using kv::itest::SharedServerTest;
using weft::test::Checker;
using weft::test::eventually;

std::int64_t blocked_clients(Client& c) {
  return kv::itest::info(c, "clients").integer("blocked_clients");
}

class Blocking : public SharedServerTest {
 protected:
  // Runs body on a fiber of a two-worker runtime (so clients may be
  // fibers spawned from it).
  template <class F>
  void on_fibers(F&& body) {
    weft::Runtime rt(weft::test::workers_config(2));
    rt.block_on(std::forward<F>(body));
  }

  // Sends argv on a new connection from a fiber of its own; the handle
  // gives the reply, described.
  weft::JoinHandle<std::string> call_async(std::vector<std::string> argv) {
    return weft::spawn([p = port(), argv = std::move(argv)] {
      Client c(p);
      return c.call(argv).describe();
    });
  }

  // Waits until exactly n clients are blocked.
  void wait_blocked(Client& admin, std::int64_t n) {
    std::int64_t now = -1;
    ASSERT_TRUE(eventually([&] { return (now = blocked_clients(admin)) == n; }))
        << "blocked_clients is " << now << ", want " << n;
  }

  Checker check_;
};

TEST_F(Blocking, TimeoutZeroWaitsForAPush) {
  on_fibers([&] {
    Client admin(port());
    auto waiter = call_async({"BLPOP", "q", "0"});
    wait_blocked(admin, 1);
    // Still blocked a while later: 0 is forever.
    weft::this_fiber::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(blocked_clients(admin), 1);
    EXPECT_EQ(admin.call({"RPUSH", "q", "x"}).describe(), ":1");
    EXPECT_EQ(waiter.join(), "[\"q\", \"x\"]");
    EXPECT_EQ(admin.call({"EXISTS", "q"}).describe(), ":0");
    wait_blocked(admin, 0);
  });
}

TEST_F(Blocking, FractionalTimeoutsReturnTheNullReply) {
  Client c(port());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(c.call({"BLPOP", "q", "0.25"}).describe(), "(nil array)");
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(240));
  // Every blocking command times out with the null array, BLMOVE included.
  EXPECT_EQ(c.call({"BRPOP", "q", "r", "0.01"}).describe(), "(nil array)");
  EXPECT_EQ(c.call({"BLMOVE", "q", "d", "LEFT", "RIGHT", "0.01"}).describe(), "(nil array)");
  EXPECT_EQ(c.call({"BRPOPLPUSH", "q", "d", ".01"}).describe(), "(nil array)");
  EXPECT_EQ(c.call({"BLMPOP", "1e-2", "1", "q", "LEFT"}).describe(), "(nil array)");
  EXPECT_EQ(c.call({"BZPOPMIN", "z", "0.01"}).describe(), "(nil array)");
  EXPECT_EQ(c.call({"BZMPOP", "0.01", "1", "z", "MAX"}).describe(), "(nil array)");
  // A fraction below a millisecond rounds up to one, it is not forever.
  EXPECT_EQ(c.call({"BLPOP", "q", "0.0001"}).describe(), "(nil array)");
  EXPECT_EQ(c.call({"EXISTS", "q", "d", "z"}).describe(), ":0");
  EXPECT_EQ(blocked_clients(c), 0);
}

TEST_F(Blocking, WaitersAreServedInTheOrderTheyBlocked) {
  constexpr int kWaiters = 5;
  on_fibers([&] {
    Client admin(port());
    std::vector<weft::JoinHandle<std::string>> waiters;
    for (int i = 0; i < kWaiters; ++i) {
      waiters.push_back(weft::spawn([&, i] {
        Client c(port());
        // Alternate the commands: the queue is per key, whatever pops.
        return c.call({i % 2 == 0 ? "BLPOP" : "BRPOP", "q", "0"}).describe();
      }));
      wait_blocked(admin, i + 1);
    }
    // One push of five elements serves all five, first blocked first.
    EXPECT_EQ(admin.call({"RPUSH", "q", "e0", "e1", "e2", "e3", "e4"}).describe(), ":5");
    // BLPOP takes the head, BRPOP the tail, in waiter order: e0, e4, e1, e3, e2.
    const char* want[] = {"e0", "e4", "e1", "e3", "e2"};
    for (int i = 0; i < kWaiters; ++i)
      EXPECT_EQ(waiters[i].join(), std::string("[\"q\", \"") + want[i] + "\"]") << "waiter " << i;
  });
}

TEST_F(Blocking, APushServesWaitersBeforeTheNextCommandAndKeepsTheRest) {
  on_fibers([&] {
    Client admin(port());
    std::vector<weft::JoinHandle<std::string>> waiters;
    for (int i = 0; i < 2; ++i) {
      waiters.push_back(call_async({"BLPOP", "q", "0"}));
      wait_blocked(admin, i + 1);
    }
    // A pipeline: the push, then commands that would see the elements if
    // the waiters were not served first. RPUSH's own reply counts them all.
    Client p(port());
    p.send_command({"RPUSH", "q", "a", "b", "c"});
    p.send_command({"LRANGE", "q", "0", "-1"});
    p.send_command({"LPOP", "q"});
    EXPECT_EQ(p.read_reply().describe(), ":3");
    EXPECT_EQ(p.read_reply().describe(), "[\"c\"]");
    EXPECT_EQ(p.read_reply().describe(), "\"c\"");
    EXPECT_EQ(waiters[0].join(), "[\"q\", \"a\"]");
    EXPECT_EQ(waiters[1].join(), "[\"q\", \"b\"]");
  });
}

TEST_F(Blocking, DisconnectWhileBlockedTakesNothingAndLeavesNoWaiter) {
  on_fibers([&] {
    Client admin(port());
    {
      Client c(port());
      c.send_command({"BLPOP", "q", "0"});
      wait_blocked(admin, 1);
      Client c2(port());
      c2.send_command({"BZPOPMIN", "z", "q2", "0"});
      wait_blocked(admin, 2);
      c.close();
      c2.close();
    }
    wait_blocked(admin, 0);
    EXPECT_EQ(admin.call({"RPUSH", "q", "x"}).describe(), ":1");
    EXPECT_EQ(admin.call({"ZADD", "z", "1", "m"}).describe(), ":1");
    EXPECT_EQ(admin.call({"LRANGE", "q", "0", "-1"}).describe(), "[\"x\"]");
    EXPECT_EQ(admin.call({"ZCARD", "z"}).describe(), ":1");
  });
}

TEST_F(Blocking, AThousandBlockedClientsAreEachServedOnce) {
  constexpr int kClients = 1000;
  on_fibers([&] {
    Client admin(port());
    std::vector<weft::JoinHandle<std::int64_t>> waiters;
    waiters.reserve(kClients);
    for (int i = 0; i < kClients; ++i) {
      waiters.push_back(weft::spawn([&, i]() -> std::int64_t {
        try {
          Client c(port());
          const Reply r = c.call({i % 3 == 0 ? "BRPOP" : "BLPOP", "q", "other", "0"});
          if (!check_.check(r.type == Reply::Type::array && r.elements.size() == 2,
                            "waiter " + std::to_string(i) + " got " + r.describe()))
            return -1;
          return std::stoll(r.elements[1].str);
        } catch (const std::exception& e) {
          check_.check(false, "waiter " + std::to_string(i) + ": " + e.what());
          return -1;
        }
      }));
    }
    wait_blocked(admin, kClients);
    // Pushes of 100 values, 1..1000, some onto the other key.
    for (int base = 0; base < kClients; base += 100) {
      std::vector<std::string> push = {"RPUSH", base % 200 == 0 ? "q" : "other"};
      for (int v = base + 1; v <= base + 100; ++v) push.push_back(std::to_string(v));
      EXPECT_EQ(admin.call(push).describe(), ":100");
    }
    std::set<std::int64_t> got;
    std::int64_t sum = 0;
    for (auto& w : waiters) {
      const std::int64_t v = w.join();
      got.insert(v);
      sum += v;
    }
    EXPECT_EQ(got.size(), static_cast<std::size_t>(kClients)) << "a value was served twice";
    EXPECT_EQ(sum, std::int64_t{kClients} * (kClients + 1) / 2);
    EXPECT_EQ(admin.call({"EXISTS", "q", "other"}).describe(), ":0");
    wait_blocked(admin, 0);
  });
  WEFT_EXPECT_NO_FAILURES(check_);
}

// Each round, waiters with a short timeout race a pusher that pushes one
// value per waiter around the time they give up. Whatever wins, each value
// ends up in exactly one place: a waiter's reply or the list.
TEST_F(Blocking, WakeUpsRacingTimeoutsLoseAndDuplicateNothing) {
  constexpr int kRounds = 60;  // enough that a race lost in 1 round of 20 shows (mutants)
  constexpr int kWaiters = 10;
  on_fibers([&] {
    Client admin(port());
    std::multiset<std::string> received;
    std::size_t nils = 0;
    for (int round = 0; round < kRounds; ++round) {
      std::vector<weft::JoinHandle<Reply>> waiters;
      for (int i = 0; i < kWaiters; ++i) {
        waiters.push_back(weft::spawn([&] {
          Client c(port());
          return c.call({"BLPOP", "race", "0.02"});
        }));
      }
      // Push one by one, spread over about the timeout.
      for (int i = 0; i < kWaiters; ++i) {
        admin.call({"RPUSH", "race", std::to_string(round) + ":" + std::to_string(i)});
        weft::this_fiber::sleep_for(std::chrono::microseconds(2000 + 500 * (round % 5)));
      }
      for (auto& w : waiters) {
        const Reply r = w.join();
        if (r.type == Reply::Type::nil_array) {
          ++nils;
        } else if (check_.check(r.type == Reply::Type::array && r.elements.size() == 2,
                                "BLPOP replied " + r.describe())) {
          received.insert(r.elements[1].str);
        }
      }
    }
    const Reply rest = admin.call({"LRANGE", "race", "0", "-1"});
    for (const Reply& e : rest.elements) received.insert(e.str);
    std::multiset<std::string> pushed;
    for (int round = 0; round < kRounds; ++round)
      for (int i = 0; i < kWaiters; ++i)
        pushed.insert(std::to_string(round) + ":" + std::to_string(i));
    EXPECT_EQ(received, pushed);
    EXPECT_EQ(nils, rest.elements.size()) << "a waiter timed out while a value was there for it";
    wait_blocked(admin, 0);
  });
  WEFT_EXPECT_NO_FAILURES(check_);
}

TEST_F(Blocking, BlmoveIsServedAndItsPushServesTheDestinationsWaiters) {
  on_fibers([&] {
    Client admin(port());
    auto mover = call_async({"BLMOVE", "src", "mid", "LEFT", "RIGHT", "0"});
    wait_blocked(admin, 1);
    auto popper = call_async({"BRPOPLPUSH", "mid", "dst", "0"});
    wait_blocked(admin, 2);
    EXPECT_EQ(admin.call({"RPUSH", "src", "x", "y"}).describe(), ":2");
    EXPECT_EQ(mover.join(), "\"x\"");
    EXPECT_EQ(popper.join(), "\"x\"");
    EXPECT_EQ(admin.call({"LRANGE", "src", "0", "-1"}).describe(), "[\"y\"]");
    EXPECT_EQ(admin.call({"EXISTS", "mid"}).describe(), ":0");
    EXPECT_EQ(admin.call({"LRANGE", "dst", "0", "-1"}).describe(), "[\"x\"]");
  });
}

TEST_F(Blocking, BlmoveToAKeyOfAnotherTypeGetsWrongtypeAndMovesNothing) {
  on_fibers([&] {
    Client admin(port());
    auto mover = call_async({"BLMOVE", "src", "dst", "LEFT", "LEFT", "0"});
    wait_blocked(admin, 1);
    EXPECT_EQ(admin.call({"SET", "dst", "string"}).describe(), "+OK");
    EXPECT_EQ(admin.call({"RPUSH", "src", "x"}).describe(), ":1");
    EXPECT_EQ(mover.join(), "-WRONGTYPE Operation against a key holding the wrong kind of value");
    EXPECT_EQ(admin.call({"LRANGE", "src", "0", "-1"}).describe(), "[\"x\"]");
  });
}

TEST_F(Blocking, SortedSetPopsAreServedByZaddAndStores) {
  on_fibers([&] {
    Client admin(port());
    auto min = call_async({"BZPOPMIN", "z", "0"});
    wait_blocked(admin, 1);
    auto max = call_async({"BZPOPMAX", "z", "0"});
    wait_blocked(admin, 2);
    auto mpop = call_async({"BZMPOP", "0", "2", "nothing", "z", "MIN", "COUNT", "5"});
    wait_blocked(admin, 3);
    EXPECT_EQ(admin.call({"ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"}).describe(), ":4");
    EXPECT_EQ(min.join(), "[\"z\", \"a\", \"1\"]");
    EXPECT_EQ(max.join(), "[\"z\", \"d\", \"4\"]");
    EXPECT_EQ(mpop.join(), "[\"z\", [[\"b\", \"2\"], [\"c\", \"3\"]]]");
    EXPECT_EQ(admin.call({"EXISTS", "z"}).describe(), ":0");
    // A stored result counts as a push (Redis: dbAdd signals the key).
    auto stored = call_async({"BZPOPMAX", "out", "0"});
    wait_blocked(admin, 1);
    admin.call({"ZADD", "in", "5", "e", "6", "f"});
    EXPECT_EQ(admin.call({"ZUNIONSTORE", "out", "1", "in"}).describe(), ":2");
    EXPECT_EQ(stored.join(), "[\"out\", \"f\", \"6\"]");
    EXPECT_EQ(admin.call({"ZRANGE", "out", "0", "-1"}).describe(), "[\"e\"]");
  });
}

TEST_F(Blocking, ListWaitersWithCountAreServedAndLoggedPops) {
  on_fibers([&] {
    Client admin(port());
    auto mpop = call_async({"BLMPOP", "0", "2", "l1", "l2", "RIGHT", "COUNT", "2"});
    wait_blocked(admin, 1);
    EXPECT_EQ(admin.call({"RPUSH", "l2", "a", "b", "c"}).describe(), ":3");
    EXPECT_EQ(mpop.join(), "[\"l2\", [\"c\", \"b\"]]");
    EXPECT_EQ(admin.call({"LRANGE", "l2", "0", "-1"}).describe(), "[\"a\"]");
  });
}

TEST_F(Blocking, AListWaiterIgnoresAnotherTypeUnderItsKey) {
  on_fibers([&] {
    Client admin(port());
    auto waiter = call_async({"BLPOP", "k", "0"});
    wait_blocked(admin, 1);
    EXPECT_EQ(admin.call({"ZADD", "k", "1", "m"}).describe(), ":1");
    weft::this_fiber::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(blocked_clients(admin), 1);
    EXPECT_EQ(admin.call({"DEL", "k"}).describe(), ":1");
    EXPECT_EQ(admin.call({"LPUSH", "k", "x"}).describe(), ":1");
    EXPECT_EQ(waiter.join(), "[\"k\", \"x\"]");
  });
}

TEST_F(Blocking, AWaiterOnSeveralKeysIsServedOnceFromTheFirstReady) {
  on_fibers([&] {
    Client admin(port());
    auto waiter = call_async({"BLPOP", "k1", "k2", "k1", "0"});
    wait_blocked(admin, 1);
    EXPECT_EQ(admin.call({"RPUSH", "k2", "x"}).describe(), ":1");
    EXPECT_EQ(waiter.join(), "[\"k2\", \"x\"]");
    EXPECT_EQ(admin.call({"RPUSH", "k1", "y"}).describe(), ":1");
    EXPECT_EQ(admin.call({"LLEN", "k1"}).describe(), ":1");
    wait_blocked(admin, 0);
  });
}

TEST_F(Blocking, LmoveServesTheDestinationsWaiters) {
  on_fibers([&] {
    Client admin(port());
    auto waiter = call_async({"BLPOP", "dst", "0"});
    wait_blocked(admin, 1);
    admin.call({"RPUSH", "src", "a", "b"});
    EXPECT_EQ(admin.call({"LMOVE", "src", "dst", "RIGHT", "LEFT"}).describe(), "\"b\"");
    EXPECT_EQ(waiter.join(), "[\"dst\", \"b\"]");
    EXPECT_EQ(admin.call({"EXISTS", "dst"}).describe(), ":0");
  });
}

TEST_F(Blocking, CommandsAroundABlockedOneAreAnsweredInOrder) {
  on_fibers([&] {
    Client admin(port());
    Client c(port());
    // One write: the reply before the blocked command arrives while it
    // waits; the one after, only after it was served.
    c.send(kv::itest::encode({"PING", "before"}) + kv::itest::encode({"BLPOP", "q", "0"}) +
           kv::itest::encode({"PING", "after"}));
    EXPECT_EQ(c.read_reply().describe(), "\"before\"");
    wait_blocked(admin, 1);
    // Sent while blocked: buffered, run after the pop.
    c.send_command({"LLEN", "q"});
    weft::this_fiber::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(admin.call({"RPUSH", "q", "x", "y"}).describe(), ":2");
    EXPECT_EQ(c.read_reply().describe(), "[\"q\", \"x\"]");
    EXPECT_EQ(c.read_reply().describe(), "\"after\"");
    EXPECT_EQ(c.read_reply().describe(), ":1");
  });
}

}  // namespace
