// Config::memory_limit: a spawn storm stays within the limit, is refused
// cleanly (weft::ResourceExhausted naming memory_limit and the usage) and
// recovers once the fibers end; caches are trimmed before anything is
// refused; pressure callbacks fire once per crossing; the limit changes at
// run time. (The connection storm is in tests/net/memory_limit_accept_test.cpp.)
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using weft::JoinHandle;
using weft::ResourceExhausted;
using weft::Runtime;

constexpr std::size_t KiB = 1024;
constexpr std::size_t MiB = 1024 * KiB;
constexpr std::size_t kStack = 64 * KiB;

class MemoryLimit : public weft::test::WorkersTest {
 protected:
  weft::Config limited(std::size_t limit) const {
    weft::Config c = config();
    c.stack_size = kStack;
    c.memory_limit = limit;
    return c;
  }
};
INSTANTIATE_TEST_SUITE_P(Workers, MemoryLimit, ::testing::Values(1, 2), weft::test::workers_name);

JoinHandle<int> spawn_waiter(weft::Event& gate) {
  return weft::spawn([&gate] {
    gate.wait();
    return 7;
  });
}

// Spawns waiters until one is refused (at most `max`); returns them. The
// refusal, if any, is stored in `refused`.
std::vector<JoinHandle<int>> spawn_until_refused(weft::Event& gate, int max,
                                                 std::string* refused = nullptr) {
  std::vector<JoinHandle<int>> held;
  for (int i = 0; i < max; ++i) {
    try {
      held.push_back(spawn_waiter(gate));
    } catch (const ResourceExhausted& e) {
      if (refused != nullptr) *refused = e.what();
      EXPECT_EQ(e.code(), std::make_error_code(std::errc::resource_unavailable_try_again));
      EXPECT_EQ(e.limit(), "memory_limit");
      break;
    }
  }
  return held;
}

// Spawns until one is admitted (refusals end once the memory is below the
// low-water mark); bounded by kPatience.
bool admitted_eventually() {
  return weft::test::eventually([] {
    try {
      return weft::spawn([] { return 1; }).join() == 1;
    } catch (const ResourceExhausted&) {
      return false;
    }
  });
}

void release(weft::Event& gate, std::vector<JoinHandle<int>>& held) {
  gate.set();
  for (auto& h : held) EXPECT_EQ(h.join(), 7);
  held.clear();
}

std::uint64_t rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  std::uint64_t kb = 0;
  while (status >> key) {
    if (key == "VmRSS:") {
      status >> kb;
      return kb * KiB;
    }
    status.ignore(1 << 20, '\n');
  }
  return 0;
}

// The storm: far more spawns than the limit holds. The runtime's memory
// never passes the limit (what spawn admits is checked against it; the
// stated margin is zero for the account, and 16 MiB for the process's RSS,
// which also holds the test's own vectors and the allocator's slack); the
// refusal is clean (nothing admitted is disturbed) and lasts while the
// memory stays above 90 % of the limit; once the fibers end, spawns work.
TEST_P(MemoryLimit, SpawnStormStaysUnderTheLimitRefusesAndRecovers) {
  constexpr std::size_t kLimit = 16 * MiB;
  Runtime rt(limited(kLimit));
  const std::uint64_t rss_before = rss_bytes();
  rt.block_on([&] {
    weft::Event gate;
    std::string refused;
    std::vector<JoinHandle<int>> held = spawn_until_refused(gate, 100000, &refused);
    ASSERT_FALSE(refused.empty()) << "the storm was never refused";
    EXPECT_NE(refused.find("weft: cannot spawn: memory_limit is 16777216 bytes and the runtime's "
                           "memory in use is "),
              std::string::npos)
        << refused;
    const weft::MemoryUsage u = rt.memory_usage();
    EXPECT_LE(u.charged, kLimit);
    EXPECT_LE(u.used, kLimit);
    EXPECT_TRUE(u.refusing);
    EXPECT_GE(u.trims, 1u);  // trimmed before it refused
    // Up to two chunks of credit per other worker may go unused, and the
    // root fiber counts too: well over half the limit is fibers.
    EXPECT_GE(held.size() * kStack, kLimit / 2) << held.size() << " fibers admitted";
    EXPECT_LE(rss_bytes(), rss_before + kLimit + 16 * MiB);
    // Still refused while the memory is held (hysteresis), and the fibers
    // admitted are undisturbed.
    EXPECT_THROW((void)spawn_waiter(gate), ResourceExhausted);
    release(gate, held);
    // Load gone: a spawn trims the caches the storm filled (this worker's
    // at once, the others' when they next run out of work), finds the
    // memory below 90 % of the limit and is admitted.
    EXPECT_TRUE(admitted_eventually());
    EXPECT_FALSE(rt.memory_usage().refusing);
    // And a second storm is refused at the same limit again.
    std::vector<JoinHandle<int>> again = spawn_until_refused(gate, 100000);
    gate.reset();
    EXPECT_GE(again.size() * kStack, kLimit / 2);
    release(gate, again);
  });
  EXPECT_GE(rt.memory_usage().refusals, 3u);
  weft::test::expect_no_live_fibers(rt);
}

