// with_timeout / fail_after / move_on_after: they "respect their lower
// bounds (no upper-bound timing asserts)": never return early, nested
// deadlines take the earliest, a deadline already passed and
// Deadline::none() behave as documented, values come back when fn finishes
// in time, TimedOut versus Cancelled when an enclosing scope is cancelled at
// the same time, the fiber is not cancelled any more after its own timeout,
// timeouts from a blocking-pool thread, and CPU loops polling
// check_cancelled().
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/cancel_util.hpp"
#include "common/test_util.hpp"
#include "weft/weft.hpp"

using namespace std::chrono_literals;

namespace weft::test {
namespace {

class TimeoutTest : public WorkersTest {};
WEFT_INSTANTIATE_WORKERS(TimeoutTest);

// ---------------------------------------------------------------------------
// Lower bounds

TEST_P(TimeoutTest, NeverReturnsBeforeTheDeadline) {
  Runtime rt(config());
  rt.block_on([] {
    auto tx_rx = channel<int>(1);  // not a structured binding: clang 14 cannot capture those
    auto& tx = tx_rx.first;
    (void)tx;  // keeps the channel open; only rx is used
    auto& rx = tx_rx.second;
    const int reps = static_cast<int>(scaled(12, 3));
    for (auto d : {1ms, 2ms, 5ms, 13ms, 25ms}) {
      for (int i = 0; i < reps; ++i) {
        // Absolute deadlines: the strict bound is Clock::now() >= deadline.
        Deadline dl(Clock::now() + d);
        EXPECT_FALSE(move_on_after(dl, [] { this_fiber::sleep_for(1h); }));
        EXPECT_GE(Clock::now(), dl.when())
            << "move_on_after returned early (" << d.count() << " ms)";

        dl = Deadline(Clock::now() + d);
        EXPECT_THROW(fail_after(dl, [&] { (void)rx.recv(); }), TimedOut);
        EXPECT_GE(Clock::now(), dl.when()) << "fail_after returned early (" << d.count() << " ms)";

        dl = Deadline(Clock::now() + d);
        EXPECT_THROW(with_timeout(dl,
                                  [] {
                                    return scope([](Scope& s) {
                                      s.spawn([] { this_fiber::sleep_for(1h); });
                                      this_fiber::sleep_for(1h);
                                      return 1;
                                    });
                                  }),
                     TimedOut);
        EXPECT_GE(Clock::now(), dl.when())
            << "with_timeout returned early (" << d.count() << " ms)";

        // Durations are measured from the call.
        const auto t0 = Clock::now();
        EXPECT_FALSE(move_on_after(d, [] {
                       Semaphore sem(0);
                       sem.acquire();
                       return 0;
                     }).has_value());
        EXPECT_GE(Clock::now() - t0, d);
      }
    }
    EXPECT_FALSE(this_fiber::is_cancelled());
  });
}

// ---------------------------------------------------------------------------
// Nesting: the earliest deadline wins, and only its own scope absorbs it.

TEST_P(TimeoutTest, NestedInnerShorterIsAbsorbedByTheInner) {
  Runtime rt(config());
  rt.block_on([] {
    const auto t0 = Clock::now();
    auto outer = move_on_after(1h, [&] {
      auto inner = move_on_after(20ms, [] {
        this_fiber::sleep_for(1h);
        return 1;
      });
      EXPECT_FALSE(inner.has_value());
      EXPECT_GE(Clock::now() - t0, 20ms);
      EXPECT_FALSE(this_fiber::is_cancelled()) << "the inner timeout leaked into the outer scope";
      this_fiber::sleep_for(2ms);  // still fine
      return 5;
    });
    ASSERT_TRUE(outer.has_value());
    EXPECT_EQ(*outer, 5);

    // fail_after: the inner throws TimedOut, the outer does not time out.
    bool inner_timed_out = false;
    EXPECT_EQ(fail_after(1h,
                         [&] {
                           try {
                             fail_after(15ms, [] { this_fiber::sleep_for(1h); });
                           } catch (const TimedOut&) {
                             inner_timed_out = true;
                           }
                           return 7;
                         }),
              7);
    EXPECT_TRUE(inner_timed_out);
  });
}

TEST_P(TimeoutTest, NestedOuterShorterPropagatesThroughTheInner) {
  Runtime rt(config());
  rt.block_on([] {
    const auto t0 = Clock::now();
    std::atomic<int> inner_saw{0};  // 1 Cancelled, 2 TimedOut, 3 returned
    auto outer = move_on_after(20ms, [&] {
      try {
        auto inner = move_on_after(1h, [] { this_fiber::sleep_for(1h); });
        inner_saw = 3;
        ADD_FAILURE() << "the inner move_on_after absorbed the outer deadline (returned " << inner
                      << ")";
      } catch (const Cancelled&) {
        inner_saw = 1;
        throw;
      }
      return 1;
    });
    EXPECT_FALSE(outer.has_value());
    EXPECT_EQ(inner_saw.load(), 1);
    EXPECT_GE(Clock::now() - t0, 20ms);

    inner_saw = 0;
    EXPECT_THROW(fail_after(15ms,
                            [&] {
                              try {
                                fail_after(1h, [] { this_fiber::sleep_for(1h); });
                                inner_saw = 3;
                              } catch (const TimedOut&) {
                                inner_saw = 2;
                                throw;
                              } catch (const Cancelled&) {
                                inner_saw = 1;
                                throw;
                              }
                            }),
                 TimedOut);
    EXPECT_EQ(inner_saw.load(), 1) << "the inner fail_after must propagate Cancelled, not TimedOut";

    // Three levels: the middle one is the earliest and absorbs it.
    auto top = move_on_after(1h, [&] {
      auto mid = move_on_after(15ms, [&] {
        (void)move_on_after(1h, [] { this_fiber::sleep_for(1h); });
        ADD_FAILURE() << "the innermost absorbed the middle deadline";
        return 0;
      });
      EXPECT_FALSE(mid.has_value());
      return 2;
    });
    EXPECT_EQ(top, std::optional<int>(2));
    EXPECT_FALSE(this_fiber::is_cancelled());
  });
}

// Fibers spawned inside a timeout are cancelled with it.
TEST_P(TimeoutTest, FibersSpawnedInsideAreCancelled) {
  Runtime rt(config());
  rt.block_on([] {
    std::atomic<int> dtors{0};
    std::atomic<bool> child_cancelled{false};
    EXPECT_FALSE(move_on_after(15ms, [&] {
      auto h = spawn([&] {
        DtorCount d{&dtors};
        try {
          this_fiber::sleep_for(1h);
        } catch (const Cancelled&) {
          child_cancelled = true;
          throw;
        }
      });
      h.join();
    }));
    EXPECT_TRUE(eventually([&] { return dtors.load() == 1; }));
    EXPECT_TRUE(child_cancelled.load());
    // Through a nested scope whose body is blocked too.
    EXPECT_THROW(with_timeout(15ms,
                              [&] {
                                scope([&](Scope& s) {
                                  s.spawn([&] {
                                    DtorCount d{&dtors};
                                    this_fiber::sleep_for(1h);
                                  });
                                  this_fiber::sleep_for(1h);
                                });
                              }),
                 TimedOut);
    EXPECT_EQ(dtors.load(), 2) << "with_timeout returned before joining the scope's child";
  });
}

// with_timeout: "if it runs past [the deadline], everything it is doing is
// cancelled and joined ..., then weft::TimedOut is thrown." Here fn is a
// scope whose body only spawned, so only its child sees the deadline: the
// scope must still rethrow Cancelled (see
// ScopeTest.OuterCancellationRethrownEvenAfterTheBodyReturned), or the
// timeout would report a completion.
TEST_P(TimeoutTest, TimeoutOverScopeWhoseBodyReturned) {
  Runtime rt(config());
  rt.block_on([] {
    std::atomic<int> dtors{0};
    auto r = move_on_after(15ms, [&] {
      scope([&](Scope& s) {
        s.spawn([&] {
          DtorCount d{&dtors};
          this_fiber::sleep_for(1h);
        });
      });
    });
    EXPECT_EQ(dtors.load(), 1);
    EXPECT_FALSE(r) << "move_on_after reported completion although its deadline cancelled fn";
    EXPECT_THROW(fail_after(15ms,
                            [&] {
                              scope([&](Scope& s) {
                                s.spawn([&] {
                                  DtorCount d{&dtors};
                                  this_fiber::sleep_for(1h);
                                });
                              });
                            }),
                 TimedOut);
  });
}

// ---------------------------------------------------------------------------
// Edge deadlines

TEST_P(TimeoutTest, DeadlineAlreadyPassed) {
  Runtime rt(config());
  rt.block_on([] {
    for (Deadline dl : {Deadline::after(-1s), Deadline(0ms), Deadline(Clock::time_point{})}) {
      bool ran = false;
      auto r = move_on_after(dl, [&] {
        ran = true;
        this_fiber::sleep_for(1h);
        return 1;
      });
      EXPECT_TRUE(ran) << "fn must still run";
      EXPECT_FALSE(r.has_value());
      EXPECT_FALSE(this_fiber::is_cancelled());

      // A fn that does not block returns its value.
      EXPECT_EQ(move_on_after(dl, [] { return 3; }), std::optional<int>(3));
      // A fn that swallows the cancellation returns its value.
      EXPECT_EQ(move_on_after(dl,
                              [] {
                                try {
                                  this_fiber::sleep_for(1h);
                                } catch (const Cancelled&) {
                                }
                                return 9;
                              }),
                std::optional<int>(9));
      EXPECT_THROW(fail_after(dl, [] { this_fiber::sleep_for(1h); }), TimedOut);
    }
    this_fiber::sleep_for(1ms);
  });
}

// detail/cancel_scope.hpp: "a deadline already passed cancels it at once"
// (and DeadlineTimer::arm: "Returns null, having cancelled the node already,
// if the deadline has passed"). So fn starts cancelled: is_cancelled() is
// true and a CPU loop's check_cancelled() throws without any blocking call.
// Each case runs first thing in a fresh fiber.
TEST_P(TimeoutTest, DeadlineAlreadyPassedCancelsAtOnce) {
  Runtime rt(config());
  const char* names[] = {"Deadline(0ms)", "Deadline::after(-1ms)", "Deadline(now)",
                         "Deadline::after(-1s)"};
  for (int which = 0; which < 4; ++which) {
    for (int rep = 0; rep < 5; ++rep) {
      auto h = rt.spawn([which] {
        const Deadline dl = which == 0   ? Deadline(0ms)
                            : which == 1 ? Deadline::after(-1ms)
                            : which == 2 ? Deadline(Clock::now())
                                         : Deadline::after(-1s);
        bool cancelled_inside = false, check_threw = false;
        (void)move_on_after(dl, [&] {
          cancelled_inside = this_fiber::is_cancelled();
          try {
            this_fiber::check_cancelled();
          } catch (const Cancelled&) {
            check_threw = true;
          }
        });
        return cancelled_inside && check_threw;
      });
      EXPECT_TRUE(h.join()) << names[which] << ", rep " << rep
                            << ": fn did not start cancelled although its deadline had passed";
    }
  }
}

TEST_P(TimeoutTest, DeadlineNoneNeverCancels) {
  Runtime rt(config());
  rt.block_on([] {
    auto r = move_on_after(Deadline::none(), [] {
      EXPECT_FALSE(this_fiber::is_cancelled());
      this_fiber::sleep_for(5ms);
      return 3;
    });
    EXPECT_EQ(r, std::optional<int>(3));
    EXPECT_TRUE(fail_after(Deadline::none(), [] {
      this_fiber::sleep_for(2ms);
      return true;
    }));
    // 200 years: far beyond the wheel, still representable.
    EXPECT_EQ(move_on_after(24h * 365 * 200,
                            [] {
                              this_fiber::sleep_for(2ms);
                              return 4;
                            }),
              std::optional<int>(4));
    // Beyond the timer wheel's reach (~12 days): no early cancellation.
    EXPECT_EQ(move_on_after(Deadline::after(24h * 40),
                            [] {
                              this_fiber::sleep_for(2ms);
                              return 5;
                            }),
              std::optional<int>(5));
  });
}

// deadline.hpp, Deadline::after: "Saturate instead of overflowing for huge
// durations", and a timeout of duration::max() means "no deadline". (The
// conversion to nanoseconds used to overflow first - signed overflow, which
// UBSan reports - giving a deadline in the past: move_on_after then
// cancelled fn at once.)
TEST(DeadlineTest, HugeDurationSaturatesToNone) {
  EXPECT_TRUE(Deadline::after(std::chrono::hours::max()).is_none());
  EXPECT_TRUE(Deadline::after(std::chrono::seconds::max()).is_none());
  EXPECT_TRUE(Deadline::after(std::chrono::nanoseconds::max()).is_none());
  Runtime rt(workers_config(2));
  rt.block_on([] {
    EXPECT_EQ(move_on_after(std::chrono::hours::max(),
                            [] {
                              this_fiber::sleep_for(2ms);
                              return 4;
                            }),
              std::optional<int>(4))
        << "move_on_after(hours::max()) cancelled fn";
  });
}

// ---------------------------------------------------------------------------
// Results and exceptions

TEST_P(TimeoutTest, ValuesReturnedWhenFnFinishesInTime) {
  Runtime rt(config());
  rt.block_on([] {
    EXPECT_EQ(fail_after(1h, [] { return std::string("value"); }), "value");
    EXPECT_EQ(with_timeout(1h, [] { return 11; }), 11);
    auto p = move_on_after(1h, [] { return std::make_unique<int>(6); });
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(**p, 6);
    auto q = fail_after(1h, [] { return std::make_unique<int>(8); });
    EXPECT_EQ(*q, 8);
    EXPECT_TRUE(move_on_after(1h, [] { this_fiber::sleep_for(1ms); }));  // void: completed
    int side = 0;
    fail_after(1h, [&] { side = 1; });
    EXPECT_EQ(side, 1);
    // Blocking work that completes before the deadline.
    auto tx_rx = channel<int>(0);  // not a structured binding: clang 14 cannot capture those
    auto& tx = tx_rx.first;
    auto& rx = tx_rx.second;
    auto producer = spawn([tx = tx] {
      this_fiber::sleep_for(2ms);
      (void)tx.send(21);
    });
    EXPECT_EQ(fail_after(1h, [&] { return rx.recv(); }), std::optional<int>(21));
    producer.join();

    // Exceptions from fn propagate unchanged.
    EXPECT_THROW(move_on_after(1h, [] { throw std::invalid_argument("x"); }),
                 std::invalid_argument);
    EXPECT_THROW(fail_after(1h, [] { throw std::domain_error("y"); }), std::domain_error);

    // A timeout that did not fire leaves no trace: its timer never cancels
    // the fiber afterwards.
    EXPECT_EQ(fail_after(10ms, [] { return 1; }), 1);
    EXPECT_THROW(fail_after(10ms, [] { throw std::runtime_error("early"); }), std::runtime_error);
    EXPECT_TRUE(move_on_after(10ms, [] {}));
    this_fiber::sleep_for(30ms);
    EXPECT_FALSE(this_fiber::is_cancelled());
  });
}

// ---------------------------------------------------------------------------
// Own timeout versus an enclosing cancellation

// Enclosing cancellation first: Cancelled propagates, never TimedOut, and is
// never absorbed by move_on_after.
TEST_P(TimeoutTest, EnclosingCancelBeforeTheDeadlineIsCancelledNotTimedOut) {
  Runtime rt(config());
  for (int which = 0; which < 2; ++which) {
    FiberWatch w;
    std::atomic<int> outcome{0};  // 1 TimedOut / empty, 2 Cancelled, 3 returned
    auto h = rt.spawn([&] {
      try {
        if (which == 0) {
          fail_after(1h, [&] {
            w.capture();
            this_fiber::sleep_for(1h);
          });
        } else {
          if (!move_on_after(1h, [&] {
                w.capture();
                this_fiber::sleep_for(1h);
              })) {
            outcome = 1;
            return;
          }
        }
        outcome = 3;
      } catch (const TimedOut&) {
        outcome = 1;
      } catch (const Cancelled&) {
        outcome = 2;
        throw;
      }
    });
    ASSERT_TRUE(w.wait_parked());
    h.cancel();
    EXPECT_THROW(h.join(), Cancelled);
    EXPECT_EQ(outcome.load(), 2) << (which == 0 ? "fail_after" : "move_on_after");
  }
}

// The deadline and an enclosing cancellation at about the same time: either
// outcome is allowed, but the enclosing cancellation is never lost - the
// fiber's next blocking call throws Cancelled.
TEST_P(TimeoutTest, DeadlineRacingEnclosingCancel) {
  Runtime rt(config());
  std::mt19937 rng(41);
  int timed_out = 0, cancelled = 0;
  for (int i = 0; i < static_cast<int>(scaled(150, 30)); ++i) {
    const bool use_fail = i % 2 == 0;
    std::atomic<bool> entered{false};
    std::atomic<int> outcome{0};
    std::atomic<bool> next_call_cancelled{false};
    auto h = rt.spawn([&] {
      entered = true;
      try {
        if (use_fail) {
          fail_after(2ms, [] { this_fiber::sleep_for(1h); });
          outcome = 3;
        } else {
          outcome = move_on_after(2ms, [] { this_fiber::sleep_for(1h); }) ? 3 : 1;
        }
      } catch (const TimedOut&) {
        outcome = 1;
      } catch (const Cancelled&) {
        outcome = 2;
        throw;
      }
      try {
        this_fiber::sleep_for(1h);
      } catch (const Cancelled&) {
        next_call_cancelled = true;
        throw;
      }
    });
    ASSERT_TRUE(eventually([&] { return entered.load(); }));
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3500));
    h.cancel();
    EXPECT_THROW(h.join(), Cancelled) << "round " << i;
    const int o = outcome.load();
    ASSERT_TRUE(o == 1 || o == 2) << "round " << i << ": outcome " << o;
    if (o == 1) {
      ++timed_out;
      EXPECT_TRUE(next_call_cancelled.load())
          << "round " << i << ": the enclosing cancellation was lost after the timeout";
    } else {
      ++cancelled;
    }
  }
  RecordProperty("timed_out", timed_out);
  RecordProperty("cancelled", cancelled);
}

