// select: which case fires, what a case that does not fire leaves behind,
// default/timeout/deadline cases, closed channels, select against select on
// one rendezvous channel, plain threads, fairness, and stress runs where
// timeouts race sends and nothing may be lost or duplicated.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::ChannelStatus;
using weft::Clock;
using weft::JoinHandle;
using weft::on_deadline;
using weft::on_default;
using weft::on_recv;
using weft::on_send;
using weft::on_timeout;
using weft::Receiver;
using weft::Runtime;
using weft::select;
using weft::Sender;
using weft::test::Checker;
using weft::test::eventually;
using weft::test::kPatience;
using weft::test::scaled;
using weft::test::settle_parked;
using weft::test::Watchdog;

using Box = std::unique_ptr<std::uint64_t>;
Box box(std::uint64_t v) {
  return std::make_unique<std::uint64_t>(v);
}

std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Same as in channel_test.cpp: wait until n fibers are parked, then a bit.

// ---------------------------------------------------------------------------
// Non-blocking behaviour (plain test thread).

TEST(SelectBasics, FiresTheReadyCaseAndReturnsItsArgumentPosition) {
  auto [atx, arx] = weft::channel<int>(1);
  auto [btx, brx] = weft::channel<int>(1);
  ASSERT_TRUE(btx.try_send(5));
  int a = -1, b = -1;
  bool dflt = false;
  const auto r = select(on_default([&] { dflt = true; }), on_recv(arx, [&](int v) { a = v; }),
                        on_recv(brx, [&](int v) { b = v; }));
  EXPECT_EQ(r, 2u);
  EXPECT_EQ(b, 5);
  EXPECT_EQ(a, -1);
  EXPECT_FALSE(dflt) << "the default case ran although a case was ready";
  EXPECT_EQ(brx.size(), 0u);
}

TEST(SelectBasics, DefaultNeverBlocksAndConsumesNothing) {
  auto [atx, arx] = weft::channel<int>(1);
  auto [ftx, frx] = weft::channel<Box>(1);
  ASSERT_TRUE(ftx.try_send(box(1)));  // full: a send case cannot fire
  auto [rtx, rrx] = weft::channel<int>(0);
  Box mine = box(2);
  std::uint64_t* raw = mine.get();
  int fired = 0;
  for (int i = 0; i < 100; ++i) {
    const auto r =
        select(on_recv(arx, [&](int) { fired = 1; }), on_send(ftx, mine, [&] { fired = 2; }),
               on_recv(rrx, [&](int) { fired = 3; }), on_send(rtx, 7, [&] { fired = 4; }),
               on_default([] {}));
    ASSERT_EQ(r, 4u);
  }
  EXPECT_EQ(fired, 0);
  EXPECT_EQ(mine.get(), raw) << "a send case that did not fire moved the value";
  EXPECT_EQ(frx.size(), 1u);
  EXPECT_EQ(arx.size(), 0u);
}

TEST(SelectBasics, OneSelectWithBothSidesOfABufferedChannel) {
  auto [tx, rx] = weft::channel<int>(1);
  std::vector<int> events;
  for (int i = 0; i < 10; ++i) {
    // Empty: only the send can fire. Full: only the receive can.
    int v = i;
    select(on_send(tx, v, [&] { events.push_back(100 + i); }),
           on_recv(rx, [&](int got) { events.push_back(got); }));
  }
  EXPECT_EQ(events, (std::vector<int>{100, 0, 102, 2, 104, 4, 106, 6, 108, 8}));
}

