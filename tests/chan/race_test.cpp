// Wake versus timeout versus cancellation on channels: exactly one of them
// wins every blocked operation, so no value is ever lost or duplicated.
// Pair races check the outcome of each single race; the stress run checks
// conservation (everything successfully sent is received or still
// buffered); the shutdown tests check that a Runtime destroyed while fibers
// are blocked in send/recv/select cancels them (weft::Cancelled) and leaves
// the channel as if those calls had never been made.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <thread>
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
using weft::test::scaled;
using weft::test::Watchdog;

using Box = std::unique_ptr<std::uint64_t>;
Box box(std::uint64_t v) {
  return std::make_unique<std::uint64_t>(v);
}

class ChanRace : public weft::test::WorkersTest {};
WEFT_INSTANTIATE_WORKERS(ChanRace);

/// A delay around the 1 ms timer tick, so a timeout and a wake-up often land
/// together.
std::chrono::microseconds jitter(std::mt19937& rng) {
  return std::chrono::microseconds(rng() % 2500);
}

// One receiver with recv_for(1 ms) against one try_send at a random moment
// into a buffered channel: either the receiver got the value and the buffer
// is empty, or it timed out and the value sits in the buffer.
TEST_P(ChanRace, RecvForVersusTrySendDecidesOneOutcome) {
  Runtime rt(config());
  const int rounds = static_cast<int>(scaled(300, 60));
  int got_it = 0, timed_out = 0;
  rt.block_on([&] {
    std::mt19937 rng(static_cast<unsigned>(workers()));
    for (int i = 0; i < rounds; ++i) {
      auto [tx, rx] = weft::channel<int>(1);
      auto h = weft::spawn([r = rx]() mutable { return r.recv_for(1ms); });
      weft::this_fiber::sleep_for(jitter(rng));
      ASSERT_TRUE(tx.try_send(i)) << "a cap-1 channel with no other sender was full";
      auto res = h.join();
      if (res.ok()) {
        ++got_it;
        ASSERT_EQ(*res, i);
        ASSERT_EQ(rx.size(), 0u) << "received and still buffered: duplicated";
      } else {
        ++timed_out;
        ASSERT_EQ(res.status(), ChannelStatus::timed_out);
        ASSERT_EQ(rx.size(), 1u) << "timed out and not buffered: the value was lost";
        ASSERT_EQ(rx.try_recv().value(), i);
      }
    }
  });
  RecordProperty("received", got_it);
  RecordProperty("timed_out", timed_out);
}

// send_for against recv_for on a rendezvous channel, both with ~1 ms
// timeouts: both succeed (with the same value) or both time out (the sender
// holding its value again).
TEST_P(ChanRace, RendezvousSendForVersusRecvForAgree) {
  Runtime rt(config());
  const int rounds = static_cast<int>(scaled(300, 60));
  int both_ok = 0, both_timed_out = 0;
  Checker check;
  rt.block_on([&] {
    std::mt19937 rng(static_cast<unsigned>(workers()) + 17);
    for (int i = 0; i < rounds; ++i) {
      auto [tx, rx] = weft::channel<Box>(0);
      const auto recv_after = jitter(rng), send_after = jitter(rng);
      auto r = weft::spawn([rx = rx, recv_after]() mutable {
        weft::this_fiber::sleep_for(recv_after);
        auto res = rx.recv_for(1ms);
        return res ? static_cast<std::int64_t>(*res.value()) : -1;
      });
      auto s = weft::spawn([tx = tx, send_after, i]() mutable {
        weft::this_fiber::sleep_for(send_after);
        Box b = box(static_cast<std::uint64_t>(i));
        std::uint64_t* raw = b.get();
        auto res = tx.send_for(std::move(b), 1ms);
        if (res.ok()) return 1;
        return res.status() == ChannelStatus::timed_out && res.value().get() == raw ? 0 : -100;
      });
      const std::int64_t got = r.join();
      const int sent = s.join();
      check.check(sent >= 0, "a failed send_for did not hand back the same value");
      if (sent == 1) {
        ++both_ok;
        check.check(got == i, "the sender succeeded but the receiver got " + std::to_string(got));
      } else {
        ++both_timed_out;
        check.check(got == -1, "the sender timed out but the receiver got a value");
      }
    }
  });
  WEFT_EXPECT_NO_FAILURES(check);
  RecordProperty("both_ok", both_ok);
  RecordProperty("both_timed_out", both_timed_out);
}