// Same race inside a scope: a sibling calls Scope::cancel() when a child's
// move_on_after fires. The child either timed out (and its next call throws
// Cancelled) or sees Cancelled; the scope absorbs its own cancellation.
TEST_P(TimeoutTest, DeadlineRacingScopeCancel) {
  Runtime rt(config());
  rt.block_on([] {
    std::mt19937 rng(42);
    for (int i = 0; i < static_cast<int>(scaled(100, 20)); ++i) {
      std::atomic<int> outcome{0};
      const auto delay = random_us(rng, 3500);
      EXPECT_NO_THROW(scope([&](Scope& s) {
        s.spawn([&] {
          try {
            outcome = move_on_after(2ms, [] { this_fiber::sleep_for(1h); }) ? 3 : 1;
            this_fiber::sleep_for(1h);  // the scope's cancellation ends this
            outcome = 4;
          } catch (const Cancelled&) {
            if (outcome.load() == 0) outcome = 2;
            throw;
          }
        });
        s.spawn([&s, delay] {
          spin_for(delay);
          s.cancel();
        });
      })) << "round "
          << i;
      EXPECT_TRUE(outcome.load() == 1 || outcome.load() == 2)
          << "round " << i << ": outcome " << outcome.load();
    }
  });
}

// ---------------------------------------------------------------------------
// After a timeout

