// weft::Generator semantics on a plain thread (no Runtime): values, the
// resume/value/next/iterator interfaces, value categories, stackful yields
// from nested calls, nesting of generators, moves, misuse.
#include "weft/generator.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <memory>
#include <numeric>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/test_util.hpp"
#include "gen/gen_util.hpp"

namespace {

using weft::Generator;
using weft::Yield;
using weft::test::collect;
using weft::test::gen_stack;

// Once for the whole weft_test_gen binary.

static_assert(std::input_iterator<Generator<int>::iterator>);
static_assert(std::ranges::input_range<Generator<int>>);
static_assert(std::ranges::input_range<Generator<std::unique_ptr<int>>>);
static_assert(std::ranges::input_range<Generator<int&>>);
static_assert(std::is_nothrow_move_constructible_v<Generator<int>>);
static_assert(std::is_nothrow_move_assignable_v<Generator<int>>);
static_assert(!std::is_copy_constructible_v<Generator<int>>);
static_assert(!std::is_copy_constructible_v<Yield<int>>);

Generator<int> counter(int from, int to) {
  return Generator<int>([from, to](Yield<int>& yield) {
    for (int i = from; i < to; ++i) yield(i);
  });
}

TEST(Generator, NextYieldsTheSequenceThenNullopt) {
  auto g = counter(0, 10);
  EXPECT_FALSE(g.done());
  for (int i = 0; i < 10; ++i) {
    auto v = g.next();
    ASSERT_TRUE(v.has_value()) << i;
    EXPECT_EQ(*v, i);
    EXPECT_FALSE(g.done()) << "the body has not returned yet";
  }
  EXPECT_EQ(g.next(), std::nullopt);
  EXPECT_TRUE(g.done());
  EXPECT_EQ(g.next(), std::nullopt) << "a finished generator stays finished";
  EXPECT_FALSE(g.resume());
}

TEST(Generator, RangeForVisitsEveryValue) {
  std::vector<int> seen;
  for (int v : counter(3, 8)) seen.push_back(v);
  EXPECT_EQ(seen, (std::vector<int>{3, 4, 5, 6, 7}));
}

TEST(Generator, WorksWithRangesAlgorithms) {
  auto g = counter(1, 6);
  int sum = 0;
  std::ranges::for_each(g, [&](int v) { sum += v; });
  EXPECT_EQ(sum, 15);
  EXPECT_TRUE(g.done());
}

TEST(Generator, BodyStartsAtTheFirstResumeNotAtConstruction) {
  int started = 0;
  Generator<int> g([&](Yield<int>& yield) {
    ++started;
    yield(1);
    ++started;
  });
  EXPECT_EQ(started, 0);
  EXPECT_TRUE(g.resume());
  EXPECT_EQ(started, 1);
  EXPECT_FALSE(g.resume());
  EXPECT_EQ(started, 2);
}

TEST(Generator, ResumeAndValue) {
  auto g = counter(0, 2);
  EXPECT_THROW((void)g.value(), std::logic_error) << "no value before the first resume";
  ASSERT_TRUE(g.resume());
  EXPECT_EQ(g.value(), 0);
  EXPECT_EQ(g.value(), 0) << "value() does not advance";
  ASSERT_TRUE(g.resume());
  EXPECT_EQ(g.value(), 1);
  EXPECT_FALSE(g.resume());
  EXPECT_THROW((void)g.value(), std::logic_error) << "no value after the end";
}

TEST(Generator, ValueIsAnLvalueTheCallerMayModify) {
  Generator<std::string> g([](Yield<std::string>& yield) { yield(std::string("abc")); });
  ASSERT_TRUE(g.resume());
  g.value() += "d";
  EXPECT_EQ(g.value(), "abcd");
}

TEST(Generator, FactoryFunction) {
  auto g = weft::generator<std::string>([](Yield<std::string>& yield) {
    yield("a");  // converts to a std::string temporary
    yield(std::string("b"));
  });
  EXPECT_EQ(collect(g), (std::vector<std::string>{"a", "b"}));
}

TEST(Generator, LocalsPersistAcrossYields) {
  Generator<long> fib([](Yield<long>& yield) {
    long a = 0, b = 1;
    for (;;) {
      yield(a);
      const long next = a + b;
      a = b;
      b = next;
    }
  });
  std::vector<long> first;
  for (long v : fib) {
    if (first.size() == 10) break;
    first.push_back(v);
  }
  EXPECT_EQ(first, (std::vector<long>{0, 1, 1, 2, 3, 5, 8, 13, 21, 34}));
}

TEST(Generator, EmptyGeneratorIsDone) {
  Generator<int> g;
  EXPECT_TRUE(g.done());
  EXPECT_EQ(g.next(), std::nullopt);
  EXPECT_FALSE(g.resume());
  EXPECT_TRUE(g.begin() == g.end());
}

TEST(Generator, BodyThatYieldsNothing) {
  bool ran = false;
  Generator<int> g([&](Yield<int>&) { ran = true; });
  EXPECT_TRUE(g.begin() == g.end());
  EXPECT_TRUE(ran);
  EXPECT_TRUE(g.done());
}

TEST(Generator, BeginContinuesAfterNext) {
  auto g = counter(0, 5);
  EXPECT_EQ(g.next(), 0);
  EXPECT_EQ(g.next(), 1);
  std::vector<int> rest;
  for (int v : g) rest.push_back(v);
  EXPECT_EQ(rest, (std::vector<int>{2, 3, 4}));
}

TEST(Generator, BeginDoesNotSkipAnUnconsumedValue) {
  auto g = counter(0, 3);
  ASSERT_TRUE(g.resume());
  auto it = g.begin();
  EXPECT_EQ(*it, 0);
  auto it2 = g.begin();
  EXPECT_EQ(*it2, 0);
  ++it;
  EXPECT_EQ(*it, 1);
}

TEST(Generator, DereferencingEndThrows) {
  auto g = counter(0, 1);
  auto it = g.begin();
  ++it;
  ASSERT_TRUE(it == g.end());
  EXPECT_THROW((void)*it, std::logic_error);
}

// --- value categories ------------------------------------------------------

struct Counted {
  static inline int copies = 0;
  static inline int moves = 0;
  int v = 0;
  explicit Counted(int x) : v(x) {}
  Counted(const Counted& o) : v(o.v) { ++copies; }
  Counted(Counted&& o) noexcept : v(o.v) { ++moves; }
  Counted& operator=(const Counted&) = delete;
  Counted& operator=(Counted&&) = delete;
};

TEST(Generator, YieldingAnRvalueMakesNoCopy) {
  Counted::copies = 0;
  Counted::moves = 0;
  Generator<Counted> g([](Yield<Counted>& yield) { yield(Counted(7)); });
  ASSERT_TRUE(g.resume());
  EXPECT_EQ(g.value().v, 7);
  EXPECT_EQ(Counted::copies, 0);
  EXPECT_EQ(Counted::moves, 0) << "value() refers to the body's temporary";
  g = Generator<Counted>([](Yield<Counted>& yield) { yield(Counted(8)); });
  auto v = g.next();
  ASSERT_TRUE(v);
  EXPECT_EQ(v->v, 8);
  EXPECT_EQ(Counted::copies, 0);
}

TEST(Generator, YieldingAnLvalueHandsOutACopyNeverTheVariable) {
  std::string kept;
  Generator<std::string> g([&](Yield<std::string>& yield) {
    std::string s = "a long string that does not fit the small buffer";
    yield(s);
    kept = s;  // after the consumer moved from the yielded value
  });
  auto v = g.next();  // moves out of the yielded value
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, "a long string that does not fit the small buffer");
  EXPECT_FALSE(g.resume());
  EXPECT_EQ(kept, "a long string that does not fit the small buffer");
}

