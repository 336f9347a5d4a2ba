// weft/parallel.hpp: par_for_each, par_map, par_reduce, par_filter.
//
// Results are compared with sequential runs on random inputs (the seed is
// printed with every failure; WEFT_TEST_SEED=<n> replays one), on 1, 2 and 4
// workers. Then ordering, move-only results, non-commutative reductions,
// exceptions (the one thrown comes out, nothing keeps running), cancellation
// of the caller, callers outside fibers, and evidence that splitting adapts
// (a second worker takes part; one worker spawns nothing).
#include "weft/parallel.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <iterator>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <ranges>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/test_util.hpp"
#include "sched/runtime_impl.hpp"
#include "sched/worker.hpp"
#include "weft/weft.hpp"

// clang 14 cannot compile libstdc++ 12's std::views::iota (a known clang
// bug fixed in clang 16); the iota tests run only where it can.
#if defined(__clang__) && __clang_major__ < 16
#define WEFT_HAVE_IOTA 0
#else
#define WEFT_HAVE_IOTA 1
#endif

namespace weft_par_test {

/// A random-access range whose reference is a prvalue (like iota_view, but
/// clang 14 compiles it). Outside the anonymous namespace: clang would call
/// the hidden friends, only named by concept checks, unneeded there.
class CountingIt {
 public:
  using value_type = long;
  using difference_type = std::ptrdiff_t;
  using iterator_concept = std::random_access_iterator_tag;
  using iterator_category = std::random_access_iterator_tag;
  CountingIt() = default;
  explicit CountingIt(long v) : v_(v) {}
  long operator*() const { return v_; }
  long operator[](difference_type n) const { return v_ + n; }
  CountingIt& operator++() { return ++v_, *this; }
  CountingIt operator++(int) { return CountingIt(v_++); }
  CountingIt& operator--() { return --v_, *this; }
  CountingIt operator--(int) { return CountingIt(v_--); }
  CountingIt& operator+=(difference_type n) { return v_ += n, *this; }
  CountingIt& operator-=(difference_type n) { return v_ -= n, *this; }
  friend CountingIt operator+(CountingIt i, difference_type n) { return CountingIt(i.v_ + n); }
  friend CountingIt operator+(difference_type n, CountingIt i) { return CountingIt(i.v_ + n); }
  friend CountingIt operator-(CountingIt i, difference_type n) { return CountingIt(i.v_ - n); }
  friend difference_type operator-(CountingIt a, CountingIt b) { return a.v_ - b.v_; }
  friend auto operator<=>(const CountingIt&, const CountingIt&) = default;

 private:
  long v_ = 0;
};
struct Counting {
  long lo, hi;
  CountingIt begin() const { return CountingIt(lo); }
  CountingIt end() const { return CountingIt(hi); }
  std::size_t size() const { return static_cast<std::size_t>(hi - lo); }
};
static_assert(std::ranges::random_access_range<Counting> && std::ranges::sized_range<Counting>);

}  // namespace weft_par_test

namespace {

using namespace std::chrono_literals;
using weft::ParOptions;
using weft::Runtime;
using weft::test::eventually;
using weft::test::kPatience;
using weft::test::scaled;
using weft_par_test::Counting;

// ---------------------------------------------------------------------------
// Helpers

/// A seed per test, printed on failure; WEFT_TEST_SEED replays one.
std::uint64_t test_seed() {
  if (const char* s = std::getenv("WEFT_TEST_SEED")) return std::strtoull(s, nullptr, 0);
  std::random_device rd;
  return (std::uint64_t{rd()} << 32) ^ rd();
}

std::string seed_note(std::uint64_t seed) {
  return "seed " + std::to_string(seed) + " (replay: WEFT_TEST_SEED=" + std::to_string(seed) + ")";
}

std::vector<std::uint64_t> random_vector(std::size_t n, std::mt19937_64& rng) {
  std::vector<std::uint64_t> v(n);
  for (auto& x : v) x = rng();
  return v;
}

/// Not idempotent, so an element visited twice (or never) shows.
std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 31;
  x *= 0x9E3779B97F4A7C15ull;
  return x ^ (x >> 29);
}

/// Busy work for about `us` microseconds (a CPU-bound body).
void spin_for(std::chrono::microseconds us) {
  const auto until = std::chrono::steady_clock::now() + us;
  while (std::chrono::steady_clock::now() < until) {
  }
}

/// A grain that is not a power of two, and the sizes around it.
constexpr std::size_t kGrain = 37;
std::vector<std::size_t> sizes() {
  return {0, 1, 2, kGrain - 1, kGrain, kGrain + 1, 2 * kGrain + 1, 1000, 1'000'000};
}

ParOptions grain(std::size_t g) {
  ParOptions o;
  o.grain = g;
  return o;
}