TEST(SelectBasics, TimeoutAndDeadlineFireWhenNothingIsReady) {
  auto [tx, rx] = weft::channel<int>(0);
  bool recv_ran = false, timeout_ran = false;
  auto start = Clock::now();
  auto r = select(on_recv(rx, [&](int) { recv_ran = true; }),
                  on_timeout(20ms, [&] { timeout_ran = true; }));
  EXPECT_GE(Clock::now() - start, 20ms) << "on_timeout fired early";
  EXPECT_EQ(r, 1u);
  EXPECT_TRUE(timeout_ran);
  EXPECT_FALSE(recv_ran);

  start = Clock::now();
  const auto deadline = start + 15ms;
  r = select(on_deadline(deadline, [] {}), on_recv(rx, [&](int) { recv_ran = true; }));
  EXPECT_EQ(r, 0u);
  EXPECT_GE(Clock::now(), deadline) << "on_deadline fired early";

  // An expired deadline behaves like a default case...
  r = select(on_recv(rx, [&](int) { recv_ran = true; }), on_deadline(Clock::now() - 1s, [] {}));
  EXPECT_EQ(r, 1u);
  // ... but a ready case still wins over it.
  auto [btx, brx] = weft::channel<int>(1);
  ASSERT_TRUE(btx.try_send(3));
  int got = 0;
  r = select(on_timeout(0ms, [] {}), on_recv(brx, [&](int v) { got = v; }));
  EXPECT_EQ(r, 1u);
  EXPECT_EQ(got, 3);
  EXPECT_FALSE(recv_ran);
}

TEST(SelectBasics, AllCasesDisabledByClosureReturnsSelectAllClosed) {
  auto [atx, arx] = weft::channel<int>(1);
  auto [btx, brx] = weft::channel<Box>(0);
  atx.close();
  btx.close();
  Box mine = box(1);
  bool ran = false;
  const auto r =
      select(on_recv(arx, [&](int) { ran = true; }), on_send(btx, mine, [&] { ran = true; }));
  EXPECT_EQ(r, weft::select_all_closed);
  EXPECT_FALSE(ran);
  EXPECT_NE(mine, nullptr);

  // A closed channel with buffered values is not disabled until drained.
  auto [ctx, crx] = weft::channel<int>(2);
  ASSERT_TRUE(ctx.try_send(9));
  ctx.close();
  int got = 0;
  EXPECT_EQ(select(on_recv(crx, [&](int v) { got = v; })), 0u);
  EXPECT_EQ(got, 9);
  EXPECT_EQ(select(on_recv(crx, [&](int v) { got = v; })), weft::select_all_closed);
}

TEST(SelectBasics, OptionalRecvHandlerFiresWithNothingOnClosed) {
  auto [tx, rx] = weft::channel<int>(1);
  auto [otx, orx] = weft::channel<int>(0);
  tx.close();
  int calls = 0;
  std::optional<int> seen = 42;
  const auto r =
      select(on_recv(orx, [&](int) { calls += 100; }), on_recv(rx, [&](std::optional<int> v) {
               ++calls;
               seen = v;
             }));
  EXPECT_EQ(r, 1u);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen, std::nullopt);
}

TEST(SelectBasics, BoolSendHandlerFiresFalseOnClosedAndLeavesTheValue) {
  auto [tx, rx] = weft::channel<Box>(4);
  rx.close();
  Box mine = box(8);
  std::uint64_t* raw = mine.get();
  int result = -1;
  const auto r = select(on_send(tx, mine, [&](bool sent) { result = sent; }));
  EXPECT_EQ(r, 0u);
  EXPECT_EQ(result, 0);
  EXPECT_EQ(mine.get(), raw) << "an unsent value must stay in the caller's lvalue";
}

TEST(SelectBasics, SendCaseMovesTheLvalueOnlyWhenItFires) {
  auto [tx, rx] = weft::channel<Box>(1);
  Box mine = box(4);
  std::uint64_t* raw = mine.get();
  bool sent = false;
  EXPECT_EQ(select(on_send(tx, mine, [&](bool ok) { sent = ok; })), 0u);
  EXPECT_TRUE(sent);
  EXPECT_EQ(mine, nullptr) << "a fired send case must move the value";
  auto got = rx.try_recv();
  ASSERT_TRUE(got);
  EXPECT_EQ(got.value().get(), raw);

  // An rvalue is held by the case and sent as is.
  EXPECT_EQ(select(on_send(tx, box(5), [] {})), 0u);
  auto got2 = rx.try_recv();
  ASSERT_TRUE(got2);
  EXPECT_EQ(*got2.value(), 5u);
}

TEST(SelectBasics, HandlerExceptionPropagatesAfterTheCaseCompleted) {
  auto [tx, rx] = weft::channel<int>(1);
  ASSERT_TRUE(tx.try_send(1));
  EXPECT_THROW(select(on_recv(rx, [](int) { throw std::runtime_error("boom"); })),
               std::runtime_error);
  EXPECT_EQ(rx.try_recv().status(), ChannelStatus::empty) << "the value must have been consumed";
}