TEST(Generator, MoveOnlyValues) {
  Generator<std::unique_ptr<int>> g([](Yield<std::unique_ptr<int>>& yield) {
    for (int i = 0; i < 4; ++i) yield(std::make_unique<int>(i * i));
    auto last = std::make_unique<int>(100);
    yield(std::move(last));
  });
  std::vector<std::unique_ptr<int>> got;
  got.push_back(*g.next());
  for (auto& p : g) got.push_back(std::move(p));  // range-for hands out lvalues
  ASSERT_EQ(got.size(), 5u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(*got[i], i * i);
  EXPECT_EQ(*got[4], 100);
}

TEST(Generator, ConstValueType) {
  Generator<const std::string> g([](Yield<const std::string>& yield) {
    const std::string s = "x";
    yield(s);
    yield(std::string("y"));
  });
  std::vector<std::string> got;
  for (const std::string& s : g) got.push_back(s);
  EXPECT_EQ(got, (std::vector<std::string>{"x", "y"}));
}

TEST(Generator, ReferenceGeneratorHandsOutTheObjects) {
  std::vector<int> data{1, 2, 3};
  Generator<int&> g([&](Yield<int&>& yield) {
    for (int& x : data) yield(x);
  });
  for (int& x : g) x *= 10;
  EXPECT_EQ(data, (std::vector<int>{10, 20, 30}));
}

// --- stackful: yields from nested calls --------------------------------------

struct Node {
  int value;
  std::unique_ptr<Node> left, right;
};

std::unique_ptr<Node> build(int lo, int hi) {  // balanced BST of [lo, hi)
  if (lo >= hi) return nullptr;
  const int mid = lo + (hi - lo) / 2;
  auto n = std::make_unique<Node>();
  n->value = mid;
  n->left = build(lo, mid);
  n->right = build(mid + 1, hi);
  return n;
}

// An ordinary recursive function: it knows nothing about coroutines, it is
// just handed the yield.
void in_order(const Node* n, Yield<int>& yield) {
  if (n == nullptr) return;
  in_order(n->left.get(), yield);
  yield(n->value);
  in_order(n->right.get(), yield);
}

TEST(Generator, YieldsFromRecursiveTreeTraversal) {
  constexpr int kNodes = 5000;
  auto tree = build(0, kNodes);
  Generator<int> g([&](Yield<int>& yield) { in_order(tree.get(), yield); });
  std::vector<int> want(kNodes);
  std::iota(want.begin(), want.end(), 0);
  EXPECT_EQ(collect(g), want);
}

int deep_yield(int depth, Yield<int>& yield) {
  if (depth == 0) return 0;
  yield(depth);
  const int below = deep_yield(depth - 1, yield);
  yield(-depth);  // on the way back up: every frame is still intact
  return below + 1;
}

TEST(Generator, YieldsFromDeepRecursionWithALargerStack) {
  constexpr int kDepth = 5000;
  int returned = -1;
  Generator<int> g([&](Yield<int>& yield) { returned = deep_yield(kDepth, yield); },
                   gen_stack(4 << 20));
  std::vector<int> got = collect(g);
  ASSERT_EQ(got.size(), 2u * kDepth);
  for (int i = 0; i < kDepth; ++i) {
    EXPECT_EQ(got[i], kDepth - i);
    EXPECT_EQ(got[2 * kDepth - 1 - i], -(kDepth - i));
  }
  EXPECT_EQ(returned, kDepth);
}

TEST(Generator, SmallestStackAndNoGuardPage) {
  Generator<int> small([](Yield<int>& y) { y(1); }, gen_stack(16 * 1024));
  EXPECT_EQ(small.next(), 1);
  Generator<int> unguarded([](Yield<int>& y) { y(2); }, gen_stack(64 * 1024, false));
  EXPECT_EQ(unguarded.next(), 2);
}

TEST(Generator, StackSizeOutOfRangeThrows) {
  auto body = [](Yield<int>& y) { y(1); };
  EXPECT_THROW((void)Generator<int>(body, gen_stack(1024)), std::invalid_argument);
  EXPECT_THROW((void)Generator<int>(body, gen_stack(std::size_t{2} << 30)), std::invalid_argument);
}

// --- generators inside generators ------------------------------------------

TEST(Generator, GeneratorDrivenFromAnotherGeneratorsBody) {
  Generator<int> outer([](Yield<int>& yield) {
    for (int round = 0; round < 3; ++round) {
      auto inner = counter(round * 10, round * 10 + 3);
      for (int v : inner) yield(v * 2);
    }
  });
  EXPECT_EQ(collect(outer), (std::vector<int>{0, 2, 4, 20, 22, 24, 40, 42, 44}));
}

// flatten(depth): a chain of `depth` generators, each re-yielding what the one
// below yields plus its own marker.
Generator<int> chain(int depth) {
  return Generator<int>(
      [depth](Yield<int>& yield) {
        if (depth == 0) {
          yield(0);
          return;
        }
        auto below = chain(depth - 1);
        for (int v : below) yield(v);
        yield(depth);
      },
      gen_stack(32 * 1024));
}

TEST(Generator, ChainOfNestedGenerators) {
  auto g = chain(30);
  std::vector<int> want(31);
  std::iota(want.begin(), want.end(), 0);
  EXPECT_EQ(collect(g), want);
}

TEST(Generator, OuterGeneratorHandsOutInnerGeneratorsSuspended) {
  // Generators that are suspended inside a body's frame get passed out: the
  // consumer resumes them after the body that made them moved on.
  Generator<Generator<int>> gens([](Yield<Generator<int>>& yield) {
    for (int i = 0; i < 3; ++i) {
      auto g = counter(i * 100, i * 100 + 3);
      (void)g.next();  // started inside the outer body
      yield(std::move(g));
    }
  });
  std::vector<int> got;
  for (auto& g : gens) {
    for (int v : g) got.push_back(v);
  }
  EXPECT_EQ(got, (std::vector<int>{1, 2, 101, 102, 201, 202}));
}

// --- moves --------------------------------------------------------------------

TEST(Generator, MoveKeepsTheSuspendedBody) {
  auto g = counter(0, 4);
  EXPECT_EQ(g.next(), 0);
  Generator<int> h(std::move(g));
  EXPECT_TRUE(g.done());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(g.next(), std::nullopt);
  ASSERT_TRUE(h.resume());
  EXPECT_EQ(h.value(), 1);
  Generator<int> k;
  k = std::move(h);
  EXPECT_EQ(k.value(), 1) << "the unconsumed value moves along";
  EXPECT_EQ(collect(k), (std::vector<int>{2, 3}));
}

// --- misuse -------------------------------------------------------------------

TEST(Generator, ResumingFromItsOwnBodyThrowsLogicError) {
  Generator<int>* self = nullptr;
  Generator<int> g([&](Yield<int>& yield) {
    try {
      self->resume();
      yield(-1);
    } catch (const std::logic_error&) {
      yield(1);
    }
  });
  self = &g;
  EXPECT_EQ(collect(g), (std::vector<int>{1}));
}

TEST(Generator, YieldOutsideTheBodyThrowsLogicError) {
  Yield<int>* leaked = nullptr;
  Generator<int> g([&](Yield<int>& yield) {
    leaked = &yield;
    yield(1);
    yield(2);
  });
  ASSERT_EQ(g.next(), 1);
  EXPECT_THROW((*leaked)(5), std::logic_error) << "from the resumer, while suspended";
  EXPECT_EQ(g.next(), 2) << "the misuse left the generator intact";
}

TEST(Generator, YieldOfAnOuterGeneratorFromAnInnerBodyThrowsLogicError) {
  Generator<int> outer([](Yield<int>& outer_yield) {
    Generator<int> inner([&](Yield<int>&) {
      outer_yield(99);  // the outer generator is running, but not on this stack
    });
    try {
      inner.resume();
      outer_yield(-1);
    } catch (const std::logic_error&) {
      outer_yield(1);
    }
  });
  EXPECT_EQ(collect(outer), (std::vector<int>{1}));
}

}  // namespace
