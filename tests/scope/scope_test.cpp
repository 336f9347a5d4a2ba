// weft::scope (nurseries): "a failing child cancels its siblings, all are
// joined before the rethrow", first failure rethrown and the others kept,
// nesting, cancellation from outside and from inside, cancel_after,
// children spawning siblings, results through handles, re-parenting of
// plainly spawned fibers, scopes on blocking threads, many children and
// children that finish at once.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <set>
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

/// The message of the exception in `e`.
std::string message_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "<non-std>";
  }
}

/// A child that parks until cancelled, counting its cancellation and its
/// destructor run.
struct Sleeper {
  std::atomic<int>* started;
  std::atomic<int>* cancelled;
  std::atomic<int>* dtors;
  void operator()() const {
    DtorCount d{dtors};
    started->fetch_add(1);
    try {
      this_fiber::sleep_for(1h);
    } catch (const Cancelled&) {
      cancelled->fetch_add(1);
      throw;
    }
  }
};

class ScopeTest : public WorkersTest {};
WEFT_INSTANTIATE_WORKERS(ScopeTest);

// ---------------------------------------------------------------------------
// Failure

TEST_P(ScopeTest, FailingChildCancelsSiblingsAllJoinedBeforeRethrow) {
  Runtime rt(config());
  rt.block_on([] {
    constexpr int kSiblings = 12;
    std::atomic<int> started{0}, cancelled{0}, dtors{0}, body_dtors{0};
    std::atomic<bool> slow_cleanup_done{false};
    auto tx_rx = channel<int>(0);  // not a structured binding: clang 14 cannot capture those
    auto& tx = tx_rx.first;
    (void)tx;  // keeps the channel open; only rx is used
    auto& rx = tx_rx.second;
    Mutex held;
    held.lock();  // this fiber holds it; one sibling blocks on it
    try {
      scope([&](Scope& s) {
        DtorCount body_guard{&body_dtors};
        for (int i = 0; i < kSiblings; ++i) s.spawn(Sleeper{&started, &cancelled, &dtors});
        // Siblings blocked in other operations.
        s.spawn([&] {
          DtorCount d{&dtors};
          started.fetch_add(1);
          try {
            (void)rx.recv();
          } catch (const Cancelled&) {
            cancelled.fetch_add(1);
            throw;
          }
        });
        s.spawn([&] {
          DtorCount d{&dtors};
          started.fetch_add(1);
          try {
            held.lock();
          } catch (const Cancelled&) {
            cancelled.fetch_add(1);
            throw;
          }
        });
        // A sibling whose cleanup takes a while (shielded): the scope must
        // wait for it before rethrowing.
        s.spawn([&] {
          DtorCount d{&dtors};
          started.fetch_add(1);
          try {
            this_fiber::sleep_for(1h);
          } catch (const Cancelled&) {
            cancelled.fetch_add(1);
            shield([&] { this_fiber::sleep_for(30ms); });
            slow_cleanup_done = true;
            throw;
          }
        });
        s.spawn([&] {
          DtorCount d{&dtors};
          while (started.load() < kSiblings + 3) this_fiber::sleep_for(1ms);
          this_fiber::sleep_for(2ms);
          throw std::runtime_error("boom");
        });
        this_fiber::sleep_for(1h);  // the body is cancelled too
        ADD_FAILURE() << "the body was not cancelled";
      });
      ADD_FAILURE() << "scope returned normally";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "boom");
      // Everything already joined when the exception arrives here.
      EXPECT_EQ(cancelled.load(), kSiblings + 3);
      EXPECT_EQ(dtors.load(), kSiblings + 4) << "a sibling was not joined before the rethrow";
      EXPECT_TRUE(slow_cleanup_done.load()) << "the scope did not wait for a slow cleanup";
      EXPECT_EQ(body_dtors.load(), 1);
    }
    held.unlock();
    EXPECT_FALSE(this_fiber::is_cancelled()) << "the scope's cancellation leaked to the caller";
    this_fiber::sleep_for(1ms);
  });
  expect_no_live_fibers(rt);
}