/// Move-only and not default-constructible: par_map's optional path.
class Token {
 public:
  explicit Token(std::uint64_t v) : v_(std::make_unique<std::uint64_t>(v)) {}
  std::uint64_t value() const { return *v_; }

 private:
  std::unique_ptr<std::uint64_t> v_;
};
static_assert(!std::is_default_constructible_v<Token> && !std::is_copy_constructible_v<Token>);

/// 2x2 matrices over Z/2^64: associative, not commutative.
struct Mat {
  std::uint64_t a, b, c, d;
  friend bool operator==(const Mat&, const Mat&) = default;
};
Mat mul(const Mat& x, const Mat& y) {
  return {x.a * y.a + x.b * y.c, x.a * y.b + x.b * y.d, x.c * y.a + x.d * y.c,
          x.c * y.b + x.d * y.d};
}

/// Records the fiber under test (capture()) so that a test can see it is
/// running; cancel() cancels its task's node, like JoinHandle::cancel().
class FiberCanceller {
 public:
  void capture() { fiber_.store(weft::detail::current_fiber(), std::memory_order_release); }
  bool captured() const { return fiber_.load(std::memory_order_acquire) != nullptr; }
  void cancel() { fiber_.load(std::memory_order_acquire)->task->cancel_node().cancel(); }

 private:
  std::atomic<weft::detail::Fiber*> fiber_{nullptr};
};

/// The thrown type of the exception tests: carries which element threw.
struct Boom : std::runtime_error {
  explicit Boom(std::size_t i) : std::runtime_error("boom at " + std::to_string(i)), index(i) {}
  std::size_t index;
};

class Par : public weft::test::WorkersTest {};
WEFT_INSTANTIATE_WORKERS(Par);

// ---------------------------------------------------------------------------
// Results equal sequential results

TEST_P(Par, ForEachMatchesSequential) {
  Runtime rt(config());
  const std::uint64_t seed = test_seed();
  SCOPED_TRACE(seed_note(seed));
  std::mt19937_64 rng(seed);
  for (std::size_t n : sizes()) {
    for (const ParOptions& opts : {grain(kGrain), ParOptions{}}) {
      SCOPED_TRACE("n=" + std::to_string(n) + " grain=" + std::to_string(opts.grain));
      std::vector<std::uint64_t> v = random_vector(n, rng);
      std::vector<std::uint64_t> want = v;
      for (auto& x : want) x = mix(x);
      rt.block_on([&] {
        weft::par_for_each(
            v, [](std::uint64_t& x) { x = mix(x); }, opts);
      });
      ASSERT_EQ(v, want);
    }
  }
  weft::test::expect_no_live_fibers(rt);
}

TEST_P(Par, MapMatchesSequentialInInputOrder) {
  Runtime rt(config());
  const std::uint64_t seed = test_seed();
  SCOPED_TRACE(seed_note(seed));
  std::mt19937_64 rng(seed);
  for (std::size_t n : sizes()) {
    SCOPED_TRACE("n=" + std::to_string(n));
    const std::vector<std::uint64_t> v = random_vector(n, rng);
    std::vector<std::uint64_t> want(n);
    for (std::size_t i = 0; i < n; ++i) want[i] = mix(v[i]) + i;
    const std::uint64_t* base = v.data();
    auto got = rt.block_on([&] {
      // The body sees elements by reference: &x locates it in the input.
      return weft::par_map(
          v, [base](const std::uint64_t& x) { return mix(x) + std::uint64_t(&x - base); },
          grain(kGrain));
    });
    static_assert(std::is_same_v<decltype(got), std::vector<std::uint64_t>>);
    ASSERT_EQ(got, want);
    // Strings: a non-trivial result type, auto grain.
    if (n <= 100'000) {
      auto strs = rt.block_on(
          [&] { return weft::par_map(v, [](std::uint64_t x) { return std::to_string(x); }); });
      ASSERT_EQ(strs.size(), n);
      for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(strs[i], std::to_string(v[i])) << "i=" << i;
    }
  }
}

TEST_P(Par, ReduceMatchesSequential) {
  Runtime rt(config());
  const std::uint64_t seed = test_seed();
  SCOPED_TRACE(seed_note(seed));
  std::mt19937_64 rng(seed);
  for (std::size_t n : sizes()) {
    SCOPED_TRACE("n=" + std::to_string(n));
    const std::vector<std::uint64_t> v = random_vector(n, rng);
    const std::uint64_t init = rng();
    const std::uint64_t want = std::accumulate(v.begin(), v.end(), init);
    const std::uint64_t got = rt.block_on(
        [&] { return weft::par_reduce(v, init, std::plus<std::uint64_t>{}, grain(kGrain)); });
    ASSERT_EQ(got, want);
    const std::uint64_t got_auto =
        rt.block_on([&] { return weft::par_reduce(v, init, std::plus<std::uint64_t>{}); });
    ASSERT_EQ(got_auto, want);
  }
}