TEST(SelectBasics, OnlyATimeoutOrOnlyADefault) {
  int ran = 0;
  const auto start = Clock::now();
  EXPECT_EQ(select(on_timeout(10ms, [&] { ++ran; })), 0u);
  EXPECT_GE(Clock::now() - start, 10ms);
  EXPECT_EQ(select(on_default([&] { ++ran; })), 0u);
  EXPECT_EQ(ran, 2);
}

TEST(SelectBasics, AllClosedWithATimeoutOrDefaultFiresThatCase) {
  auto [tx, rx] = weft::channel<int>(1);
  tx.close();
  bool recv_ran = false, timeout_ran = false, default_ran = false;
  const auto start = Clock::now();
  EXPECT_EQ(select(on_recv(rx, [&](int) { recv_ran = true; }),
                   on_timeout(10ms, [&] { timeout_ran = true; })),
            1u);
  EXPECT_GE(Clock::now() - start, 10ms) << "the timeout fired early";
  EXPECT_EQ(
      select(on_default([&] { default_ran = true; }), on_recv(rx, [&](int) { recv_ran = true; })),
      0u);
  EXPECT_TRUE(timeout_ran);
  EXPECT_TRUE(default_ran);
  EXPECT_FALSE(recv_ran);
}

TEST(SelectBasics, AnRvalueSendCaseThatDoesNotFireIsDestroyed) {
  struct Counted {
    std::atomic<int>* live;
    explicit Counted(std::atomic<int>* l) : live(l) { ++*live; }
    Counted(Counted&& o) noexcept : live(o.live) { ++*live; }
    ~Counted() { --*live; }
  };
  std::atomic<int> live{0};
  auto [tx, rx] = weft::channel<Counted>(0);
  bool sent = false;
  EXPECT_EQ(select(on_send(tx, Counted(&live), [&] { sent = true; }), on_default([] {})), 1u);
  EXPECT_FALSE(sent);
  EXPECT_EQ(live.load(), 0) << "the unsent rvalue leaked (or was destroyed twice)";
}

TEST(SelectBasics, EmptyHandleThrowsLogicError) {
  Receiver<int> none;
  auto [tx, rx] = weft::channel<int>(1);
  EXPECT_THROW(select(on_recv(rx, [](int) {}), on_recv(none, [](int) {}), on_default([] {})),
               std::logic_error);
}

// More cases than select keeps inline (16): its node storage then comes from
// the heap.
TEST(SelectBasics, TwentyCases) {
  std::vector<Sender<int>> txs;
  std::vector<Receiver<int>> rxs;
  for (int i = 0; i < 20; ++i) {
    auto [tx, rx] = weft::channel<int>(0);
    txs.push_back(std::move(tx));
    rxs.push_back(std::move(rx));
  }
  int got = -1;
  auto select20 = [&](auto timeout) {
    auto h = [&](int v) { got = v; };
    return select(on_recv(rxs[0], h), on_recv(rxs[1], h), on_recv(rxs[2], h), on_recv(rxs[3], h),
                  on_recv(rxs[4], h), on_recv(rxs[5], h), on_recv(rxs[6], h), on_recv(rxs[7], h),
                  on_recv(rxs[8], h), on_recv(rxs[9], h), on_recv(rxs[10], h), on_recv(rxs[11], h),
                  on_recv(rxs[12], h), on_recv(rxs[13], h), on_recv(rxs[14], h),
                  on_recv(rxs[15], h), on_recv(rxs[16], h), on_recv(rxs[17], h),
                  on_recv(rxs[18], h), on_recv(rxs[19], h), on_timeout(timeout, [] {}));
  };
  EXPECT_EQ(select20(5ms), 20u);
  Runtime rt(weft::test::workers_config(2));
  for (int target : {17, 3, 19}) {
    auto h = rt.spawn([&, target] {
      weft::this_fiber::sleep_for(2ms);
      return txs[target].send(100 + target).ok();
    });
    EXPECT_EQ(select20(kPatience), static_cast<std::size_t>(target));  // plain thread blocks
    EXPECT_EQ(got, 100 + target);
    EXPECT_TRUE(h.join());
  }
}