TEST_P(ScopeTest, FirstFailureRethrownOthersInFailuresVector) {
  Runtime rt(config());
  rt.block_on([] {
    std::vector<std::exception_ptr> failures;
    std::atomic<int> waiting{0};
    auto fail_on_cancel = [&](const char* what) {
      return [&waiting, what] {
        waiting.fetch_add(1);
        try {
          this_fiber::sleep_for(1h);
        } catch (const Cancelled&) {
          throw std::logic_error(what);  // a failure caused by the cancellation
        }
      };
    };
    try {
      scope(
          [&](Scope& s) {
            s.spawn(fail_on_cancel("second"));
            s.spawn(fail_on_cancel("third"));
            s.spawn([&] {  // ends Cancelled: not a failure
              waiting.fetch_add(1);
              this_fiber::sleep_for(1h);
            });
            s.spawn([&] {
              while (waiting.load() < 3) this_fiber::sleep_for(1ms);
              throw std::runtime_error("first");
            });
          },
          &failures);
      ADD_FAILURE() << "scope returned normally";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "first");
    } catch (...) {
      ADD_FAILURE() << "rethrew " << current_message() << " instead of the first failure";
    }
    ASSERT_EQ(failures.size(), 3u);
    EXPECT_EQ(message_of(failures[0]), "first");
    std::set<std::string> rest{message_of(failures[1]), message_of(failures[2])};
    EXPECT_EQ(rest, (std::set<std::string>{"second", "third"}));
  });
}

TEST_P(ScopeTest, BodyFailureCancelsChildren) {
  Runtime rt(config());
  rt.block_on([] {
    std::atomic<int> started{0}, cancelled{0}, dtors{0};
    std::vector<std::exception_ptr> failures;
    try {
      scope(
          [&](Scope& s) {
            for (int i = 0; i < 5; ++i) s.spawn(Sleeper{&started, &cancelled, &dtors});
            while (started.load() < 5) this_fiber::sleep_for(1ms);
            throw std::runtime_error("body");
          },
          &failures);
      ADD_FAILURE() << "scope returned normally";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "body");
      EXPECT_EQ(dtors.load(), 5);
    }
    EXPECT_EQ(cancelled.load(), 5);
    ASSERT_EQ(failures.size(), 1u);
    EXPECT_EQ(message_of(failures[0]), "body");
  });
}

// The body is blocked joining a child when another child fails: the body
// gets Cancelled, and scope() rethrows the failure, not Cancelled.
TEST_P(ScopeTest, FailureWhileBodyJoinsRethrowsTheFailure) {
  Runtime rt(config());
  rt.block_on([] {
    std::atomic<bool> body_cancelled{false};
    EXPECT_THROW(scope([&](Scope& s) {
                   auto slow = s.spawn([] {
                     this_fiber::sleep_for(1h);
                     return 1;
                   });
                   s.spawn([] {
                     this_fiber::sleep_for(3ms);
                     throw std::out_of_range("child");
                   });
                   try {
                     return slow.join();
                   } catch (const Cancelled&) {
                     body_cancelled = true;
                     throw;
                   }
                 }),
                 std::out_of_range);
    EXPECT_TRUE(body_cancelled.load());
  });
}

// A child failing after Scope::cancel() (in reaction to it) is still a
// failure: rethrown rather than absorbed.
TEST_P(ScopeTest, FailureAfterSelfCancelIsRethrown) {
  Runtime rt(config());
  rt.block_on([] {
    std::atomic<bool> waiting{false};
    EXPECT_THROW(scope([&](Scope& s) {
                   s.spawn([&] {
                     waiting = true;
                     try {
                       this_fiber::sleep_for(1h);
                     } catch (const Cancelled&) {
                       throw std::runtime_error("cleanup failed");
                     }
                   });
                   while (!waiting.load()) this_fiber::sleep_for(1ms);
                   s.cancel();
                 }),
                 std::runtime_error);
  });
}

// ---------------------------------------------------------------------------
// Nesting