// select {recv, timeout} against try_send: as RecvForVersusTrySend.
TEST_P(ChanRace, SelectTimeoutVersusTrySendDecidesOneOutcome) {
  Runtime rt(config());
  const int rounds = static_cast<int>(scaled(300, 60));
  rt.block_on([&] {
    std::mt19937 rng(static_cast<unsigned>(workers()) + 5);
    for (int i = 0; i < rounds; ++i) {
      auto [tx, rx] = weft::channel<int>(1);
      auto h = weft::spawn([r = rx]() mutable {
        int got = -1;
        const auto fired =
            weft::select(weft::on_recv(r, [&](int v) { got = v; }), weft::on_timeout(1ms, [] {}));
        return fired == 0 ? got : -1;
      });
      weft::this_fiber::sleep_for(jitter(rng));
      ASSERT_TRUE(tx.try_send(i));
      const int got = h.join();
      if (got >= 0) {
        ASSERT_EQ(got, i);
        ASSERT_EQ(rx.size(), 0u) << "received and still buffered: duplicated";
      } else {
        ASSERT_EQ(rx.size(), 1u) << "timed out and not buffered: the value was lost";
      }
    }
  });
}

// Many producers with send_for and consumers with recv_for, all with tiny
// timeouts: sum sent successfully == sum received + sum left in the buffer,
// and every failed send handed back the very value it was given.
TEST_P(ChanRace, TimedSendAndReceiveConserveValues) {
  for (std::size_t cap : {std::size_t{0}, std::size_t{1}, std::size_t{8}}) {
    Runtime rt(config());
    constexpr int kProducers = 6, kConsumers = 6;
    const int attempts = static_cast<int>(scaled(3000, 300));
    std::atomic<std::uint64_t> sent_n{0}, sent_sum{0}, recv_n{0}, recv_sum{0}, send_timeouts{0};
    std::atomic<bool> stop{false};
    Checker check;
    std::uint64_t left_n = 0, left_sum = 0;
    {
      Watchdog wd("timed send/recv conservation");
      rt.block_on([&] {
        auto [tx, rx] = weft::channel<Box>(cap);
        std::vector<JoinHandle<void>> producers, consumers;
        for (int p = 0; p < kProducers; ++p) {
          producers.push_back(weft::spawn([&, p, tx = tx]() mutable {
            std::mt19937 rng(p);
            std::uint64_t n = 0, sum = 0, t = 0;
            for (int i = 0; i < attempts; ++i) {
              const std::uint64_t v = static_cast<std::uint64_t>(p) * 1000000 + i;
              Box b = box(v);
              std::uint64_t* raw = b.get();
              auto res = tx.send_for(std::move(b), jitter(rng) / 2);
              if (res.ok()) {
                ++n;
                sum += v;
              } else {
                ++t;
                check.check(res.status() == ChannelStatus::timed_out,
                            "send_for: unexpected status");
                check.check(res.value().get() == raw && *res.value() == v,
                            "send_for timed out without handing back the same value");
              }
            }
            sent_n += n;
            sent_sum += sum;
            send_timeouts += t;
          }));
        }
        for (int c = 0; c < kConsumers; ++c) {
          consumers.push_back(weft::spawn([&, c, rx = rx]() mutable {
            std::mt19937 rng(100 + c);
            std::uint64_t n = 0, sum = 0;
            while (!stop.load()) {
              auto res = rx.recv_for(jitter(rng) / 2);
              if (res) {
                ++n;
                sum += *res.value();
              } else {
                check.check(res.status() == ChannelStatus::timed_out,
                            "recv_for: unexpected status");
              }
              if (rng() % 16 == 0) weft::this_fiber::sleep_for(jitter(rng));
            }
            recv_n += n;
            recv_sum += sum;
          }));
        }
        for (auto& h : producers) h.join();
        stop = true;
        for (auto& h : consumers) h.join();
        while (auto r = rx.try_recv()) {
          ++left_n;
          left_sum += *r.value();
        }
      });
    }
    WEFT_EXPECT_NO_FAILURES(check);
    EXPECT_EQ(sent_n.load(), recv_n.load() + left_n) << "capacity " << cap;
    EXPECT_EQ(sent_sum.load(), recv_sum.load() + left_sum) << "capacity " << cap;
    if (cap == 0) {
      EXPECT_EQ(left_n, 0u);
    }
    EXPECT_GT(sent_n.load(), 0u) << "nothing was ever sent: the race was not exercised";
  }
}