// ---------------------------------------------------------------------------
// Fairness (statistical; the bound is ~40 standard deviations away from the
// expected 50%).

TEST(SelectFairness, TwoAlwaysReadyReceiveCases) {
  const int n = 10000;
  auto [atx, arx] = weft::unbounded_channel<int>();
  auto [btx, brx] = weft::unbounded_channel<int>();
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(atx.try_send(i));
    ASSERT_TRUE(btx.try_send(i));
  }
  int a = 0, b = 0;
  for (int i = 0; i < n; ++i)
    select(on_recv(arx, [&](int) { ++a; }), on_recv(brx, [&](int) { ++b; }));
  EXPECT_EQ(a + b, n);
  EXPECT_GE(a, n * 3 / 10) << "a=" << a << " b=" << b;
  EXPECT_GE(b, n * 3 / 10) << "a=" << a << " b=" << b;
}

TEST(SelectFairness, ReadySendAndReadyReceive) {
  const int n = 10000;
  auto [stx, srx] = weft::unbounded_channel<int>();  // always has room
  auto [rtx, rrx] = weft::unbounded_channel<int>();
  for (int i = 0; i < n; ++i) ASSERT_TRUE(rtx.try_send(i));
  int sends = 0, recvs = 0;
  for (int i = 0; i < n; ++i) {
    select(on_send(stx, i, [&] { ++sends; }), on_recv(rrx, [&](int) { ++recvs; }),
           on_default([] {}));
  }
  EXPECT_EQ(sends + recvs, n) << "the default case fired although two cases were ready";
  EXPECT_GE(sends, n * 3 / 10) << "sends=" << sends << " recvs=" << recvs;
  EXPECT_GE(recvs, n * 3 / 10) << "sends=" << sends << " recvs=" << recvs;
  EXPECT_EQ(srx.size(), static_cast<std::size_t>(sends));
}

TEST(SelectFairness, ThreeReadyCasesInAFiber) {
  Runtime rt(weft::test::workers_config(2));
  constexpr int n = 9000;
  auto counts = rt.block_on([] {
    std::vector<Sender<int>> txs;
    std::vector<Receiver<int>> rxs;
    for (int c = 0; c < 3; ++c) {
      auto [tx, rx] = weft::channel<int>(static_cast<std::size_t>(n));
      for (int i = 0; i < n; ++i) (void)tx.try_send(i);
      txs.push_back(std::move(tx));
      rxs.push_back(std::move(rx));
    }
    std::vector<int> count(3);
    for (int i = 0; i < n; ++i) {
      select(on_recv(rxs[0], [&](int) { ++count[0]; }), on_recv(rxs[1], [&](int) { ++count[1]; }),
             on_recv(rxs[2], [&](int) { ++count[2]; }));
    }
    return count;
  });
  for (int c = 0; c < 3; ++c) EXPECT_GE(counts[c], n / 5) << "case " << c;  // expected n / 3
}

// ---------------------------------------------------------------------------
// Blocking selects.

class Select : public weft::test::WorkersTest {};
WEFT_INSTANTIATE_WORKERS(Select);

TEST_P(Select, BlockedSelectIsCompletedByASendOrAReceive) {
  Runtime rt(config());
  for (int round = 0; round < 20; ++round) {
    auto [atx, arx] = weft::channel<int>(0);
    auto [btx, brx] = weft::channel<int>(0);
    const bool counterpart_receives = round % 2 == 0;
    int mine = 100 + round;
    auto h = rt.spawn([&, atx = atx, brx = brx]() mutable {
      int got = -1;
      const auto r = select(on_send(atx, mine, [] {}), on_recv(brx, [&](int v) { got = v; }));
      return std::pair<std::size_t, int>(r, got);
    });
    settle_parked(rt, 1);
    if (counterpart_receives) {
      EXPECT_EQ(arx.recv(), 100 + round);
    } else {
      ASSERT_TRUE(btx.send(round));
    }
    auto [r, got] = h.join();
    if (counterpart_receives) {
      EXPECT_EQ(r, 0u);
    } else {
      EXPECT_EQ(r, 1u);
      EXPECT_EQ(got, round);
      EXPECT_EQ(mine, 100 + round) << "int lvalue changed although its send case did not fire";
    }
  }
}