TEST_P(ScopeTest, NestedInnerFailurePropagatesThroughOuter) {
  Runtime rt(config());
  rt.block_on([] {
    std::atomic<int> started{0}, cancelled{0}, dtors{0};
    std::atomic<bool> inner_rethrew{false};
    std::vector<std::exception_ptr> outer_failures;
    try {
      scope(
          [&](Scope& outer) {
            outer.spawn(Sleeper{&started, &cancelled, &dtors});
            outer.spawn([&] {
              try {
                scope([&](Scope& inner) {
                  inner.spawn(Sleeper{&started, &cancelled, &dtors});
                  inner.spawn([&] {
                    while (started.load() < 2) this_fiber::sleep_for(1ms);
                    throw std::runtime_error("inner");
                  });
                });
              } catch (const std::runtime_error&) {
                inner_rethrew = true;
                throw;
              }
            });
          },
          &outer_failures);
      ADD_FAILURE() << "outer scope returned normally";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "inner");
    }
    EXPECT_TRUE(inner_rethrew.load());
    EXPECT_EQ(cancelled.load(), 2) << "the inner sibling and the outer sibling are both cancelled";
    EXPECT_EQ(dtors.load(), 2);
    ASSERT_EQ(outer_failures.size(), 1u);
    EXPECT_EQ(message_of(outer_failures[0]), "inner");
  });
}

TEST_P(ScopeTest, NestedOuterCancelReachesInnerChildren) {
  Runtime rt(config());
  rt.block_on([] {
    std::atomic<int> started{0}, cancelled{0}, dtors{0};
    std::atomic<int> inner_outcome{0};  // 1 returned, 2 Cancelled, 3 other
    scope([&](Scope& outer) {
      outer.spawn([&] {
        try {
          scope([&](Scope& inner) {
            for (int i = 0; i < 4; ++i) inner.spawn(Sleeper{&started, &cancelled, &dtors});
            // and a grandchild scope deeper still
            inner.spawn([&] {
              scope([&](Scope& deepest) {
                for (int i = 0; i < 2; ++i) deepest.spawn(Sleeper{&started, &cancelled, &dtors});
                this_fiber::sleep_for(1h);
              });
            });
            this_fiber::sleep_for(1h);  // (body returned: see OuterCancellationRethrown...)
          });
          inner_outcome = 1;
        } catch (const Cancelled&) {
          inner_outcome = 2;
          throw;
        } catch (...) {
          inner_outcome = 3;
          throw;
        }
      });
      while (started.load() < 6) this_fiber::sleep_for(1ms);
      outer.cancel();
    });  // absorbed: the outer scope cancelled itself
    EXPECT_EQ(inner_outcome.load(), 2)
        << "an inner scope must rethrow a cancellation that came from outside it";
    EXPECT_EQ(cancelled.load(), 6);
    EXPECT_EQ(dtors.load(), 6);
    EXPECT_FALSE(this_fiber::is_cancelled());
  });
}

// ---------------------------------------------------------------------------
// Cancellation from outside and inside

TEST_P(ScopeTest, ParentCancelCancelsChildrenAndRethrowsCancelled) {
  Runtime rt(config());
  std::atomic<int> started{0}, cancelled{0}, dtors{0};
  std::atomic<int> dtors_when_thrown{-1};
  auto h = rt.spawn([&] {
    try {
      scope([&](Scope& s) {
        for (int i = 0; i < 8; ++i) s.spawn(Sleeper{&started, &cancelled, &dtors});
        this_fiber::sleep_for(1h);  // (body returned: see OuterCancellationRethrown...)
      });
    } catch (const Cancelled&) {
      dtors_when_thrown = dtors.load();
      throw;
    }
    ADD_FAILURE() << "a void scope absorbed a cancellation from its parent";
  });
  ASSERT_TRUE(eventually([&] { return started.load() == 8; }));
  settle_parked(rt, 9);
  h.cancel();
  EXPECT_THROW(h.join(), Cancelled);
  EXPECT_EQ(dtors_when_thrown.load(), 8) << "the scope rethrew before joining its children";
  EXPECT_EQ(cancelled.load(), 8);

  // A scope with a result, cancelled from outside, rethrows Cancelled too.
  started = 0;
  auto v = rt.spawn([&] {
    return scope([&](Scope& s) {
      s.spawn(Sleeper{&started, &cancelled, &dtors});
      this_fiber::sleep_for(1h);
      return 1;
    });
  });
  ASSERT_TRUE(eventually([&] { return started.load() == 1; }));
  v.cancel();
  EXPECT_THROW(v.join(), Cancelled);
  EXPECT_EQ(dtors.load(), 9);
}

