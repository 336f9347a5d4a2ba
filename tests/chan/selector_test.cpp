// weft::Selector, on_join, wait_any, FiberRef / this_fiber::handle() and
// state queries, Ticker / interval / on_tick, and retry with Backoff, over
// 1, 2 and 4 workers.
#include "weft/selector.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/test_util.hpp"
#include "weft/pipeline.hpp"
#include "weft/ticker.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::Clock;
using weft::test::kPatience;
using weft::test::WorkersTest;

using weft::test::message_of;

class SelectorTest : public WorkersTest {};
WEFT_INSTANTIATE_WORKERS(SelectorTest);

TEST_P(SelectorTest, CasesBuiltInALoopFireOnceEach) {
  weft::Runtime rt(config());
  rt.block_on([&] {
    constexpr int kChannels = 20;
    std::vector<weft::Sender<int>> txs;
    std::vector<weft::Receiver<int>> rxs;
    for (int i = 0; i < kChannels; ++i) {
      auto [tx, rx] = weft::channel<int>(4);
      txs.push_back(tx);
      rxs.push_back(rx);
    }
    weft::Selector sel;
    int got_from = -1, got = -1;
    for (int i = 0; i < kChannels; ++i) {
      EXPECT_EQ(sel.add_recv(rxs[i], [&, i](int v) { got_from = i, got = v; }),
                static_cast<std::size_t>(i));
    }
    const std::size_t timeout = sel.add_timeout(20ms, [&] { got_from = -2; });
    EXPECT_EQ(sel.wait(), timeout);  // nothing sent yet
    EXPECT_EQ(got_from, -2);
    ASSERT_TRUE(txs[13].send(1313).ok());
    EXPECT_EQ(sel.wait(), 13u);
    EXPECT_EQ(got, 1313);
    // Nothing was consumed from the other channels.
    for (int i = 0; i < kChannels; ++i) EXPECT_EQ(rxs[i].size(), 0u);
  });
}

TEST_P(SelectorTest, IsFairAmongReadyCases) {
  weft::Runtime rt(config());
  rt.block_on([&] {
    constexpr int kChannels = 4, kRounds = 4000;
    std::vector<weft::Sender<int>> txs;
    weft::Selector sel;
    std::vector<int> hits(kChannels);
    std::vector<weft::Receiver<int>> rxs;
    for (int i = 0; i < kChannels; ++i) {
      auto [tx, rx] = weft::channel<int>(kRounds);
      for (int k = 0; k < kRounds; ++k) ASSERT_TRUE(tx.try_send(k).ok());
      txs.push_back(tx);
      rxs.push_back(rx);
    }
    for (int i = 0; i < kChannels; ++i) sel.add_recv(rxs[i], [&, i](int) { ++hits[i]; });
    for (int r = 0; r < kRounds; ++r) sel.wait();
    // Uniform choice: each gets about a quarter (1000 +- a wide margin).
    for (int i = 0; i < kChannels; ++i) {
      EXPECT_GT(hits[i], kRounds / kChannels / 2) << "case " << i;
    }
  });
}

TEST_P(SelectorTest, SendCasesDefaultAndClosedChannels) {
  weft::Runtime rt(config());
  rt.block_on([&] {
    auto [tx, rx] = weft::channel<std::string>(1);
    weft::Selector sel;
    bool sent = false;
    sel.add_send(tx, std::string("value"), [&] { sent = true; });
    EXPECT_EQ(sel.wait(), 0u);
    EXPECT_TRUE(sent);
    EXPECT_EQ(rx.recv(), std::optional<std::string>("value"));

    weft::Selector d;
    bool defaulted = false;
    d.add_recv(rx, [](std::string) {});
    d.add_default([&] { defaulted = true; });
    EXPECT_EQ(d.wait(), 1u);
    EXPECT_TRUE(defaulted);
    EXPECT_EQ(message_of([&] { d.add_default([] {}); }),
              "weft: Selector has a default case already");

    tx.close();
    weft::Selector c;
    c.add_recv(rx, [](std::string) {});  // disabled by closure
    EXPECT_EQ(c.wait(), weft::select_all_closed);
    bool saw_end = false;
    c.add_recv(rx, [&](std::optional<std::string> v) { saw_end = !v; });
    EXPECT_EQ(c.wait(), 1u);
    EXPECT_TRUE(saw_end);

    weft::Selector empty;
    EXPECT_EQ(message_of([&] { empty.wait(); }), "weft: Selector::wait() without cases");
    weft::Receiver<int> none;
    EXPECT_EQ(message_of([&] { empty.add_recv(none, [](int) {}); }),
              "weft: Selector::add_recv on an empty channel handle");
  });
}

