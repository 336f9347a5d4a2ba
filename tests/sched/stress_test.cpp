// Randomized stress: fibers run seeded random scripts of spawn / yield /
// sleep / join / detach operations (about a million operations per run),
// and every fiber's result is checked against the same script replayed
// without a runtime.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <random>
#include <vector>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using weft::JoinHandle;
using weft::Runtime;
using weft::test::eventually;
using weft::test::scaled;

constexpr std::uint64_t kSeed = 0x5EEDF00Dull;

std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  std::uint64_t z = a ^ (b + 0x9E3779B97F4A7C15ull + (a << 6) + (a >> 2));
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// What a child fiber computes from its argument.
std::uint64_t child_value(std::uint64_t arg) {
  return mix(arg, 0xC1D);
}

/// Runs one fiber's script. Env supplies the effects: the real one talks to
/// weft, the reference one computes the same values directly.
template <class Env>
std::uint64_t run_script(std::uint64_t seed, int ops, Env& env) {
  std::mt19937_64 rng(seed);
  std::uint64_t acc = seed;
  std::deque<typename Env::Handle> kept;
  for (int i = 0; i < ops; ++i) {
    const std::uint64_t r = rng();
    const unsigned pick = static_cast<unsigned>(r % 1000);
    const std::uint64_t arg = r >> 16;
    env.count_op();
    if (pick < 450) {
      env.yield();
      acc = mix(acc, static_cast<std::uint64_t>(i));
    } else if (pick < 650) {
      acc = mix(acc, arg);  // pure computation
    } else if (pick < 655) {
      env.sleep(std::chrono::microseconds(arg % 2001));  // 0..2 ms
      acc = mix(acc, 1);
    } else if (pick < 715) {
      acc = mix(acc, env.spawn_and_join(arg));
    } else if (pick < 765) {
      if (kept.size() < 8) kept.push_back(env.spawn(arg));
    } else if (pick < 815) {
      if (!kept.empty()) {
        acc = mix(acc, env.join(kept.front()));
        kept.pop_front();
      }
    } else if (pick < 835) {
      env.spawn_detached(arg);
    } else {
      acc = mix(acc, r);
    }
  }
  while (!kept.empty()) {
    acc = mix(acc, env.join(kept.front()));
    kept.pop_front();
  }
  return acc;
}

struct ReferenceEnv {
  using Handle = std::uint64_t;
  std::uint64_t ops = 0, spawned = 0, detached = 0;
  void count_op() { ++ops; }
  void yield() {}
  void sleep(std::chrono::microseconds) {}
  std::uint64_t spawn_and_join(std::uint64_t arg) {
    ++spawned;
    return child_value(arg);
  }
  Handle spawn(std::uint64_t arg) {
    ++spawned;
    return arg;
  }
  std::uint64_t join(Handle h) { return child_value(h); }
  void spawn_detached(std::uint64_t) {
    ++spawned;
    ++detached;
  }
};

struct Counters {
  std::atomic<std::uint64_t> ops{0}, children_ran{0}, detached_done{0};
};

/// A child yields a few times (so children interleave and migrate) and
/// returns child_value(arg).
std::uint64_t child_body(std::uint64_t arg, Counters& c) {
  for (std::uint64_t i = 0; i < arg % 3; ++i) weft::this_fiber::yield();
  c.children_ran.fetch_add(1, std::memory_order_relaxed);
  return child_value(arg);
}

struct WeftEnv {
  using Handle = JoinHandle<std::uint64_t>;
  Counters& c;
  void count_op() { c.ops.fetch_add(1, std::memory_order_relaxed); }
  void yield() { weft::this_fiber::yield(); }
  void sleep(std::chrono::microseconds d) { weft::this_fiber::sleep_for(d); }
  std::uint64_t spawn_and_join(std::uint64_t arg) {
    Counters* cp = &c;
    return weft::spawn([arg, cp] { return child_body(arg, *cp); }).join();
  }
  Handle spawn(std::uint64_t arg) {
    Counters* cp = &c;
    return weft::spawn([arg, cp] { return child_body(arg, *cp); });
  }
  std::uint64_t join(Handle& h) { return h.join(); }
  void spawn_detached(std::uint64_t arg) {
    Counters* cp = &c;
    weft::spawn([arg, cp] {
      (void)child_body(arg, *cp);
      cp->detached_done.fetch_add(1, std::memory_order_relaxed);
    }).detach();
  }
};

class Stress : public weft::test::WorkersTest {};
WEFT_INSTANTIATE_WORKERS(Stress);

TEST_P(Stress, RandomSpawnYieldSleepJoin) {
  constexpr int kFibers = 200;
  constexpr int ops_per_fiber = static_cast<int>(scaled(1'000'000, 50'000) / kFibers);
  const std::uint64_t seed = kSeed + workers();
  RecordProperty("seed", std::to_string(seed));

  // Reference results.
  std::vector<std::uint64_t> want(kFibers);
  ReferenceEnv ref;
  for (int f = 0; f < kFibers; ++f) want[f] = run_script(seed * 1000 + f, ops_per_fiber, ref);

  Runtime rt(config());
  Counters counters;
  std::vector<std::uint64_t> got = rt.block_on([&] {
    std::vector<JoinHandle<std::uint64_t>> hs;
    for (int f = 0; f < kFibers; ++f) {
      hs.push_back(weft::spawn([&counters, f, seed] {
        WeftEnv env{counters};
        return run_script(seed * 1000 + f, ops_per_fiber, env);
      }));
    }
    std::vector<std::uint64_t> out;
    for (auto& h : hs) out.push_back(h.join());
    return out;
  });

  int wrong = 0;
  for (int f = 0; f < kFibers; ++f) wrong += got[f] != want[f];
  EXPECT_EQ(wrong, 0) << "fibers whose result differs from the reference (seed " << seed << ")";
  EXPECT_EQ(counters.ops.load(), ref.ops);
  EXPECT_TRUE(eventually([&] { return counters.detached_done.load() == ref.detached; }))
      << "detached children finished: " << counters.detached_done.load() << " of " << ref.detached;
  EXPECT_TRUE(eventually([&] { return counters.children_ran.load() == ref.spawned; }))
      << "children ran: " << counters.children_ran.load() << " of " << ref.spawned;
  weft::test::expect_no_live_fibers(rt);
  EXPECT_GE(rt.stats().fibers_spawned, ref.spawned + kFibers);
}

}  // namespace