// scope.hpp: "Cancelling an enclosing scope (or this fiber) cancels the
// children and the body; scope() waits for all, then rethrows
// weft::Cancelled." Here the body has already returned when the
// cancellation arrives (it only spawned), so only the children see it. The
// scope must still rethrow Cancelled: returning normally tells the caller
// that its children completed when they were cancelled.
TEST_P(ScopeTest, OuterCancellationRethrownEvenAfterTheBodyReturned) {
  Runtime rt(config());
  std::atomic<int> started{0}, cancelled{0}, dtors{0};

  // (a) JoinHandle::cancel() of the fiber running the scope.
  std::atomic<int> outcome{0};  // 1 returned normally, 2 Cancelled
  auto h = rt.spawn([&] {
    try {
      scope([&](Scope& s) {
        for (int i = 0; i < 3; ++i) s.spawn(Sleeper{&started, &cancelled, &dtors});
      });
      outcome = 1;
    } catch (const Cancelled&) {
      outcome = 2;
      throw;
    }
  });
  ASSERT_TRUE(eventually([&] { return started.load() == 3; }));
  settle_parked(rt, 4);
  h.cancel();
  try {
    h.join();
  } catch (const Cancelled&) {
  }
  EXPECT_EQ(dtors.load(), 3);
  EXPECT_EQ(outcome.load(), 2) << "scope() returned normally although its parent was cancelled";

  // (b) Nested: the outer scope cancels itself; the inner scope, whose body
  // returned, did not cause that cancellation and must not absorb it.
  rt.block_on([&] {
    std::atomic<int> inner{0};
    scope([&](Scope& outer) {
      outer.spawn([&] {
        try {
          scope([&](Scope& s) { s.spawn(Sleeper{&started, &cancelled, &dtors}); });
          inner = 1;
        } catch (const Cancelled&) {
          inner = 2;
          throw;
        }
      });
      while (started.load() < 4) this_fiber::sleep_for(1ms);
      outer.cancel();
    });
    EXPECT_EQ(inner.load(), 2) << "an inner scope absorbed its enclosing scope's cancellation";
  });

  // (c) The scope of a spawn_blocking task, cancelled through its handle.
  rt.block_on([&] {
    auto b = spawn_blocking([&] {
      scope([&](Scope& s) { s.spawn(Sleeper{&started, &cancelled, &dtors}); });
      return 1;
    });
    while (started.load() < 5) this_fiber::sleep_for(1ms);
    b.cancel();
    EXPECT_THROW(b.join(), Cancelled) << "the blocking task's scope returned normally";
  });
  EXPECT_EQ(dtors.load(), 5);
}

TEST_P(ScopeTest, ScopeCancelIsAbsorbed) {
  Runtime rt(config());
  rt.block_on([] {
    std::atomic<int> started{0}, cancelled{0}, dtors{0};
    // Void body ending with Cancelled after Scope::cancel(): returns normally.
    EXPECT_NO_THROW(scope([&](Scope& s) {
      s.spawn(Sleeper{&started, &cancelled, &dtors});
      while (started.load() < 1) this_fiber::sleep_for(1ms);
      EXPECT_FALSE(s.is_cancelled());
      s.cancel();
      EXPECT_TRUE(s.is_cancelled());
      EXPECT_TRUE(this_fiber::is_cancelled());
      this_fiber::sleep_for(1h);
      ADD_FAILURE() << "the body was not cancelled";
    }));
    EXPECT_EQ(cancelled.load(), 1);
    EXPECT_FALSE(this_fiber::is_cancelled());
    this_fiber::sleep_for(1ms);

    // Cancelled by a child through Scope&: the same.
    EXPECT_NO_THROW(scope([&](Scope& s) {
      s.spawn(Sleeper{&started, &cancelled, &dtors});
      s.spawn([&s] {
        this_fiber::sleep_for(2ms);
        s.cancel();
      });
    }));
    EXPECT_EQ(cancelled.load(), 2);

    // Cancelled from a plain thread: the same.
    std::thread canceller;
    EXPECT_NO_THROW(scope([&](Scope& s) {
      s.spawn(Sleeper{&started, &cancelled, &dtors});
      canceller = std::thread([&s] {
        std::this_thread::sleep_for(2ms);
        s.cancel();
      });
    }));
    canceller.join();
    EXPECT_EQ(cancelled.load(), 3);

    // A body with a result that ends with Cancelled has nothing to return.
    EXPECT_THROW(scope([](Scope& s) -> int {
                   s.cancel();
                   this_fiber::sleep_for(1h);
                   return 1;
                 }),
                 Cancelled);
    // ... but one that returns after cancelling returns its value.
    EXPECT_EQ(scope([](Scope& s) {
                s.cancel();
                return 5;
              }),
              5);
    EXPECT_FALSE(this_fiber::is_cancelled());
    EXPECT_EQ(dtors.load(), 3);
  });
}