TEST_P(SelectorTest, WaitIsCancellable) {
  weft::Runtime rt(config());
  rt.block_on([&] {
    auto [tx, rx] = weft::channel<int>(0);
    auto h = weft::spawn([rx = rx] {
      weft::Selector sel;
      sel.add_recv(rx, [](int) {});
      sel.wait();
    });
    weft::this_fiber::sleep_for(10ms);
    h.cancel();
    EXPECT_THROW(h.join(), weft::Cancelled);
    EXPECT_TRUE(tx.try_send(1).status() == weft::ChannelStatus::full);  // nothing consumed
  });
}

TEST_P(SelectorTest, OnJoinInVariadicSelectAndSelector) {
  weft::Runtime rt(config());
  rt.block_on([&] {
    weft::Event go;
    auto slow = weft::spawn([&] {
      go.wait();
      return 7;
    });
    auto [tx, rx] = weft::channel<int>(1);
    // The fiber has not ended: the timeout fires, the join case waits.
    int which = -1;
    EXPECT_EQ(weft::select(weft::on_join(slow, [&](int) { which = 0; }),
                           weft::on_timeout(20ms, [&] { which = 1; })),
              1u);
    EXPECT_EQ(which, 1);
    EXPECT_TRUE(slow.joinable());
    go.set();
    int result = 0;
    EXPECT_EQ(weft::select(weft::on_join(slow, [&](int v) { result = v; }),
                           weft::on_recv(rx, [](int) {})),
              0u);
    EXPECT_EQ(result, 7);
    EXPECT_FALSE(slow.joinable());  // joined by the case

    auto failing = weft::spawn([]() -> int { throw std::runtime_error("boom"); });
    weft::Selector sel;
    sel.add_join(failing, [](int) {});
    EXPECT_EQ(message_of([&] { sel.wait(); }), "boom");  // the fiber's exception

    // A fiber that ended before anyone selected on it: its done channel is
    // made already closed (the timeout only keeps a bug from hanging here).
    auto ended = weft::spawn([] { return 5; });
    while (!ended.is_finished()) weft::this_fiber::yield();
    int got = 0;
    EXPECT_EQ(
        weft::select(weft::on_join(ended, [&](int r) { got = r; }), weft::on_timeout(10s, [] {})),
        0u);
    EXPECT_EQ(got, 5);

    auto v = weft::spawn([] {});
    bool seen = false;
    weft::select(weft::on_join(v, [&](weft::JoinHandle<void>& h) { seen = h.is_finished(); }));
    EXPECT_TRUE(seen);
    v.join();
    EXPECT_EQ(message_of([&] { weft::select(weft::on_join(v, [] {})); }),
              "weft: on_join on an empty JoinHandle");
  });
}

