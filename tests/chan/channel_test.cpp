// Channels: close semantics, try/timed forms, capacity and size, move-only
// values, the rendezvous hand-off, oneshot, range-for, and fibers and plain
// threads sharing one channel. Select is in select_test.cpp, the big MPMC
// runs in mpmc_test.cpp, wake/timeout/cancel races in race_test.cpp.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <numeric>
#include <optional>
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
using weft::Receiver;
using weft::Runtime;
using weft::Sender;
using weft::test::Checker;
using weft::test::eventually;
using weft::test::settle_parked;
using weft::test::Watchdog;

using Box = std::unique_ptr<int>;
Box box(int v) {
  return std::make_unique<int>(v);
}

/// Counts its live instances (moved-from ones included) in *live.
struct Tracked {
  std::atomic<int>* live;
  int v;
  Tracked(std::atomic<int>* l, int x) : live(l), v(x) { ++*live; }
  Tracked(Tracked&& o) noexcept : live(o.live), v(o.v) {
    ++*live;
    o.v = -1;
  }
  Tracked& operator=(Tracked&&) = delete;
  ~Tracked() { --*live; }
};

/// Waits (bounded) until at least n of rt's fibers are parked, then a little
/// longer: a fiber counted as parked may still be switching out. Only used
/// where the assertion that follows holds whether or not the fibers had
/// really blocked yet; it makes the interesting interleaving the likely one.

// ---------------------------------------------------------------------------
// Single-threaded semantics (plain test thread, no runtime needed for
// non-blocking operations and for timed waits outside fibers).

TEST(ChanBasics, StatusNames) {
  EXPECT_STREQ(weft::to_string(ChannelStatus::ok), "ok");
  EXPECT_STREQ(weft::to_string(ChannelStatus::full), "full");
  EXPECT_STREQ(weft::to_string(ChannelStatus::empty), "empty");
  EXPECT_STREQ(weft::to_string(ChannelStatus::closed), "closed");
  EXPECT_STREQ(weft::to_string(ChannelStatus::timed_out), "timed_out");
}

TEST(ChanBasics, CapacitySizeAndIsClosed) {
  auto [tx, rx] = weft::channel<int>(4);
  EXPECT_EQ(tx.capacity(), 4u);
  EXPECT_EQ(rx.capacity(), 4u);
  EXPECT_EQ(tx.size(), 0u);
  EXPECT_FALSE(tx.is_closed());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(tx.try_send(i));
  EXPECT_EQ(tx.size(), 3u);
  EXPECT_EQ(rx.size(), 3u);
  ASSERT_TRUE(rx.try_recv());
  EXPECT_EQ(rx.size(), 2u);
  tx.close();
  EXPECT_TRUE(tx.is_closed());
  EXPECT_TRUE(rx.is_closed());
  EXPECT_EQ(rx.size(), 2u) << "close must keep buffered values for the receivers";

  auto [rtx, rrx] = weft::channel<int>(0);
  EXPECT_EQ(rtx.capacity(), 0u);
  EXPECT_EQ(rrx.size(), 0u);

  auto [utx, urx] = weft::unbounded_channel<int>();
  EXPECT_EQ(utx.capacity(), SIZE_MAX);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(utx.try_send(i));
  EXPECT_EQ(urx.size(), 1000u);
}

TEST(ChanBasics, TrySendFullHandsBackTheSameObject) {
  auto [tx, rx] = weft::channel<Box>(1);
  ASSERT_TRUE(tx.try_send(box(1)));
  Box b = box(2);
  int* raw = b.get();
  auto r = tx.try_send(std::move(b));
  EXPECT_FALSE(r);
  EXPECT_EQ(r.status(), ChannelStatus::full);
  ASSERT_NE(r.value(), nullptr);
  EXPECT_EQ(r.value().get(), raw) << "try_send(full) must hand back the very object";
  EXPECT_EQ(*r.value(), 2);
  EXPECT_EQ(tx.size(), 1u);
}