TEST_P(ScopeTest, TokenAndCallbackFollowTheScope) {
  Runtime rt(config());
  rt.block_on([] {
    std::atomic<int> calls{0};
    CancellationToken kept;
    scope([&](Scope& s) {
      kept = s.token();
      EXPECT_TRUE(kept.can_be_cancelled());
      CancellationCallback cb(s.token(), [&] { calls.fetch_add(1); });
      EXPECT_EQ(calls.load(), 0);
      s.spawn([&s] { s.cancel(); });
      EXPECT_THROW(this_fiber::sleep_for(1h), Cancelled);
      EXPECT_EQ(calls.load(), 1);
      EXPECT_TRUE(kept.is_cancelled());
    });
    EXPECT_TRUE(kept.is_cancelled()) << "a token outlives its scope";
    EXPECT_EQ(calls.load(), 1);
  });
}

TEST_P(ScopeTest, CancelAfter) {
  Runtime rt(config());
  rt.block_on([] {
    std::atomic<int> started{0}, cancelled{0}, dtors{0};
    auto t0 = Clock::now();
    scope([&](Scope& s) {
      s.cancel_after(30ms);
      s.spawn(Sleeper{&started, &cancelled, &dtors});
    });
    EXPECT_GE(Clock::now() - t0, 30ms);
    EXPECT_EQ(cancelled.load(), 1);
    EXPECT_FALSE(this_fiber::is_cancelled());

    // The earliest of several calls wins, in either order.
    t0 = Clock::now();
    scope([&](Scope& s) {
      s.cancel_after(1h);
      s.cancel_after(20ms);
      s.spawn(Sleeper{&started, &cancelled, &dtors});
    });
    EXPECT_GE(Clock::now() - t0, 20ms);
    t0 = Clock::now();
    scope([&](Scope& s) {
      s.cancel_after(20ms);
      s.cancel_after(1h);  // does not extend
      s.spawn(Sleeper{&started, &cancelled, &dtors});
    });
    EXPECT_GE(Clock::now() - t0, 20ms);
    EXPECT_EQ(cancelled.load(), 3);

    // An absolute deadline, and Deadline::none() (no effect).
    t0 = Clock::now();
    scope([&](Scope& s) {
      s.cancel_after(Deadline(Clock::now() + 15ms));
      s.spawn(Sleeper{&started, &cancelled, &dtors});
    });
    EXPECT_GE(Clock::now() - t0, 15ms);
    std::atomic<bool> finished{false};
    scope([&](Scope& s) {
      s.cancel_after(Deadline::none());
      s.spawn([&] {
        this_fiber::sleep_for(10ms);
        finished = true;
      });
    });
    EXPECT_TRUE(finished.load());

    // A deadline already passed cancels at once; the body's blocking calls throw.
    EXPECT_NO_THROW(scope([&](Scope& s) {
      s.cancel_after(-1ms);
      EXPECT_TRUE(eventually([&] { return s.is_cancelled(); }));
      this_fiber::sleep_for(1h);
    }));

    // cancel_after from a plain thread is refused.
    scope([&](Scope& s) {
      std::atomic<bool> threw{false};
      std::thread t([&] {
        try {
          s.cancel_after(1s);
        } catch (const std::logic_error&) {
          threw = true;
        }
      });
      t.join();
      EXPECT_TRUE(threw.load());
    });
    EXPECT_EQ(dtors.load(), 4);
  });
}

// ---------------------------------------------------------------------------
// Children and handles

