// First checks of cancellation, scopes and timeouts (issue 4 §1-4).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

using namespace std::chrono_literals;

namespace weft::test {
namespace {

TEST(CancelSmoke, JoinHandleCancelWakesSleeper) {
  Runtime rt(workers_config(2));
  rt.block_on([] {
    std::atomic<bool> started{false};
    auto h = spawn([&] {
      started = true;
      this_fiber::sleep_for(1h);
    });
    while (!started) this_fiber::yield();
    this_fiber::sleep_for(2ms);
    h.cancel();
    EXPECT_THROW(h.join(), Cancelled);
  });
}

TEST(CancelSmoke, CancelReachesGrandchildren) {
  Runtime rt(workers_config(2));
  rt.block_on([] {
    std::atomic<int> cancelled{0};
    auto h = spawn([&] {
      auto g = spawn([&] {
        try {
          this_fiber::sleep_for(1h);
        } catch (const Cancelled&) {
          ++cancelled;
          throw;
        }
      });
      try {
        this_fiber::sleep_for(1h);
      } catch (const Cancelled&) {
        ++cancelled;
      }
      // We are cancelled too, so an unshielded join would throw at once
      // without waiting for g.
      shield([&] { EXPECT_THROW(g.join(), Cancelled); });
    });
    this_fiber::sleep_for(5ms);
    h.cancel();
    h.join();
    EXPECT_EQ(cancelled.load(), 2);
  });
}

TEST(CancelSmoke, MoveOnAfterAndFailAfter) {
  Runtime rt(workers_config(2));
  rt.block_on([] {
    auto t0 = Clock::now();
    auto r = move_on_after(20ms, [] {
      this_fiber::sleep_for(1h);
      return 1;
    });
    EXPECT_FALSE(r.has_value());
    EXPECT_GE(Clock::now() - t0, 20ms);
    EXPECT_FALSE(this_fiber::is_cancelled());
    auto ok = move_on_after(1h, [] { return 7; });
    ASSERT_TRUE(ok.has_value());
    EXPECT_EQ(*ok, 7);
    EXPECT_THROW(fail_after(10ms, [] { this_fiber::sleep_for(1h); }), TimedOut);
    // Nested: the outer, earlier deadline wins and is absorbed by the outer.
    auto outer = move_on_after(10ms, [] {
      auto inner = move_on_after(1h, [] { this_fiber::sleep_for(1h); });
      ADD_FAILURE() << "inner returned " << inner;
      return 0;
    });
    EXPECT_FALSE(outer.has_value());
    this_fiber::sleep_for(1ms);  // not cancelled any more
  });
}

TEST(CancelSmoke, ScopeFailureCancelsSiblings) {
  Runtime rt(workers_config(2));
  rt.block_on([] {
    std::atomic<int> cancelled{0};
    std::vector<std::exception_ptr> failures;
    try {
      scope(
          [&](Scope& s) {
            for (int i = 0; i < 10; ++i) {
              s.spawn([&] {
                try {
                  this_fiber::sleep_for(1h);
                } catch (const Cancelled&) {
                  ++cancelled;
                  throw;
                }
              });
            }
            s.spawn([] {
              this_fiber::sleep_for(2ms);
              throw std::runtime_error("boom");
            });
          },
          &failures);
      ADD_FAILURE() << "scope returned";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "boom");
    }
    EXPECT_EQ(cancelled.load(), 10);
    EXPECT_EQ(failures.size(), 1u);
  });
}

TEST(CancelSmoke, ShieldDefers) {
  Runtime rt(workers_config(2));
  rt.block_on([] {
    std::atomic<bool> in_shield{false};
    std::atomic<bool> finished_sleep{false};
    auto h = spawn([&] {
      shield([&] {
        in_shield = true;
        this_fiber::sleep_for(30ms);
        finished_sleep = true;
      });
      this_fiber::sleep_for(1h);
    });
    while (!in_shield) this_fiber::yield();
    h.cancel();
    EXPECT_THROW(h.join(), Cancelled);
    EXPECT_TRUE(finished_sleep.load());
  });
}

TEST(CancelSmoke, RaceCancelsLosers) {
  Runtime rt(workers_config(2));
  rt.block_on([] {
    std::atomic<int> loser_dtors{0};
    struct Guard {
      std::atomic<int>* n;
      ~Guard() { ++*n; }
    };
    int v = race([] { return 1; },
                 [&] {
                   Guard g{&loser_dtors};
                   this_fiber::sleep_for(1h);
                   return 2;
                 });
    EXPECT_EQ(v, 1);
    EXPECT_EQ(loser_dtors.load(), 1);
    auto [a, b] = when_all([] { return 3; }, [] { return std::string("x"); });
    EXPECT_EQ(a, 3);
    EXPECT_EQ(b, "x");
  });
}

TEST(CancelSmoke, TokensTree) {
  CancellationSource root;
  CancellationSource child(root.token());
  CancellationSource grandchild(child.token());
  int calls = 0;
  CancellationCallback cb(grandchild.token(), [&] { ++calls; });
  child.cancel();
  EXPECT_FALSE(root.is_cancelled());
  EXPECT_TRUE(grandchild.is_cancelled());
  EXPECT_EQ(calls, 1);
  CancellationSource late(child.token());
  EXPECT_TRUE(late.is_cancelled());
}

}  // namespace
}  // namespace weft::test
