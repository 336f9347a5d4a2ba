// Starvation bound of the LIFO-popping run queues: a runnable fiber gets to
// run even while other fibers keep the LIFO end of its worker busy.
#include <atomic>
#include <chrono>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using weft::test::Watchdog;

weft::Config one_worker() {
  weft::Config c;
  c.workers = 1;
  return c;
}

// X spawns and joins an empty child forever: the child is pushed to the
// bottom of the deque and popped at once, and X is woken into the LIFO slot,
// so the LIFO end is never idle. C was queued before X and sits at the top of
// the deque. Without the starvation bound C never runs and the watchdog
// fires; with it, C runs once it has waited about a preemption interval.
TEST(Fairness, OldFiberRunsWhileANewerOneKeepsTheLifoEndBusy) {
  Watchdog dog("OldFiberRunsWhileANewerOneKeepsTheLifoEndBusy");
  weft::Runtime rt(one_worker());
  std::atomic<bool> c_ran{false};
  std::atomic<long> x_rounds{0};
  rt.block_on([&] {
    auto c = weft::spawn([&] { c_ran.store(true); });
    auto x = weft::spawn([&] {
      while (!c_ran.load()) {
        weft::spawn([] {}).join();
        x_rounds.fetch_add(1, std::memory_order_relaxed);
      }
    });
    x.join();
    c.join();
  });
  EXPECT_TRUE(c_ran.load());
  // X really did keep the worker busy while C waited.
  EXPECT_GT(x_rounds.load(), 0);
}

// Two fibers that only yield alternate strictly on one worker: a yielder
// goes behind every fiber already runnable at its level, so neither gets two
// turns in a row.
TEST(Fairness, TwoYieldersAlternateStrictly) {
  Watchdog dog("TwoYieldersAlternateStrictly");
  weft::Runtime rt(one_worker());
  constexpr int kRounds = 1000;
  std::atomic<int> a{0}, b{0}, max_lead{0};
  auto note_lead = [&](int lead) {
    int cur = max_lead.load();
    while (lead > cur && !max_lead.compare_exchange_weak(cur, lead)) {
    }
  };
  rt.block_on([&] {
    auto ha = weft::spawn([&] {
      for (int i = 0; i < kRounds; ++i) {
        note_lead(a.fetch_add(1) + 1 - b.load());
        weft::this_fiber::yield();
      }
    });
    auto hb = weft::spawn([&] {
      for (int i = 0; i < kRounds; ++i) {
        note_lead(b.fetch_add(1) + 1 - a.load());
        weft::this_fiber::yield();
      }
    });
    ha.join();
    hb.join();
  });
  EXPECT_EQ(a.load(), kRounds);
  EXPECT_EQ(b.load(), kRounds);
  EXPECT_LE(max_lead.load(), 1) << "one yielder ran twice in a row";
}

}  // namespace