TEST_P(Par, FilterMatchesSequentialInInputOrder) {
  Runtime rt(config());
  const std::uint64_t seed = test_seed();
  SCOPED_TRACE(seed_note(seed));
  std::mt19937_64 rng(seed);
  for (std::size_t n : sizes()) {
    for (const ParOptions& opts : {grain(kGrain), ParOptions{}}) {
      SCOPED_TRACE("n=" + std::to_string(n) + " grain=" + std::to_string(opts.grain));
      const std::vector<std::uint64_t> v = random_vector(n, rng);
      const std::uint64_t modulus = 1 + rng() % 5;  // keep ~1/modulus
      auto keep = [modulus](std::uint64_t x) { return x % modulus == 0; };
      std::vector<std::uint64_t> want;
      for (auto x : v)
        if (keep(x)) want.push_back(x);
      auto got = rt.block_on([&] { return weft::par_filter(v, keep, opts); });
      ASSERT_EQ(got, want);
    }
  }
}

// A long random run of every algorithm on one random size and grain.
TEST_P(Par, RandomSizesAndGrains) {
  Runtime rt(config());
  const std::uint64_t seed = test_seed();
  SCOPED_TRACE(seed_note(seed));
  std::mt19937_64 rng(seed);
  const int rounds = static_cast<int>(scaled(40, 8));
  for (int r = 0; r < rounds; ++r) {
    const std::size_t n = rng() % 20'000;
    const std::size_t g = 1 + rng() % 300;
    SCOPED_TRACE("round " + std::to_string(r) + " n=" + std::to_string(n) +
                 " grain=" + std::to_string(g));
    std::vector<std::uint64_t> v = random_vector(n, rng);
    std::vector<std::uint64_t> mapped(n);
    std::vector<std::uint64_t> kept;
    for (std::size_t i = 0; i < n; ++i) {
      mapped[i] = mix(v[i]);
      if (v[i] & 1) kept.push_back(v[i]);
    }
    const std::uint64_t xored = std::accumulate(v.begin(), v.end(), std::uint64_t{0},
                                                [](auto a, auto b) { return a ^ mix(b); });
    rt.block_on([&] {
      EXPECT_EQ(weft::par_map(v, mix, grain(g)), mapped);
      EXPECT_EQ(weft::par_filter(
                    v, [](std::uint64_t x) { return (x & 1) != 0; }, grain(g)),
                kept);
      EXPECT_EQ(weft::par_reduce(
                    weft::par_map(v, mix, grain(g)), std::uint64_t{0},
                    [](std::uint64_t a, std::uint64_t b) { return a ^ b; }, grain(g)),
                xored);
    });
    if (HasFailure()) return;
  }
}

// ---------------------------------------------------------------------------
// Ranges, result types, ordering of the reduction

TEST_P(Par, AcceptsArraysSpansDequesAndValueRanges) {
  Runtime rt(config());
  rt.block_on([] {
    std::array<int, 100> arr{};
    weft::par_for_each(
        arr, [](int& x) { x = 7; }, grain(3));
    EXPECT_EQ(std::count(arr.begin(), arr.end(), 7), 100);

    std::vector<int> backing(500);
    std::iota(backing.begin(), backing.end(), 0);
    std::span<int> sp(backing);
    weft::par_for_each(
        sp.subspan(100, 300), [](int& x) { x = -x; }, grain(7));
    for (int i = 0; i < 500; ++i) {
      ASSERT_EQ(backing[i], (i >= 100 && i < 400) ? -i : i) << "i=" << i;
    }

    std::deque<int> dq(1000, 2);
    EXPECT_EQ(weft::par_reduce(dq, 0, std::plus<int>{}, grain(10)), 2000);

    // prvalue references: elements are values.
    const Counting c{10, 5010};
    auto squares = weft::par_map(
        c, [](long x) { return x * x; }, grain(9));
    ASSERT_EQ(squares.size(), 5000u);
    for (long i = 0; i < 5000; ++i) ASSERT_EQ(squares[i], (i + 10) * (i + 10));
    auto evens = weft::par_filter(
        c, [](long x) { return x % 2 == 0; }, grain(9));
    ASSERT_EQ(evens.size(), 2500u);
    for (std::size_t i = 0; i < evens.size(); ++i) ASSERT_EQ(evens[i], 10 + 2 * long(i));
    EXPECT_EQ(weft::par_reduce(c, 0L, std::plus<long>{}, grain(9)), (10 + 5009) * 5000L / 2);

#if WEFT_HAVE_IOTA
    auto odd = weft::par_filter(std::views::iota(0, 1000), [](int i) { return i % 2 == 1; });
    ASSERT_EQ(odd.size(), 500u);
    for (int i = 0; i < 500; ++i) ASSERT_EQ(odd[i], 2 * i + 1);
    EXPECT_EQ(weft::par_reduce(std::views::iota(1, 101), 0, std::plus<int>{}, grain(3)), 5050);
#endif
  });
}