// The credits of idle workers give nothing back to a spawn: a storm from a
// plain thread (each spawn charges the account directly) whose fibers end
// on the workers leaves their bytes in the workers' credits (up to two
// chunks each, a chunk being four default fibers: ~2 MiB per worker). With
// a limit of that order the credits alone then filled it, and every spawn
// was refused for ever after the load was gone, though nothing was in use.
// A worker gives its whole credit back when it runs out of work.
TEST_P(MemoryLimit, IdleWorkersCreditsDoNotKeepSpawnsRefused) {
  weft::Config c = config();  // the default stack (256 KiB): chunks of ~1 MiB
  c.memory_limit = 2 * MiB;
  Runtime rt(c);
  weft::Event gate;
  std::vector<JoinHandle<int>> held;
  for (int i = 0; i < 64; ++i) {
    try {
      held.push_back(rt.spawn([&gate] {
        gate.wait();
        return 7;
      }));
    } catch (const ResourceExhausted& e) {
      EXPECT_EQ(e.limit(), "memory_limit");
      break;
    }
  }
  ASSERT_LT(held.size(), 64u) << "the storm was never refused";
  ASSERT_GE(held.size(), 2u);
  release(gate, held);
  // The load is gone: once the workers are idle, spawns from here (and so
  // block_on) are admitted again.
  EXPECT_TRUE(weft::test::eventually([&] {
    try {
      return rt.block_on([] { return 1; }) == 1;
    } catch (const ResourceExhausted&) {
      return false;
    }
  })) << "used "
      << rt.memory_usage().used << ", charged " << rt.memory_usage().charged;
  EXPECT_FALSE(rt.memory_usage().refusing);
  weft::test::expect_no_live_fibers(rt);
}

// One worker holding a warm stack cache (a burst spawned and joined), then a
// limit just above the memory in use: the spawns that follow need more than
// the room left, and get it from the cache's trim instead of a refusal.
TEST(MemoryLimitTrim, CachesAreTrimmedBeforeAnythingIsRefused) {
  weft::Config c = weft::test::workers_config(1);
  c.stack_size = kStack;
  Runtime rt(c);
  rt.block_on([&] {
    // 200 fibers alive at once, then ended: 200 stacks in the cache.
    weft::Event burst_gate;
    std::atomic<int> started{0};
    std::vector<JoinHandle<int>> burst;
    for (int i = 0; i < 200; ++i) {
      burst.push_back(weft::spawn([&] {
        started.fetch_add(1);
        burst_gate.wait();
        return 7;
      }));
    }
    ASSERT_TRUE(weft::test::eventually([&] { return started.load() == 200; }));
    release(burst_gate, burst);
    const weft::MemoryUsage before = rt.memory_usage();
    // The cache keeps at least StackCache::kResident (64) stacks resident.
    ASSERT_GE(before.used, 64 * kStack) << "no warm cache to trim";
    rt.set_memory_limit(before.used + 2 * MiB);
    weft::Event gate;
    // 60 fibers, 3.8 MiB > 2 MiB; a refusal ends the loop (and fails below).
    std::vector<JoinHandle<int>> held = spawn_until_refused(gate, 60);
    EXPECT_EQ(held.size(), 60u);
    const weft::MemoryUsage after = rt.memory_usage();
    EXPECT_GT(after.trims, before.trims);
    EXPECT_EQ(after.refusals, 0u);
    EXPECT_LE(after.charged, after.limit);
    release(gate, held);
  });
}

