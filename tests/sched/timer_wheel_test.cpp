// Unit tests of the hierarchical timer wheel and its Timer handle
// (src/sched/timer_wheel.hpp): timers fire in tick order, never before their
// tick, always by the first advance that reaches it; cancelled timers never
// fire; reset moves an armed timer; AfterUnlock callbacks run in order,
// outside the wheel's lock.
#include "sched/timer_wheel.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <new>
#include <random>
#include <set>
#include <vector>

#include "common/test_util.hpp"

namespace {

using weft::detail::FiberList;
using weft::detail::TimerWheel;

/// Fire log; the wheel is driven from the test thread only.
std::vector<std::pair<int, std::uint64_t>>* g_fired = nullptr;
std::uint64_t g_now = 0;

void on_fire(weft::detail::Timer* t, FiberList& woken) noexcept;

struct Timer : weft::detail::Timer {
  Timer() noexcept : weft::detail::Timer(&on_fire) {}
  int id = 0;
  std::uint64_t when = 0;  // the tick asked for
};

void on_fire(weft::detail::Timer* t, FiberList&) noexcept {
  g_fired->emplace_back(static_cast<Timer*>(t)->id, g_now);
}

class TimerWheelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_fired = &fired_;
    g_now = 0;
  }
  void TearDown() override { g_fired = nullptr; }

  Timer* make(int id, std::uint64_t when) {
    timers_.push_back(std::make_unique<Timer>());
    Timer* t = timers_.back().get();
    t->id = id;
    t->when = when;
    return t;
  }
  bool insert(Timer* t) { return t->arm(wheel_, t->when); }
  bool remove(Timer* t) { return t->cancel(); }
  void advance(std::uint64_t now) {
    g_now = now;
    FiberList woken;
    wheel_.advance(now, woken);
    EXPECT_TRUE(woken.empty());  // these timers wake no fiber
  }
  std::vector<int> fired_ids() const {
    std::vector<int> ids;
    for (auto& f : fired_) ids.push_back(f.first);
    return ids;
  }

  TimerWheel wheel_;
  std::vector<std::unique_ptr<Timer>> timers_;
  std::vector<std::pair<int, std::uint64_t>> fired_;
};

TEST_F(TimerWheelTest, EmptyWheel) {
  EXPECT_EQ(wheel_.size(), 0u);
  EXPECT_EQ(wheel_.next_expiry_hint(), TimerWheel::kNone);
  advance(1000);
  EXPECT_TRUE(fired_.empty());
  EXPECT_EQ(wheel_.elapsed_ms(), 1000u);
}

TEST_F(TimerWheelTest, FiresInTickOrderAndNeverEarly) {
  // Inserted out of order, across levels 0..2.
  const std::uint64_t whens[] = {30, 10, 20, 64, 63, 65, 4096, 4095, 1, 200, 5000};
  for (int i = 0; i < 11; ++i) ASSERT_TRUE(insert(make(i, whens[i])));
  EXPECT_EQ(wheel_.size(), 11u);
  for (std::uint64_t now = 1; now <= 6000; now += 7) advance(now);
  ASSERT_EQ(fired_.size(), 11u);
  std::uint64_t last = 0;
  for (auto [id, at] : fired_) {
    EXPECT_GE(at, whens[id]) << "timer " << id << " fired early";
    EXPECT_LT(at, whens[id] + 7) << "timer " << id << " missed the advance that reached it";
    EXPECT_GE(whens[id], last) << "fired out of tick order";
    last = whens[id];
  }
  EXPECT_EQ(wheel_.size(), 0u);
  EXPECT_EQ(wheel_.next_expiry_hint(), TimerWheel::kNone);
}

TEST_F(TimerWheelTest, OneBigAdvanceFiresEverythingInOrder) {
  std::vector<std::uint64_t> whens;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 500; ++i) {
    const int level = static_cast<int>(rng() % 4);
    whens.push_back(1 + rng() % (std::uint64_t{64} << (6 * level)));
    ASSERT_TRUE(insert(make(i, whens.back())));
  }
  advance(std::uint64_t{1} << 25);
  ASSERT_EQ(fired_.size(), whens.size());
  // TimerWheel::advance documents "firing every entry whose tick has come,
  // in tick order" - also when one advance covers many ticks (a worker that
  // was busy for a while).
  int inversions = 0;
  std::string first;
  for (std::size_t i = 1; i < fired_.size(); ++i) {
    const auto a = whens[fired_[i - 1].first], b = whens[fired_[i].first];
    if (a > b && ++inversions == 1) {
      first = "tick " + std::to_string(a) + " fired before tick " + std::to_string(b);
    }
  }
  EXPECT_EQ(inversions, 0) << "entries fired out of tick order; first: " << first;
}

