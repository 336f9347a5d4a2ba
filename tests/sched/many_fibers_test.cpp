// Large numbers of fibers: spawn and join 100,000 of them.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <vector>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using weft::JoinHandle;
using weft::Runtime;
using weft::test::expect_no_live_fibers;
using weft::test::scaled;

class ManyFibers : public weft::test::WorkersTest {};
WEFT_INSTANTIATE_WORKERS(ManyFibers);

std::uint64_t value_of(std::uint64_t i) {
  return i * 3 + (i % 7);
}

std::uint64_t expected_sum(std::uint64_t n) {
  std::uint64_t s = 0;
  for (std::uint64_t i = 0; i < n; ++i) s += value_of(i);
  return s;
}

// Default config (guarded 256 KiB stacks). At most kWindow fibers are alive at
// once, so that the test does not depend on vm.max_map_count on kernels
// without MADV_GUARD_INSTALL (there each guarded stack costs two mappings).
TEST_P(ManyFibers, HundredThousandSpawnedAndJoined) {
  Runtime rt(config());
  constexpr std::uint64_t n = static_cast<std::uint64_t>(scaled(100000, 5000));
  constexpr std::size_t kWindow = 8192;
  const std::uint64_t sum = rt.block_on([] {
    std::deque<JoinHandle<std::uint64_t>> window;
    std::uint64_t s = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      window.push_back(weft::spawn([i] { return value_of(i); }));
      if (window.size() == kWindow) {
        s += window.front().join();
        window.pop_front();
      }
    }
    for (auto& h : window) s += h.join();
    return s;
  });
  EXPECT_EQ(sum, expected_sum(n));
  auto stats = rt.stats();
  EXPECT_GE(stats.fibers_spawned, n);
  expect_no_live_fibers(rt);
}

// Stack memory comes back after a burst: 400 fibers, each with 32 KiB of
// its stack written, all alive at once on one worker; once they have ended
// and the worker is idle, the 336 stacks its cache holds above the resident
// mark (StackCache::kResident, 64) have given their pages back
// (StackCache::trim), so RSS drops by at least half of those pages. The
// bound is in bytes of stack, not a share of the peak: under TSan each
// written byte also costs shadow memory, which stays. Without the trim RSS
// never drops.
TEST(StackMemory, ReturnedAfterABurstOnceTheWorkerIsIdle) {
  weft::Config c = weft::test::workers_config(1);
  constexpr int kFibers = 400;
  constexpr std::size_t kTouched = 32 * 1024;
  Runtime rt(c);
  const long before = weft::test::rss_kib();
  long peak = 0;
  rt.block_on([&] {
    weft::Event release;
    std::vector<JoinHandle<void>> hs;
    std::atomic<int> ready{0};
    for (int i = 0; i < kFibers; ++i) {
      hs.push_back(weft::spawn([&] {
        volatile char buf[kTouched];
        for (std::size_t j = 0; j < kTouched; j += 512) buf[j] = 1;
        ready.fetch_add(1, std::memory_order_relaxed);
        release.wait();
        (void)buf[0];
      }));
    }
    EXPECT_TRUE(weft::test::eventually([&] { return ready.load() == kFibers; }));
    peak = weft::test::rss_kib();
    release.set();
    for (auto& h : hs) h.join();
  });
  const long added = peak - before;
  ASSERT_GT(added, static_cast<long>(kFibers) * 16) << "the burst did not touch its stacks";
  constexpr long kTrimmedKib = (kFibers - 64) * static_cast<long>(kTouched / 1024);
  long after = peak;
  EXPECT_TRUE(weft::test::eventually([&] {
    after = weft::test::rss_kib();
    return peak - after >= kTrimmedKib / 2;
  })) << "RSS "
      << before << " KiB before, " << peak << " at the peak, " << after
      << " after the burst ended; " << kTrimmedKib << " KiB of stack pages should have gone";
}

// All 100,000 alive at once (unguarded stacks: one mapping each at most).
TEST_P(ManyFibers, HundredThousandAliveAtOnce) {
  weft::Config c = config();
  c.guard_pages = false;
  c.stack_size = 32 * 1024;
  Runtime rt(c);
  constexpr std::uint64_t n = static_cast<std::uint64_t>(scaled(100000, 5000));
  const std::uint64_t sum = rt.block_on([] {
    std::vector<JoinHandle<std::uint64_t>> hs;
    hs.reserve(n);
    for (std::uint64_t i = 0; i < n; ++i) {
      hs.push_back(weft::spawn([i] {
        if (i % 16 == 0) weft::this_fiber::yield();
        return value_of(i);
      }));
    }
    std::uint64_t s = 0;
    for (auto& h : hs) s += h.join();
    return s;
  });
  EXPECT_EQ(sum, expected_sum(n));
  expect_no_live_fibers(rt);
}

// From outside the runtime: every spawn goes through the injector.
TEST_P(ManyFibers, TenThousandSpawnedFromAPlainThread) {
  Runtime rt(config());
  const std::uint64_t n = static_cast<std::uint64_t>(scaled(10000, 1000));
  std::vector<JoinHandle<std::uint64_t>> hs;
  hs.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) hs.push_back(rt.spawn([i] { return value_of(i); }));
  std::uint64_t s = 0;
  for (auto& h : hs) s += h.join();
  EXPECT_EQ(s, expected_sum(n));
  expect_no_live_fibers(rt);
}

}  // namespace
