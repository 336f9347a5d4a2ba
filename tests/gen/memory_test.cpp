// Generator stacks: many live generators stay cheap (MAP_NORESERVE, one or
// two kernel mappings each with the guard page), stacks are recycled, and an
// overflow hits the guard page instead of corrupting memory.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <memory>
#include <vector>

#include "common/test_util.hpp"
#include "gen/gen_util.hpp"
#include "weft/generator.hpp"
#include "weft/weft.hpp"

namespace {

using weft::Generator;
using weft::Yield;
using weft::test::gen_stack;
using weft::test::map_count;
using weft::test::rss_kib;
using weft::test::Tracker;
using weft::test::vm_size_kib;

TEST(GeneratorMemory, AThousandLiveGenerators) {
  constexpr int kLive = 1000;
  std::atomic<int> dtors{0};
  const std::size_t maps_before = map_count();
  const long rss_before = rss_kib();
  const long vm_before = vm_size_kib();
  {
    std::vector<Generator<int>> gens;
    gens.reserve(kLive);
    for (int i = 0; i < kLive; ++i) {
      gens.emplace_back([i, &dtors](Yield<int>& yield) {
        Tracker t(dtors);
        for (int k = 0;; ++k) yield(i * 1000 + k);
      });
      ASSERT_EQ(gens.back().next(), i * 1000);  // started: its stack is touched
    }
    // TSan gives every generator a TSan fiber with mappings and memory of its
    // own (hundreds of KiB): the sanity bounds below are about weft's stacks.
    if (!weft::test::kThreadSanitizer) {
      // One mapping per stack with MADV_GUARD_INSTALL (adjacent ones may even
      // merge), two with the mprotect fallback; never more.
      EXPECT_LE(map_count(), maps_before + 2 * kLive + 64);
      // Only touched pages are resident: far below the 256 MiB reserved.
      const long rss_growth = rss_kib() - rss_before;
      EXPECT_LT(rss_growth, kLive * 64L) << "KiB resident for " << kLive << " generators";
    }
    for (int i = 0; i < kLive; ++i) ASSERT_EQ(gens[i].next(), i * 1000 + 1);
    EXPECT_EQ(dtors.load(), 0);
  }
  EXPECT_EQ(dtors.load(), kLive) << "every suspended body was unwound";
  // All stacks unmapped but for the per-thread cache (at most 16).
  if (!weft::test::kThreadSanitizer) {
    EXPECT_LE(map_count(), maps_before + 2 * 16 + 16);
    EXPECT_LT(vm_size_kib() - vm_before, 32 * 1024) << "KiB of address space still mapped";
  }
}

TEST(GeneratorMemory, StacksAreRecycledNotLeaked) {
  const std::size_t maps_before = map_count();
  const long vm_before = vm_size_kib();
  const int rounds = static_cast<int>(weft::test::scaled(20000, 2000));
  long sum = 0;
  for (int r = 0; r < rounds; ++r) {
    Generator<int> g([r](Yield<int>& yield) {
      yield(r);
      yield(1);
    });
    sum += *g.next();
    if (r % 2 == 0) sum += *g.next();  // the other half is destroyed suspended
    // Non-default sizes bypass the cache: mapped and unmapped each time.
    Generator<int> big([](Yield<int>& yield) { yield(1); }, gen_stack(1 << 20));
    sum += *big.next();
  }
  EXPECT_EQ(sum, static_cast<long>(rounds) * (rounds - 1) / 2 + rounds / 2 + rounds);
  EXPECT_LE(map_count(), maps_before + 2 * 16 + 16);
  // A leak would be 1.25 MiB of address space per round.
  EXPECT_LT(vm_size_kib() - vm_before, 32 * 1024) << "KiB of address space still mapped";
}

// --- stack overflow ------------------------------------------------------------

volatile bool g_stop_recursion = false;

/// Recurses until the stack runs out; frames smaller than a page so the
/// recursion walks into the guard page instead of jumping over it.
[[gnu::noinline]] int recurse(int depth) {
  volatile char buf[256];
  buf[depth % sizeof(buf)] = static_cast<char>(depth);
  if (g_stop_recursion) return buf[0];
  return recurse(depth + 1) + buf[(depth * 7) % sizeof(buf)];
}

void overflow_in_generator_on_a_thread() {
  Generator<int> g([](Yield<int>& yield) { yield(recurse(0)); }, gen_stack(64 * 1024));
  (void)g.next();
}

void overflow_in_generator_in_a_fiber() {
  weft::Runtime rt(weft::test::workers_config(2));
  rt.block_on([] {
    weft::FiberOptions opts{.name = "driver"};
    auto h = weft::spawn(opts, [] {
      Generator<int> g([](Yield<int>& yield) { yield(recurse(0)); }, gen_stack(64 * 1024));
      return *g.next();
    });
    (void)h.join();
  });
}

using GeneratorOverflowDeathTest = ::testing::Test;

TEST(GeneratorOverflowDeathTest, OnAPlainThreadTheGuardPageKillsTheProcess) {
  if (weft::test::kSanitized) GTEST_SKIP() << "sanitizers intercept SIGSEGV";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(overflow_in_generator_on_a_thread(), ::testing::KilledBySignal(SIGSEGV), "");
}

TEST(GeneratorOverflowDeathTest, InAFiberItIsReportedWithTheDrivingFiber) {
  if (weft::test::kSanitized) GTEST_SKIP() << "sanitizers intercept SIGSEGV";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(overflow_in_generator_in_a_fiber(),
               "weft: stack overflow in a generator driven by fiber [0-9]+ 'driver' "
               "\\(generator stack of 65536 bytes");
}

}  // namespace