TEST(ChanBasics, TryRecvEmptyThenClosed) {
  auto [tx, rx] = weft::channel<int>(2);
  auto r = rx.try_recv();
  EXPECT_FALSE(r);
  EXPECT_EQ(r.status(), ChannelStatus::empty);
  ASSERT_TRUE(tx.try_send(7));
  tx.close();
  auto got = rx.try_recv();
  ASSERT_TRUE(got) << "buffered value lost by close";
  EXPECT_EQ(*got, 7);
  auto end = rx.try_recv();
  EXPECT_EQ(end.status(), ChannelStatus::closed);
  EXPECT_EQ(rx.recv(), std::nullopt);
}

TEST(ChanBasics, ReceiversDrainBufferedValuesAfterCloseThenSeeClosed) {
  for (bool unbounded : {false, true}) {
    auto [tx, rx] = unbounded ? weft::unbounded_channel<int>() : weft::channel<int>(8);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(tx.send(i));
    rx.close();  // either side may close
    std::vector<int> got;
    while (auto v = rx.recv()) got.push_back(*v);
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4})) << "unbounded=" << unbounded;
    EXPECT_EQ(rx.recv_for(10ms).status(), ChannelStatus::closed);
    EXPECT_EQ(rx.recv_until(Clock::now() + 10ms).status(), ChannelStatus::closed);
    EXPECT_EQ(rx.try_recv().status(), ChannelStatus::closed);
  }
}

TEST(ChanBasics, SendOnClosedHandsBackTheSameObject) {
  for (std::size_t cap : {std::size_t{0}, std::size_t{4}}) {
    Sender<Box> tx;
    Receiver<Box> rx;
    std::tie(tx, rx) = weft::channel<Box>(cap);
    tx.close();
    tx.close();  // idempotent
    for (int form = 0; form < 4; ++form) {
      Box b = box(form);
      int* raw = b.get();
      weft::SendResult<Box> r = [&] {
        switch (form) {
          case 0:
            return tx.send(std::move(b));
          case 1:
            return tx.try_send(std::move(b));
          case 2:
            return tx.send_for(std::move(b), 1h);
          default:
            return tx.send_until(std::move(b), Clock::now() + 1h);
        }
      }();
      EXPECT_EQ(r.status(), ChannelStatus::closed) << "cap " << cap << " form " << form;
      ASSERT_NE(r.value(), nullptr);
      EXPECT_EQ(r.value().get(), raw) << "form " << form << " did not hand back the same object";
      Box back = std::move(r).value();
      EXPECT_EQ(*back, form);
    }
    EXPECT_EQ(rx.size(), 0u);
  }
}

TEST(ChanBasics, LastSenderDestroyedClosesTheChannel) {
  auto [tx, rx] = weft::channel<int>(4);
  {
    Sender<int> copy = tx;
    ASSERT_TRUE(copy.send(1));
    { Sender<int> gone = std::move(tx); }  // original gone, the copy keeps it open
    EXPECT_FALSE(rx.is_closed());
    ASSERT_TRUE(copy.send(2));
  }
  EXPECT_TRUE(rx.is_closed());
  EXPECT_EQ(rx.recv(), 1);
  EXPECT_EQ(rx.recv(), 2);
  EXPECT_EQ(rx.recv(), std::nullopt);
}

TEST(ChanBasics, LastReceiverDestroyedClosesAndDestroysBufferedValues) {
  std::atomic<int> live{0};
  auto [tx, rx] = weft::channel<Tracked>(4);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(tx.send(Tracked(&live, i)));
  EXPECT_EQ(live.load(), 3) << "the buffer should hold exactly the 3 sent values";
  {
    Receiver<Tracked> copy = rx;
    { Receiver<Tracked> gone = std::move(rx); }
    EXPECT_FALSE(tx.is_closed()) << "a receiver copy is still alive";
  }
  EXPECT_TRUE(tx.is_closed());
  EXPECT_EQ(live.load(), 0) << "buffered values must be destroyed with the last receiver";
  auto r = tx.send(Tracked(&live, 42));
  EXPECT_EQ(r.status(), ChannelStatus::closed);
  EXPECT_EQ(r.value().v, 42);
}

