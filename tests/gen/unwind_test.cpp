// Exceptions out of generator bodies, and destruction of unfinished
// generators (forced unwind with weft::GeneratorExit).
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/test_util.hpp"
#include "gen/gen_util.hpp"
#include "weft/generator.hpp"

namespace {

using weft::Generator;
using weft::Yield;
using weft::test::collect;
using weft::test::Tracker;

// --- exceptions propagate to the resumer -------------------------------------

TEST(GeneratorExceptions, PropagateOutOfNextAndTheGeneratorIsDoneAfterwards) {
  Generator<int> g([](Yield<int>& yield) {
    yield(1);
    throw std::runtime_error("boom");
  });
  EXPECT_EQ(g.next(), 1);
  try {
    (void)g.next();
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "boom");
  }
  EXPECT_TRUE(g.done());
  EXPECT_EQ(g.next(), std::nullopt) << "rethrown once; then finished";
  EXPECT_THROW((void)g.value(), std::logic_error);
}

TEST(GeneratorExceptions, PropagateOutOfBeginAndIteratorIncrement) {
  Generator<int> first([](Yield<int>&) { throw std::out_of_range("before any value"); });
  EXPECT_THROW((void)first.begin(), std::out_of_range);
  EXPECT_TRUE(first.done());

  Generator<int> later([](Yield<int>& yield) {
    yield(1);
    yield(2);
    throw std::out_of_range("third");
  });
  std::vector<int> seen;
  try {
    for (int v : later) seen.push_back(v);
    FAIL() << "no exception";
  } catch (const std::out_of_range& e) {
    EXPECT_STREQ(e.what(), "third");
  }
  EXPECT_EQ(seen, (std::vector<int>{1, 2}));
  EXPECT_TRUE(later.done());
}

TEST(GeneratorExceptions, NonStdExceptionTypesKeepTheirType) {
  Generator<int> g([](Yield<int>&) { throw 42; });
  try {
    g.resume();
    FAIL() << "no exception";
  } catch (int v) {
    EXPECT_EQ(v, 42);
  }
}

TEST(GeneratorExceptions, BodyLocalsAreDestroyedBeforeTheResumerSeesTheException) {
  std::atomic<int> dtors{0};
  int seen_when_caught = -1;
  Generator<int> g([&](Yield<int>& yield) {
    Tracker a(dtors);
    yield(1);
    Tracker b(dtors);
    throw std::runtime_error("x");
  });
  (void)g.next();
  try {
    (void)g.next();
  } catch (const std::runtime_error&) {
    seen_when_caught = dtors.load();
  }
  EXPECT_EQ(seen_when_caught, 2);
}

// --- destruction unwinds -----------------------------------------------------

void nested_frames(int depth, std::atomic<int>& dtors, Yield<int>& yield) {
  Tracker t(dtors);
  if (depth == 0) {
    for (int i = 0; i < 1000000; ++i) yield(i);
    return;
  }
  nested_frames(depth - 1, dtors, yield);
}

TEST(GeneratorUnwind, EarlyBreakRunsTheDestructorsOfTheBodysLocals) {
  std::atomic<int> dtors{0};
  bool after_loop = false;
  {
    Generator<int> g([&](Yield<int>& yield) {
      Tracker top(dtors);
      nested_frames(9, dtors, yield);  // 10 more Trackers, one per frame
      after_loop = true;
    });
    int n = 0;
    for (int v : g) {
      EXPECT_EQ(v, n);
      if (++n == 3) break;
    }
    EXPECT_EQ(dtors.load(), 0) << "suspended, nothing destroyed yet";
  }
  EXPECT_EQ(dtors.load(), 11) << "every frame of the body was unwound";
  EXPECT_FALSE(after_loop) << "unwinding does not run the body's remaining code";
}

TEST(GeneratorUnwind, MoveAssignmentOverASuspendedGeneratorUnwindsIt) {
  std::atomic<int> dtors{0};
  Generator<int> g([&](Yield<int>& yield) {
    Tracker t(dtors);
    yield(1);
  });
  ASSERT_TRUE(g.resume());
  g = Generator<int>([](Yield<int>& yield) { yield(2); });
  EXPECT_EQ(dtors.load(), 1);
  EXPECT_EQ(g.next(), 2);
}

TEST(GeneratorUnwind, UnstartedGeneratorDestroysItsClosureWithoutRunningTheBody) {
  std::atomic<int> dtors{0};
  bool ran = false;
  {
    auto captured = std::make_shared<Tracker>(dtors);
    Generator<int> g([&ran, captured](Yield<int>& yield) {
      ran = true;
      yield(1);
    });
    captured.reset();
    EXPECT_EQ(dtors.load(), 0) << "the closure owns a copy";
  }
  EXPECT_FALSE(ran);
  EXPECT_EQ(dtors.load(), 1);
}

