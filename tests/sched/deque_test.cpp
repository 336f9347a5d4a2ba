// Unit tests of the bounded Chase-Lev deque (src/sched/deque.hpp): owner
// push/pop at the bottom, thieves steal from the top; every item is taken
// exactly once even under concurrent stealing. The two roles are two types.
#include "sched/deque.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "common/test_util.hpp"

namespace {

using weft::detail::ChaseLevDeque;

// Roles are types: a thief's handle cannot push or pop, the owner's does not
// steal, and the deque itself offers no operation but its two handles.
using Deque = ChaseLevDeque<int*, 8>;
template <class H>
concept CanPush = requires(H h, int* p) {
  h.push(p);
};
template <class H>
concept CanPop = requires(H h) {
  h.pop();
};
template <class H>
concept CanSteal = requires(H h) {
  h.steal();
};
static_assert(CanPush<Deque::Owner> && CanPop<Deque::Owner> && !CanSteal<Deque::Owner>);
static_assert(CanSteal<Deque::Stealer> && !CanPush<Deque::Stealer> && !CanPop<Deque::Stealer>);
static_assert(!CanPush<Deque&> && !CanPop<Deque&> && !CanSteal<Deque&>);

TEST(ChaseLevDeque, StartsEmpty) {
  ChaseLevDeque<int*, 8> d;
  EXPECT_TRUE(d.stealer().empty());
  EXPECT_EQ(d.stealer().size(), 0u);
  EXPECT_EQ(d.owner().pop(), nullptr);
  EXPECT_EQ(d.stealer().steal(), nullptr);
}

TEST(ChaseLevDeque, OwnerPopIsLifoStealIsFifo) {
  int items[6];
  ChaseLevDeque<int*, 8> d;
  for (int& i : items) ASSERT_TRUE(d.owner().push(&i));
  EXPECT_EQ(d.stealer().size(), 6u);
  EXPECT_EQ(d.owner().pop(), &items[5]);
  EXPECT_EQ(d.owner().pop(), &items[4]);
  EXPECT_EQ(d.stealer().steal(), &items[0]);
  EXPECT_EQ(d.stealer().steal(), &items[1]);
  EXPECT_EQ(d.stealer().size(), 2u);
  EXPECT_EQ(d.owner().pop(), &items[3]);
  EXPECT_EQ(d.stealer().steal(), &items[2]);
  EXPECT_EQ(d.owner().pop(), nullptr);
  EXPECT_EQ(d.stealer().steal(), nullptr);
  EXPECT_TRUE(d.stealer().empty());
}

TEST(ChaseLevDeque, PushFailsWhenFullAndRecoversAfterwards) {
  constexpr std::size_t kCap = 8;
  std::vector<int> items(kCap + 1);
  ChaseLevDeque<int*, kCap> d;
  for (std::size_t i = 0; i < kCap; ++i) ASSERT_TRUE(d.owner().push(&items[i])) << i;
  EXPECT_FALSE(d.owner().push(&items[kCap])) << "push into a full deque must fail";
  EXPECT_EQ(d.stealer().size(), kCap);
  EXPECT_EQ(d.stealer().steal(), &items[0]);
  EXPECT_TRUE(d.owner().push(&items[kCap])) << "a slot freed by steal must be reusable";
  EXPECT_EQ(d.owner().pop(), &items[kCap]);
  for (std::size_t i = kCap - 1; i >= 1; --i) EXPECT_EQ(d.owner().pop(), &items[i]);
  EXPECT_TRUE(d.stealer().empty());
}

TEST(ChaseLevDeque, WrapsAroundManyTimes) {
  constexpr std::size_t kCap = 4;
  std::vector<int> items(1000);
  ChaseLevDeque<int*, kCap> d;
  std::size_t next_in = 0, next_steal = 0;
  // Keep 3 items inside while indices run far past the capacity.
  for (; next_in < 3; ++next_in) ASSERT_TRUE(d.owner().push(&items[next_in]));
  while (next_in < items.size()) {
    ASSERT_TRUE(d.owner().push(&items[next_in++]));
    ASSERT_EQ(d.stealer().steal(), &items[next_steal++]);
  }
  EXPECT_EQ(d.owner().pop(), &items[999]);
  EXPECT_EQ(d.owner().pop(), &items[998]);
  EXPECT_EQ(d.owner().pop(), &items[997]);
  EXPECT_EQ(d.owner().pop(), nullptr);
}

/// One owner pushing (and popping some back), `thieves` threads stealing.
/// Every item must be taken exactly once, by the owner or by one thief.
template <std::size_t Cap>
void owner_and_thieves(int thieves, std::size_t total) {
  std::vector<int> items(total);
  std::unique_ptr<std::atomic<int>[]> taken(new std::atomic<int>[total]);
  for (std::size_t i = 0; i < total; ++i) taken[i].store(0, std::memory_order_relaxed);
  auto take = [&](int* p) {
    const auto idx = static_cast<std::size_t>(p - items.data());
    taken[idx].fetch_add(1, std::memory_order_relaxed);
  };
  ChaseLevDeque<int*, Cap> d;
  std::atomic<bool> owner_done{false};
  std::atomic<std::size_t> stolen{0};
  std::atomic<int> ready{0};

  std::vector<std::thread> ts;
  for (int t = 0; t < thieves; ++t) {
    ts.emplace_back([&] {
      ++ready;
      while (ready.load() < thieves + 1) {
      }
      for (;;) {
        // Read the flag before stealing: if the owner was done and the deque
        // is then seen empty, nothing can appear any more.
        const bool done = owner_done.load(std::memory_order_acquire);
        if (int* p = d.stealer().steal()) {
          take(p);
          stolen.fetch_add(1, std::memory_order_relaxed);
        } else if (done && d.stealer().empty()) {
          return;
        }
      }
    });
  }
  ++ready;
  while (ready.load() < thieves + 1) {
  }
  std::size_t popped = 0;
  std::mt19937 rng(99);
  for (std::size_t i = 0; i < total; ++i) {
    while (!d.owner().push(&items[i])) {
      // Full: take one back ourselves (the runtime moves work elsewhere).
      if (int* p = d.owner().pop()) {
        take(p);
        ++popped;
      }
    }
    if (rng() % 3 == 0) {
      if (int* p = d.owner().pop()) {
        take(p);
        ++popped;
      }
    }
  }
  while (int* p = d.owner().pop()) {
    take(p);
    ++popped;
  }
  owner_done.store(true, std::memory_order_release);
  for (auto& t : ts) t.join();

  std::size_t missing = 0, duplicated = 0;
  for (std::size_t i = 0; i < total; ++i) {
    const int n = taken[i].load();
    missing += n == 0;
    duplicated += n > 1;
  }
  EXPECT_EQ(missing, 0u) << "items never taken";
  EXPECT_EQ(duplicated, 0u) << "items taken more than once";
  EXPECT_EQ(popped + stolen.load(), total);
  EXPECT_TRUE(d.stealer().empty());
}

TEST(ChaseLevDeque, OneOwnerThreeThievesTakeEveryItemExactlyOnce) {
  owner_and_thieves<256>(3, static_cast<std::size_t>(weft::test::scaled(1'000'000, 50'000)));
}

TEST(ChaseLevDeque, TinyCapacityUnderContention) {
  // Capacity 4: constant wrap-around and full/empty transitions.
  owner_and_thieves<4>(3, static_cast<std::size_t>(weft::test::scaled(300'000, 20'000)));
}

TEST(ChaseLevDeque, LastItemRaceBetweenOwnerAndThieves) {
  // Repeatedly push exactly one item and race pop() against steals for it.
  const int rounds = static_cast<int>(weft::test::scaled(1'000'000, 50'000));
  ChaseLevDeque<int*, 8> d;
  std::vector<int> items(rounds);
  std::unique_ptr<std::atomic<int>[]> taken(new std::atomic<int>[rounds]);
  for (int i = 0; i < rounds; ++i) taken[i].store(0);
  std::atomic<bool> stop{false};
  std::vector<std::thread> thieves;
  for (int t = 0; t < 2; ++t) {
    thieves.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        if (int* p = d.stealer().steal()) taken[p - items.data()].fetch_add(1);
      }
    });
  }
  for (int i = 0; i < rounds; ++i) {
    if (!d.owner().push(&items[i])) {
      ADD_FAILURE() << "push into an empty deque failed";
      break;
    }
    if (int* p = d.owner().pop()) taken[p - items.data()].fetch_add(1);
    // Whoever won, the deque is empty again before the next round.
    while (!d.stealer().empty()) {
    }
  }
  stop = true;
  for (auto& t : thieves) t.join();
  int bad = 0;
  for (int i = 0; i < rounds; ++i) bad += taken[i].load() != 1;
  EXPECT_EQ(bad, 0) << "items not taken exactly once";
}

}  // namespace