TEST(ChanBasics, EmptyHandlesThrowLogicError) {
  Sender<int> tx;
  Receiver<int> rx;
  EXPECT_FALSE(tx);
  EXPECT_FALSE(rx);
  EXPECT_THROW((void)tx.send(1), std::logic_error);
  EXPECT_THROW((void)tx.try_send(1), std::logic_error);
  EXPECT_THROW((void)tx.send_for(1, 1ms), std::logic_error);
  EXPECT_THROW(tx.close(), std::logic_error);
  EXPECT_THROW((void)tx.size(), std::logic_error);
  EXPECT_THROW((void)rx.recv(), std::logic_error);
  EXPECT_THROW((void)rx.try_recv(), std::logic_error);
  EXPECT_THROW((void)rx.is_closed(), std::logic_error);

  auto [a, b] = weft::channel<int>(1);
  Sender<int> moved = std::move(a);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_TRUE(moved);
  EXPECT_THROW((void)a.try_send(1), std::logic_error);
}

TEST(ChanBasics, ResultAccessorsThrowOnTheWrongOutcome) {
  auto [tx, rx] = weft::channel<int>(1);
  auto ok = tx.try_send(1);
  EXPECT_TRUE(ok.ok());
  EXPECT_THROW((void)ok.value(), std::logic_error);
  auto got = rx.try_recv();
  EXPECT_EQ(got.value(), 1);
  auto none = rx.try_recv();
  EXPECT_THROW((void)none.value(), std::logic_error);
  EXPECT_EQ(std::move(none).take(), std::nullopt);
}

TEST(ChanBasics, SameChannel) {
  auto [tx, rx] = weft::channel<int>(1);
  auto [tx2, rx2] = weft::channel<int>(1);
  Sender<int> copy = tx;
  EXPECT_TRUE(tx.same_channel(rx));
  EXPECT_TRUE(copy.same_channel(tx));
  EXPECT_FALSE(tx.same_channel(rx2));
  EXPECT_FALSE(rx.same_channel(tx2));
}

TEST(ChanBasics, FifoOrderAndMoveOnlyValuesArriveIntact) {
  for (int kind = 0; kind < 3; ++kind) {
    auto [tx, rx] = kind == 0   ? weft::channel<Box>(1)
                    : kind == 1 ? weft::channel<Box>(7)
                                : weft::unbounded_channel<Box>();
    std::vector<int*> sent, received;
    int next = 0;
    // Interleave sends and receives so the ring wraps around many times.
    for (int round = 0; round < 198; ++round) {
      for (int i = 0; i < 1 + round % 7; ++i) {
        Box b = box(next);
        int* raw = b.get();
        auto r = tx.try_send(std::move(b));
        if (!r) {
          ASSERT_EQ(r.status(), ChannelStatus::full);
          ASSERT_EQ(r.value().get(), raw);
          break;
        }
        sent.push_back(raw);
        ++next;
      }
      for (int i = 0; i < 1 + round % 5; ++i) {
        auto r = rx.try_recv();
        if (!r) break;
        received.push_back(r.value().get());
        EXPECT_EQ(*r.value(), static_cast<int>(received.size()) - 1) << "out of order";
      }
    }
    while (auto r = rx.try_recv()) received.push_back(r.value().get());
    EXPECT_EQ(received, sent) << "kind " << kind;
  }
}

TEST(ChanBasics, EveryValueIsDestroyedExactlyOnce) {
  std::atomic<int> live{0};
  {
    auto [tx, rx] = weft::unbounded_channel<Tracked>();
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(tx.try_send(Tracked(&live, i)));
    for (int i = 0; i < 400; ++i) {
      auto r = rx.try_recv();
      ASSERT_TRUE(r);
      EXPECT_EQ(r.value().v, i);
    }
    EXPECT_EQ(live.load(), 600);
    auto [btx, brx] = weft::channel<Tracked>(3);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(btx.try_send(Tracked(&live, i)));
    auto full = btx.try_send(Tracked(&live, 3));
    EXPECT_EQ(full.status(), ChannelStatus::full);
    EXPECT_EQ(live.load(), 604);  // 600 + 3 buffered + the one handed back
  }
  EXPECT_EQ(live.load(), 0) << "a value leaked or was destroyed twice";
}