TEST_P(Select, BlockedSelectSeesClose) {
  Runtime rt(config());
  auto [tx, rx] = weft::channel<int>(0);
  auto [stx, srx] = weft::channel<Box>(0);
  auto recv_side = rt.spawn([rx = rx]() mutable {
    std::optional<int> seen = 1;
    const auto r = select(on_recv(rx, [&](std::optional<int> v) { seen = v; }));
    return r == 0 && !seen;
  });
  auto send_side = rt.spawn([stx = stx]() mutable {
    Box mine = box(5);
    std::uint64_t* raw = mine.get();
    int sent = -1;
    const auto r = select(on_send(stx, mine, [&](bool ok) { sent = ok; }));
    return r == 0 && sent == 0 && mine.get() == raw;
  });
  settle_parked(rt, 2);
  tx.close();
  srx.close();
  Watchdog wd("selects blocked across close");
  EXPECT_TRUE(recv_side.join()) << "optional recv handler did not fire with nothing";
  EXPECT_TRUE(send_side.join()) << "bool send handler did not fire with false, value kept";
}

TEST_P(Select, BlockedSelectWithOnlyDisablingCasesReturnsAllClosedOnClose) {
  Runtime rt(config());
  auto [atx, arx] = weft::channel<int>(0);
  auto [btx, brx] = weft::channel<int>(4);
  auto h = rt.spawn([arx = arx, brx = brx]() mutable {
    return select(on_recv(arx, [](int) {}), on_recv(brx, [](int) {}));
  });
  settle_parked(rt, 1);
  atx.close();
  std::this_thread::sleep_for(5ms);
  EXPECT_FALSE(h.is_finished()) << "one channel is still open: the select must keep waiting";
  btx.close();
  Watchdog wd("select over two channels that close");
  EXPECT_EQ(h.join(), weft::select_all_closed);
}

TEST_P(Select, ChannelsOfDifferentTypes) {
  Runtime rt(config());
  constexpr int n = static_cast<int>(scaled(3000, 300));
  auto [itx, irx] = weft::channel<int>(0);
  auto [stx, srx] = weft::channel<std::string>(2);
  auto [btx, brx] = weft::unbounded_channel<Box>();
  auto producer =
      rt.spawn([itx = std::move(itx), stx = std::move(stx), btx = std::move(btx)]() mutable {
        for (int i = 0; i < n; ++i) {
          switch (i % 3) {
            case 0:
              (void)itx.send(i);
              break;
            case 1:
              (void)stx.send(std::to_string(i));
              break;
            default:
              (void)btx.send(box(static_cast<std::uint64_t>(i)));
          }
        }
      });
  std::vector<int> got;
  rt.block_on([&, irx = std::move(irx), srx = std::move(srx), brx = std::move(brx)]() mutable {
    bool i_closed = false, s_closed = false, b_closed = false;
    while (!(i_closed && s_closed && b_closed)) {
      select(on_recv(irx,
                     [&](std::optional<int> v) {
                       if (v) {
                         got.push_back(*v);
                       } else {
                         i_closed = true;
                       }
                     }),
             on_recv(srx,
                     [&](std::optional<std::string> v) {
                       if (v) {
                         got.push_back(std::stoi(*v));
                       } else {
                         s_closed = true;
                       }
                     }),
             on_recv(brx, [&](std::optional<Box> v) {
               if (v) {
                 got.push_back(static_cast<int>(**v));
               } else {
                 b_closed = true;
               }
             }));
    }
  });
  producer.join();
  std::sort(got.begin(), got.end());
  ASSERT_EQ(got.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    if (got[i] != i) {
      ADD_FAILURE() << "value " << i << " missing or duplicated";
      break;
    }
  }
}