TEST_P(SelectorTest, WaitAnyReturnsAFinishedHandle) {
  weft::Runtime rt(config());
  rt.block_on([&] {
    std::vector<weft::Event> gates(5);
    std::vector<weft::JoinHandle<int>> hs;
    for (int i = 0; i < 5; ++i) {
      hs.push_back(weft::spawn([&gates, i] {
        gates[i].wait();
        return i * 10;
      }));
    }
    gates[3].set();
    const std::size_t first = weft::wait_any(std::span(hs));
    EXPECT_EQ(first, 3u);
    EXPECT_EQ(hs[3].join(), 30);
    for (int i = 0; i < 5; ++i) gates[i].set();
    for (int i = 0; i < 5; ++i) {
      if (i != 3) {
        EXPECT_EQ(hs[i].join(), i * 10);
      }
    }
    EXPECT_EQ(message_of([&] { (void)weft::wait_any(std::span(hs)); }),
              "weft: wait_any over an empty JoinHandle");
    std::vector<weft::JoinHandle<int>> none;
    EXPECT_EQ(message_of([&] { (void)weft::wait_any(std::span(none)); }),
              "weft: wait_any over no handles");
    // Many handles finishing at once: every wait_any result is finished.
    std::vector<weft::JoinHandle<void>> many;
    for (int i = 0; i < 200; ++i) many.push_back(weft::spawn([] { weft::this_fiber::yield(); }));
    for (int k = 0; k < 200; ++k) {
      const std::size_t i = weft::wait_any(std::span(many));
      EXPECT_TRUE(many[i].is_finished());
      many[i].join();
      many.erase(many.begin() + static_cast<long>(i));
    }
  });
}

TEST_P(SelectorTest, FiberRefAndStateQueries) {
  weft::Runtime rt(config());
  EXPECT_EQ(message_of([] { (void)weft::this_fiber::handle(); }),
            "weft: this_fiber::handle() outside a fiber");
  rt.block_on([&] {
    weft::FiberRef self = weft::this_fiber::handle();
    EXPECT_EQ(self.id(), weft::this_fiber::id());
    EXPECT_EQ(self.name(), "main");
    EXPECT_EQ(self.state(), weft::FiberState::running);

    weft::Event go;
    weft::FiberOptions o;
    o.name = "child";
    o.priority = weft::Priority::high;
    weft::FiberRef child_ref;
    weft::Event have_ref;
    auto child = weft::spawn(o, [&] {
      child_ref = weft::this_fiber::handle();
      have_ref.set();
      go.wait();
    });
    have_ref.wait();
    EXPECT_EQ(child_ref.name(), "child");
    EXPECT_EQ(child_ref.priority(), weft::Priority::high);
    EXPECT_EQ(child_ref.id(), child.id());
    EXPECT_TRUE(
        weft::test::eventually([&] { return child_ref.state() == weft::FiberState::parked; }));
    EXPECT_EQ(weft::state_of(child), weft::FiberState::parked);
    go.set();
    child.join();
    EXPECT_EQ(child_ref.state(), weft::FiberState::finished);      // outlives the fiber
    EXPECT_EQ(weft::state_of(child), weft::FiberState::finished);  // empty handle
    EXPECT_STREQ(weft::to_string(weft::FiberState::parked), "parked");

    // cancel() through a ref reaches a parked fiber.
    weft::FiberRef r2;
    weft::Event ready;
    auto victim = weft::spawn([&] {
      r2 = weft::this_fiber::handle();
      ready.set();
      weft::this_fiber::sleep_for(1h);
    });
    ready.wait();
    EXPECT_FALSE(r2.is_cancelled());
    r2.cancel();
    EXPECT_THROW(victim.join(), weft::Cancelled);
    EXPECT_TRUE(r2.is_cancelled());
    weft::FiberRef copy = r2;
    EXPECT_EQ(copy.id(), r2.id());
    EXPECT_EQ(weft::FiberRef().state(), weft::FiberState::finished);
  });
}

// --- time -------------------------------------------------------------------------