// The unbounded buffer is a list of blocks (32 values each) with one spare
// kept for reuse: interleave pushes and pops across block boundaries, empty
// it completely (the last block is reset, not freed) and refill, checking
// FIFO order and that every value is destroyed exactly once.
TEST(ChanBasics, UnboundedBlocksKeepOrderAcrossReuse) {
  std::atomic<int> live{0};
  {
    auto [tx, rx] = weft::unbounded_channel<Tracked>();
    int next_in = 0, next_out = 0;
    for (int round = 0; round < 198; ++round) {
      const int push = 1 + (round * 37) % 101;
      for (int i = 0; i < push; ++i) ASSERT_TRUE(tx.try_send(Tracked(&live, next_in++)));
      const int pop = round % 5 == 4 ? next_in - next_out : (push * 2) / 3;
      for (int i = 0; i < pop; ++i) {
        auto r = rx.try_recv();
        ASSERT_TRUE(r) << "round " << round;
        ASSERT_EQ(r.value().v, next_out++) << "round " << round;
      }
      ASSERT_EQ(live.load(), next_in - next_out);
      ASSERT_EQ(rx.size(), static_cast<std::size_t>(next_in - next_out));
    }
    EXPECT_GT(live.load(), 0) << "the channel is dropped with values buffered";
  }
  EXPECT_EQ(live.load(), 0) << "a value leaked or was destroyed twice";
}

TEST(ChanBasics, TimedFormsTimeOutFromAPlainThread) {
  auto [tx, rx] = weft::channel<Box>(1);
  auto start = Clock::now();
  auto r = rx.recv_for(20ms);
  EXPECT_EQ(r.status(), ChannelStatus::timed_out);
  EXPECT_GE(Clock::now() - start, 20ms) << "recv_for returned early";
  ASSERT_TRUE(tx.try_send(box(1)));
  Box b = box(2);
  int* raw = b.get();
  start = Clock::now();
  auto s = tx.send_for(std::move(b), 20ms);
  EXPECT_GE(Clock::now() - start, 20ms) << "send_for returned early";
  EXPECT_EQ(s.status(), ChannelStatus::timed_out);
  EXPECT_EQ(s.value().get(), raw);
  auto s2 = tx.send_until(box(3), Clock::now() - 1s);
  EXPECT_EQ(s2.status(), ChannelStatus::timed_out);
  EXPECT_EQ(*s2.value(), 3);
  // A ready operation succeeds even with an expired deadline.
  auto r2 = rx.recv_until(Clock::now() - 1s);
  ASSERT_TRUE(r2) << to_string(r2.status());
  EXPECT_EQ(*r2.value(), 1);
  EXPECT_TRUE(tx.send_for(box(4), 0ms));
  EXPECT_EQ(rx.recv_until(Clock::now() - 1s).status(), ChannelStatus::ok);
  EXPECT_EQ(rx.recv_until(Clock::now() - 1s).status(), ChannelStatus::timed_out);
}

TEST(ChanBasics, RendezvousTryOperationsNeedACounterpart) {
  auto [tx, rx] = weft::channel<int>(0);
  auto s = tx.try_send(1);
  EXPECT_EQ(s.status(), ChannelStatus::full);
  EXPECT_EQ(s.value(), 1);
  EXPECT_EQ(rx.try_recv().status(), ChannelStatus::empty);
  EXPECT_EQ(rx.size(), 0u);
}

// ---------------------------------------------------------------------------
// With fibers.

class Chan : public weft::test::WorkersTest {};
WEFT_INSTANTIATE_WORKERS(Chan);

TEST_P(Chan, TimedFormsTimeOutInAFiber) {
  Runtime rt(config());
  rt.block_on([] {
    auto [tx, rx] = weft::channel<Box>(0);
    auto start = Clock::now();
    EXPECT_EQ(rx.recv_for(15ms).status(), ChannelStatus::timed_out);
    EXPECT_GE(Clock::now() - start, 15ms);
    Box b = box(9);
    int* raw = b.get();
    start = Clock::now();
    auto s = tx.send_for(std::move(b), 15ms);
    EXPECT_GE(Clock::now() - start, 15ms);
    ASSERT_EQ(s.status(), ChannelStatus::timed_out);
    EXPECT_EQ(s.value().get(), raw);
  });
}