TEST_P(TimeoutTest, FiberNotCancelledAfterItsOwnTimeout) {
  Runtime rt(config());
  rt.block_on([] {
    for (int i = 0; i < static_cast<int>(scaled(100, 20)); ++i) {
      EXPECT_FALSE(move_on_after(1ms, [] { this_fiber::sleep_for(1h); }));
      ASSERT_FALSE(this_fiber::is_cancelled()) << "iteration " << i;
    }
    EXPECT_THROW(fail_after(2ms, [] { this_fiber::sleep_for(1h); }), TimedOut);
    EXPECT_FALSE(this_fiber::is_cancelled());
    EXPECT_NO_THROW(this_fiber::check_cancelled());
    auto t0 = Clock::now();
    this_fiber::sleep_for(5ms);
    EXPECT_GE(Clock::now() - t0, 5ms);
    auto tx_rx = channel<int>(1);  // not a structured binding: clang 14 cannot capture those
    auto& tx = tx_rx.first;
    (void)tx;  // keeps the channel open; only rx is used
    auto& rx = tx_rx.second;
    EXPECT_EQ(rx.recv_for(2ms).status(), ChannelStatus::timed_out);
    auto child = spawn([] {
      this_fiber::sleep_for(2ms);
      return this_fiber::is_cancelled();
    });
    EXPECT_FALSE(child.join()) << "a child spawned after the timeout starts cancelled";
    EXPECT_TRUE(this_fiber::cancellation_token().can_be_cancelled());
    EXPECT_FALSE(this_fiber::cancellation_token().is_cancelled());
  });
}