TEST_F(TimerWheelTest, InsertOfAnExpiredTickIsRefused) {
  advance(100);
  EXPECT_FALSE(insert(make(1, 100))) << "a tick already reached must be refused";
  EXPECT_FALSE(insert(make(2, 50)));
  EXPECT_TRUE(insert(make(3, 101)));
  EXPECT_EQ(wheel_.size(), 1u);
  advance(100);
  EXPECT_TRUE(fired_.empty());
  advance(101);
  EXPECT_EQ(fired_ids(), std::vector<int>{3});
}

TEST_F(TimerWheelTest, RemovedEntriesNeverFire) {
  Timer* a = make(1, 10);
  Timer* b = make(2, 10);
  Timer* c = make(3, 300);
  Timer* d = make(4, 70000);
  for (Timer* t : {a, b, c, d}) ASSERT_TRUE(insert(t));
  EXPECT_TRUE(remove(b)) << "cancel of an armed timer says it was armed";
  EXPECT_TRUE(remove(d));
  EXPECT_FALSE(remove(d)) << "a second cancel finds it disarmed";
  EXPECT_EQ(wheel_.size(), 2u);
  advance(100000);
  EXPECT_EQ(fired_ids(), (std::vector<int>{1, 3}));
  EXPECT_FALSE(remove(a)) << "cancel after firing says it fired";
  EXPECT_EQ(wheel_.size(), 0u);
}

TEST_F(TimerWheelTest, HintNeverLaterThanTheEarliestEntry) {
  std::mt19937_64 rng(11);
  std::multiset<std::uint64_t> pending;
  std::map<Timer*, std::uint64_t> live;
  std::uint64_t now = 0;
  for (int step = 0; step < 3000; ++step) {
    const auto r = rng() % 10;
    if (r < 5) {
      const int level = static_cast<int>(rng() % 4);
      const std::uint64_t when = now + 1 + rng() % (std::uint64_t{64} << (6 * level));
      Timer* t = make(step, when);
      ASSERT_TRUE(insert(t));
      pending.insert(when);
      live[t] = when;
    } else {
      now += rng() % 50;
      advance(now);
      for (auto it = live.begin(); it != live.end();) {
        if (it->second <= now) {
          pending.erase(pending.find(it->second));
          it = live.erase(it);
        } else {
          ++it;
        }
      }
    }
    const std::uint64_t hint = wheel_.next_expiry_hint();
    if (pending.empty()) {
      EXPECT_EQ(hint, TimerWheel::kNone) << "step " << step;
    } else {
      // A later hint would make an idle worker oversleep the earliest timer.
      EXPECT_LE(hint, *pending.begin()) << "step " << step;
      EXPECT_GT(hint, now) << "hint in the past at step " << step;
    }
    EXPECT_EQ(wheel_.size(), pending.size());
  }
}

TEST_F(TimerWheelTest, VeryLongDelaysAreClampedNotLost) {
  advance(5);
  Timer* t = make(1, 5 + (std::uint64_t{1} << 40));
  ASSERT_TRUE(insert(t));
  advance(5 + TimerWheel::kMaxDelayMs - 1);
  EXPECT_TRUE(fired_.empty()) << "fired before its (clamped) tick";
  advance(5 + TimerWheel::kMaxDelayMs);
  EXPECT_EQ(fired_ids(), std::vector<int>{1});
}

TEST_F(TimerWheelTest, ResetMovesOnlyAnArmedTimerToATickNotReached) {
  Timer* t = make(1, 100);
  ASSERT_TRUE(insert(t));
  advance(10);
  EXPECT_TRUE(t->reset(40)) << "an armed timer moves";
  EXPECT_FALSE(t->reset(10)) << "a tick already reached is refused";
  EXPECT_FALSE(t->reset(5));
  advance(39);
  EXPECT_TRUE(fired_.empty()) << "fired before its new tick";
  advance(40);
  EXPECT_EQ(fired_ids(), std::vector<int>{1});
  EXPECT_FALSE(t->reset(200)) << "a fired timer is not re-armed by reset";
  advance(300);
  EXPECT_EQ(fired_.size(), 1u);
  // A later tick works as well as an earlier one; a cancelled timer stays so.
  Timer* u = make(2, 400);
  ASSERT_TRUE(insert(u));
  EXPECT_TRUE(u->reset(5000));
  advance(4999);
  EXPECT_EQ(fired_.size(), 1u);
  EXPECT_TRUE(remove(u));
  EXPECT_FALSE(u->reset(6000));
  advance(10000);
  EXPECT_EQ(fired_.size(), 1u);
  EXPECT_EQ(wheel_.size(), 0u);
}

