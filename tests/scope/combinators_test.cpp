// race / when_any / when_all / join_all (weft/scope.hpp): "race cancels the
// losers: they observe Cancelled and their destructors run", when_any's
// first-failure rule as documented, when_all's result order and failure,
// join_all's order, failure after all are joined, and the caller's
// cancellation cancelling the fibers not yet joined.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "common/cancel_util.hpp"
#include "common/test_util.hpp"
#include "weft/weft.hpp"

using namespace std::chrono_literals;

namespace weft::test {
namespace {

class CombinatorTest : public WorkersTest {};
WEFT_INSTANTIATE_WORKERS(CombinatorTest);

/// A contestant that blocks until cancelled, recording that it saw
/// Cancelled and that its destructors ran.
struct Loser {
  std::atomic<int>* saw_cancelled;
  std::atomic<int>* dtors;
  int operator()() const {
    DtorCount d{dtors};
    try {
      this_fiber::sleep_for(1h);
    } catch (const Cancelled&) {
      saw_cancelled->fetch_add(1);
      throw;
    }
    return -1;
  }
};

// ---------------------------------------------------------------------------
// race / when_any

TEST_P(CombinatorTest, RaceCancelsLosersTheyObserveCancelledAndDestructorsRun) {
  Runtime rt(config());
  rt.block_on([] {
    std::atomic<int> saw{0}, dtors{0};
    std::atomic<bool> slow_cleanup_done{false};
    auto tx_rx = channel<int>(0);  // not a structured binding: clang 14 cannot capture those
    auto& tx = tx_rx.first;
    (void)tx;  // keeps the channel open; only rx is used
    auto& rx = tx_rx.second;
    const int v = race(
        [] {
          this_fiber::sleep_for(3ms);
          return 1;
        },
        Loser{&saw, &dtors},
        [&] {  // blocked in a channel
          DtorCount d{&dtors};
          try {
            return *rx.recv();
          } catch (const Cancelled&) {
            saw.fetch_add(1);
            throw;
          }
        },
        [&] {  // cleanup that takes a while: race waits for it
          DtorCount d{&dtors};
          try {
            this_fiber::sleep_for(1h);
          } catch (const Cancelled&) {
            saw.fetch_add(1);
            shield([] { this_fiber::sleep_for(20ms); });
            slow_cleanup_done = true;
            throw;
          }
          return -1;
        });
    EXPECT_EQ(v, 1);
    EXPECT_EQ(saw.load(), 3) << "every loser observes Cancelled";
    EXPECT_EQ(dtors.load(), 3) << "race returned before the losers were joined";
    EXPECT_TRUE(slow_cleanup_done.load());
    EXPECT_FALSE(this_fiber::is_cancelled()) << "race's cancellation leaked to the caller";
    this_fiber::sleep_for(1ms);

    // The winner finishes at once, before the others have even started.
    saw = 0;
    dtors = 0;
    EXPECT_EQ(race([] { return 7; }, Loser{&saw, &dtors}, Loser{&saw, &dtors}), 7);
    EXPECT_EQ(dtors.load(), 2);

    // Void contestants.
    std::atomic<bool> won{false};
    race([&] { won = true; }, [] { this_fiber::sleep_for(1h); });
    EXPECT_TRUE(won.load());
  });
}

TEST_P(CombinatorTest, WhenAnyReportsTheWinnersIndexAndValue) {
  Runtime rt(config());
  rt.block_on([] {
    std::atomic<int> saw{0}, dtors{0};
    auto v = when_any(
        Loser{&saw, &dtors},
        [] {
          this_fiber::sleep_for(2ms);
          return std::string("fast");
        },
        [] { this_fiber::sleep_for(1h); });
    ASSERT_EQ(v.index(), 1u);
    EXPECT_EQ(std::get<1>(v), "fast");
    EXPECT_EQ(saw.load(), 1);

    auto w = when_any(Loser{&saw, &dtors}, [] { this_fiber::sleep_for(2ms); });
    ASSERT_EQ(w.index(), 1u);
    EXPECT_TRUE(std::holds_alternative<std::monostate>(w));
    EXPECT_EQ(dtors.load(), 2);

    // A move-only result.
    auto m = when_any([] { return std::make_unique<int>(4); }, Loser{&saw, &dtors});
    ASSERT_EQ(m.index(), 0u);
    EXPECT_EQ(*std::get<0>(m), 4);
  });
}

TEST_P(CombinatorTest, WhenAnyFirstFailureSemantics) {
  Runtime rt(config());
  rt.block_on([] {
    std::atomic<int> saw{0}, dtors{0};
    // The first to finish fails: its exception is rethrown once the others
    // have been cancelled and joined.
    try {
      (void)when_any(Loser{&saw, &dtors}, [] {
        this_fiber::sleep_for(3ms);
        throw std::runtime_error("first finisher failed");
        return 0;
      });
      ADD_FAILURE() << "when_any returned";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "first finisher failed");
      EXPECT_EQ(dtors.load(), 1) << "rethrown before the others were joined";
      EXPECT_EQ(saw.load(), 1);
    }

    // Failures after the winner are discarded.
    auto v = when_any([] { return 1; },
                      [] {
                        try {
                          this_fiber::sleep_for(1h);
                        } catch (const Cancelled&) {
                          throw std::logic_error("late failure");
                        }
                        return 2;
                      });
    ASSERT_EQ(v.index(), 0u);
    EXPECT_EQ(std::get<0>(v), 1);

    // A loser that swallows Cancelled and returns a value does not win.
    std::atomic<bool> swallowed{false};
    auto r = race(
        [] {
          this_fiber::sleep_for(2ms);
          return 10;
        },
        [&] {
          try {
            this_fiber::sleep_for(1h);
          } catch (const Cancelled&) {
            swallowed = true;
          }
          return 20;
        });
    EXPECT_EQ(r, 10);
    EXPECT_TRUE(swallowed.load());

    // race has the same rule.
    EXPECT_THROW(race(
                     [] {
                       this_fiber::sleep_for(2ms);
                       throw std::out_of_range("race failure");
                       return 0;
                     },
                     Loser{&saw, &dtors}),
                 std::out_of_range);
    EXPECT_EQ(dtors.load(), 2);
  });
}

// "If every fn ends cancelled (an enclosing scope was cancelled),
// weft::Cancelled is thrown."
TEST_P(CombinatorTest, RaceUnderEnclosingCancellationThrowsCancelled) {
  Runtime rt(config());
  std::atomic<int> saw{0}, dtors{0};
  std::atomic<int> outcome{0};  // 1 returned, 2 Cancelled
  auto h = rt.spawn([&] {
    try {
      (void)race(Loser{&saw, &dtors}, Loser{&saw, &dtors});
      outcome = 1;
    } catch (const Cancelled&) {
      outcome = 2;
      throw;
    }
  });
  ASSERT_TRUE(eventually([&] { return rt.stats().fibers_parked >= 3; }));
  settle_parked(rt, 3);
  h.cancel();
  EXPECT_THROW(h.join(), Cancelled);
  EXPECT_EQ(outcome.load(), 2);
  EXPECT_EQ(saw.load(), 2);
  EXPECT_EQ(dtors.load(), 2);

  // Inside a move_on_after that fires: the timeout absorbs it.
  rt.block_on([&] {
    EXPECT_FALSE(move_on_after(10ms, [&] {
      return race(Loser{&saw, &dtors}, Loser{&saw, &dtors});
    }));
  });
  EXPECT_EQ(dtors.load(), 4);
}

// ---------------------------------------------------------------------------
// when_all

TEST_P(CombinatorTest, WhenAllResultsInArgumentOrder) {
  Runtime rt(config());
  rt.block_on([] {
    std::atomic<int> finished{0};
    int order[3] = {-1, -1, -1};
    auto [a, b, c] = when_all(
        [&] {
          this_fiber::sleep_for(20ms);
          order[0] = finished.fetch_add(1);
          return 1;
        },
        [&] {
          this_fiber::sleep_for(10ms);
          order[1] = finished.fetch_add(1);
          return std::string("two");
        },
        [&] { order[2] = finished.fetch_add(1); });
    EXPECT_EQ(a, 1);
    EXPECT_EQ(b, "two");
    static_assert(std::is_same_v<decltype(c), std::monostate>);
    EXPECT_EQ(finished.load(), 3);
    EXPECT_GT(order[0], order[2]) << "they did run concurrently";
    auto [only] = when_all([] { return std::make_unique<int>(3); });
    EXPECT_EQ(*only, 3);
  });
}

TEST_P(CombinatorTest, WhenAllFirstFailureCancelsTheOthersAfterJoiningThem) {
  Runtime rt(config());
  rt.block_on([] {
    std::atomic<int> saw{0}, dtors{0};
    try {
      (void)when_all(
          Loser{&saw, &dtors},
          [] {
            this_fiber::sleep_for(3ms);
            throw std::runtime_error("when_all failure");
            return 0;
          },
          Loser{&saw, &dtors});
      ADD_FAILURE() << "when_all returned";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "when_all failure");
      EXPECT_EQ(dtors.load(), 2) << "rethrown before the others were joined";
    }
    EXPECT_EQ(saw.load(), 2);
  });
}