TEST_P(Chan, BlockedReceiversAreWokenByCloseWithNothing) {
  Runtime rt(config());
  auto [tx, rx] = weft::channel<int>(2);
  const int n = 16;
  std::vector<JoinHandle<std::optional<int>>> hs;
  for (int i = 0; i < n; ++i) hs.push_back(rt.spawn([rx = rx]() mutable { return rx.recv(); }));
  settle_parked(rt, n);
  tx.close();
  Watchdog wd("receivers blocked across close");
  for (auto& h : hs) EXPECT_EQ(h.join(), std::nullopt);
}

TEST_P(Chan, BlockedSendersAreWokenByCloseWithTheirValues) {
  Runtime rt(config());
  for (std::size_t cap : {std::size_t{0}, std::size_t{1}}) {
    auto [tx, rx] = weft::channel<Box>(cap);
    if (cap == 1) {
      ASSERT_TRUE(tx.try_send(box(-1)));
    }
    const int n = 16;
    std::vector<JoinHandle<bool>> hs;
    for (int i = 0; i < n; ++i) {
      hs.push_back(rt.spawn([tx = tx, i]() mutable {
        Box b = box(i);
        int* raw = b.get();
        auto r = tx.send(std::move(b));
        return r.status() == ChannelStatus::closed && r.value().get() == raw && *r.value() == i;
      }));
    }
    settle_parked(rt, n);
    rx.close();
    Watchdog wd("senders blocked across close");
    for (auto& h : hs) EXPECT_TRUE(h.join()) << "a blocked sender did not get its value back";
    if (cap == 1) {
      auto first = rx.recv();
      ASSERT_TRUE(first) << "the buffered value was lost";
      EXPECT_EQ(**first, -1);
    }
    EXPECT_EQ(rx.recv(), std::nullopt);
  }
}

TEST_P(Chan, LastReceiverGoingAwayWakesBlockedSendersWithTheirValues) {
  Runtime rt(config());
  auto [tx, rx] = weft::channel<Box>(0);
  const int n = 8;
  std::vector<JoinHandle<bool>> hs;
  for (int i = 0; i < n; ++i) {
    hs.push_back(rt.spawn([tx = tx, i]() mutable {
      auto r = tx.send(box(i));
      return r.status() == ChannelStatus::closed && *r.value() == i;
    }));
  }
  settle_parked(rt, n);
  { Receiver<Box> gone = std::move(rx); }
  Watchdog wd("senders blocked while the receiver went away");
  for (auto& h : hs) EXPECT_TRUE(h.join());
}

TEST_P(Chan, LastSenderGoingAwayWakesBlockedReceivers) {
  Runtime rt(config());
  auto [tx, rx] = weft::channel<int>(0);
  const int n = 8;
  std::vector<JoinHandle<std::optional<int>>> hs;
  for (int i = 0; i < n; ++i) hs.push_back(rt.spawn([rx = rx]() mutable { return rx.recv(); }));
  settle_parked(rt, n);
  { Sender<int> gone = std::move(tx); }
  Watchdog wd("receivers blocked while the last sender went away");
  for (auto& h : hs) EXPECT_EQ(h.join(), std::nullopt);
}

TEST_P(Chan, RendezvousSendReturnsOnlyAfterAReceiverTookTheValue) {
  Runtime rt(config());
  for (int round = 0; round < 5; ++round) {
    auto [tx, rx] = weft::channel<int>(0);
    std::atomic<bool> returned{false};
    auto h = rt.spawn([&, tx = tx]() mutable {
      auto r = round % 2 == 0 ? tx.send(round) : tx.send_for(round, 1h);
      returned = true;
      return r.ok();
    });
    settle_parked(rt, 1);
    std::this_thread::sleep_for(20ms);
    EXPECT_FALSE(returned.load()) << "rendezvous send returned with no receiver";
    EXPECT_EQ(tx.size(), 0u);
    EXPECT_EQ(rx.recv(), round);  // plain thread receives from the fiber
    EXPECT_TRUE(h.join());
    EXPECT_TRUE(returned.load());
  }
}

