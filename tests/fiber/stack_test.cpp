// Unit tests of the fiber stack allocator and the per-worker stack cache
// (src/fiber/stack.hpp), without a runtime.
#include "fiber/stack.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "common/test_util.hpp"

namespace {

using weft::detail::GuardMode;
using weft::detail::Stack;
using weft::detail::StackAllocator;
using weft::detail::StackCache;

TEST(StackAllocator, AllocatesUsableAlignedStacks) {
  for (GuardMode mode : {GuardMode::madvise, GuardMode::mprotect, GuardMode::none}) {
    StackAllocator alloc(mode);
    const std::size_t page = StackAllocator::page_size();
    Stack s = alloc.allocate(64 * 1024 + 1);
    ASSERT_TRUE(s);
    EXPECT_GE(s.usable_size(), 64 * 1024 + 1u);
    EXPECT_EQ(s.usable_size() % page, 0u);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(s.hi) % 16, 0u);
    EXPECT_LE(s.mapping, s.lo);
    if (mode == GuardMode::none) {
      EXPECT_EQ(s.lo, s.mapping);
      EXPECT_EQ(s.guard, static_cast<std::uint8_t>(GuardMode::none));
    } else {
      EXPECT_EQ(static_cast<char*>(s.lo) - static_cast<char*>(s.mapping),
                static_cast<std::ptrdiff_t>(page))
          << "expected exactly one guard page below the stack";
      EXPECT_NE(s.guard, static_cast<std::uint8_t>(GuardMode::none));
    }
    // Every usable byte is writable.
    std::memset(s.lo, 0xAB, s.usable_size());
    EXPECT_EQ(static_cast<unsigned char*>(s.hi)[-1], 0xAB);
    EXPECT_EQ(alloc.live_stacks(), 1u);
    alloc.release(s);
    EXPECT_FALSE(s);
    EXPECT_EQ(alloc.live_stacks(), 0u);
  }
}

// The mapping of /proc/self/smaps that contains `addr`: its Rss in KiB and
// its VmFlags ("nr": mapped with MAP_NORESERVE). Rss -1 if not found.
struct Mapping {
  long rss_kib = -1;
  std::string flags;
};
Mapping mapping_of(const void* addr) {
  const auto a = reinterpret_cast<std::uintptr_t>(addr);
  std::ifstream in("/proc/self/smaps");
  Mapping m;
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    std::uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR " ", &lo, &hi) == 2 &&
        line.find(':') > line.find(' ')) {  // a header line: "lo-hi perms ..."
      if (inside) break;
      inside = lo <= a && a < hi;
      continue;
    }
    if (!inside) continue;
    if (line.rfind("Rss:", 0) == 0) m.rss_kib = std::stol(line.substr(4));
    if (line.rfind("VmFlags:", 0) == 0) m.flags = line.substr(8) + " ";
  }
  return m;
}

TEST(StackAllocator, HugeStacksOnlyReserveAddressSpace) {
  // 1 GiB (the largest allowed) must be cheap: the mapping is made with
  // MAP_NORESERVE (no swap is reserved for it: VmFlags "nr"), and a stack
  // costs only the pages it touches.
  StackAllocator alloc(GuardMode::madvise);
  std::vector<Stack> stacks;
  for (int i = 0; i < 4; ++i) stacks.push_back(alloc.allocate(std::size_t{1} << 30));
  for (auto& s : stacks) {
    static_cast<char*>(s.hi)[-1] = 1;  // touch one page
    const Mapping m = mapping_of(static_cast<char*>(s.hi) - 1);
    ASSERT_GE(m.rss_kib, 0) << "no mapping holds the stack";
    EXPECT_NE(m.flags.find(" nr "), std::string::npos) << "not MAP_NORESERVE: " << m.flags;
    // A page or two (transparent huge pages could make it 2 MiB), never
    // the gigabyte.
    EXPECT_LE(m.rss_kib, 4096) << "a 1 GiB stack with one page touched costs " << m.rss_kib
                               << " KiB";
  }
  for (auto& s : stacks) alloc.release(s);
}

TEST(StackAllocator, MapCountBudgetFailsWithAClearError) {
  // mprotect guards cost two VMAs per stack; with a budget of 4096 (headroom)
  // + 10 only 5 guarded stacks fit.
  StackAllocator alloc(GuardMode::mprotect, 4096 + 10);
  std::vector<Stack> stacks;
  for (int i = 0; i < 5; ++i) stacks.push_back(alloc.allocate(16 * 1024));
  try {
    (void)alloc.allocate(16 * 1024);
    FAIL() << "the map budget was not enforced";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOMEM);
    EXPECT_NE(std::string(e.what()).find("vm.max_map_count"), std::string::npos) << e.what();
  }
  EXPECT_EQ(alloc.live_stacks(), 5u);
  alloc.release(stacks.back());
  stacks.pop_back();
  Stack again = alloc.allocate(16 * 1024);  // room again
  EXPECT_TRUE(again);
  stacks.push_back(again);
  for (auto& s : stacks) alloc.release(s);
  EXPECT_EQ(alloc.live_stacks(), 0u);
  // Unguarded stacks are not limited by the budget.
  StackAllocator unguarded(GuardMode::none, 4096 + 10);
  for (int i = 0; i < 20; ++i) stacks.push_back(unguarded.allocate(16 * 1024));
  for (auto& s : stacks) unguarded.release(s);
}

TEST(StackCache, RecyclesStacksOfTheDefaultSize) {
  StackAllocator alloc(GuardMode::none);
  StackCache cache;
  constexpr std::size_t kDefault = 64 * 1024;
  EXPECT_FALSE(cache.take(kDefault));
  Stack a = alloc.allocate(kDefault);
  void* a_lo = a.lo;
  cache.give(a, kDefault, alloc);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(alloc.live_stacks(), 1u) << "a cached stack stays mapped";
  EXPECT_FALSE(cache.take(128 * 1024)) << "a cached stack of another size was handed out";
  Stack b = cache.take(kDefault);
  ASSERT_TRUE(b);
  EXPECT_EQ(b.lo, a_lo);
  EXPECT_EQ(cache.size(), 0u);
  // A stack of another size is unmapped instead of cached.
  Stack big = alloc.allocate(2 * kDefault);
  cache.give(big, kDefault, alloc);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(alloc.live_stacks(), 1u);
  cache.give(b, kDefault, alloc);
  cache.drain(alloc);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(alloc.live_stacks(), 0u);
}

TEST(StackCache, IsBounded) {
  StackAllocator alloc(GuardMode::none);
  StackCache cache;
  constexpr std::size_t kDefault = 16 * 1024;
  for (std::size_t i = 0; i < StackCache::kMaxCached + 10; ++i) {
    cache.give(alloc.allocate(kDefault), kDefault, alloc);
  }
  EXPECT_EQ(cache.size(), StackCache::kMaxCached);
  EXPECT_EQ(alloc.live_stacks(), StackCache::kMaxCached);
  cache.drain(alloc);
  EXPECT_EQ(alloc.live_stacks(), 0u);
}

using StackGuardDeathTest = ::testing::Test;

TEST(StackGuardDeathTest, WritingBelowTheStackFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  for (GuardMode mode : {GuardMode::madvise, GuardMode::mprotect}) {
    EXPECT_DEATH(
        {
          StackAllocator alloc(mode);
          Stack s = alloc.allocate(16 * 1024);
          volatile char* below = static_cast<char*>(s.lo) - 1;
          *below = 1;
          std::fprintf(stderr, "guard page was writable\n");
          std::exit(0);
        },
        "")
        << "mode " << static_cast<int>(mode);
  }
}

}  // namespace