/// A timer that only has an AfterUnlock callback: it runs once the wheel's
/// lock is released (it takes that lock here, through size(), which would
/// deadlock under it), in tick order, on the advancing thread.
struct LateTimer : weft::detail::Timer {
  LateTimer(int i, TimerWheel* w, std::vector<int>* l) noexcept
      : weft::detail::Timer(nullptr, &after), id(i), wheel(w), log(l) {}
  static void after(weft::detail::Timer* t) noexcept {
    auto* self = static_cast<LateTimer*>(t);
    self->seen_size = self->wheel->size();
    self->log->push_back(self->id);
  }
  int id;
  TimerWheel* wheel;
  std::vector<int>* log;
  std::size_t seen_size = 99;
};

TEST_F(TimerWheelTest, AfterUnlockCallbacksRunInTickOrderOutsideTheLock) {
  std::vector<int> log;
  LateTimer a(1, &wheel_, &log), b(2, &wheel_, &log), c(3, &wheel_, &log);
  ASSERT_TRUE(c.arm(wheel_, 300));
  ASSERT_TRUE(a.arm(wheel_, 5));
  ASSERT_TRUE(b.arm(wheel_, 70));
  Timer* plain = make(4, 100000);
  ASSERT_TRUE(insert(plain));
  advance(1000);
  EXPECT_EQ(log, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(a.seen_size, 1u) << "only the unfired timer is left when the callbacks run";
  EXPECT_FALSE(a.cancel()) << "fired";
  EXPECT_TRUE(remove(plain));
}

/// Randomized model check: random inserts, removes and advances (including
/// jumps across several levels) against a sorted multimap of pending ticks.
TEST_F(TimerWheelTest, MatchesAModelUnderRandomOperations) {
  for (std::uint64_t seed : {1u, 2u, 3u, 4u, 5u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    wheel_.~TimerWheel();
    new (&wheel_) TimerWheel();
    fired_.clear();
    std::mt19937_64 rng(seed);
    std::map<int, Timer*> live;  // id -> timer
    std::uint64_t now = 0;
    int next_id = 0;
    const int steps = static_cast<int>(weft::test::scaled(20000, 5000));
    for (int step = 0; step < steps; ++step) {
      const auto r = rng() % 100;
      if (r < 45) {
        const int level = static_cast<int>(rng() % 5);
        // Below kMaxDelayMs: this model does not clamp.
        const std::uint64_t when = now + 1 + rng() % (std::uint64_t{63} << (6 * level));
        Timer* t = make(next_id, when);
        ASSERT_TRUE(insert(t));
        live[next_id++] = t;
      } else if (r < 60 && !live.empty()) {
        auto it = live.begin();
        std::advance(it, static_cast<long>(rng() % live.size()));
        remove(it->second);
        live.erase(it);
      } else {
        const auto jump = rng() % 8 == 0 ? rng() % 300000 : rng() % 100;
        now += jump;
        // Expected: every live entry with when <= now, in tick order.
        std::vector<std::pair<std::uint64_t, int>> due;
        for (auto& [id, t] : live) {
          if (t->when <= now) due.emplace_back(t->when, id);
        }
        std::sort(due.begin(), due.end());
        fired_.clear();
        advance(now);
        ASSERT_EQ(fired_.size(), due.size()) << "at now=" << now;
        std::vector<std::uint64_t> fired_ticks;
        for (auto& [id, at] : fired_) {
          ASSERT_TRUE(live.count(id)) << "a removed or already fired timer fired: " << id;
          fired_ticks.push_back(live[id]->when);
          live.erase(id);
        }
        std::vector<std::uint64_t> due_ticks;
        for (auto& d : due) due_ticks.push_back(d.first);
        // The set fired must be exactly the due one (order within one
        // advance is checked by OneBigAdvanceFiresEverythingInOrder).
        std::sort(fired_ticks.begin(), fired_ticks.end());
        ASSERT_EQ(fired_ticks, due_ticks) << "wrong set fired at now=" << now;
      }
      ASSERT_EQ(wheel_.size(), live.size());
    }
  }
}

}  // namespace