// ---------------------------------------------------------------------------
// From threads

TEST_P(TimeoutTest, FromABlockingPoolThread) {
  Runtime rt(config());
  rt.block_on([] {
    auto h = spawn_blocking([] {
      const auto t0 = Clock::now();
      bool fiber_inside = false;
      auto r = move_on_after(20ms, [&] {
        fiber_inside = this_fiber::in_fiber();
        this_fiber::sleep_for(1h);
        return 1;
      });
      EXPECT_TRUE(fiber_inside) << "fn runs on a fiber";
      EXPECT_FALSE(r.has_value());
      EXPECT_GE(Clock::now() - t0, 20ms);
      EXPECT_THROW(fail_after(5ms, [] { this_fiber::sleep_for(1h); }), TimedOut);
      EXPECT_THROW(with_timeout(5ms, [] { this_fiber::sleep_for(1h); }), TimedOut);
      EXPECT_EQ(fail_after(1h, [] { return 2; }), 2);
      return true;
    });
    EXPECT_TRUE(h.join());
  });
  // A plain thread outside any runtime has nothing to run fn on: the error
  // of weft::spawn outside a runtime.
  EXPECT_THROW(move_on_after(1h, [] { return 1; }), std::logic_error);
  EXPECT_THROW(fail_after(1h, [] { return 1; }), std::logic_error);
}