// Producers send until the channel is closed under them; consumers receive
// until it is closed and drained. Every send that returned ok is received
// exactly once; every send that returned closed got its own value back.
TEST_P(ChanRace, CloseRacingSendsAndReceivesLosesNothing) {
  for (int kind = 0; kind < 3; ++kind) {
    Runtime rt(config());
    constexpr int kProducers = 4, kConsumers = 4;
    constexpr std::uint64_t kUnboundedCap = 20000;
    std::vector<std::vector<std::uint64_t>> sent(kProducers), received(kConsumers);
    Checker check;
    {
      Watchdog wd("close racing sends and receives");
      rt.block_on([&] {
        auto [tx, rx] = kind == 0   ? weft::channel<Box>(0)
                        : kind == 1 ? weft::channel<Box>(4)
                                    : weft::unbounded_channel<Box>();
        std::vector<JoinHandle<void>> hs;
        for (int p = 0; p < kProducers; ++p) {
          hs.push_back(weft::spawn([&, p, tx = tx]() mutable {
            for (std::uint64_t i = 0;; ++i) {
              // An unbounded channel never pushes back: cap what a producer
              // sends, or producers outpacing the consumers grow the buffer
              // without bound before the close (under TSan that ran away to
              // 18 GB, each growth copy holding the lock longer).
              if (kind == 2 && i == kUnboundedCap) {
                while (!tx.is_closed()) weft::this_fiber::sleep_for(1ms);
              }
              const std::uint64_t v = static_cast<std::uint64_t>(p) << 32 | i;
              Box b = box(v);
              std::uint64_t* raw = b.get();
              auto r = i % 3 == 0 ? tx.send_for(std::move(b), weft::test::kPatience)
                                  : tx.send(std::move(b));
              if (r.ok()) {
                sent[p].push_back(v);
                if (i % 16 == 0) weft::this_fiber::yield();
                continue;
              }
              check.check(r.status() == ChannelStatus::closed, "send: unexpected status");
              check.check(r.value().get() == raw && *r.value() == v, "closed send lost its value");
              return;
            }
          }));
        }
        for (int c = 0; c < kConsumers; ++c) {
          hs.push_back(weft::spawn([&, c, rx = rx]() mutable {
            while (auto v = rx.recv()) received[c].push_back(**v);
          }));
        }
        weft::this_fiber::sleep_for(3ms);
        if (kind == 1) {
          rx.close();
        } else {
          tx.close();
        }
        for (auto& h : hs) h.join();
      });
    }
    WEFT_EXPECT_NO_FAILURES(check);
    std::vector<std::uint64_t> all_sent, all_received;
    for (auto& v : sent) all_sent.insert(all_sent.end(), v.begin(), v.end());
    for (auto& v : received) all_received.insert(all_received.end(), v.begin(), v.end());
    std::sort(all_sent.begin(), all_sent.end());
    std::sort(all_received.begin(), all_received.end());
    EXPECT_GT(all_sent.size(), 0u);
    EXPECT_EQ(all_received.size(), all_sent.size()) << "kind " << kind;
    EXPECT_TRUE(all_received == all_sent) << "kind " << kind << ": sent-ok and received differ";
  }
}

// Consumers drop their receivers while producers send: the last one going
// closes the channel and destroys what is buffered; senders get their values
// back. Nothing leaks and nothing is destroyed twice (ASan), and what was
// sent but not received is at most what the buffer held.
TEST_P(ChanRace, LastReceiverLeavingWhileSendersSend) {
  struct Item {
    std::atomic<int>* live;
    explicit Item(std::atomic<int>* l) : live(l) { ++*live; }
    Item(Item&& o) noexcept : live(o.live) { ++*live; }
    Item& operator=(Item&&) = delete;
    ~Item() { --*live; }
  };
  constexpr std::size_t kCap = 8;
  std::atomic<int> live{0};
  std::atomic<long> sent_ok{0}, received{0}, handed_back{0};
  {
    Runtime rt(config());
    Watchdog wd("last receiver leaving while senders send");
    rt.block_on([&] {
      auto [tx, rx] = weft::channel<Item>(kCap);
      std::vector<JoinHandle<void>> hs;
      for (int p = 0; p < 4; ++p) {
        hs.push_back(weft::spawn([&, tx = tx]() mutable {
          for (;;) {
            auto r = tx.send(Item(&live));
            if (!r.ok()) {
              ++handed_back;
              return;
            }
            ++sent_ok;
          }
        }));
      }
      for (int c = 0; c < 3; ++c) {
        hs.push_back(weft::spawn([&, c, rx = rx]() mutable {
          for (int i = 0; i < 200 * (c + 1); ++i) {
            if (!rx.recv()) break;
            ++received;
          }
          // rx is dropped when this fiber ends.
        }));
      }
      rx = weft::Receiver<Item>();
      tx = weft::Sender<Item>();
      for (auto& h : hs) h.join();
    });
  }
  EXPECT_EQ(handed_back.load(), 4) << "every producer must end with its value handed back";
  EXPECT_GE(sent_ok.load(), received.load());
  EXPECT_LE(sent_ok.load() - received.load(), static_cast<long>(kCap))
      << "more values vanished than the buffer could hold";
  EXPECT_EQ(live.load(), 0) << "values leaked or were destroyed twice";
}

// ---------------------------------------------------------------------------
// Shutdown cancels fibers blocked on channels.