// ---------------------------------------------------------------------------
// join_all

TEST_P(CombinatorTest, JoinAllResultsInHandleOrder) {
  Runtime rt(config());
  rt.block_on([] {
    std::vector<JoinHandle<int>> hs;
    for (int i = 0; i < 6; ++i) {
      hs.push_back(spawn([i] {
        this_fiber::sleep_for(std::chrono::milliseconds(12 - 2 * i));  // reverse finish order
        return i * 10;
      }));
    }
    EXPECT_EQ(join_all(std::move(hs)), (std::vector<int>{0, 10, 20, 30, 40, 50}));

    std::atomic<int> ran{0};
    std::vector<JoinHandle<void>> vs;
    for (int i = 0; i < 4; ++i) vs.push_back(spawn([&] { ran.fetch_add(1); }));
    join_all(std::move(vs));
    EXPECT_EQ(ran.load(), 4);

    EXPECT_TRUE(join_all(std::vector<JoinHandle<int>>{}).empty());
  });
}

TEST_P(CombinatorTest, JoinAllRethrowsFirstFailureInHandleOrderAfterJoiningAll) {
  Runtime rt(config());
  rt.block_on([] {
    std::atomic<bool> slow_done{false};
    std::vector<JoinHandle<int>> hs;
    hs.push_back(spawn([]() -> int { throw std::runtime_error("h0 fails at once"); }));
    hs.push_back(spawn([&] {
      this_fiber::sleep_for(20ms);
      slow_done = true;
      return 1;
    }));
    try {
      (void)join_all(std::move(hs));
      ADD_FAILURE() << "join_all returned";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "h0 fails at once");
      EXPECT_TRUE(slow_done.load()) << "join_all rethrew before joining every handle";
    }

    // Handle order, not time order: h0 fails late, h1 early.
    std::vector<JoinHandle<int>> hs2;
    hs2.push_back(spawn([]() -> int {
      this_fiber::sleep_for(10ms);
      throw std::runtime_error("h0 late");
    }));
    hs2.push_back(spawn([]() -> int { throw std::logic_error("h1 early"); }));
    EXPECT_THROW((void)join_all(std::move(hs2)), std::runtime_error);

    // A cancelled child's Cancelled is a failure like any other here.
    std::vector<JoinHandle<int>> hs3;
    hs3.push_back(spawn([] { return 1; }));
    hs3.push_back(spawn([] {
      this_fiber::sleep_for(1h);
      return 2;
    }));
    hs3[1].cancel();
    EXPECT_THROW((void)join_all(std::move(hs3)), Cancelled);
    EXPECT_FALSE(this_fiber::is_cancelled());

    // An empty handle: logic_error, after joining the rest.
    std::atomic<bool> other_done{false};
    std::vector<JoinHandle<int>> hs4;
    hs4.emplace_back();
    hs4.push_back(spawn([&] {
      this_fiber::sleep_for(5ms);
      other_done = true;
      return 1;
    }));
    EXPECT_THROW((void)join_all(std::move(hs4)), std::logic_error);
    EXPECT_TRUE(other_done.load());
  });
}