TEST_P(ScopeTest, ChildrenSpawnSiblingsThroughScopeRef) {
  Runtime rt(config());
  rt.block_on([] {
    std::atomic<int> ran{0};
    std::atomic<bool> late_done{false};
    std::function<void(Scope&, int)> grow = [&](Scope& s, int depth) {
      ran.fetch_add(1);
      if (depth == 0) return;
      this_fiber::yield();
      for (int i = 0; i < 2; ++i) s.spawn([&s, &grow, depth] { grow(s, depth - 1); });
    };
    scope([&](Scope& s) {
      s.spawn([&s, &grow] { grow(s, 7); });
      // A sibling spawned late, after the body has returned.
      s.spawn([&] {
        this_fiber::sleep_for(10ms);
        s.spawn([&] {
          this_fiber::sleep_for(10ms);
          late_done = true;
        });
      });
    });
    EXPECT_EQ(ran.load(), 255) << "the scope returned before every descendant sibling ran";
    EXPECT_TRUE(late_done.load()) << "the scope did not wait for a late sibling";
  });
}

TEST_P(ScopeTest, ResultsThroughHandles) {
  Runtime rt(config());
  rt.block_on([] {
    std::atomic<bool> detached_done{false};
    const int total = scope([&](Scope& s) {
      auto a = s.spawn([] { return 40; });
      auto b = s.spawn([] { return std::make_unique<int>(2); });
      FiberOptions named;
      named.name = "scoped-child";
      auto c = s.spawn(named, [] { return std::string(this_fiber::name()); });
      s.spawn([&] {
         this_fiber::sleep_for(15ms);
         detached_done = true;
       }).detach();  // still a child of the scope
      auto cancelled = s.spawn([] {
        this_fiber::sleep_for(1h);
        return 0;
      });
      cancelled.cancel();
      EXPECT_THROW(cancelled.join(), Cancelled);  // a cancelled child is not a failure
      EXPECT_EQ(c.join(), "scoped-child");
      return a.join() + *b.join();
    });
    EXPECT_EQ(total, 42);
    EXPECT_TRUE(detached_done.load()) << "a detached scope child was not waited for";

    // A dropped handle's failure still counts.
    EXPECT_THROW(scope([](Scope& s) {
                   s.spawn([] {
                      this_fiber::sleep_for(2ms);
                      throw std::length_error("dropped");
                    }).detach();
                 }),
                 std::length_error);
  });
}

// A fiber spawned with plain weft::spawn inside a scope body hangs under the
// scope's cancel node: the scope does not wait for it, but cancels it while
// open, and once the scope (or the child that spawned it) has ended it is
// re-parented, so cancelling the enclosing fiber still reaches it.
TEST_P(ScopeTest, PlainSpawnInsideScopeIsReparentedAndStillCancelled) {
  Runtime rt(config());
  std::atomic<int> started{0}, cancelled{0}, dtors{0};
  std::atomic<bool> scope_returned{false};
  auto f = rt.spawn([&] {
    scope([&](Scope& s) {
      spawn(Sleeper{&started, &cancelled, &dtors}).detach();
      // ... and one spawned by a scope child that ends at once.
      s.spawn([&] { spawn(Sleeper{&started, &cancelled, &dtors}).detach(); });
    });
    scope_returned = true;  // the scope did not wait for them
    this_fiber::sleep_for(1h);
  });
  ASSERT_TRUE(eventually([&] { return scope_returned.load() && started.load() == 2; }));
  settle_parked(rt, 3);
  EXPECT_EQ(cancelled.load(), 0);
  f.cancel();
  EXPECT_THROW(f.join(), Cancelled);
  ASSERT_TRUE(eventually([&] { return dtors.load() == 2; }))
      << "a re-parented fiber was not cancelled with the enclosing fiber: " << dtors.load();
  EXPECT_EQ(cancelled.load(), 2);

  // While the scope is open, cancelling it reaches a plain-spawned fiber.
  rt.block_on([&] {
    scope([&](Scope& s) {
      auto g = spawn(Sleeper{&started, &cancelled, &dtors});
      while (started.load() < 3) this_fiber::sleep_for(1ms);
      s.cancel();
      EXPECT_THROW(g.join(), Cancelled);  // the body is cancelled too
    });
  });
  ASSERT_TRUE(eventually([&] { return dtors.load() == 3; }));
  EXPECT_EQ(cancelled.load(), 3);

  // Two levels of ended spawners: the grandchild goes to the fiber.
  auto r = rt.spawn([&] {
    spawn([&] {
      spawn([&] { spawn(Sleeper{&started, &cancelled, &dtors}).detach(); }).detach();
    }).detach();
    this_fiber::sleep_for(1h);
  });
  ASSERT_TRUE(eventually([&] { return started.load() == 4; }));
  settle_parked(rt, 2);
  r.cancel();
  EXPECT_THROW(r.join(), Cancelled);
  ASSERT_TRUE(eventually([&] { return dtors.load() == 4; }));
  expect_no_live_fibers(rt);
}