struct Tracked {
  std::atomic<int>* live;
  Tracked(std::atomic<int>* l) : live(l) { ++*live; }
  Tracked(Tracked&& o) noexcept : live(o.live) { ++*live; }
  Tracked& operator=(Tracked&&) = delete;
  ~Tracked() { --*live; }
};

TEST_P(ChanRace, ShutdownCancelsFibersBlockedInChannelOperations) {
  auto [q_tx, q_rx] = weft::channel<int>(1);      // a receiver blocks on it (empty)
  auto [r_tx, r_rx] = weft::channel<Tracked>(0);  // a sender blocks on it
  auto [f_tx, f_rx] = weft::channel<int>(1);      // full: a sender blocks on it
  auto [s_tx, s_rx] = weft::channel<int>(0);      // a select blocks on it
  auto [t_tx, t_rx] = weft::channel<int>(0);      // a timed receive blocks on it
  ASSERT_TRUE(f_tx.try_send(1));
  std::atomic<int> live{0}, started{0}, cancelled{0}, returned{0};
  constexpr int kFibers = 5;
  {
    Watchdog wd("~Runtime with fibers blocked on channels");  // outlives rt: guards ~Runtime
    Runtime rt(config());
    auto body = [&](auto op) {
      return [&, op]() mutable {
        ++started;
        try {
          op();
          ++returned;
        } catch (const weft::Cancelled&) {
          ++cancelled;
          throw;
        }
      };
    };
    rt.spawn(body([rx = q_rx]() mutable { (void)rx.recv(); })).detach();
    rt.spawn(body([tx = r_tx, &live]() mutable { (void)tx.send(Tracked(&live)); })).detach();
    rt.spawn(body([tx = f_tx]() mutable { (void)tx.send(2); })).detach();
    rt.spawn(body([rx = s_rx, tx = s_tx]() mutable {
        int v = 3;
        weft::select(weft::on_recv(rx, [](int) {}), weft::on_send(tx, v, [] {}));
      }))
        .detach();
    rt.spawn(body([rx = t_rx]() mutable { (void)rx.recv_for(1h); })).detach();
    ASSERT_TRUE(eventually([&] { return started.load() == kFibers; }));
    ASSERT_TRUE(eventually([&] { return rt.stats().fibers_parked >= kFibers; }));
    std::this_thread::sleep_for(5ms);
    EXPECT_EQ(live.load(), 1) << "the blocked sender's value should be alive in its frame";
  }
  EXPECT_EQ(cancelled.load(), kFibers);
  EXPECT_EQ(returned.load(), 0);
  EXPECT_EQ(live.load(), 0) << "a cancelled send must destroy its value with the call";
  // The channels are as if the cancelled calls had never been made: no
  // waiter is left behind for a later operation to hand a value to.
  ASSERT_TRUE(q_tx.try_send(7)) << "the cancelled receiver left the channel unusable";
  EXPECT_EQ(q_rx.size(), 1u) << "a value went to the cancelled receiver";
  EXPECT_EQ(q_rx.try_recv().value(), 7);
  EXPECT_EQ(r_rx.try_recv().status(), ChannelStatus::empty)
      << "got a value from a cancelled sender";
  EXPECT_EQ(f_rx.try_recv().value(), 1);
  EXPECT_EQ(f_rx.try_recv().status(), ChannelStatus::empty) << "the cancelled send completed";
  EXPECT_EQ(s_tx.try_send(1).status(), ChannelStatus::full)
      << "the cancelled select still receives";
  EXPECT_EQ(s_rx.try_recv().status(), ChannelStatus::empty) << "the cancelled select still sends";
  EXPECT_EQ(t_tx.try_send(1).status(), ChannelStatus::full) << "the cancelled recv_for still waits";
}

TEST_P(ChanRace, ShutdownCancelsManyBlockedReceiversAndSelects) {
  const int n = static_cast<int>(weft::test::kSanitized ? 500 : 2000);
  auto [tx, rx] = weft::channel<int>(0);
  std::atomic<int> started{0}, cancelled{0};
  {
    Watchdog wd("~Runtime with many fibers blocked on one channel");
    Runtime rt(config());
    rt.block_on([&, rx = rx] {
      for (int i = 0; i < n; ++i) {
        weft::spawn([&, i, r = rx]() mutable {
          ++started;
          try {
            if (i % 2 == 0) {
              (void)r.recv();
            } else {
              weft::select(weft::on_recv(r, [](int) {}), weft::on_timeout(1h, [] {}));
            }
          } catch (const weft::Cancelled&) {
            ++cancelled;
            throw;
          }
        }).detach();
      }
    });
    ASSERT_TRUE(eventually([&] { return started.load() == n; }));
  }
  EXPECT_EQ(cancelled.load(), n);
  EXPECT_EQ(tx.try_send(1).status(), ChannelStatus::full) << "a cancelled receiver is still queued";
}

}  // namespace