// The pressure mark at half the limit: crossed once per rise, however many
// spawns happen above it; re-armed when the memory falls below; a removed
// callback is not called again.
TEST_P(MemoryLimit, PressureCallbacksFireOncePerCrossing) {
  weft::Config c = limited(32 * MiB);
  c.memory_pressure_fraction = 0.5;
  Runtime rt(c);
  std::atomic<int> calls{0};
  std::atomic<int> calls_in_fibers{0};
  const std::uint64_t id = rt.on_memory_pressure([&](std::uint64_t charged, std::uint64_t limit) {
    EXPECT_EQ(limit, 32 * MiB);
    EXPECT_GE(charged, 16 * MiB);
    calls.fetch_add(1);
    if (weft::this_fiber::in_fiber()) calls_in_fibers.fetch_add(1);
  });
  const auto rise = [&] {
    rt.block_on([&] {
      weft::Event gate;
      std::vector<JoinHandle<int>> held;
      for (int i = 0; i < 300; ++i) held.push_back(spawn_waiter(gate));  // 18.8 MiB > 16
      release(gate, held);
    });
  };
  // Fall: the workers trim their caches down to StackCache::kResident
  // stacks each when they run out of work (4 MiB each), below the mark.
  const auto fall = [&] {
    EXPECT_TRUE(weft::test::eventually([&] { return rt.memory_usage().charged < 16 * MiB; }))
        << rt.memory_usage().charged;
  };
  rise();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(calls_in_fibers.load(), 1);  // the spawning fiber ran it
  fall();
  rise();
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(rt.memory_usage().pressure_events, 2u);
  EXPECT_TRUE(rt.remove_memory_pressure_callback(id));
  EXPECT_FALSE(rt.remove_memory_pressure_callback(id));
  fall();
  rise();
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(rt.memory_usage().pressure_events, 3u);
}

// Lowering the limit below the memory in use refuses the next spawn and
// disturbs nothing alive; raising it admits again at once.
TEST_P(MemoryLimit, LimitChangesAtRunTime) {
  Runtime rt(limited(0));
  rt.block_on([&] {
    weft::Event gate;
    std::vector<JoinHandle<int>> held;
    for (int i = 0; i < 48; ++i) held.push_back(spawn_waiter(gate));  // 3 MiB
    EXPECT_GE(rt.memory_usage().used, 48 * kStack);
    rt.set_memory_limit(2 * MiB);
    try {
      (void)spawn_waiter(gate);
      ADD_FAILURE() << "a spawn over the lowered limit was admitted";
    } catch (const ResourceExhausted& e) {
      EXPECT_EQ(e.limit(), "memory_limit");
      EXPECT_EQ(e.limit_value(), 2 * MiB);
    }
    rt.set_memory_limit(64 * MiB);
    held.push_back(spawn_waiter(gate));
    rt.set_memory_limit(0);
    for (int i = 0; i < 16; ++i) held.push_back(spawn_waiter(gate));
    release(gate, held);
  });
  EXPECT_EQ(rt.memory_usage().refusals, 1u);
}

// Usage counts what it says: a fiber costs its stack, and once everything
// has ended only cached stacks remain, which a trim gives back.
TEST_P(MemoryLimit, UsageFollowsFibersAndCaches) {
  Runtime rt(limited(0));
  rt.block_on([&] {
    const std::uint64_t base = rt.memory_usage().used;
    weft::Event gate;
    std::vector<JoinHandle<int>> held;
    for (int i = 0; i < 32; ++i) held.push_back(spawn_waiter(gate));
    const std::uint64_t with = rt.memory_usage().used;
    EXPECT_GE(with, base + 32 * kStack);
    EXPECT_LE(with, base + 32 * (kStack + 4 * KiB) + 64 * kStack);
    release(gate, held);
  });
  // Idle workers keep at most StackCache::kResident stacks each resident.
  EXPECT_TRUE(weft::test::eventually([&] {
    return rt.memory_usage().used <= workers() * 64 * kStack + 8 * KiB;
  })) << rt.memory_usage().used;
}

}  // namespace