TEST_P(Chan, RendezvousTryOperationsMeetABlockedCounterpart) {
  Runtime rt(config());
  Sender<int> tx;
  Receiver<int> rx;
  std::tie(tx, rx) = weft::channel<int>(0);
  auto receiver = rt.spawn([rx = rx]() mutable { return rx.recv(); });
  settle_parked(rt, 1);
  ASSERT_TRUE(eventually([&] { return tx.try_send(11).ok(); }))
      << "try_send never met the blocked receiver";
  EXPECT_EQ(receiver.join(), 11);

  auto sender = rt.spawn([tx = tx]() mutable { return tx.send(12).ok(); });
  settle_parked(rt, 1);
  std::optional<int> got;
  ASSERT_TRUE(eventually([&] {
    auto r = rx.try_recv();
    if (r) got = *r;
    return r.ok();
  }));
  EXPECT_EQ(got, 12);
  EXPECT_TRUE(sender.join());
}

TEST_P(Chan, PingPongOverTwoRendezvousChannels) {
  Runtime rt(config());
  const int rounds = static_cast<int>(weft::test::scaled(20000, 2000));
  rt.block_on([&] {
    auto [ping_tx, ping_rx] = weft::channel<int>(0);
    auto [pong_tx, pong_rx] = weft::channel<int>(0);
    auto echo = weft::spawn([ping_rx = std::move(ping_rx), pong_tx = std::move(pong_tx)]() mutable {
      int n = 0;
      for (int v : ping_rx) {
        if (!pong_tx.send(v + 1)) break;
        ++n;
      }
      return n;
    });
    for (int i = 0; i < rounds; ++i) {
      ASSERT_TRUE(ping_tx.send(i * 2));
      ASSERT_EQ(pong_rx.recv(), i * 2 + 1);
    }
    ping_tx.close();
    EXPECT_EQ(echo.join(), rounds);
  });
}

TEST_P(Chan, SendForSucceedsWhenSpaceAppearsInTime) {
  Runtime rt(config());
  auto [tx, rx] = weft::channel<int>(1);
  ASSERT_TRUE(tx.try_send(1));
  auto h = rt.spawn([tx = tx]() mutable { return tx.send_for(2, weft::test::kPatience).status(); });
  settle_parked(rt, 1);
  EXPECT_EQ(rx.recv(), 1);
  EXPECT_EQ(h.join(), ChannelStatus::ok);
  EXPECT_EQ(rx.recv(), 2);
}

TEST_P(Chan, RangeForEndsAfterCloseAndDrain) {
  Runtime rt(config());
  const int n = 1000;
  auto got = rt.block_on([&] {
    auto [tx, rx] = weft::channel<int>(16);
    auto producer = weft::spawn([tx = std::move(tx)]() mutable {
      for (int i = 0; i < n; ++i) {
        if (!tx.send(i)) return false;
      }
      return true;  // tx destroyed here: the channel closes
    });
    std::vector<int> out;
    for (int v : rx) out.push_back(v);
    EXPECT_TRUE(producer.join());
    return out;
  });
  std::vector<int> want(n);
  std::iota(want.begin(), want.end(), 0);
  EXPECT_EQ(got, want);
}

TEST_P(Chan, UnboundedSendsNeverWait) {
  Runtime rt(config());
  const int n = static_cast<int>(weft::test::scaled(200000, 20000));
  rt.block_on([&] {
    auto [tx, rx] = weft::unbounded_channel<std::string>();
    for (int i = 0; i < n; ++i) ASSERT_TRUE(tx.send(std::to_string(i)));
    EXPECT_EQ(rx.size(), static_cast<std::size_t>(n));
    tx.close();
    int i = 0;
    for (auto& s : rx) {
      if (s != std::to_string(i)) {
        ADD_FAILURE() << "at " << i << " got " << s;
        break;
      }
      ++i;
    }
    EXPECT_EQ(i, n);
  });
}