TEST_P(SelectorTest, TickerTicksAndMissedTickBehaviors) {
  weft::Runtime rt(config());
  rt.block_on([&] {
    weft::Ticker t = weft::interval(10ms);
    const auto t0 = t.tick();  // the first tick is at once
    const auto t1 = t.tick();
    const auto t2 = t.tick();
    EXPECT_EQ(t1 - t0, 10ms);
    EXPECT_EQ(t2 - t1, 10ms);
    EXPECT_GE(Clock::now(), t2);  // never early

    // Pure schedule arithmetic, with a fixed "now" 35 ms after a due tick.
    const auto start = Clock::now();
    auto after_miss = [&](weft::MissedTickBehavior m) {
      weft::Ticker k(start, 10ms, m);
      EXPECT_EQ(k.consume(start + 35ms), start);
      return k.next() - start;
    };
    EXPECT_EQ(after_miss(weft::MissedTickBehavior::burst), 10ms);
    EXPECT_EQ(after_miss(weft::MissedTickBehavior::delay), 45ms);
    EXPECT_EQ(after_miss(weft::MissedTickBehavior::skip), 40ms);

    weft::Ticker s = weft::interval(1ms);
    s.stop();
    EXPECT_TRUE(s.is_stopped());
    EXPECT_EQ(message_of([&] { s.tick(); }), "weft: tick() on a stopped Ticker");
    s.reset();
    EXPECT_FALSE(s.is_stopped());
    EXPECT_EQ(message_of([] { weft::Ticker(Clock::now(), 0ms); }),
              "weft: Ticker period must be positive");
    weft::Ticker slow = weft::interval(1h);
    slow.tick();
    EXPECT_THROW(slow.tick(10ms), weft::TimedOut);
  });
}

TEST_P(SelectorTest, OnTickInSelect) {
  weft::Runtime rt(config());
  rt.block_on([&] {
    auto [tx, rx] = weft::channel<int>(16);
    weft::Ticker t = weft::interval(5ms);
    t.tick();
    int ticks = 0, msgs = 0;
    auto producer = weft::spawn([tx = tx] {
      for (int i = 0; i < 5; ++i) {
        weft::this_fiber::sleep_for(7ms);
        ASSERT_TRUE(tx.send(i).ok());
      }
      tx.close();
    });
    for (;;) {
      const std::size_t r = weft::select(weft::on_recv(rx, [&](int) { ++msgs; }),
                                         weft::on_tick(t, [&](Clock::time_point) { ++ticks; }));
      if (r == weft::select_all_closed || (msgs == 5 && ticks >= 3)) break;
    }
    producer.join();
    EXPECT_EQ(msgs, 5);
    EXPECT_GE(ticks, 3);
    weft::Selector sel;
    weft::Ticker t2 = weft::interval(3ms);
    t2.tick();
    int n = 0;
    sel.add_timeout(t2.next(), [&] { ++n; });
    EXPECT_EQ(sel.wait(), 0u);
    EXPECT_EQ(n, 1);
  });
}

TEST_P(SelectorTest, RetryWithBackoff) {
  weft::Runtime rt(config());
  rt.block_on([&] {
    weft::Backoff b;
    b.initial = 1ms;
    b.max = 4ms;
    int calls = 0;
    const int v = weft::retry(
        [&](std::size_t attempt) {
          ++calls;
          EXPECT_EQ(attempt, static_cast<std::size_t>(calls));
          if (calls < 4) throw std::runtime_error("flaky");
          return 42;
        },
        b, kPatience);
    EXPECT_EQ(v, 42);
    EXPECT_EQ(calls, 4);

    b.max_attempts = 3;
    calls = 0;
    EXPECT_EQ(message_of([&] {
                weft::retry(
                    [&] {
                      ++calls;
                      throw std::runtime_error("always " + std::to_string(calls));
                    },
                    b);
              }),
              "always 3");
    // The deadline ends it before the next wait would pass it.
    weft::Backoff slow;
    slow.initial = 1h;
    slow.max = 1h;
    calls = 0;
    EXPECT_EQ(message_of([&] {
                weft::retry([&] { ++calls, throw std::runtime_error("late"); }, slow, 1s);
              }),
              "late");
    EXPECT_EQ(calls, 1);
    // Delays grow by the multiplier up to max, within the jitter.
    weft::Backoff g;
    g.initial = 10ms;
    g.max = 80ms;
    g.jitter = 0.5;
    for (int i = 0; i < 100; ++i) {
      const auto d4 = weft::detail::backoff_delay(g, 4);  // 80 ms
      EXPECT_GE(d4, 40ms);
      EXPECT_LE(d4, 120ms);
    }
    g.jitter = 0;
    EXPECT_EQ(weft::detail::backoff_delay(g, 1), 10ms);
    EXPECT_EQ(weft::detail::backoff_delay(g, 3), 40ms);
    EXPECT_EQ(weft::detail::backoff_delay(g, 10), 80ms);
    // Cancellation is never retried.
    auto h = weft::spawn([] {
      weft::Backoff forever;
      weft::retry([] { weft::this_fiber::sleep_for(1h); }, forever);
    });
    weft::this_fiber::sleep_for(10ms);
    h.cancel();
    EXPECT_THROW(h.join(), weft::Cancelled);
    // Bad settings.
    weft::Backoff bad;
    bad.initial = 0ms;
    EXPECT_EQ(message_of([&] { weft::retry([] {}, bad); }),
              "weft: Backoff::initial must be positive");
    bad = {};
    bad.max = 1ms;
    EXPECT_EQ(message_of([&] { weft::retry([] {}, bad); }),
              "weft: Backoff::max must be at least initial");
    bad = {};
    bad.multiplier = 0.5;
    EXPECT_EQ(message_of([&] { weft::retry([] {}, bad); }),
              "weft: Backoff::multiplier must be at least 1");
    bad = {};
    bad.jitter = 2;
    EXPECT_EQ(message_of([&] { weft::retry([] {}, bad); }),
              "weft: Backoff::jitter must be in 0..1");
  });
}

}  // namespace