TEST_P(ScopeTest, ScopeFromSpawnBlockingThread) {
  Runtime rt(config());
  rt.block_on([] {
    auto ok = spawn_blocking([] {
      EXPECT_FALSE(this_fiber::in_fiber());
      return scope([](Scope& s) {
        auto a = s.spawn([] { return 3; });
        EXPECT_TRUE(this_fiber::in_fiber()) << "the scope body runs on a fiber";
        return a.join() + 1;
      });
    });
    EXPECT_EQ(ok.join(), 4);

    auto failing = spawn_blocking([] {
      scope([](Scope& s) { s.spawn([] { throw std::runtime_error("from blocking"); }); });
    });
    EXPECT_THROW(failing.join(), std::runtime_error);

    // Cancelling the blocking task cancels the scope it runs.
    std::atomic<int> started{0}, cancelled{0}, dtors{0};
    auto cancellable = spawn_blocking([&] {
      scope([&](Scope& s) {
        s.spawn(Sleeper{&started, &cancelled, &dtors});
        this_fiber::sleep_for(1h);
      });
    });
    while (started.load() < 1) this_fiber::sleep_for(1ms);
    cancellable.cancel();
    EXPECT_THROW(cancellable.join(), Cancelled);
    EXPECT_EQ(dtors.load(), 1);
  });
  // Outside any runtime there is nothing to run it on.
  EXPECT_THROW(scope([](Scope&) {}), std::logic_error);
}

TEST_P(ScopeTest, TenThousandChildren) {
  Runtime rt(config());
  const int n = static_cast<int>(scaled(10000, 2000));
  rt.block_on([n] {
    std::atomic<int> ran{0};
    scope([&](Scope& s) {
      for (int i = 0; i < n; ++i) {
        s.spawn(with_stack(64 * 1024), [&] {
          this_fiber::yield();
          ran.fetch_add(1);
        });
      }
    });
    EXPECT_EQ(ran.load(), n);

    // And as many parked children, all cancelled at once by a failure.
    std::atomic<int> started{0}, cancelled{0}, dtors{0};
    EXPECT_THROW(scope([&](Scope& s) {
                   for (int i = 0; i < n; ++i) {
                     s.spawn(with_stack(64 * 1024), Sleeper{&started, &cancelled, &dtors});
                   }
                   while (started.load() < n) this_fiber::sleep_for(1ms);
                   throw std::runtime_error("stop");
                 }),
                 std::runtime_error);
    EXPECT_EQ(cancelled.load(), n);
    EXPECT_EQ(dtors.load(), n);
  });
  expect_no_live_fibers(rt);
}

// Children that finish before (or while) the scope starts waiting: the
// count reaching zero must never be missed (a lost wake-up hangs here).
TEST_P(ScopeTest, ChildrenThatFinishInstantly) {
  Runtime rt(config());
  rt.block_on([] {
    EXPECT_EQ(scope([](Scope&) { return 1; }), 1);  // no children at all
    const int rounds = static_cast<int>(scaled(3000, 300));
    int total = 0;
    for (int r = 0; r < rounds; ++r) {
      std::atomic<int> ran{0};
      scope([&](Scope& s) {
        const int k = 1 + r % 4;
        for (int i = 0; i < k; ++i) s.spawn([&] { ran.fetch_add(1); });
        if (r % 3 == 0) this_fiber::yield();
      });
      ASSERT_EQ(ran.load(), 1 + r % 4) << "round " << r;
      total += ran.load();
    }
    EXPECT_GT(total, 0);
  });
}

}  // namespace
}  // namespace weft::test