// "If the calling fiber is cancelled while waiting, the fibers not yet
// joined are cancelled and waited for, and weft::Cancelled is rethrown."
// The fibers are not the caller's children (spawned by another fiber), so
// only join_all can cancel them.
TEST_P(CombinatorTest, JoinAllCallerCancellationCancelsTheRest) {
  Runtime rt(config());
  std::atomic<int> saw{0}, dtors{0};
  std::atomic<int> dtors_at_throw{-1};
  std::vector<JoinHandle<int>> hs;
  hs.push_back(rt.spawn([] { return 1; }));  // already done when the caller blocks
  for (int i = 0; i < 5; ++i) hs.push_back(rt.spawn(Loser{&saw, &dtors}));
  FiberWatch w;
  auto caller = rt.spawn([&, hs = std::move(hs)]() mutable {
    w.capture();
    try {
      (void)join_all(std::move(hs));
    } catch (const Cancelled&) {
      dtors_at_throw = dtors.load();
      throw;
    }
  });
  ASSERT_TRUE(w.wait_parked());
  settle_parked(rt, 6);
  EXPECT_EQ(saw.load(), 0);
  caller.cancel();
  EXPECT_THROW(caller.join(), Cancelled);
  EXPECT_EQ(saw.load(), 5) << "the fibers not yet joined were not cancelled";
  EXPECT_EQ(dtors_at_throw.load(), 5) << "join_all rethrew before waiting for them";
  expect_no_live_fibers(rt);
}

}  // namespace
}  // namespace weft::test