// --- pipelines (weft/pipeline.hpp) ----------------------------------------------

namespace {

TEST_P(SelectorTest, PipelineStagesMergeAndFanOut) {
  weft::Runtime rt(config());
  rt.block_on([&] {
    std::atomic<long> sum{0};
    std::atomic<int> count{0};
    weft::scope([&](weft::Scope& s) {
      auto [tx, rx] = weft::channel<int>(8);
      auto [tx2, rx2] = weft::channel<int>(8);
      s.spawn([tx = tx] {
        for (int i = 1; i <= 1000; ++i) ASSERT_TRUE(tx.send(i).ok());
        tx.close();
      });
      s.spawn([tx2 = tx2] {
        for (int i = 0; i < 10; ++i) ASSERT_TRUE(tx2.send(-1).ok());
        tx2.close();
      });
      auto doubled = weft::stage(
          s, rx, 4, [](int v) { return long{v} * 2; }, 3);
      auto as_long = weft::stage(s, rx2, 4, [](int v) { return long{v}; });
      auto all = weft::merge(s, 4, std::move(doubled), std::move(as_long));
      weft::fan_out(all, 4, [&](long v) {
        sum += v;
        ++count;
      });
    });
    EXPECT_EQ(count.load(), 1010);
    EXPECT_EQ(sum.load(), 1000L * 1001 - 10);
  });
}

TEST_P(SelectorTest, PipelineFailureAndCancellationFlowThrough) {
  weft::Runtime rt(config());
  rt.block_on([&] {
    // A failing stage cancels the rest, and scope() rethrows it.
    EXPECT_EQ(message_of([&] {
                weft::scope([&](weft::Scope& s) {
                  auto [tx, rx] = weft::channel<int>(1);
                  s.spawn([tx = tx] {
                    for (int i = 0;; ++i) {
                      if (!tx.send(i).ok()) return;
                    }
                  });
                  auto out = weft::stage(s, rx, 1, [](int v) {
                    if (v == 50) throw std::runtime_error("stage failed at 50");
                    return v;
                  });
                  weft::fan_out(out, 2, [](int) {});
                });
              }),
              "stage failed at 50");
    // Cancelling the pipeline's fiber stops every stage.
    auto h = weft::spawn([] {
      weft::scope([&](weft::Scope& s) {
        auto [tx, rx] = weft::channel<int>(1);  // nobody ever sends: all stages wait
        auto out = weft::stage(
            s, rx, 1, [](int v) { return v; }, 2);
        weft::fan_out(out, 2, [](int) {});
      });
    });
    weft::this_fiber::sleep_for(20ms);
    h.cancel();
    EXPECT_THROW(h.join(), weft::Cancelled);
    EXPECT_EQ(message_of([] {
                auto [tx, rx] = weft::channel<int>(1);
                weft::fan_out(rx, 0, [](int) {});
              }),
              "weft: fan_out needs at least one worker");
  });
}

}  // namespace