// ---------------------------------------------------------------------------
// CPU loops

TEST_P(TimeoutTest, CpuLoopPollingCheckCancelled) {
  // The last part needs the monitor's backstop: the timer is armed on the
  // worker that then spins, and another worker fires it (help_timers) only
  // once the backstop has woken it (Config::wake_backstop).
  weft::Config c = config();
  c.wake_backstop = true;
  Runtime rt(c);
  rt.block_on([this] {
    const auto give_up = Clock::now() + kPatience;
    auto t0 = Clock::now();
    long spins = 0;
    bool gave_up = false;
    // With yields (works on one worker: the worker runs its timers).
    auto r = move_on_after(20ms, [&] {
      for (;;) {
        ++spins;  // before the check: the body runs once even if 20 ms passed already
        this_fiber::check_cancelled();
        this_fiber::yield();
        if (Clock::now() > give_up) {
          gave_up = true;
          return;
        }
      }
    });
    EXPECT_FALSE(gave_up) << "the deadline never reached the CPU loop";
    EXPECT_FALSE(r);
    EXPECT_GE(Clock::now() - t0, 20ms);
    EXPECT_GT(spins, 0);

    // is_cancelled() as the loop condition.
    t0 = Clock::now();
    bool saw = false;
    auto r2 = move_on_after(10ms, [&] {
      while (!this_fiber::is_cancelled()) {
        this_fiber::yield();
        if (Clock::now() > give_up) return 0;
      }
      saw = true;
      return 1;  // returns normally having seen it: that value is returned
    });
    EXPECT_TRUE(saw);
    EXPECT_EQ(r2, std::optional<int>(1));
    EXPECT_GE(Clock::now() - t0, 10ms);

    if (workers() >= 2) {
      // Without yields, only checkpoint(): another worker fires the
      // overdue timer of the busy one.
      t0 = Clock::now();
      gave_up = false;
      EXPECT_THROW(fail_after(15ms,
                              [&] {
                                for (;;) {
                                  this_fiber::check_cancelled();
                                  this_fiber::checkpoint();
                                  if (Clock::now() > give_up) {
                                    gave_up = true;
                                    return;
                                  }
                                }
                              }),
                   TimedOut);
      EXPECT_FALSE(gave_up);
      EXPECT_GE(Clock::now() - t0, 15ms);
    }
  });
}

}  // namespace
}  // namespace weft::test