// Two fibers each select {send, receive} on the same rendezvous channel: they
// must pair up with each other (a select never pairs with itself), every
// round, and each receives what the other sent.
void select_vs_select(Runtime* rt, bool threads) {
  const int rounds = static_cast<int>(scaled(5000, 500));
  auto [tx, rx] = weft::channel<std::uint64_t>(0);
  Checker check;
  struct Side {
    std::uint64_t sent_sum = 0, recv_sum = 0;
    int sent = 0, received = 0, timeouts = 0;
  };
  Side sides[2];
  auto body = [&](int me, Sender<std::uint64_t> s, Receiver<std::uint64_t> r) {
    Side& side = sides[me];
    for (int i = 0; i < rounds; ++i) {
      std::uint64_t v = static_cast<std::uint64_t>(me) * 1000000 + i;
      const std::uint64_t want = v;
      const auto fired =
          select(on_send(s, v,
                         [&] {
                           ++side.sent;
                           side.sent_sum += want;
                         }),
                 on_recv(r,
                         [&](std::uint64_t got) {
                           ++side.received;
                           side.recv_sum += got;
                           check.check(got / 1000000 != static_cast<std::uint64_t>(me),
                                       "a select received its own value");
                         }),
                 on_timeout(kPatience, [&] { ++side.timeouts; }));
      if (fired == 2) return;
    }
  };
  if (threads) {
    std::thread a(body, 0, tx, rx), b(body, 1, tx, rx);
    a.join();
    b.join();
  } else {
    auto a = rt->spawn([&, s = tx, r = rx] { body(0, s, r); });
    auto b = rt->spawn([&, s = tx, r = rx] { body(1, s, r); });
    a.join();
    b.join();
  }
  WEFT_EXPECT_NO_FAILURES(check);
  EXPECT_EQ(sides[0].timeouts + sides[1].timeouts, 0) << "the two selects did not pair up";
  EXPECT_EQ(sides[0].sent + sides[0].received, rounds);
  EXPECT_EQ(sides[0].sent, sides[1].received);
  EXPECT_EQ(sides[1].sent, sides[0].received);
  EXPECT_EQ(sides[0].sent_sum, sides[1].recv_sum);
  EXPECT_EQ(sides[1].sent_sum, sides[0].recv_sum);
}

TEST_P(Select, SelectVersusSelectOnOneRendezvousChannel) {
  Runtime rt(config());
  select_vs_select(&rt, false);
}

TEST(SelectThreads, SelectVersusSelectFromPlainThreads) {
  select_vs_select(nullptr, true);
}

TEST_P(Select, PlainThreadSelectIsCompletedByAFiber) {
  Runtime rt(config());
  for (int round = 0; round < 20; ++round) {
    auto [atx, arx] = weft::channel<int>(0);
    auto [btx, brx] = weft::channel<int>(0);
    auto fiber = rt.spawn([round, atx = atx, btx = btx]() mutable {
      weft::this_fiber::sleep_for(1ms);
      return round % 2 == 0 ? atx.send(round).ok() : btx.send(round).ok();
    });
    int got = -1;
    const auto r =
        select(on_recv(arx, [&](int v) { got = v; }), on_recv(brx, [&](int v) { got = v + 1000; }),
               on_timeout(kPatience, [] {}));
    EXPECT_EQ(r, round % 2 == 0 ? 0u : 1u);
    EXPECT_EQ(got, round % 2 == 0 ? round : round + 1000);
    EXPECT_TRUE(fiber.join());
  }
}

TEST_P(Select, FiberSelectIsCompletedByAPlainThread) {
  Runtime rt(config());
  auto [tx, rx] = weft::channel<Box>(0);
  auto h = rt.spawn([rx = rx]() mutable {
    std::uint64_t got = 0;
    select(on_recv(rx, [&](Box b) { got = *b; }), on_timeout(kPatience, [] {}));
    return got;
  });
  std::thread t([tx = tx]() mutable {
    std::this_thread::sleep_for(2ms);
    (void)tx.send(box(33));
  });
  EXPECT_EQ(h.join(), 33u);
  t.join();
}

// ---------------------------------------------------------------------------
// Stress: timeouts racing sends.

/// Timeouts from 0 (expired at once) to a bit over a timer tick, so that
/// timers fire while values are being handed over.
std::chrono::microseconds tiny_timeout(std::mt19937& rng) {
  static constexpr int kChoices[] = {0, 1, 50, 300, 1000, 1500};
  return std::chrono::microseconds(kChoices[rng() % std::size(kChoices)]);
}

