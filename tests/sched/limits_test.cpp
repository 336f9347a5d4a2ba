// Config::max_fibers and Config::max_stack_memory: a spawn at the limit
// succeeds, one past it throws weft::ResourceExhausted (EAGAIN, naming the
// limit and its value) and changes nothing else; a fiber that has been
// joined no longer counts, so the next spawn succeeds at once.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <system_error>
#include <vector>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using weft::JoinHandle;
using weft::ResourceExhausted;
using weft::Runtime;

class Limits : public weft::test::WorkersTest {};
INSTANTIATE_TEST_SUITE_P(Workers, Limits, ::testing::Values(1, 2), weft::test::workers_name);

// Spawns one fiber that waits for `gate`; returns its handle or rethrows.
JoinHandle<int> spawn_waiter(weft::Event& gate, std::size_t stack_size = 0) {
  weft::FiberOptions options;
  options.stack_size = stack_size;
  return weft::spawn(options, [&gate] {
    gate.wait();
    return 7;
  });
}

// Fills the room left: `n` waiters, then one spawn (with `extra_stack`)
// that must be refused; releases and joins them.
void fill_refuse_release(weft::Event& gate, int n, std::size_t extra_stack = 0) {
  gate.reset();
  std::vector<JoinHandle<int>> waiters;
  for (int i = 0; i < n; ++i) waiters.push_back(spawn_waiter(gate));
  EXPECT_THROW((void)spawn_waiter(gate, extra_stack), ResourceExhausted);
  gate.set();
  for (auto& h : waiters) EXPECT_EQ(h.join(), 7);
}

void expect_exhausted(const ResourceExhausted& e, const std::string& limit, std::uint64_t value,
                      const std::string& text) {
  EXPECT_EQ(e.code(), std::make_error_code(std::errc::resource_unavailable_try_again));
  EXPECT_EQ(e.limit(), limit);
  EXPECT_EQ(e.limit_value(), value);
  EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
}

TEST_P(Limits, MaxFibersAtTheBoundaryAndOnePast) {
  weft::Config c = config();
  c.max_fibers = 8;
  Runtime rt(c);
  rt.block_on([&] {
    // The root fiber (block_on's) is one of the 8.
    weft::Event gate;
    std::vector<JoinHandle<int>> waiters;
    for (int i = 0; i < 7; ++i) waiters.push_back(spawn_waiter(gate));  // 8 alive: the limit
    const std::uint64_t spawned = rt.stats().fibers_spawned;
    for (int attempt = 0; attempt < 3; ++attempt) {
      try {
        (void)spawn_waiter(gate);
        ADD_FAILURE() << "spawn past max_fibers succeeded";
      } catch (const ResourceExhausted& e) {
        expect_exhausted(e, "max_fibers", 8, "max_fibers is 8 and 8 fibers are alive");
      }
    }
    EXPECT_EQ(rt.stats().fibers_spawned, spawned);  // the refused spawns left no trace
    // Nothing else is disturbed: the waiters run to the end.
    gate.set();
    for (auto& h : waiters) EXPECT_EQ(h.join(), 7);
    // Each joined fiber frees its slot before join() returns: the root can
    // fill all 7 again, at once.
    for (int round = 0; round < 3; ++round) fill_refuse_release(gate, 7);
  });
}

TEST_P(Limits, MaxFibersFromAPlainThread) {
  weft::Config c = config();
  c.max_fibers = 2;
  Runtime rt(c);
  weft::Event gate;
  auto a = rt.spawn([&] { gate.wait(); });
  auto b = rt.spawn([&] { gate.wait(); });
  try {
    (void)rt.spawn([] {});
    ADD_FAILURE() << "spawn past max_fibers succeeded";
  } catch (const std::system_error& e) {  // callers may catch it as what it derives from
    EXPECT_EQ(e.code().value(), EAGAIN);
    EXPECT_NE(std::string(e.what()).find("WEFT_MAX_FIBERS"), std::string::npos) << e.what();
  }
  gate.set();
  a.join();
  b.join();
  EXPECT_EQ(rt.block_on([] { return 3; }), 3);
}

TEST_P(Limits, MaxStackMemoryAtTheBoundaryAndOnePast) {
  constexpr std::size_t kStack = 64 * 1024;
  weft::Config c = config();
  c.stack_size = kStack;
  c.max_stack_memory = 4 * kStack;
  Runtime rt(c);
  rt.block_on([&] {
    // The root fiber's stack is one of the 4.
    weft::Event gate;
    std::vector<JoinHandle<int>> waiters;
    waiters.push_back(spawn_waiter(gate));
    waiters.push_back(spawn_waiter(gate, 2 * kStack));  // 4 stacks' worth: the limit
    try {
      (void)spawn_waiter(gate, 16 * 1024);  // the smallest stack is one too many
      ADD_FAILURE() << "spawn past max_stack_memory succeeded";
    } catch (const ResourceExhausted& e) {
      expect_exhausted(e, "max_stack_memory", 4 * kStack,
                       "max_stack_memory is 262144 bytes, the stacks of the fibers alive take "
                       "262144 and this fiber's needs 16384");
    }
    gate.set();
    for (auto& h : waiters) EXPECT_EQ(h.join(), 7);
    // Freed at join: three default stacks fit again, and exactly.
    fill_refuse_release(gate, 3, 16 * 1024);
  });
}

TEST_P(Limits, MaxFibersHoldsUnderASpawnStormFromSeveralFibers) {
  // Fibers on every worker spawn short children as fast as they can; every
  // refusal is a ResourceExhausted (the spawner then joins its children and
  // goes on), and the limit holds throughout: each fiber counts itself
  // while its function runs, a part of the time it is admitted.
  weft::Config c = config();
  c.max_fibers = 32;
  Runtime rt(c);
  std::atomic<int> alive{0};
  std::atomic<int> max_seen{0};
  std::atomic<long> refused{0};
  std::atomic<long> ran{0};
  auto enter = [&] {
    const int now = alive.fetch_add(1) + 1;
    int seen = max_seen.load();
    while (now > seen && !max_seen.compare_exchange_weak(seen, now)) {
    }
  };
  constexpr long kPerSpawner = 2000 / weft::test::kScaleDown;
  rt.block_on([&] {
    enter();
    std::vector<JoinHandle<void>> spawners;
    for (int s = 0; s < 4; ++s) {
      spawners.push_back(weft::spawn([&] {
        enter();
        std::vector<JoinHandle<void>> kids;
        for (long i = 0; i < kPerSpawner; ++i) {
          try {
            kids.push_back(weft::spawn([&] {
              enter();
              weft::this_fiber::yield();
              ran.fetch_add(1);
              alive.fetch_sub(1);
            }));
          } catch (const ResourceExhausted&) {
            refused.fetch_add(1);
            for (auto& k : kids) k.join();
            kids.clear();
          }
        }
        for (auto& k : kids) k.join();
        alive.fetch_sub(1);
      }));
    }
    for (auto& s : spawners) s.join();
    alive.fetch_sub(1);
  });
  EXPECT_LE(max_seen.load(), 32);
  EXPECT_GT(max_seen.load(), 5);  // children ran alongside the spawners
  EXPECT_EQ(ran.load() + refused.load(), 4 * kPerSpawner);
  EXPECT_EQ(alive.load(), 0);
}

}  // namespace