TEST_P(Chan, FibersAndPlainThreadsShareOneChannel) {
  for (std::size_t cap : {std::size_t{0}, std::size_t{8}}) {
    Runtime rt(config());
    auto [tx, rx] = weft::channel<std::uint64_t>(cap);
    constexpr int kSide = 2;  // of each kind: thread producers, fiber producers, ...
    constexpr std::uint64_t per = static_cast<std::uint64_t>(weft::test::scaled(20000, 2000));
    const std::uint64_t total = per * kSide * 2;
    std::atomic<std::uint64_t> count{0}, sum{0};
    auto produce = [](Sender<std::uint64_t> s, std::uint64_t id) {
      for (std::uint64_t i = 0; i < per; ++i) {
        if (!s.send(id * per + i)) return;
      }
    };
    auto consume = [&](Receiver<std::uint64_t> r) {
      std::uint64_t c = 0, s = 0;
      while (auto v = r.recv()) {
        ++c;
        s += *v;
      }
      count += c;
      sum += s;
    };
    std::vector<std::thread> threads;
    std::vector<JoinHandle<void>> fibers;
    for (int i = 0; i < kSide; ++i) {
      threads.emplace_back(produce, tx, i);
      fibers.push_back(rt.spawn([&produce, s = tx, i] { produce(s, kSide + i); }));
      threads.emplace_back(consume, rx);
      fibers.push_back(rt.spawn([&consume, r = rx] { consume(r); }));
    }
    tx = Sender<std::uint64_t>();  // producers hold the only senders now
    rx = Receiver<std::uint64_t>();
    Watchdog wd("fibers and threads sharing a channel");
    for (auto& t : threads) t.join();
    for (auto& f : fibers) f.join();
    EXPECT_EQ(count.load(), total) << "capacity " << cap;
    EXPECT_EQ(sum.load(), total * (total - 1) / 2) << "capacity " << cap;
  }
}

// Blocked operations are served FIFO. Whether a fiber has queued yet is only
// known from the racy parked count, so the order is checked over a few
// attempts and must come out FIFO in one of them (like sleep_test.cpp); a
// LIFO or unordered queue fails them all.
TEST_P(Chan, BlockedReceiversAndSendersAreServedFifo) {
  Runtime rt(config());
  constexpr int kFibers = 5;
  const std::vector<int> want = {0, 1, 2, 3, 4};
  std::vector<int> receivers_order, senders_order;
  for (int attempt = 0; attempt < 3 && receivers_order != want; ++attempt) {
    auto [tx, rx] = weft::channel<int>(0);
    std::vector<JoinHandle<std::optional<int>>> hs;
    for (int i = 0; i < kFibers; ++i) {
      hs.push_back(rt.spawn([r = rx]() mutable { return r.recv(); }));
      settle_parked(rt, static_cast<std::uint64_t>(i) + 1);
    }
    for (int i = 0; i < kFibers; ++i) ASSERT_TRUE(tx.send(i));
    receivers_order.clear();
    for (auto& h : hs) receivers_order.push_back(h.join().value_or(-1));
  }
  EXPECT_EQ(receivers_order, want) << "receivers not served FIFO in any of 3 attempts";
  for (int attempt = 0; attempt < 3 && senders_order != want; ++attempt) {
    auto [tx, rx] = weft::channel<int>(1);
    ASSERT_TRUE(tx.try_send(-1));
    std::vector<JoinHandle<bool>> hs;
    for (int i = 0; i < kFibers; ++i) {
      hs.push_back(rt.spawn([s = tx, i]() mutable { return s.send(i).ok(); }));
      settle_parked(rt, static_cast<std::uint64_t>(i) + 1);
    }
    EXPECT_EQ(rx.recv(), -1);
    senders_order.clear();
    for (int i = 0; i < kFibers; ++i) senders_order.push_back(rx.recv().value_or(-2));
    for (auto& h : hs) EXPECT_TRUE(h.join());
  }
  EXPECT_EQ(senders_order, want) << "senders not served FIFO in any of 3 attempts";
}

// A capacity that is not a power of two: the ring (128 slots) is larger than
// the capacity (100), it wraps, and receives pull blocked senders' values into
// the freed space.
TEST_P(Chan, OddCapacityWrapsAndRefillsFromBlockedSenders) {
  Runtime rt(config());
  auto [tx, rx] = weft::channel<int>(100);
  int next_send = 0, next_recv = 0;
  for (; next_send < 60; ++next_send) ASSERT_TRUE(tx.try_send(next_send));
  for (; next_recv < 50; ++next_recv) ASSERT_EQ(rx.try_recv().value(), next_recv);
  for (; next_send < 150; ++next_send) ASSERT_TRUE(tx.try_send(next_send)) << next_send;
  EXPECT_EQ(tx.try_send(999).status(), ChannelStatus::full);
  EXPECT_EQ(rx.size(), 100u);
  auto sender = rt.spawn([s = tx]() mutable {
    for (int v = 150; v < 400; ++v) {
      if (!s.send(v)) return false;
    }
    return true;
  });
  for (; next_recv < 400; ++next_recv) {
    auto v = rx.recv();
    ASSERT_TRUE(v);
    ASSERT_EQ(*v, next_recv) << "out of order";
  }
  EXPECT_TRUE(sender.join());
  EXPECT_EQ(rx.size(), 0u);
}