TEST_P(Select, RecvCasesRacingTimeoutsNeverLoseOrDuplicateValues) {
  Runtime rt(config());
  constexpr int kProducers = 4;  // per channel
  constexpr int kConsumers = 8;
  const std::uint64_t per = static_cast<std::uint64_t>(scaled(10000, 1000));
  const std::uint64_t total = per * kProducers * 2;
  auto seen = std::make_unique<std::atomic<std::uint8_t>[]>(total);
  for (std::uint64_t v = 0; v < total; ++v) seen[v].store(0, std::memory_order_relaxed);
  std::atomic<std::uint64_t> count{0}, sum{0}, hash{0}, timeouts{0};
  Checker check;
  {
    Watchdog wd("select recv vs timeouts stress");
    rt.block_on([&] {
      auto [atx, arx] = weft::channel<std::uint64_t>(0);
      auto [btx, brx] = weft::channel<std::uint64_t>(4);
      std::vector<JoinHandle<void>> hs;
      for (int p = 0; p < kProducers * 2; ++p) {
        Sender<std::uint64_t> s = p % 2 == 0 ? atx : btx;
        hs.push_back(weft::spawn([&, p, s]() mutable {
          std::mt19937 rng(p);
          for (std::uint64_t i = 0; i < per; ++i) {
            const std::uint64_t v = p * per + i;
            // Producers pause now and then so consumers time out too.
            if (rng() % 64 == 0)
              weft::this_fiber::sleep_for(std::chrono::microseconds(rng() % 1500));
            check.check(s.send(v).ok(), "send failed");
          }
        }));
      }
      atx = Sender<std::uint64_t>();
      btx = Sender<std::uint64_t>();
      for (int c = 0; c < kConsumers; ++c) {
        hs.push_back(weft::spawn([&, c, a = arx, b = brx]() mutable {
          std::mt19937 rng(1000 + c);
          bool a_closed = false, b_closed = false;
          std::uint64_t n = 0, s = 0, h = 0, t = 0;
          auto take = [&](bool& closed) {
            return [&](std::optional<std::uint64_t> v) {
              if (!v) {
                closed = true;
                return;
              }
              if (!check.check(*v < total, "value out of range")) return;
              seen[*v].fetch_add(1, std::memory_order_relaxed);
              ++n;
              s += *v;
              h += mix(*v);
            };
          };
          // A closed channel's case is always ready, so once one channel is
          // seen closed the loop selects on the other alone (else it would
          // spin without ever parking and starve the producers).
          while (!(a_closed && b_closed)) {
            if (a_closed || b_closed) {
              Receiver<std::uint64_t>& open = a_closed ? b : a;
              select(on_recv(open, take(a_closed ? b_closed : a_closed)),
                     on_timeout(tiny_timeout(rng), [&] { ++t; }));
            } else if (rng() % 2 == 0) {
              select(on_recv(a, take(a_closed)), on_recv(b, take(b_closed)),
                     on_timeout(tiny_timeout(rng), [&] { ++t; }));
            } else {
              select(on_deadline(Clock::now() + tiny_timeout(rng), [&] { ++t; }),
                     on_recv(b, take(b_closed)), on_recv(a, take(a_closed)));
            }
          }
          count += n;
          sum += s;
          hash += h;
          timeouts += t;
        }));
      }
      for (auto& h : hs) h.join();
    });
  }
  std::uint64_t want_sum = 0, want_hash = 0;
  for (std::uint64_t v = 0; v < total; ++v) {
    want_sum += v;
    want_hash += mix(v);
  }
  WEFT_EXPECT_NO_FAILURES(check);
  EXPECT_EQ(count.load(), total);
  EXPECT_EQ(sum.load(), want_sum);
  EXPECT_EQ(hash.load(), want_hash);
  std::uint64_t bad = 0;
  for (std::uint64_t v = 0; v < total; ++v) bad += seen[v].load() != 1;
  EXPECT_EQ(bad, 0u) << "values received zero or several times";
  RecordProperty("timeouts", std::to_string(timeouts.load()));
}

