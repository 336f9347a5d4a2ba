// Each generator has its own C++ exception state (libstdc++'s per-thread
// caught-exception chain and uncaught count are saved and restored at every
// switch): what a body does inside catch blocks or during unwinding never
// shows in the resumer, and the other way round (DESIGN.md hazards).
#include <gtest/gtest.h>

#include <exception>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/test_util.hpp"
#include "gen/gen_util.hpp"
#include "weft/generator.hpp"

namespace {

using weft::Generator;
using weft::Yield;
using weft::test::current_message;

TEST(GeneratorExceptionState, BodySuspendedInACatchBlockIsInvisibleToTheResumer) {
  Generator<std::string> g([](Yield<std::string>& yield) {
    try {
      throw std::runtime_error("body's");
    } catch (...) {
      yield(current_message());  // suspended inside the catch block
      yield(current_message());  // still handling its own exception
      try {
        throw;  // rethrows the body's exception, not the resumer's
      } catch (const std::runtime_error& e) {
        yield(std::string("rethrown ") + e.what());
      }
    }
    yield(current_message());  // after the handler ended
  });

  EXPECT_EQ(*g.next(), "body's");
  EXPECT_EQ(std::current_exception(), nullptr) << "resumer sees the body's caught exception";
  EXPECT_EQ(current_message(), "<none>");

  try {
    throw std::logic_error("resumer's");
  } catch (...) {
    EXPECT_EQ(*g.next(), "body's") << "the body sees the resumer's exception";
    EXPECT_EQ(current_message(), "resumer's") << "the resume clobbered the resumer's state";
    EXPECT_EQ(*g.next(), "rethrown body's");
    try {
      throw;
    } catch (const std::logic_error& e) {
      EXPECT_STREQ(e.what(), "resumer's");
    }
  }
  EXPECT_EQ(*g.next(), "<none>");
  EXPECT_EQ(std::current_exception(), nullptr);
}

TEST(GeneratorExceptionState, ResumerInACatchBlockIsInvisibleToTheBody) {
  Generator<std::string> g([](Yield<std::string>& yield) {
    for (;;) yield(current_message() + "/" + std::to_string(std::uncaught_exceptions()));
  });
  try {
    throw std::runtime_error("outer");
  } catch (...) {
    EXPECT_EQ(*g.next(), "<none>/0");
  }
  EXPECT_EQ(*g.next(), "<none>/0");
}

TEST(GeneratorExceptionState, UncaughtCountsAreSeparate) {
  // The body yields from a destructor that runs while its own exception
  // unwinds the body (uncaught_exceptions() == 1 there), then finishes the
  // unwinding when resumed; the resumer meanwhile counts its own.
  Generator<int> g([](Yield<int>& yield) {
    struct YieldsWhileUnwinding {
      Yield<int>* yield;
      ~YieldsWhileUnwinding() { (*yield)(std::uncaught_exceptions()); }
    };
    YieldsWhileUnwinding y{&yield};
    throw std::runtime_error("body unwinding");
  });
  ASSERT_TRUE(g.resume());
  EXPECT_EQ(g.value(), 1) << "inside the body, its exception is in flight";
  EXPECT_EQ(std::uncaught_exceptions(), 0) << "the body's in-flight exception leaked out";
  EXPECT_EQ(std::current_exception(), nullptr);

  struct ResumesWhileUnwinding {
    Generator<int>* g;
    int* resumer_count_after;
    bool* threw;
    ~ResumesWhileUnwinding() {
      try {
        g->resume();  // the body finishes unwinding and rethrows here
      } catch (const std::runtime_error& e) {
        *threw = std::string(e.what()) == "body unwinding";
      }
      *resumer_count_after = std::uncaught_exceptions();
    }
  };
  int resumer_count_after = -1;
  bool threw = false;
  try {
    ResumesWhileUnwinding r{&g, &resumer_count_after, &threw};
    throw std::logic_error("resumer unwinding");
  } catch (const std::logic_error& e) {
    EXPECT_STREQ(e.what(), "resumer unwinding");
  }
  EXPECT_TRUE(threw);
  EXPECT_EQ(resumer_count_after, 1) << "the resumer's own in-flight exception was lost";
  EXPECT_EQ(std::uncaught_exceptions(), 0);
  EXPECT_TRUE(g.done());
}

TEST(GeneratorExceptionState, CatchBlockStateFollowsTheBodyAcrossThreads) {
  Generator<std::string> g([](Yield<std::string>& yield) {
    try {
      throw std::runtime_error("mine");
    } catch (...) {
      yield("in handler");
      yield(current_message());
    }
  });
  EXPECT_EQ(*g.next(), "in handler");
  std::string seen;
  std::thread t([&] {
    try {
      throw std::logic_error("other thread's");
    } catch (...) {
      seen = *g.next();
      seen += " | " + current_message();
    }
  });
  t.join();
  EXPECT_EQ(seen, "mine | other thread's");
  EXPECT_EQ(g.next(), std::nullopt);
}

TEST(GeneratorExceptionState, NestedGeneratorsEachKeepTheirOwn) {
  Generator<std::string> outer([](Yield<std::string>& yield) {
    try {
      throw std::runtime_error("outer");
    } catch (...) {
      Generator<std::string> inner([](Yield<std::string>& y) {
        try {
          throw std::runtime_error("inner");
        } catch (...) {
          y(current_message());
          y(current_message());
        }
      });
      yield(*inner.next() + "," + current_message());
      yield(*inner.next() + "," + current_message());
    }
  });
  EXPECT_EQ(*outer.next(), "inner,outer");
  EXPECT_EQ(current_message(), "<none>");
  EXPECT_EQ(*outer.next(), "inner,outer");
}

}  // namespace