TEST_P(Par, MapMoveOnlyResults) {
  Runtime rt(config());
  const std::uint64_t seed = test_seed();
  SCOPED_TRACE(seed_note(seed));
  std::mt19937_64 rng(seed);
  const std::vector<std::uint64_t> v = random_vector(50'000, rng);
  rt.block_on([&] {
    // Default-constructible move-only: assigned in place.
    auto ptrs = weft::par_map(
        v, [](std::uint64_t x) { return std::make_unique<std::uint64_t>(x); }, grain(kGrain));
    static_assert(std::is_same_v<decltype(ptrs), std::vector<std::unique_ptr<std::uint64_t>>>);
    ASSERT_EQ(ptrs.size(), v.size());
    for (std::size_t i = 0; i < v.size(); ++i) ASSERT_EQ(*ptrs[i], v[i]) << "i=" << i;
    // Neither default-constructible nor copyable: through optional slots.
    auto tokens = weft::par_map(
        v, [](std::uint64_t x) { return Token(x); }, grain(kGrain));
    ASSERT_EQ(tokens.size(), v.size());
    for (std::size_t i = 0; i < v.size(); ++i) ASSERT_EQ(tokens[i].value(), v[i]) << "i=" << i;
    // bool: vector<bool> packs bits, so it must not be written in parallel.
    auto odd = weft::par_map(
        v, [](std::uint64_t x) { return (x & 1) != 0; }, grain(3));
    ASSERT_EQ(odd.size(), v.size());
    for (std::size_t i = 0; i < v.size(); ++i) ASSERT_EQ(odd[i], (v[i] & 1) != 0) << "i=" << i;
  });
}

// Concatenation: the result shows the exact order of every operand, and
// init must appear once, leftmost.
TEST_P(Par, ReduceCombinesInOrderWithoutCommutativity) {
  Runtime rt(config());
  const std::uint64_t seed = test_seed();
  SCOPED_TRACE(seed_note(seed));
  std::mt19937_64 rng(seed);
  for (std::size_t n :
       {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{100}, std::size_t{5000}}) {
    for (std::size_t g : {std::size_t{1}, std::size_t{3}, std::size_t{64}}) {
      SCOPED_TRACE("n=" + std::to_string(n) + " grain=" + std::to_string(g));
      std::vector<std::string> words(n);
      for (auto& w : words) w = std::string(1 + rng() % 3, static_cast<char>('a' + rng() % 26));
      std::string want = "<init>";
      for (const auto& w : words) want += w + ",";
      auto concat = [](std::string a, const std::string& b) { return std::move(a) + b; };
      std::vector<std::string> terms(n);
      for (std::size_t i = 0; i < n; ++i) terms[i] = words[i] + ",";
      const std::string got = rt.block_on(
          [&] { return weft::par_reduce(terms, std::string("<init>"), concat, grain(g)); });
      ASSERT_EQ(got, want);
    }
  }
  // 2x2 matrix products: random matrices almost never commute.
  for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{1000}, std::size_t{100'000}}) {
    SCOPED_TRACE("matrices n=" + std::to_string(n));
    std::vector<Mat> ms(n);
    for (auto& m : ms) m = {rng(), rng(), rng(), rng()};
    const Mat init{rng(), rng(), rng(), rng()};
    Mat want = init;
    for (const auto& m : ms) want = mul(want, m);
    const Mat got = rt.block_on([&] { return weft::par_reduce(ms, init, mul, grain(5)); });
    ASSERT_EQ(got, want);
  }
}

// ---------------------------------------------------------------------------
// Exceptions

// One element throws. That exception (the same object type and index) comes
// out; when the call has returned no body is running and none starts later;
// far fewer elements than all ran; and every helper fiber ends.
TEST_P(Par, FirstExceptionIsRethrownAndEverythingIsJoined) {
  Runtime rt(config());
  const std::uint64_t seed = test_seed();
  SCOPED_TRACE(seed_note(seed));
  std::mt19937_64 rng(seed);
  const std::size_t n = static_cast<std::size_t>(scaled(20'000, 4'000));
  // First element (the root leaf), last element (a helper when there are
  // several workers), a random one.
  for (std::size_t bad : {std::size_t{0}, n - 1, static_cast<std::size_t>(rng() % n)}) {
    SCOPED_TRACE("throwing element " + std::to_string(bad));
    std::atomic<std::size_t> processed{0}, in_body{0};
    bool caught = false;
    rt.block_on([&] {
      try {
        weft::par_for_each(
            Counting{0, static_cast<long>(n)},
            [&](long i) {
              in_body.fetch_add(1);
              spin_for(20us);
              processed.fetch_add(1);
              in_body.fetch_sub(1);
              if (static_cast<std::size_t>(i) == bad) throw Boom(bad);
            },
            grain(8));
      } catch (const Boom& b) {
        caught = true;
        EXPECT_EQ(b.index, bad);
        EXPECT_EQ(in_body.load(), 0u) << "a body still runs after par_for_each threw";
      }
      const std::size_t at_return = processed.load();
      weft::this_fiber::sleep_for(20ms);
      EXPECT_EQ(processed.load(), at_return) << "elements ran after par_for_each threw";
      // The root leaf offers the upper half before its first grain, so
      // when element 0 throws at most that half can have run.
      if (bad == 0) {
        EXPECT_LE(at_return, n / 2 + 8) << "the failure did not stop the others";
      }
      EXPECT_TRUE(eventually([&] { return rt.stats().fibers_alive == 1; }))
          << "fibers_alive = " << rt.stats().fibers_alive << " (want only the caller)";
    });
    EXPECT_TRUE(caught) << "par_for_each did not throw";
  }
  weft::test::expect_no_live_fibers(rt);
}

// The failure must stop the *other* leaves too, not only the one that threw:
// element 0 (the root's first grain) throws once a helper runs, and from then
// on each leaf may finish the grain it is in, plus one more if it passed its
// check just before the throw.
TEST_P(Par, AFailureStopsTheOtherLeaves) {
  if (workers() == 1) GTEST_SKIP() << "needs a helper fiber on another worker";
  Runtime rt(config());
  const long n = scaled(40'000, 8'000);
  constexpr std::size_t kG = 8;
  std::atomic<bool> helper_started{false}, thrown{false};
  std::atomic<long> started_after{0};
  std::uint64_t spawned = 0;
  bool caught = false;
  const auto give_up = std::chrono::steady_clock::now() + kPatience / 3;
  rt.block_on([&] {
    const std::uint64_t before = rt.stats().fibers_spawned;
    try {
      weft::par_for_each(
          Counting{0, n},
          [&](long i) {
            if (thrown.load()) started_after.fetch_add(1);
            if (i == 0) {
              while (!helper_started.load() && std::chrono::steady_clock::now() < give_up) {
              }
              thrown.store(true);
              throw Boom(0);
            }
            helper_started.store(true);  // the root's first grain is [0, kG): a helper
            spin_for(10us);
          },
          grain(kG));
    } catch (const Boom&) {
      caught = true;
    }
    spawned = rt.stats().fibers_spawned - before;
  });
  EXPECT_TRUE(caught);
  EXPECT_TRUE(helper_started.load()) << "no helper ran (the test proves nothing then)";
  EXPECT_LE(started_after.load(), static_cast<long>(2 * kG * (spawned + 1)))
      << "leaves kept going after the failure (" << spawned << " helpers)";
  RecordProperty("started_after_throw", static_cast<int>(started_after.load()));
}

// Two failures in a known order: the first one recorded is rethrown. The
// root throws Boom(0) while a helper is inside its grain; the helper throws
// only once the caller has parked in its join, which it does after its
// leaf recorded Boom(0) (read through the fiber's internal park state).
TEST_P(Par, TheFirstExceptionWins) {
  if (workers() == 1) GTEST_SKIP() << "needs a helper fiber on another worker";
  Runtime rt(config());
  std::atomic<weft::detail::Fiber*> caller{nullptr};
  std::atomic<bool> second_ready{false}, claimed{false}, saw_park{false};
  std::size_t got = 12345;
  const auto give_up = std::chrono::steady_clock::now() + kPatience / 3;
  auto caller_parked = [&] {
    const auto s = caller.load()->park.load();
    return s == weft::detail::kParking || s == weft::detail::kParked;
  };
  rt.block_on([&] {
    caller.store(weft::detail::current_fiber());
    try {
      weft::par_for_each(
          Counting{0, 10'000},
          [&](long i) {
            if (i == 0) {
              while (!second_ready.load() && std::chrono::steady_clock::now() < give_up) {
              }
              throw Boom(0);
            }
            if (!claimed.exchange(true)) {  // the first element a helper runs
              second_ready.store(true);
              while (!caller_parked() && std::chrono::steady_clock::now() < give_up) {
              }
              saw_park.store(caller_parked());
              throw Boom(static_cast<std::size_t>(i));
            }
            spin_for(5us);
          },
          grain(8));
    } catch (const Boom& b) {
      got = b.index;
    }
  });
  EXPECT_TRUE(saw_park.load()) << "the caller never parked in its join";
  EXPECT_EQ(got, 0u) << "a later exception replaced the first one";
}

// Every element throws: exactly one exception comes out, one of the thrown.
TEST_P(Par, ManyThrowersOneException) {
  Runtime rt(config());
  rt.block_on([&] {
    for (int round = 0; round < 20; ++round) {
      try {
        weft::par_for_each(
            Counting{0, 5000}, [](long i) { throw Boom(std::size_t(i)); }, grain(1));
        ADD_FAILURE() << "no exception";
      } catch (const Boom& b) {
        EXPECT_LT(b.index, 5000u);
      }
    }
  });
  weft::test::expect_no_live_fibers(rt);
}

TEST_P(Par, ExceptionsFromMapReduceAndFilter) {
  Runtime rt(config());
  rt.block_on([&] {
    const Counting c{0, 20'000};
    // Move-only results already made are destroyed (ASan checks the leak).
    EXPECT_THROW(weft::par_map(
                     c,
                     [](long i) {
                       if (i == 12'345) throw Boom(12'345);
                       return Token(std::uint64_t(i));
                     },
                     grain(16)),
                 Boom);
    EXPECT_THROW(weft::par_map(
                     c,
                     [](long i) {
                       if (i == 19'999) throw Boom(19'999);
                       return std::make_unique<long>(i);
                     },
                     grain(16)),
                 Boom);
    EXPECT_THROW(weft::par_reduce(
                     c, 0L,
                     [](long a, long b) {
                       // A leaf starts from its first element without
                       // op, so make a whole span of elements throw.
                       if (b >= 15'000 && b < 15'100) throw Boom(15'000);
                       return a + b;
                     },
                     grain(16)),
                 Boom);
    EXPECT_THROW(weft::par_filter(
                     c,
                     [](long i) {
                       if (i == 777) throw Boom(777);
                       return i % 2 == 0;
                     },
                     grain(16)),
                 Boom);
  });
  weft::test::expect_no_live_fibers(rt);
}

// ---------------------------------------------------------------------------
// Cancellation

// The calling fiber is cancelled while the bodies run: par_for_each throws
// weft::Cancelled, stops early, and only after every body has returned.
// Driven through JoinHandle::cancel() of the caller.
TEST_P(Par, CancellingTheCallerStopsAndJoins) {
  Runtime rt(config());
  const long n = 100'000;
  FiberCanceller victim;
  std::atomic<bool> sent{false};
  std::atomic<long> processed{0}, in_body{0}, in_body_at_throw{-1};
  std::atomic<bool> cancelled{false};
  auto caller = rt.spawn([&] {
    victim.capture();
    try {
      weft::par_for_each(
          Counting{0, n},
          [&](long) {
            in_body.fetch_add(1);
            processed.fetch_add(1);
            // Until the cancel is sent every body waits, so the caller is
            // provably inside par_for_each when it is cancelled; then the
            // body keeps running a little, so that returning early would
            // leave bodies running.
            while (!sent.load()) weft::this_fiber::yield();
            spin_for(200us);
            in_body.fetch_sub(1);
          },
          grain(1));
    } catch (const weft::Cancelled&) {
      cancelled.store(true);
      in_body_at_throw.store(in_body.load());
    }
  });
  ASSERT_TRUE(eventually([&] { return victim.captured() && processed.load() > 0; }));
  caller.cancel();
  sent.store(true);
  caller.join();
  EXPECT_TRUE(cancelled.load()) << "par_for_each did not throw Cancelled";
  EXPECT_EQ(in_body_at_throw.load(), 0) << "Cancelled was thrown while bodies still ran";
  EXPECT_LT(processed.load(), 1000) << "leaves did not stop at the next grain";
  weft::test::expect_no_live_fibers(rt);
}

// A fiber whose cancellation is already pending gets Cancelled at once.
TEST_P(Par, AlreadyCancelledCallerRunsNothing) {
  Runtime rt(config());
  std::atomic<long> ran{0};
  std::atomic<bool> cancelled{false};
  rt.block_on([&] {
    auto h = weft::spawn([&] {
      weft::CancellationSource source;
      source.cancel();
      try {
        weft::with_cancellation(source.token(), [&] {
          weft::par_for_each(Counting{0, 1000}, [&](long) { ran.fetch_add(1); });
        });
      } catch (const weft::Cancelled&) {
        cancelled.store(true);
      }
    });
    h.join();
  });
  EXPECT_TRUE(cancelled.load());
  EXPECT_EQ(ran.load(), 0);
}

// Public path: destroying the Runtime cancels every fiber, the caller of a
// long par_for_each included; it throws Cancelled having done little.
TEST_P(Par, RuntimeShutdownCancelsALongCall) {
  const long n = 1'000'000;  // ~20 s of spinning if nothing stopped it
  std::atomic<long> processed{0};
  std::atomic<bool> cancelled{false};
  {
    Runtime rt(config());
    rt.spawn([&] {
        try {
          weft::par_for_each(
              Counting{0, n},
              [&](long) {
                spin_for(20us);
                processed.fetch_add(1);
              },
              grain(4));
        } catch (const weft::Cancelled&) {
          cancelled.store(true);
        }
      }).detach();
    ASSERT_TRUE(eventually([&] { return processed.load() > 100; }));
  }  // ~Runtime: cancels the caller, waits for every fiber
  EXPECT_TRUE(cancelled.load());
  EXPECT_LT(processed.load(), n);
}

// ---------------------------------------------------------------------------
// Callers outside fibers

TEST_P(Par, FromAPlainThreadWithARuntime) {
  Runtime rt(config());
  const std::uint64_t seed = test_seed();
  SCOPED_TRACE(seed_note(seed));
  std::mt19937_64 rng(seed);
  std::vector<std::uint64_t> v = random_vector(200'000, rng);
  std::vector<std::uint64_t> want = v;
  for (auto& x : want) x = mix(x);
  std::set<int> workers_seen;
  std::mutex mu;
  weft::par_for_each(rt, v, [&](std::uint64_t& x) {
    x = mix(x);
    const int w = weft::this_fiber::worker_index();
    if (w < 0) throw std::logic_error("body ran outside the runtime's workers");
    std::lock_guard g(mu);
    workers_seen.insert(w);
  });
  EXPECT_EQ(v, want);
  EXPECT_FALSE(workers_seen.empty());
  EXPECT_EQ(weft::par_map(rt, v, [](std::uint64_t x) { return x / 2; })[7], v[7] / 2);
  EXPECT_EQ(weft::par_reduce(rt, v, std::uint64_t{1}, std::plus<std::uint64_t>{}),
            std::accumulate(v.begin(), v.end(), std::uint64_t{1}));
  EXPECT_EQ(weft::par_filter(rt, v, [](std::uint64_t) { return true; }), v);
  // Exceptions cross to the thread too.
  EXPECT_THROW(weft::par_for_each(rt, Counting{0, 100},
                                  [](long i) {
                                    if (i == 50) throw Boom(50);
                                  }),
               Boom);
  weft::test::expect_no_live_fibers(rt);
}

TEST_P(Par, FromABlockingThreadUsesTheCurrentRuntime) {
  Runtime rt(config());
  const long sum = rt.block_on([] {
    return weft::spawn_blocking([] {
             return weft::par_reduce(Counting{0, 100'000}, 0L, std::plus<long>{});
           })
        .join();
  });
  EXPECT_EQ(sum, 99'999L * 100'000L / 2);
}

TEST(ParOutside, WithoutARuntimeItThrowsLogicError) {
  std::vector<int> v(10);
  EXPECT_THROW(weft::par_for_each(v, [](int&) {}), std::logic_error);
  EXPECT_THROW(weft::par_map(v, [](int x) { return x; }), std::logic_error);
  EXPECT_THROW(weft::par_reduce(v, 0, std::plus<int>{}), std::logic_error);
  EXPECT_THROW(weft::par_filter(v, [](int) { return true; }), std::logic_error);
  std::vector<int> empty;
  EXPECT_THROW(weft::par_for_each(empty, [](int&) {}), std::logic_error)
      << "the check does not depend on the size";
}

TEST(ParOutside, FiberOfAnotherRuntimeWithARuntime) {
  Runtime a(weft::test::workers_config(1));
  Runtime b(weft::test::workers_config(2));
  const long sum = a.block_on([&] {
    return weft::par_reduce(b, Counting{0, 10'000}, 0L, [](long x, long y) {
      if (weft::this_fiber::worker_index() < 0) throw std::logic_error("not on a worker");
      return x + y;
    });
  });
  EXPECT_EQ(sum, 9'999L * 10'000L / 2);
}

TEST(ParOutside, BadStackSizeIsInvalidArgument) {
  Runtime rt(weft::test::workers_config(2));
  ParOptions o;
  o.stack_size = 1024;
  std::vector<int> v(100);
  EXPECT_THROW(weft::par_for_each(
                   rt, v, [](int&) {}, o),
               std::invalid_argument);
}

// ---------------------------------------------------------------------------
// Adaptive splitting

// Two workers, a CPU-bound body: the second worker takes part. Each body
// waits (bounded) until both workers have run one, so a runtime that never
// split would fail instead of racing through.
TEST(ParSplitting, BothWorkersRunElements) {
  Runtime rt(weft::test::workers_config(2));
  const std::size_t n = 2000;
  std::vector<int> where(n, -1);
  std::atomic<unsigned> seen{0};
  const auto give_up = std::chrono::steady_clock::now() + kPatience / 3;
  rt.block_on([&] {
    weft::par_for_each(
        Counting{0, static_cast<long>(n)},
        [&](long i) {
          const int w = weft::this_fiber::worker_index();
          where[static_cast<std::size_t>(i)] = w;
          seen.fetch_or(1u << w);
          while (seen.load() != 3u && std::chrono::steady_clock::now() < give_up) {
          }
          spin_for(5us);
        },
        grain(4));
  });
  std::array<std::size_t, 2> per_worker{};
  for (int w : where) {
    ASSERT_TRUE(w == 0 || w == 1) << "an element did not run (or ran off the workers)";
    ++per_worker[static_cast<std::size_t>(w)];
  }
  EXPECT_GT(per_worker[0], 0u);
  EXPECT_GT(per_worker[1], 0u);
  RecordProperty("elements_on_worker_0", static_cast<int>(per_worker[0]));
  RecordProperty("elements_on_worker_1", static_cast<int>(per_worker[1]));
}

// One worker: nobody could steal, so a fiber caller splits nothing, even
// with the smallest grain.
TEST(ParSplitting, OneWorkerSpawnsNoFibers) {
  Runtime rt(weft::test::workers_config(1));
  rt.block_on([&] {
    const std::uint64_t before = rt.stats().fibers_spawned;
    std::vector<std::uint64_t> v(100'000, 3);
    weft::par_for_each(
        v, [](std::uint64_t& x) { x = mix(x); }, grain(1));
    auto m = weft::par_map(v, mix, grain(1));
    (void)weft::par_reduce(m, std::uint64_t{0}, std::plus<std::uint64_t>{}, grain(1));
    const std::uint64_t spawned = rt.stats().fibers_spawned - before;
    EXPECT_EQ(spawned, 0u) << "fibers spawned on a one-worker runtime";
  });
  // From a plain thread: only the root fiber.
  const std::uint64_t before = rt.stats().fibers_spawned;
  std::vector<std::uint64_t> v(100'000, 3);
  weft::par_for_each(
      rt, v, [](std::uint64_t& x) { x = mix(x); }, grain(1));
  EXPECT_EQ(rt.stats().fibers_spawned - before, 1u);
}

// Several workers, smallest grain: lazy splitting spawns far fewer fibers
// than grains (eager splitting would spawn about one per grain).
TEST_P(Par, SpawnsFarFewerFibersThanGrains) {
  Runtime rt(config());
  const long n = 20'000;
  const std::uint64_t spawned = rt.block_on([&] {
    const std::uint64_t before = rt.stats().fibers_spawned;
    std::atomic<long> sum{0};
    weft::par_for_each(
        Counting{0, n},
        [&](long i) {
          spin_for(1us);
          sum.fetch_add(i, std::memory_order_relaxed);
        },
        grain(1));
    EXPECT_EQ(sum.load(), (n - 1) * n / 2);
    return rt.stats().fibers_spawned - before;
  });
  RecordProperty("fibers_spawned", static_cast<int>(spawned));
  EXPECT_LT(spawned, static_cast<std::uint64_t>(n / 8));
  if (workers() == 1) {
    EXPECT_EQ(spawned, 0u);
  }
}

// max_fibers bounds the fibers working at once (1: the caller alone).
TEST_P(Par, MaxFibersBoundsConcurrency) {
  Runtime rt(config());
  for (std::size_t cap : {std::size_t{1}, std::size_t{2}}) {
    SCOPED_TRACE("max_fibers=" + std::to_string(cap));
    std::atomic<int> running{0}, most{0};
    std::set<weft::FiberId> ids;
    std::mutex mu;
    ParOptions o;
    o.grain = 1;
    o.max_fibers = cap;
    const weft::FiberId caller = rt.block_on([&] {
      weft::par_for_each(
          Counting{0, 400},
          [&](long) {
            const int now = running.fetch_add(1) + 1;
            int m = most.load();
            while (now > m && !most.compare_exchange_weak(m, now)) {
            }
            {
              std::lock_guard g(mu);
              ids.insert(weft::this_fiber::id());
            }
            spin_for(50us);
            running.fetch_sub(1);
          },
          o);
      return weft::this_fiber::id();
    });
    EXPECT_LE(most.load(), static_cast<int>(cap));
    if (cap == 1) {
      EXPECT_EQ(ids, std::set<weft::FiberId>{caller}) << "max_fibers=1 must run on the caller";
    }
  }
}

// ---------------------------------------------------------------------------
// Bodies that park, nested calls

TEST_P(Par, BodiesMayParkAndNest) {
  Runtime rt(config());
  rt.block_on([&] {
    // Parking bodies (a sleep every 50 elements).
    auto got = weft::par_map(
        Counting{0, 2000},
        [](long i) {
          if (i % 50 == 0) weft::this_fiber::sleep_for(100us);
          return i * 3;
        },
        grain(5));
    for (long i = 0; i < 2000; ++i) ASSERT_EQ(got[i], i * 3);
    // Nested: a par_reduce inside every par_map body.
    auto sums = weft::par_map(
        Counting{0, 64},
        [](long i) {
          return weft::par_reduce(Counting{0, i * 100}, 0L, std::plus<long>{}, grain(7));
        },
        grain(1));
    for (long i = 0; i < 64; ++i) ASSERT_EQ(sums[i], (i * 100 - 1) * (i * 100) / 2) << "i=" << i;
  });
  weft::test::expect_no_live_fibers(rt);
}

}  // namespace