TEST(ChanBasics, OverAlignedAndLargeValues) {
  struct alignas(64) Wide {
    std::uint64_t v;
    char pad[200];
  };
  static_assert(alignof(Wide) == 64);
  auto [tx, rx] = weft::unbounded_channel<Wide>();
  for (std::uint64_t i = 0; i < 100; ++i) {
    Wide w{};
    w.v = i;
    w.pad[199] = static_cast<char>(i);
    ASSERT_TRUE(tx.try_send(w));
  }
  for (std::uint64_t i = 0; i < 100; ++i) {
    auto r = rx.try_recv();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->v, i);
    EXPECT_EQ(r->pad[199], static_cast<char>(i));
  }
}

// ---------------------------------------------------------------------------
// oneshot

TEST_P(Chan, OneshotDeliversTheValueToAWaitingReceiver) {
  Runtime rt(config());
  auto [tx, rx] = weft::oneshot<Box>();
  auto h = rt.spawn([rx = std::move(rx)]() mutable { return rx.recv(); });
  settle_parked(rt, 1);
  Box b = box(5);
  int* raw = b.get();
  EXPECT_FALSE(tx.is_closed());
  ASSERT_TRUE(tx.send(std::move(b)));
  EXPECT_TRUE(tx.is_closed()) << "a used OneshotSender can send no more";
  auto got = h.join();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->get(), raw);
  EXPECT_THROW((void)tx.send(box(6)), std::logic_error);
}

TEST_P(Chan, OneshotSenderDroppedMeansNothing) {
  Runtime rt(config());
  auto [tx, rx] = weft::oneshot<int>();
  auto h = rt.spawn([rx = std::move(rx)]() mutable { return rx.recv(); });
  settle_parked(rt, 1);
  { weft::OneshotSender<int> gone = std::move(tx); }
  Watchdog wd("oneshot receiver after the sender went away");
  EXPECT_EQ(h.join(), std::nullopt);
}

TEST(Oneshot, ReceiverDroppedSendFailsWithTheValue) {
  auto [tx, rx] = weft::oneshot<Box>();
  { weft::OneshotReceiver<Box> gone = std::move(rx); }
  EXPECT_TRUE(tx.is_closed());
  Box b = box(3);
  int* raw = b.get();
  auto r = tx.send(std::move(b));
  EXPECT_EQ(r.status(), ChannelStatus::closed);
  EXPECT_EQ(r.value().get(), raw);
}

TEST(Oneshot, TryAndTimedReceive) {
  auto [tx, rx] = weft::oneshot<int>();
  EXPECT_EQ(rx.try_recv().status(), ChannelStatus::empty);
  EXPECT_EQ(rx.recv_for(5ms).status(), ChannelStatus::timed_out);
  ASSERT_TRUE(tx.send(8));
  auto r = rx.recv_until(Clock::now() + 1s);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 8);
  EXPECT_EQ(rx.try_recv().status(), ChannelStatus::closed) << "the sender is consumed by send";
}

TEST_P(Chan, OneshotInSelect) {
  Runtime rt(config());
  auto [tx, oneshot_rx] = weft::oneshot<int>();
  weft::OneshotReceiver<int> rx =
      std::move(oneshot_rx);  // lambdas cannot capture bindings (clang 14)
  auto h = rt.spawn([tx = std::move(tx)]() mutable {
    weft::this_fiber::sleep_for(5ms);
    return tx.send(77).ok();
  });
  int got = 0;
  const auto fired = rt.block_on([&] {
    return weft::select(weft::on_recv(rx.receiver(), [&](int v) { got = v; }),
                        weft::on_timeout(weft::test::kPatience, [] {}));
  });
  EXPECT_EQ(fired, 0u);
  EXPECT_EQ(got, 77);
  EXPECT_TRUE(h.join());
}

}  // namespace
