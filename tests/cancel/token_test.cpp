// Cancellation tokens, sources, callbacks, with_cancellation, shields and
// shutdown (weft/cancel.hpp): tree semantics, callback RAII (exactly once,
// never after destruction, the destructor waits for a callback running on
// another thread, self-destruction from inside), inline callbacks on
// cancelled tokens, tokens outliving sources, concurrent cancellers,
// this_fiber::cancellation_token(), blocking-pool tasks, shield() and
// ShieldGuard, and the Runtime destructor cancelling fibers in scopes while
// letting shielded ones finish.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "common/cancel_util.hpp"
#include "common/test_util.hpp"
#include "weft/weft.hpp"

using namespace std::chrono_literals;

namespace weft::test {
namespace {

// ---------------------------------------------------------------------------
// Tree semantics (plain threads: tokens need no runtime)

TEST(TokenTree, ParentCancelsDescendantsChildNeverCancelsParent) {
  CancellationSource root;
  CancellationSource a(root.token()), b(root.token());
  CancellationSource a1(a.token()), a2(a.token());
  CancellationSource a1x(a1.token());

  EXPECT_TRUE(a1x.cancel());
  EXPECT_TRUE(a1x.is_cancelled());
  EXPECT_FALSE(a1.is_cancelled()) << "a child cancelled its parent";
  EXPECT_FALSE(a.is_cancelled());
  EXPECT_FALSE(root.is_cancelled());

  EXPECT_TRUE(a.cancel());
  EXPECT_FALSE(a.cancel()) << "second cancel() must return false";
  EXPECT_TRUE(a1.is_cancelled());
  EXPECT_TRUE(a2.is_cancelled());
  EXPECT_FALSE(b.is_cancelled()) << "a sibling was cancelled";
  EXPECT_FALSE(root.is_cancelled());

  EXPECT_TRUE(root.cancel());
  EXPECT_TRUE(b.is_cancelled());
  EXPECT_FALSE(a.cancel());
  CancellationSource late(a2.token());
  EXPECT_TRUE(late.is_cancelled()) << "a child of a cancelled parent starts cancelled";

  CancellationToken none;
  EXPECT_FALSE(none.can_be_cancelled());
  EXPECT_FALSE(none.is_cancelled());
  EXPECT_NO_THROW(none.throw_if_cancelled());
  EXPECT_THROW(b.token().throw_if_cancelled(), Cancelled);
  CancellationSource from_none(none);  // a root
  EXPECT_FALSE(from_none.is_cancelled());
  EXPECT_TRUE(from_none.token().can_be_cancelled());

  CancellationSource moved(std::move(from_none));
  EXPECT_FALSE(from_none.token().can_be_cancelled());  // NOLINT(bugprone-use-after-move)
  EXPECT_FALSE(from_none.cancel());                    // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(moved.cancel());
}

TEST(TokenTree, DeepChainCancelsWithoutRecursion) {
  // Deeper than a thread's stack could hold with one frame per level.
  const int depth = static_cast<int>(scaled(200000, 50000));
  std::vector<CancellationSource> chain;
  chain.reserve(depth);
  chain.emplace_back();
  for (int i = 1; i < depth; ++i) chain.emplace_back(chain.back().token());
  int calls = 0;
  {
    CancellationCallback cb(chain.back().token(), [&] { ++calls; });
    EXPECT_TRUE(chain.front().cancel());
    EXPECT_TRUE(chain.back().is_cancelled());
    EXPECT_EQ(calls, 1);
  }
  // Leaf first: each release is O(1) (the root-first order is the
  // DeepChainReleasedRootFirst death test below).
  while (!chain.empty()) chain.pop_back();
}

// cancel_node.hpp: "a deep tree never deepens the stack". Releasing a chain
// of sources root first leaves every node alive through its child's
// reference; the leaf's release then frees its parent, which frees its
// parent, and so on. Done recursively (release -> detach -> the parent's
// release), a fiber (256 KiB stack) dropping a chain of 20000 overflows its
// stack. Run in a child process so that a crash fails this test only.
TEST(TokenTreeDeathTest, DeepChainReleasedRootFirstInAFiber) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        {
          Runtime rt(workers_config(1));
          rt.block_on([] {
            std::vector<CancellationSource> chain;
            chain.reserve(20000);
            chain.emplace_back();
            for (int i = 1; i < 20000; ++i) chain.emplace_back(chain.back().token());
            // The vector destroys its elements first to last: root first.
          });
        }
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(TokenTree, WideTreeManyCallbacks) {
  CancellationSource root;
  std::vector<std::unique_ptr<CancellationSource>> kids;
  std::atomic<int> calls{0};
  std::vector<std::unique_ptr<CancellationCallback<std::function<void()>>>> cbs;
  for (int i = 0; i < 1000; ++i) {
    kids.push_back(std::make_unique<CancellationSource>(root.token()));
    cbs.push_back(std::make_unique<CancellationCallback<std::function<void()>>>(
        kids.back()->token(), std::function<void()>([&] { calls.fetch_add(1); })));
  }
  // Half of them unregistered first: they must never run.
  for (int i = 0; i < 1000; i += 2) cbs[i].reset();
  root.cancel();
  EXPECT_EQ(calls.load(), 500);
  for (auto& k : kids) EXPECT_TRUE(k->is_cancelled());
}

// ---------------------------------------------------------------------------
// Callbacks

TEST(TokenCallback, RunsExactlyOnceOnTheCancellingThreadBeforeCancelReturns) {
  CancellationSource parent;
  CancellationSource src(parent.token());
  int a = 0, b = 0;
  std::thread::id where;
  CancellationCallback ca(src.token(), [&] {
    ++a;
    where = std::this_thread::get_id();
  });
  CancellationCallback cb(src.token(), [&] { ++b; });
  EXPECT_EQ(a + b, 0);
  std::thread t([&] {
    parent.cancel();
    EXPECT_EQ(a, 1) << "cancel() returned before the callback ran";
    EXPECT_EQ(where, std::this_thread::get_id());
  });
  t.join();
  src.cancel();
  parent.cancel();
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 1);
}

TEST(TokenCallback, NeverRunsAfterDestruction) {
  CancellationSource src;
  int calls = 0;
  {
    CancellationCallback cb(src.token(), [&] { ++calls; });
  }
  src.cancel();
  EXPECT_EQ(calls, 0);
  // On a default token: never.
  CancellationCallback never(CancellationToken{}, [&] { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(TokenCallback, AlreadyCancelledRunsInlineInTheConstructor) {
  CancellationSource src;
  src.cancel();
  int calls = 0;
  std::thread::id where;
  {
    CancellationCallback cb(src.token(), [&] {
      ++calls;
      where = std::this_thread::get_id();
    });
    EXPECT_EQ(calls, 1) << "not run inline";
    EXPECT_EQ(where, std::this_thread::get_id());
    src.cancel();
  }
  EXPECT_EQ(calls, 1);
  // Registered on a child of a cancelled parent.
  CancellationSource child(src.token());
  CancellationCallback cb2(child.token(), [&] { ++calls; });
  EXPECT_EQ(calls, 2);
}

// "the destructor waits until it returns (so the callback may use state the
// registration outlives)".
TEST(TokenCallback, DestructorWaitsForACallbackRunningOnAnotherThread) {
  for (int round = 0; round < 5; ++round) {
    CancellationSource src;
    std::atomic<bool> started{false}, finished{false};
    auto cb = std::make_unique<CancellationCallback<std::function<void()>>>(
        src.token(), std::function<void()>([&] {
          started = true;
          std::this_thread::sleep_for(50ms);
          finished = true;
        }));
    std::thread t([&] { src.cancel(); });
    ASSERT_TRUE(eventually([&] { return started.load(); }));
    cb.reset();  // must block until the callback has returned
    EXPECT_TRUE(finished.load()) << "the destructor returned while its callback was running";
    t.join();
  }
}

TEST(TokenCallback, DestroyedFromInsideItself) {
  CancellationSource src;
  int self_runs = 0, other_runs = 0;
  std::optional<CancellationCallback<std::function<void()>>> self;
  CancellationCallback other(src.token(), [&] { ++other_runs; });
  self.emplace(src.token(), std::function<void()>([&] {
                 ++self_runs;
                 self.reset();  // must neither deadlock nor crash
               }));
  CancellationCallback other2(src.token(), [&] { ++other_runs; });
  EXPECT_TRUE(src.cancel());
  EXPECT_EQ(self_runs, 1);
  EXPECT_FALSE(self.has_value());
  EXPECT_EQ(other_runs, 2) << "the other callbacks still run";

  // Through a child whose source is gone (the canceller holds the only
  // other references).
  CancellationSource parent;
  int runs = 0;
  std::optional<CancellationCallback<std::function<void()>>> cb;
  {
    CancellationSource child(parent.token());
    cb.emplace(child.token(), std::function<void()>([&] {
                 ++runs;
                 cb.reset();
               }));
  }
  parent.cancel();
  EXPECT_EQ(runs, 1);
}

TEST(TokenCallback, CallbacksMayCancelAndRegister) {
  CancellationSource a, b;
  int b_runs = 0, inner_runs = 0;
  CancellationCallback chain(a.token(), [&] { b.cancel(); });
  CancellationCallback on_b(b.token(), [&] { ++b_runs; });
  std::optional<CancellationCallback<std::function<void()>>> inner;
  CancellationCallback registers(a.token(), [&] {
    // Registering on the token being cancelled: it runs inline.
    inner.emplace(a.token(), std::function<void()>([&] { ++inner_runs; }));
  });
  a.cancel();
  EXPECT_TRUE(b.is_cancelled());
  EXPECT_EQ(b_runs, 1);
  EXPECT_EQ(inner_runs, 1);
}

// Registration racing cancellation: each callback runs exactly once (inline
// or by the canceller). Unregistration racing cancellation: a callback never
// runs after its destructor returned.
TEST(TokenCallback, RegisterAndUnregisterRacingCancel) {
  const int rounds = static_cast<int>(scaled(2000, 200));
  std::mt19937 rng(51);
  for (int r = 0; r < rounds; ++r) {
    CancellationSource src;
    std::atomic<int> runs{0};
    std::atomic<bool> destroyed{false}, ran_after_destroy{false};
    const auto skew = std::chrono::microseconds(rng() % 50);
    const bool keep = r % 2 == 0;
    std::thread t([&] {
      spin_for(skew);
      src.cancel();
    });
    {
      CancellationCallback cb(src.token(), [&] {
        if (destroyed.load()) ran_after_destroy = true;
        runs.fetch_add(1);
      });
      if (keep) {
        t.join();
        ASSERT_EQ(runs.load(), 1) << "round " << r;
      }
    }
    destroyed = true;
    if (!keep) t.join();
    ASSERT_FALSE(ran_after_destroy.load()) << "round " << r;
    ASSERT_LE(runs.load(), 1) << "round " << r;
  }
}

// ---------------------------------------------------------------------------
// Tokens outliving their sources, concurrent cancellers

TEST(TokenLifetime, TokensOutliveTheirSource) {
  CancellationToken t1, t2;
  {
    CancellationSource s1, s2;
    t1 = s1.token();
    t2 = s2.token();
    s2.cancel();
  }  // destroying a source does not cancel it
  EXPECT_TRUE(t1.can_be_cancelled());
  EXPECT_FALSE(t1.is_cancelled());
  EXPECT_TRUE(t2.is_cancelled());
  int calls = 0;
  {
    CancellationCallback cb(t1, [&] { ++calls; });
    CancellationSource child(t1);
    EXPECT_FALSE(child.is_cancelled());
    CancellationCallback inline_cb(t2, [&] { ++calls; });
    EXPECT_EQ(calls, 1);
  }
  // A parent source destroyed before its child: the child still works.
  auto parent = std::make_unique<CancellationSource>();
  CancellationSource child(parent->token());
  CancellationToken ct = child.token();
  parent.reset();
  EXPECT_FALSE(ct.is_cancelled());
  EXPECT_TRUE(child.cancel());
  EXPECT_TRUE(ct.is_cancelled());
}

TEST(TokenLifetime, ManyThreadsCancelConcurrentlyExactlyOneWins) {
  const int rounds = static_cast<int>(scaled(300, 40));
  constexpr int kThreads = 8;
  for (int r = 0; r < rounds; ++r) {
    CancellationSource root;
    CancellationSource child(root.token());
    std::atomic<int> wins{0}, child_wins{0}, calls{0}, child_calls{0};
    CancellationCallback cb(root.token(), [&] { calls.fetch_add(1); });
    CancellationCallback ccb(child.token(), [&] { child_calls.fetch_add(1); });
    std::atomic<bool> go{false};
    std::vector<std::thread> ts;
    for (int i = 0; i < kThreads; ++i) {
      ts.emplace_back([&, i] {
        while (!go.load()) {
        }
        if (i % 2 == 0) {
          if (root.cancel()) wins.fetch_add(1);
        } else {
          if (child.cancel()) child_wins.fetch_add(1);
        }
      });
    }
    go = true;
    for (auto& t : ts) t.join();
    ASSERT_EQ(wins.load(), 1) << "round " << r;
    ASSERT_LE(child_wins.load(), 1) << "round " << r;
    ASSERT_EQ(calls.load(), 1) << "round " << r;
    ASSERT_EQ(child_calls.load(), 1) << "round " << r;
    ASSERT_TRUE(child.is_cancelled());
  }
}

// ---------------------------------------------------------------------------
// Fibers and blocking threads

class FiberTokenTest : public WorkersTest {};
WEFT_INSTANTIATE_WORKERS(FiberTokenTest);

TEST_P(FiberTokenTest, CancellationTokenOfTheCallingFiber) {
  Runtime rt(config());
  std::atomic<int> callback_runs{0};
  std::atomic<bool> token_seen_cancelled{false};
  FiberWatch w;
  auto h = rt.spawn([&] {
    CancellationToken t = this_fiber::cancellation_token();
    EXPECT_TRUE(t.can_be_cancelled());
    EXPECT_FALSE(t.is_cancelled());
    CancellationCallback cb(t, [&] { callback_runs.fetch_add(1); });
    w.capture();
    try {
      this_fiber::sleep_for(1h);
    } catch (const Cancelled&) {
      token_seen_cancelled = t.is_cancelled();
      throw;
    }
  });
  ASSERT_TRUE(w.wait_parked());
  h.cancel();
  EXPECT_THROW(h.join(), Cancelled);
  EXPECT_EQ(callback_runs.load(), 1);
  EXPECT_TRUE(token_seen_cancelled.load());

  rt.block_on([] {
    CancellationToken fiber_token = this_fiber::cancellation_token();
    // Inside a scope: the scope's token.
    scope([&](Scope& s) {
      CancellationToken t = this_fiber::cancellation_token();
      s.cancel();
      EXPECT_TRUE(t.is_cancelled());
      EXPECT_FALSE(fiber_token.is_cancelled()) << "the scope's cancellation reached its parent";
    });
    // Inside a move_on_after: cancelled at the deadline.
    CancellationToken inner;
    EXPECT_FALSE(move_on_after(5ms, [&] {
      inner = this_fiber::cancellation_token();
      this_fiber::sleep_for(1h);
    }));
    EXPECT_TRUE(inner.is_cancelled());
    EXPECT_FALSE(this_fiber::cancellation_token().is_cancelled());
  });
  // Outside any fiber: a token that is never cancelled.
  EXPECT_FALSE(this_fiber::cancellation_token().can_be_cancelled());
  EXPECT_FALSE(this_fiber::is_cancelled());
  EXPECT_NO_THROW(this_fiber::check_cancelled());
}

TEST_P(FiberTokenTest, BlockingTaskSeesCancellation) {
  Runtime rt(config());
  rt.block_on([] {
    // JoinHandle::cancel on a spawn_blocking task.
    std::atomic<bool> running{false};
    auto h = spawn_blocking([&] {
      EXPECT_FALSE(this_fiber::is_cancelled());
      running = true;
      const auto give_up = Clock::now() + kPatience;
      while (!this_fiber::is_cancelled()) {
        if (Clock::now() > give_up) return false;
        std::this_thread::sleep_for(1ms);
      }
      EXPECT_THROW(this_fiber::check_cancelled(), Cancelled);
      EXPECT_TRUE(this_fiber::cancellation_token().is_cancelled());
      return true;
    });
    while (!running.load()) this_fiber::sleep_for(1ms);
    h.cancel();
    EXPECT_TRUE(h.join()) << "is_cancelled() never turned true on the blocking thread";

    // A callback on the task's token interrupts a non-weft blocking wait.
    std::atomic<bool> registered{false};
    auto cv_task = spawn_blocking([&] {
      std::mutex m;
      std::condition_variable cv;
      bool stop = false;
      CancellationCallback cb(this_fiber::cancellation_token(), [&] {
        std::lock_guard g(m);
        stop = true;
        cv.notify_all();
      });
      registered = true;
      std::unique_lock lk(m);
      return cv.wait_for(lk, kPatience, [&] { return stop; });
    });
    while (!registered.load()) this_fiber::sleep_for(1ms);
    cv_task.cancel();
    EXPECT_TRUE(cv_task.join());
  });

  // Through the spawner's cancellation: a fiber cancelled while its
  // blocking task runs.
  std::atomic<bool> task_running{false}, task_saw{false};
  auto f = rt.spawn([&] {
    auto b = spawn_blocking([&] {
      task_running = true;
      const auto give_up = Clock::now() + kPatience;
      while (!this_fiber::is_cancelled() && Clock::now() < give_up)
        std::this_thread::sleep_for(1ms);
      task_saw = this_fiber::is_cancelled();
    });
    try {
      b.join();  // woken by the cancellation, or by the task ending first
    } catch (const Cancelled&) {
    }
    this_fiber::check_cancelled();
  });
  ASSERT_TRUE(eventually([&] { return task_running.load(); }));
  f.cancel();
  EXPECT_THROW(f.join(), Cancelled);
  EXPECT_TRUE(eventually([&] { return task_saw.load(); }))
      << "the spawner's cancellation did not reach its blocking task";
}

TEST_P(FiberTokenTest, WithCancellation) {
  Runtime rt(config());
  rt.block_on([] {
    // Already cancelled: the first blocking call throws.
    CancellationSource done;
    done.cancel();
    EXPECT_THROW(with_cancellation(done.token(), [] { this_fiber::sleep_for(1h); }), Cancelled);
    EXPECT_FALSE(this_fiber::is_cancelled());

    // Returns fn's value; cancelling the source afterwards has no effect.
    CancellationSource later;
    EXPECT_EQ(with_cancellation(later.token(), [] { return 4; }), 4);
    later.cancel();
    this_fiber::sleep_for(1ms);

    // Fibers spawned inside are cancelled with it.
    CancellationSource src;
    std::atomic<bool> child_cancelled{false}, started{false};
    auto canceller = spawn([&] {
      while (!started.load()) this_fiber::sleep_for(1ms);
      this_fiber::sleep_for(2ms);
      src.cancel();
    });
    EXPECT_THROW(with_cancellation(src.token(),
                                   [&] {
                                     auto c = spawn([&] {
                                       try {
                                         this_fiber::sleep_for(1h);
                                       } catch (const Cancelled&) {
                                         child_cancelled = true;
                                         throw;
                                       }
                                     });
                                     started = true;
                                     c.join();
                                   }),
                 Cancelled);
    canceller.join();
    EXPECT_TRUE(eventually([&] { return child_cancelled.load(); }));

    // Nested tokens: the inner one cancels only the inner call.
    CancellationSource outer_src, inner_src;
    inner_src.cancel();
    EXPECT_EQ(with_cancellation(outer_src.token(),
                                [&] {
                                  EXPECT_THROW(with_cancellation(inner_src.token(),
                                                                 [] { this_fiber::sleep_for(1h); }),
                                               Cancelled);
                                  EXPECT_FALSE(this_fiber::is_cancelled());
                                  return 1;
                                }),
              1);
  });
  // On a plain thread fn runs without cancellation, even for a cancelled token.
  CancellationSource c;
  c.cancel();
  EXPECT_EQ(with_cancellation(c.token(), [] { return 2; }), 2);
}

// ---------------------------------------------------------------------------
// Shields

TEST_P(FiberTokenTest, ShieldDefersCancellationUntilItReturns) {
  Runtime rt(config());
  FiberWatch w;
  std::atomic<int> stage{0};
  std::atomic<bool> cancelled_inside{false}, cancelled_after{false}, next_call_threw{false};
  auto h = rt.spawn([&] {
    const int v = shield([&] {
      w.capture();
      this_fiber::sleep_for(40ms);  // parked when the cancellation arrives
      stage = 1;
      cancelled_inside = this_fiber::is_cancelled();
      auto tx_rx = channel<int>(1);  // not a structured binding: clang 14 cannot capture those
      auto& tx = tx_rx.first;
      (void)tx;  // keeps the channel open; only rx is used
      auto& rx = tx_rx.second;
      EXPECT_EQ(rx.recv_for(2ms).status(), ChannelStatus::timed_out);  // still not interrupted
      return 7;
    });
    EXPECT_EQ(v, 7);
    cancelled_after = this_fiber::is_cancelled();
    try {
      this_fiber::sleep_for(1h);
    } catch (const Cancelled&) {
      next_call_threw = true;
      throw;
    }
  });
  ASSERT_TRUE(w.wait_parked());
  h.cancel();
  EXPECT_THROW(h.join(), Cancelled);
  EXPECT_EQ(stage.load(), 1) << "the shielded sleep was interrupted";
  EXPECT_FALSE(cancelled_inside.load());
  EXPECT_TRUE(cancelled_after.load()) << "the deferred cancellation was lost";
  EXPECT_TRUE(next_call_threw.load());

  // shield() rethrows fn's exception, and runs fn on a plain thread.
  EXPECT_THROW(shield([] { throw std::runtime_error("x"); }), std::runtime_error);
  EXPECT_EQ(shield([] { return 3; }), 3);
  ShieldGuard outside;  // does nothing outside a fiber
}

TEST_P(FiberTokenTest, ShieldGuardInADestructorDuringUnwinding) {
  Runtime rt(config());
  std::atomic<bool> cleanup_done{false};
  struct Flusher {
    std::atomic<bool>* done;
    ~Flusher() {
      ShieldGuard g;
      this_fiber::sleep_for(20ms);  // would throw (and terminate) without the guard
      *done = true;
    }
  };
  FiberWatch w;
  auto h = rt.spawn([&] {
    Flusher f{&cleanup_done};
    w.capture();
    this_fiber::sleep_for(1h);
  });
  ASSERT_TRUE(w.wait_parked());
  h.cancel();
  EXPECT_THROW(h.join(), Cancelled);
  EXPECT_TRUE(cleanup_done.load());
}

TEST_P(FiberTokenTest, ScopesInsideAShieldStillWork) {
  Runtime rt(config());
  FiberWatch w;
  std::atomic<bool> timed_out{false}, child_finished{false}, scope_child_finished{false};
  std::atomic<long> elapsed_ms{-1};
  auto h = rt.spawn([&] {
    shield([&] {
      w.capture();
      this_fiber::sleep_for(10ms);  // cancelled here, deferred
      // A move_on_after inside the shield: runs to its own deadline.
      const auto t0 = Clock::now();
      timed_out = !move_on_after(15ms, [] { this_fiber::sleep_for(1h); });
      elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
      // A fiber spawned inside is shielded too.
      auto c = spawn([&] {
        this_fiber::sleep_for(10ms);
        child_finished = true;
      });
      c.join();
      scope([&](Scope& s) {
        s.spawn([&] {
          this_fiber::sleep_for(10ms);
          scope_child_finished = true;
        });
      });
    });
    this_fiber::sleep_for(1h);
  });
  ASSERT_TRUE(w.wait_parked());
  h.cancel();
  EXPECT_THROW(h.join(), Cancelled);
  EXPECT_TRUE(timed_out.load()) << "the move_on_after inside the shield did not time out";
  EXPECT_GE(elapsed_ms.load(), 15) << "the move_on_after inside the shield ended early";
  EXPECT_TRUE(child_finished.load()) << "a fiber spawned inside the shield was cancelled";
  EXPECT_TRUE(scope_child_finished.load()) << "a scope child inside the shield was cancelled";
}

TEST_P(FiberTokenTest, ShieldHidesEnclosingDeadlines) {
  Runtime rt(config());
  rt.block_on([] {
    std::atomic<bool> done{false};
    const auto t0 = Clock::now();
    auto r = move_on_after(5ms, [&] {
      shield([&] {
        this_fiber::sleep_for(30ms);
        done = true;
      });
      this_fiber::sleep_for(1h);
    });
    EXPECT_TRUE(done.load());
    EXPECT_FALSE(r) << "the deadline was lost while shielded";
    EXPECT_GE(Clock::now() - t0, 30ms);

    // A scope cancelled while one child is shielded: that child finishes.
    std::atomic<bool> shielded_done{false};
    scope([&](Scope& s) {
      s.spawn([&] {
        ShieldGuard g;
        this_fiber::sleep_for(20ms);
        shielded_done = true;
      });
      this_fiber::sleep_for(2ms);
      s.cancel();
    });
    EXPECT_TRUE(shielded_done.load());
  });
}

// ---------------------------------------------------------------------------
// Shutdown

// The Runtime destructor cancels fibers blocked in scopes (children and
// bodies), and everything unwinds.
TEST(ShutdownTest, RuntimeDestructorCancelsFibersBlockedInScopes) {
  std::atomic<int> started{0}, cancelled{0}, dtors{0};
  std::atomic<int> scope_outcome{0};    // 1 returned, 2 Cancelled, 3 other
  std::atomic<int> timeout_outcome{0};  // 1 timed out, 2 Cancelled
  {
    Watchdog wd("~Runtime with fibers in scopes");
    Runtime rt(workers_config(2));
    rt.spawn([&] {
        try {
          scope([&](Scope& s) {
            for (int i = 0; i < 6; ++i) {
              s.spawn([&] {
                DtorCount d{&dtors};
                started.fetch_add(1);
                try {
                  scope([&](Scope& inner) {
                    inner.spawn([&] {
                      DtorCount d2{&dtors};
                      this_fiber::sleep_for(1h);
                    });
                    this_fiber::sleep_for(1h);
                  });
                } catch (const Cancelled&) {
                  cancelled.fetch_add(1);
                  throw;
                }
              });
            }
            this_fiber::sleep_for(1h);
          });
          scope_outcome = 1;
        } catch (const Cancelled&) {
          scope_outcome = 2;
        } catch (...) {
          scope_outcome = 3;
        }
      }).detach();
    rt.spawn([&] {
        try {
          timeout_outcome = move_on_after(1h, [] { this_fiber::sleep_for(1h); }) ? 3 : 1;
        } catch (const Cancelled&) {
          timeout_outcome = 2;
        }
      }).detach();
    ASSERT_TRUE(eventually([&] { return started.load() == 6; }));
    settle_parked(rt, 1 + 6 + 6 + 1);
  }
  EXPECT_EQ(scope_outcome.load(), 2) << "the scope must rethrow the shutdown's Cancelled";
  EXPECT_EQ(cancelled.load(), 6);
  EXPECT_EQ(dtors.load(), 12);
  EXPECT_EQ(timeout_outcome.load(), 2) << "move_on_after absorbed the shutdown's cancellation";
}

// A shielded fiber is allowed to finish during shutdown (within the grace
// period); one still blocked after it is forced.
TEST(ShutdownTest, ShieldedFiberAllowedToFinish) {
  std::atomic<bool> finished{false}, forced{false};
  std::atomic<long> forced_after_ms{-1};
  {
    Watchdog wd("~Runtime with shielded fibers");
    Runtime rt(workers_config(2));
    FiberWatch w1, w2;
    rt.spawn([&] {
        shield([&] {
          w1.capture();
          this_fiber::sleep_for(100ms);
          finished = true;
        });
      }).detach();
    rt.spawn([&] {
        const auto t0 = Clock::now();
        try {
          shield([&] {
            w2.capture();
            this_fiber::sleep_for(1h);
          });
        } catch (const Cancelled&) {
          forced = true;
          forced_after_ms =
              std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
          throw;
        }
      }).detach();
    ASSERT_TRUE(w1.wait_parked());
    ASSERT_TRUE(w2.wait_parked());
  }
  EXPECT_TRUE(finished.load()) << "shutdown interrupted a shield inside its grace period";
  EXPECT_TRUE(forced.load());
  EXPECT_GE(forced_after_ms.load(), 1000) << "forced before the 1 s grace period";
}

}  // namespace
}  // namespace weft::test