TEST(GeneratorUnwind, BodyLocalsGoBeforeTheClosure) {
  std::vector<std::string> order;
  struct Logger {
    Logger(std::vector<std::string>* l, std::string n) : log(l), name(std::move(n)) {}
    Logger(const Logger&) = delete;
    Logger& operator=(const Logger&) = delete;
    ~Logger() { log->push_back(name); }
    std::vector<std::string>* log;
    std::string name;
  };
  {
    auto closure_part = std::make_shared<Logger>(&order, "closure");
    Generator<int> g([&order, closure_part](Yield<int>& yield) {
      Logger local(&order, "local");
      yield(1);
    });
    closure_part.reset();
    ASSERT_TRUE(g.resume());
  }
  EXPECT_EQ(order, (std::vector<std::string>{"local", "closure"}));
}

TEST(GeneratorUnwind, FinishedGeneratorDestroysQuietly) {
  std::atomic<int> dtors{0};
  {
    Generator<int> g([&](Yield<int>& yield) {
      Tracker t(dtors);
      yield(1);
    });
    EXPECT_EQ(collect(g), (std::vector<int>{1}));
    EXPECT_EQ(dtors.load(), 1);
  }
  EXPECT_EQ(dtors.load(), 1);
}

TEST(GeneratorUnwind, GeneratorExitIsNotAStdException) {
  bool caught_as_std = false;
  std::atomic<int> dtors{0};
  {
    Generator<int> g([&](Yield<int>& yield) {
      Tracker t(dtors);
      try {
        yield(1);
      } catch (const std::exception&) {
        caught_as_std = true;
      }
    });
    ASSERT_TRUE(g.resume());
  }
  EXPECT_FALSE(caught_as_std);
  EXPECT_EQ(dtors.load(), 1);
}

TEST(GeneratorUnwind, CatchAllThatRethrowsUnwindsCleanly) {
  bool cleanup = false;
  bool typed = false;
  std::atomic<int> dtors{0};
  {
    Generator<int> g([&](Yield<int>& yield) {
      Tracker t(dtors);
      try {
        yield(1);
      } catch (const weft::GeneratorExit& e) {
        typed = std::string(e.what()) == "weft::GeneratorExit";
        cleanup = true;
        throw;
      }
    });
    ASSERT_TRUE(g.resume());
  }
  EXPECT_TRUE(cleanup);
  EXPECT_TRUE(typed);
  EXPECT_EQ(dtors.load(), 1);
}

TEST(GeneratorUnwind, BodyThatSwallowsGeneratorExitAndReturnsFinishes) {
  bool reached_end = false;
  {
    Generator<int> g([&](Yield<int>& yield) {
      try {
        yield(1);
      } catch (...) {
        // swallowed (documented: the generator then just finishes)
      }
      reached_end = true;
    });
    ASSERT_TRUE(g.resume());
  }
  EXPECT_TRUE(reached_end);
}

TEST(GeneratorUnwind, ExceptionReplacingGeneratorExitIsDropped) {
  std::atomic<int> dtors{0};
  {
    Generator<int> g([&](Yield<int>& yield) {
      Tracker t(dtors);
      try {
        yield(1);
      } catch (...) {
        throw std::runtime_error("replaces GeneratorExit");
      }
    });
    ASSERT_TRUE(g.resume());
  }  // must not throw out of the destructor (that would terminate)
  EXPECT_EQ(dtors.load(), 1);
}

TEST(GeneratorUnwind, DestroyedWhileTheResumerUnwindsAnException) {
  std::atomic<int> dtors{0};
  int uncaught_in_body = -1;
  try {
    Generator<int> g([&](Yield<int>& yield) {
      struct Probe {
        int* out;
        ~Probe() { *out = std::uncaught_exceptions(); }
      } probe{&uncaught_in_body};
      Tracker t(dtors);
      yield(1);
    });
    ASSERT_TRUE(g.resume());
    throw std::runtime_error("resumer");
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "resumer");
    EXPECT_EQ(std::uncaught_exceptions(), 0);
  }
  EXPECT_EQ(dtors.load(), 1);
  // The body's own unwinding saw exactly its own exception in flight
  // (GeneratorExit), not the resumer's as well.
  EXPECT_EQ(uncaught_in_body, 1);
}

using GeneratorUnwindDeathTest = ::testing::Test;

TEST(GeneratorUnwindDeathTest, SwallowingGeneratorExitAndYieldingAgainIsFatal) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Generator<int> g([](Yield<int>& yield) {
          for (int i = 0;; ++i) {
            try {
              yield(i);
            } catch (...) {
            }
          }
        });
        (void)g.next();
      },
      "caught weft::GeneratorExit and yielded again");
}

TEST(GeneratorUnwindDeathTest, DestroyingAGeneratorFromItsOwnBodyIsFatal) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        std::unique_ptr<Generator<int>> self;
        self = std::make_unique<Generator<int>>([&](Yield<int>& yield) {
          self.reset();
          yield(1);
        });
        (void)self->next();
      },
      "a generator was destroyed while it runs");
}

}  // namespace