TEST_P(Select, SendCasesRacingTimeoutsKeepUnsentValues) {
  Runtime rt(config());
  constexpr int kProducers = 8;
  constexpr int kConsumers = 4;
  const std::uint64_t per = static_cast<std::uint64_t>(scaled(20000, 2000));
  const std::uint64_t total = per * kProducers;
  auto seen = std::make_unique<std::atomic<std::uint8_t>[]>(total);
  for (std::uint64_t v = 0; v < total; ++v) seen[v].store(0, std::memory_order_relaxed);
  std::atomic<std::uint64_t> received{0}, send_timeouts{0}, recv_timeouts{0};
  Checker check;
  {
    Watchdog wd("select send vs timeouts stress");
    rt.block_on([&] {
      auto [atx, arx] = weft::channel<Box>(0);
      auto [btx, brx] = weft::channel<Box>(2);
      std::vector<JoinHandle<void>> hs;
      for (int p = 0; p < kProducers; ++p) {
        hs.push_back(weft::spawn([&, p, a = atx, b = btx]() mutable {
          std::mt19937 rng(p);
          std::uint64_t t = 0;
          for (std::uint64_t i = 0; i < per; ++i) {
            const std::uint64_t v = p * per + i;
            Box mine = box(v);
            std::uint64_t* const raw = mine.get();
            bool sent = false;
            while (!sent) {
              const auto to = tiny_timeout(rng);
              (void)(rng() % 2 == 0
                         ? select(on_send(a, mine, [&] { sent = true; }),
                                  on_send(b, mine, [&] { sent = true; }), on_timeout(to, [] {}))
                         : select(on_timeout(to, [] {}), on_send(b, mine, [&] { sent = true; })));
              if (sent) {
                check.check(mine == nullptr, "a fired send case left the value behind");
              } else {
                ++t;
                if (!check.check(mine.get() == raw && *mine == v,
                                 "a send case that did not fire lost the caller's value")) {
                  return;
                }
              }
            }
          }
          send_timeouts += t;
        }));
      }
      atx = Sender<Box>();
      btx = Sender<Box>();
      for (int c = 0; c < kConsumers; ++c) {
        hs.push_back(weft::spawn([&, c, a = arx, b = brx]() mutable {
          std::mt19937 rng(100 + c);
          std::uint64_t n = 0, t = 0;
          auto record = [&](Box got) {
            if (!check.check(got != nullptr && *got < total, "bad value")) return;
            seen[*got].fetch_add(1, std::memory_order_relaxed);
            ++n;
          };
          bool a_open = true, b_open = true;
          while (a_open || b_open) {
            // Consumers pause now and then so that senders wait with timers.
            if (rng() % 64 == 0)
              weft::this_fiber::sleep_for(std::chrono::microseconds(rng() % 1500));
            // Plain timed receives alternate with selects; once a channel is
            // closed only the other one is read (a closed case is always
            // ready: selecting on it would spin).
            if ((c % 2 == 0 && a_open) || !b_open || !a_open) {
              const bool use_a = a_open && (c % 2 == 0 || !b_open);
              auto r = (use_a ? a : b).recv_for(tiny_timeout(rng));
              if (r) {
                record(std::move(r).value());
              } else if (r.status() == ChannelStatus::closed) {
                (use_a ? a_open : b_open) = false;
              } else {
                ++t;
              }
              continue;
            }
            const auto r = select(on_recv(a,
                                          [&](std::optional<Box> v) {
                                            v ? record(std::move(*v)) : void(a_open = false);
                                          }),
                                  on_recv(b,
                                          [&](std::optional<Box> v) {
                                            v ? record(std::move(*v)) : void(b_open = false);
                                          }),
                                  on_timeout(tiny_timeout(rng), [&] { ++t; }));
            (void)r;
          }
          received += n;
          recv_timeouts += t;
        }));
      }
      for (auto& h : hs) h.join();
    });
  }
  WEFT_EXPECT_NO_FAILURES(check);
  EXPECT_EQ(received.load(), total);
  std::uint64_t bad = 0;
  for (std::uint64_t v = 0; v < total; ++v) bad += seen[v].load() != 1;
  EXPECT_EQ(bad, 0u) << "values received zero or several times";
  RecordProperty("send_timeouts", std::to_string(send_timeouts.load()));
  RecordProperty("recv_timeouts", std::to_string(recv_timeouts.load()));
}

}  // namespace
