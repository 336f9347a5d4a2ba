// Cancellation racing wake-ups (issue 4): "channel stress with cancel racing
// send and recv: every value received exactly once or still in the
// channel", the single races of a wake against a cancellation (exactly one
// winner, nothing lost either way), Mutex / Semaphore / SharedMutex stress
// with cancels racing unlocks, and the cancellation tree racing fibers that
// end, spawn and re-parent.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/cancel_util.hpp"
#include "common/test_util.hpp"
#include "weft/weft.hpp"

using namespace std::chrono_literals;

namespace weft::test {
namespace {

// ---------------------------------------------------------------------------
// Channel stress

enum class ChanKind { bounded, rendezvous, unbounded };

struct ChanParam {
  ChanKind kind;
  std::size_t workers;
};

void PrintTo(const ChanParam& p, std::ostream* os) {
  *os << static_cast<int>(p.kind) << "/" << p.workers;
}

std::string chan_param_name(const ::testing::TestParamInfo<ChanParam>& info) {
  const char* k = info.param.kind == ChanKind::bounded      ? "bounded"
                  : info.param.kind == ChanKind::rendezvous ? "rendezvous"
                                                            : "unbounded";
  return std::string(k) + "_workers_" + std::to_string(info.param.workers);
}

class ChanCancelStress : public ::testing::TestWithParam<ChanParam> {};

INSTANTIATE_TEST_SUITE_P(
    Chan, ChanCancelStress,
    ::testing::Values(ChanParam{ChanKind::bounded, 1}, ChanParam{ChanKind::bounded, 2},
                      ChanParam{ChanKind::bounded, 4}, ChanParam{ChanKind::rendezvous, 1},
                      ChanParam{ChanKind::rendezvous, 2}, ChanParam{ChanKind::rendezvous, 4},
                      ChanParam{ChanKind::unbounded, 1}, ChanParam{ChanKind::unbounded, 2},
                      ChanParam{ChanKind::unbounded, 4}),
    chan_param_name);

enum SendState : std::uint8_t { kNotTried = 0, kSentOk = 1, kSendCancelled = 2 };

// Rounds of 4 producers and 3 consumers in a scope; each round's
// cancellation is one of: JoinHandle::cancel() of random producers and
// consumers at random times (consumer 0 spared so the producers can finish),
// Scope::cancel() of everything at a random time, or a short move_on_after
// around every send and recv. Every value is tracked: a successful send is
// received exactly once (by a consumer or by the final drain), a send that
// threw Cancelled never delivered, a recv that threw consumed nothing.
TEST_P(ChanCancelStress, EveryValueReceivedOnceOrStillInChannel) {
  const ChanParam param = GetParam();
  Runtime rt(workers_config(param.workers));
  std::pair<Sender<int>, Receiver<int>> ch = param.kind == ChanKind::bounded ? channel<int>(4)
                                             : param.kind == ChanKind::rendezvous
                                                 ? channel<int>(0)
                                                 : unbounded_channel<int>();
  const Sender<int>& tx = ch.first;
  const Receiver<int>& rx = ch.second;

  constexpr int kProducers = 4;
  constexpr int kConsumers = 3;
  const int per_producer = static_cast<int>(scaled(200, 40));
  const int rounds = static_cast<int>(scaled(24, 6));
  const int n = rounds * kProducers * per_producer;
  std::vector<std::atomic<std::uint8_t>> sent(n);
  std::vector<std::atomic<int>> received(n);
  std::atomic<long> send_cancels{0}, recv_cancels{0}, recv_timeouts{0}, handle_cancels{0};
  Checker check;

  auto record = [&](int v) {
    if (!check.check(v >= 0 && v < n, "received an out-of-range value " + std::to_string(v)))
      return;
    received[v].fetch_add(1);
  };

  // Pacing, so that cancellations land while values are in flight and the
  // channel is sometimes full, sometimes empty. A sleep is a cancellation
  // point too; a fiber cancelled there simply ends.
  auto pace = [](std::mt19937& rng, bool slow) {
    const unsigned r = rng() % 16;
    if (r < (slow ? 4u : 1u)) {
      this_fiber::sleep_for(random_us(rng, 800));
    } else if (r < 6) {
      this_fiber::yield();
    }
  };

  auto producer = [&](int base, int count, int mode, bool slow, unsigned seed) {
    std::mt19937 rng(seed);
    for (int i = 0; i < count; ++i) {
      const int v = base + i;
      bool ok = false, threw = false;
      auto send = [&] {
        try {
          ok = tx.send(v).ok();
          check.check(ok, "send on an open channel did not return ok");
        } catch (const Cancelled&) {
          threw = true;
          throw;
        }
      };
      try {
        if (mode == 2) {
          (void)move_on_after(random_us(rng, 1500), send);
        } else {
          send();
        }
      } catch (const Cancelled&) {
        sent[v].store(kSendCancelled);
        send_cancels.fetch_add(1);
        throw;
      }
      check.check(ok != threw, "send both succeeded and threw, or neither");
      sent[v].store(ok ? kSentOk : kSendCancelled);
      if (threw) send_cancels.fetch_add(1);
      pace(rng, slow);
    }
  };

  auto consumer = [&](int mode, bool slow, unsigned seed) {
    std::mt19937 rng(seed);
    for (;;) {
      std::optional<int> got;
      bool threw = false;
      auto recv = [&] {
        try {
          got = rx.recv();
          check.check(got.has_value(), "recv on an open channel returned empty");
        } catch (const Cancelled&) {
          threw = true;
          throw;
        }
      };
      try {
        if (mode == 2) {
          if (!move_on_after(random_us(rng, 1500), recv)) recv_timeouts.fetch_add(1);
        } else {
          recv();
        }
      } catch (const Cancelled&) {
        check.check(!got.has_value(), "a recv that threw Cancelled produced a value");
        recv_cancels.fetch_add(1);
        throw;
      }
      check.check(got.has_value() != threw, "recv both produced a value and threw, or neither");
      if (got) record(*got);
      pace(rng, slow);
    }
  };

  rt.block_on([&] {
    std::mt19937 rng(static_cast<unsigned>(param.workers * 31 + static_cast<int>(param.kind)));
    for (int round = 0; round < rounds; ++round) {
      const int mode = round % 3;
      const bool slow_consumers = (round / 3) % 2 == 0;
      scope([&](Scope& s) {
        std::vector<ScopedHandle<void>> prods, cons;
        for (int p = 0; p < kProducers; ++p) {
          const int base = (round * kProducers + p) * per_producer;
          const unsigned seed = rng();
          prods.push_back(s.spawn([&, base, mode, slow_consumers, seed] {
            producer(base, per_producer, mode, !slow_consumers, seed);
          }));
        }
        for (int c = 0; c < kConsumers; ++c) {
          const unsigned seed = rng();
          cons.push_back(
              s.spawn([&, mode, slow_consumers, seed] { consumer(mode, slow_consumers, seed); }));
        }
        if (mode == 0) {
          for (int k = 0; k < 5; ++k) {
            this_fiber::sleep_for(random_us(rng, 6000));
            const std::size_t pick = rng() % (kProducers + kConsumers - 1);
            if (pick < static_cast<std::size_t>(kProducers)) {
              prods[pick].cancel();
            } else {
              cons[pick - kProducers + 1].cancel();  // consumer 0 is spared
            }
            handle_cancels.fetch_add(1);
          }
        } else if (mode == 1) {
          this_fiber::sleep_for(random_us(rng, 25000));
          s.cancel();
          return;
        }
        for (auto& h : prods) {
          try {
            h.join();
          } catch (const Cancelled&) {
          }
        }
        s.cancel();  // the producers are done: stop the consumers
      });
    }
  });

  // Whatever is still buffered is received by the drain.
  for (;;) {
    auto r = rx.try_recv();
    if (!r.ok()) {
      EXPECT_EQ(r.status(), ChannelStatus::empty);
      break;
    }
    record(*r);
  }

  long ok_count = 0, cancelled_count = 0;
  for (int v = 0; v < n; ++v) {
    const auto s = sent[v].load();
    const int r = received[v].load();
    if (s == kSentOk) {
      ++ok_count;
      check.check(r == 1, "value " + std::to_string(v) + " sent once, received " +
                              std::to_string(r) + " times");
    } else if (s == kSendCancelled) {
      ++cancelled_count;
      check.check(r == 0, "value " + std::to_string(v) +
                              " whose send threw Cancelled was received " + std::to_string(r) +
                              " times");
    } else {
      check.check(r == 0, "value " + std::to_string(v) + " never sent was received");
    }
  }
  WEFT_EXPECT_NO_FAILURES(check);
  EXPECT_GT(ok_count, 0);
  RecordProperty("sent_ok", static_cast<int>(ok_count));
  RecordProperty("send_cancelled", static_cast<int>(cancelled_count));
  RecordProperty("recv_cancelled", static_cast<int>(recv_cancels.load()));
  RecordProperty("recv_timeouts", static_cast<int>(recv_timeouts.load()));
  expect_no_live_fibers(rt);
}

// ---------------------------------------------------------------------------
// Single races: one parked waiter, its wake-up and its cancellation arriving
// at the same time from two threads. Exactly one wins; nothing is lost.

class WakeVersusCancel : public WorkersTest {};
WEFT_INSTANTIATE_WORKERS(WakeVersusCancel);

int race_rounds() {
  return static_cast<int>(scaled(300, 40));
}

/// Runs wake() and cancel() at about the same time from two threads, with a
/// random skew either way.
template <class Wake, class Cancel>
void race_two(std::mt19937& rng, Wake&& wake, Cancel&& cancel) {
  const auto skew = std::chrono::microseconds(rng() % 200);
  const bool wake_first = rng() % 2 == 0;
  std::atomic<bool> go{false};
  std::thread t([&] {
    while (!go.load()) {
    }
    if (!wake_first) spin_for(skew);
    wake();
  });
  go = true;
  if (wake_first) spin_for(skew);
  cancel();
  t.join();
}

TEST_P(WakeVersusCancel, BufferedRecvVersusSendAndCancel) {
  Runtime rt(config());
  auto tx_rx = channel<int>(1);  // not a structured binding: clang 14 cannot capture those
  auto& tx = tx_rx.first;
  auto& rx = tx_rx.second;
  std::mt19937 rng(11);
  int got_value = 0, got_cancelled = 0;
  for (int i = 0; i < race_rounds(); ++i) {
    FiberWatch w;
    auto h = rt.spawn([&] {
      w.capture();
      return rx.recv();
    });
    ASSERT_TRUE(w.wait_parked()) << "round " << i;
    race_two(
        rng, [&] { ASSERT_TRUE(tx.try_send(i).ok()); }, [&] { h.cancel(); });
    std::optional<int> got;
    bool cancelled = false;
    try {
      got = h.join();
    } catch (const Cancelled&) {
      cancelled = true;
    }
    auto left = rx.try_recv();
    if (cancelled) {
      ++got_cancelled;
      ASSERT_TRUE(left.ok()) << "round " << i << ": the cancelled recv consumed the value";
      ASSERT_EQ(*left, i);
    } else {
      ++got_value;
      ASSERT_EQ(got, std::optional<int>(i)) << "round " << i;
      ASSERT_EQ(left.status(), ChannelStatus::empty) << "round " << i << ": value duplicated";
    }
  }
  RecordProperty("got_value", got_value);
  RecordProperty("got_cancelled", got_cancelled);
}

TEST_P(WakeVersusCancel, RendezvousSendVersusRecvAndCancel) {
  Runtime rt(config());
  auto tx_rx = channel<int>(0);  // not a structured binding: clang 14 cannot capture those
  auto& tx = tx_rx.first;
  auto& rx = tx_rx.second;
  std::mt19937 rng(12);
  for (int i = 0; i < race_rounds(); ++i) {
    FiberWatch w;
    auto h = rt.spawn([&] {
      w.capture();
      return tx.send(i).ok();
    });
    ASSERT_TRUE(w.wait_parked()) << "round " << i;
    RecvResult<int> taken;
    race_two(
        rng, [&] { taken = rx.try_recv(); }, [&] { h.cancel(); });
    bool sent = false;
    try {
      sent = h.join();
    } catch (const Cancelled&) {
    }
    ASSERT_EQ(sent, taken.ok()) << "round " << i << ": send says " << sent << ", receiver got "
                                << (taken.ok() ? "the value" : "nothing");
    if (taken.ok()) {
      ASSERT_EQ(*taken, i);
    }
    ASSERT_EQ(rx.try_recv().status(), ChannelStatus::empty) << "round " << i;
  }
}

TEST_P(WakeVersusCancel, RendezvousRecvVersusSendAndCancel) {
  Runtime rt(config());
  auto tx_rx = channel<int>(0);  // not a structured binding: clang 14 cannot capture those
  auto& tx = tx_rx.first;
  auto& rx = tx_rx.second;
  std::mt19937 rng(13);
  for (int i = 0; i < race_rounds(); ++i) {
    FiberWatch w;
    auto h = rt.spawn([&] {
      w.capture();
      return rx.recv();
    });
    ASSERT_TRUE(w.wait_parked()) << "round " << i;
    SendResult<int> sr;
    race_two(
        rng, [&] { sr = tx.try_send(i); }, [&] { h.cancel(); });
    std::optional<int> got;
    try {
      got = h.join();
    } catch (const Cancelled&) {
    }
    // try_send succeeds on a rendezvous channel only by handing the value to
    // the parked receiver, which must then return it.
    ASSERT_EQ(sr.ok(), got.has_value()) << "round " << i;
    if (got) {
      ASSERT_EQ(*got, i);
    }
    if (!sr.ok()) {
      ASSERT_EQ(sr.status(), ChannelStatus::full);
      ASSERT_EQ(sr.value(), i) << "the value was not handed back";
    }
  }
}

TEST_P(WakeVersusCancel, SelectRecvVersusSendAndCancel) {
  Runtime rt(config());
  auto tx1_rx1 = channel<int>(1);  // not a structured binding: clang 14 cannot capture those
  auto& tx1 = tx1_rx1.first;
  auto& rx1 = tx1_rx1.second;
  auto tx2_rx2 = channel<int>(1);  // not a structured binding: clang 14 cannot capture those
  auto& tx2 = tx2_rx2.first;
  auto& rx2 = tx2_rx2.second;
  std::mt19937 rng(14);
  for (int i = 0; i < race_rounds(); ++i) {
    FiberWatch w;
    std::atomic<int> fired{-1};
    auto h = rt.spawn([&] {
      w.capture();
      return select(on_recv(rx1, [&](int v) { fired = v; }),
                    on_recv(rx2, [&](int v) { fired = v; }));
    });
    ASSERT_TRUE(w.wait_parked()) << "round " << i;
    const bool first = rng() % 2 == 0;
    race_two(
        rng, [&] { ASSERT_TRUE((first ? tx1 : tx2).try_send(i).ok()); }, [&] { h.cancel(); });
    bool cancelled = false;
    try {
      (void)h.join();
    } catch (const Cancelled&) {
      cancelled = true;
    }
    auto& rx = first ? rx1 : rx2;
    auto left = rx.try_recv();
    if (cancelled) {
      ASSERT_EQ(fired.load(), -1) << "round " << i << ": a case fired, yet select threw";
      ASSERT_TRUE(left.ok()) << "round " << i << ": the cancelled select consumed the value";
    } else {
      ASSERT_EQ(fired.load(), i) << "round " << i;
      ASSERT_FALSE(left.ok()) << "round " << i << ": value duplicated";
    }
  }
}

TEST_P(WakeVersusCancel, MutexLockVersusUnlockAndCancel) {
  Runtime rt(config());
  Mutex m;
  std::mt19937 rng(15);
  for (int i = 0; i < race_rounds(); ++i) {
    m.lock();
    FiberWatch w;
    auto h = rt.spawn([&] {
      w.capture();
      m.lock();  // returns owning the lock, without unlocking
    });
    ASSERT_TRUE(w.wait_parked()) << "round " << i;
    race_two(
        rng, [&] { m.unlock(); }, [&] { h.cancel(); });
    bool cancelled = false;
    try {
      h.join();
    } catch (const Cancelled&) {
      cancelled = true;
    }
    if (cancelled) {
      ASSERT_TRUE(m.try_lock()) << "round " << i << ": a cancelled waiter kept the lock";
    } else {
      ASSERT_FALSE(m.try_lock()) << "round " << i << ": the waiter returned but does not own it";
    }
    m.unlock();
  }
}

TEST_P(WakeVersusCancel, SemaphoreAcquireVersusReleaseAndCancel) {
  Runtime rt(config());
  Semaphore sem(0);
  std::mt19937 rng(16);
  for (int i = 0; i < race_rounds(); ++i) {
    const std::int64_t k = 1 + i % 3;
    FiberWatch w;
    auto h = rt.spawn([&] {
      w.capture();
      sem.acquire(k);
    });
    ASSERT_TRUE(w.wait_parked()) << "round " << i;
    race_two(
        rng, [&] { sem.release(k); }, [&] { h.cancel(); });
    bool cancelled = false;
    try {
      h.join();
    } catch (const Cancelled&) {
      cancelled = true;
    }
    ASSERT_EQ(sem.available(), cancelled ? k : 0)
        << "round " << i << ": permits lost or duplicated";
    if (cancelled) {
      ASSERT_TRUE(sem.try_acquire(k));
    }
  }
}

// Notify stores a permit when no waiter takes the notification: a waiter
// cancelled at the same time as notify_one must leave the permit behind.
TEST_P(WakeVersusCancel, NotifyWaitVersusNotifyAndCancel) {
  Runtime rt(config());
  Notify notify;
  std::mt19937 rng(17);
  for (int i = 0; i < race_rounds(); ++i) {
    FiberWatch w;
    auto h = rt.spawn([&] {
      w.capture();
      notify.wait();
    });
    ASSERT_TRUE(w.wait_parked()) << "round " << i;
    race_two(
        rng, [&] { notify.notify_one(); }, [&] { h.cancel(); });
    bool cancelled = false;
    try {
      h.join();
    } catch (const Cancelled&) {
      cancelled = true;
    }
    if (cancelled) {
      ASSERT_TRUE(notify.wait_for(0ms) || notify.wait_for(kPatience))
          << "round " << i << ": the notification was lost with the cancelled waiter";
    } else {
      ASSERT_FALSE(notify.wait_for(0ms)) << "round " << i << ": notification duplicated";
    }
  }
}

// Two waiters on a CondVar: notify_one racing the cancellation of the first.
// Either the first took the notification (returns normally) or it was
// cancelled and the notification reaches the second: never lost.
TEST_P(WakeVersusCancel, CondVarNotifyOneVersusCancelNeverLost) {
  Runtime rt(config());
  Mutex m;
  CondVar cv;
  std::mt19937 rng(18);
  for (int i = 0; i < static_cast<int>(scaled(150, 30)); ++i) {
    FiberWatch w1, w2;
    auto waiter = [&](FiberWatch& w) {
      std::unique_lock lk(m);
      w.capture();
      cv.wait(lk);
    };
    auto h1 = rt.spawn([&] { waiter(w1); });
    ASSERT_TRUE(w1.wait_parked());
    auto h2 = rt.spawn([&] { waiter(w2); });
    ASSERT_TRUE(w2.wait_parked());
    race_two(
        rng, [&] { cv.notify_one(); }, [&] { h1.cancel(); });
    bool first_cancelled = false;
    try {
      h1.join();
    } catch (const Cancelled&) {
      first_cancelled = true;
    }
    if (!first_cancelled) cv.notify_one();  // the first took the notification: wake the second
    ASSERT_TRUE(eventually([&] { return h2.is_finished(); }))
        << "round " << i << ": the notification was lost (first cancelled: " << first_cancelled
        << ")";
    h2.join();
  }
}

// Three-way: a timed recv, a send and a cancellation, all at once. Timed out
// or cancelled, the value stays in the channel; received, it does not.
TEST_P(WakeVersusCancel, TimedRecvVersusSendVersusCancel) {
  Runtime rt(config());
  auto tx_rx = channel<int>(1);  // not a structured binding: clang 14 cannot capture those
  auto& tx = tx_rx.first;
  auto& rx = tx_rx.second;
  std::mt19937 rng(19);
  int outcomes[3] = {0, 0, 0};
  for (int i = 0; i < race_rounds(); ++i) {
    std::atomic<bool> started{false};
    auto h = rt.spawn([&] {
      started = true;
      return rx.recv_for(1ms);
    });
    ASSERT_TRUE(eventually([&] { return started.load(); }));
    const auto delay = std::chrono::microseconds(rng() % 2000);
    race_two(
        rng,
        [&] {
          spin_for(delay);
          ASSERT_TRUE(tx.try_send(i).ok());
        },
        [&] {
          spin_for(delay);
          h.cancel();
        });
    int outcome;  // 0 received, 1 timed out, 2 cancelled
    try {
      auto r = h.join();
      if (r.ok()) {
        outcome = 0;
        ASSERT_EQ(*r, i);
      } else {
        ASSERT_EQ(r.status(), ChannelStatus::timed_out);
        outcome = 1;
      }
    } catch (const Cancelled&) {
      outcome = 2;
    }
    ++outcomes[outcome];
    auto left = rx.try_recv();
    ASSERT_EQ(left.ok(), outcome != 0) << "round " << i << ", outcome " << outcome;
  }
  RecordProperty("received", outcomes[0]);
  RecordProperty("timed_out", outcomes[1]);
  RecordProperty("cancelled", outcomes[2]);
}

// ---------------------------------------------------------------------------
// Sync stress: cancels racing unlocks and hand-offs.

class SyncCancelStress : public WorkersTest {};
WEFT_INSTANTIATE_WORKERS(SyncCancelStress);

/// Runs `rounds` scopes of `fibers` fibers doing body(rng, index) `iters`
/// times (odd fibers inside short move_on_after windows); the scope body
/// cancels random fibers through their handles at random times.
template <class Body>
void cancel_stress(Runtime& rt, int rounds, int fibers, int iters, unsigned seed, Body body,
                   std::atomic<long>& cancels) {
  rt.block_on([&] {
    std::mt19937 rng(seed);
    for (int r = 0; r < rounds; ++r) {
      scope([&](Scope& s) {
        std::vector<ScopedHandle<void>> hs;
        for (int f = 0; f < fibers; ++f) {
          const unsigned fs = rng();
          hs.push_back(s.spawn([&, f, fs] {
            std::mt19937 frng(fs);
            for (int k = 0; k < iters; ++k) {
              if (f % 2 == 1) {
                (void)move_on_after(random_us(frng, 1500), [&] { body(frng); });
              } else {
                body(frng);
              }
            }
          }));
        }
        for (int k = 0; k < fibers / 2; ++k) {
          this_fiber::sleep_for(random_us(rng, 1500));
          hs[rng() % hs.size()].cancel();
          cancels.fetch_add(1);
        }
      });
    }
  });
}

TEST_P(SyncCancelStress, MutexNoDoubleOwnershipNoLostUnlock) {
  Runtime rt(config());
  Mutex m;
  std::atomic<int> inside{0};
  std::atomic<long> entries{0}, violations{0}, cancels{0};
  cancel_stress(
      rt, static_cast<int>(scaled(12, 3)), 12, static_cast<int>(scaled(200, 20)), 21,
      [&](std::mt19937& rng) {
        std::lock_guard g(m);
        if (inside.fetch_add(1) != 0) violations.fetch_add(1);
        struct Leave {
          std::atomic<int>& n;
          ~Leave() { n.fetch_sub(1); }
        } leave{inside};
        entries.fetch_add(1);
        // Sometimes hold it past 1 ms: waiters switch to direct hand-off.
        if (rng() % 16 == 0) {
          this_fiber::sleep_for(random_us(rng, 2500));
        } else {
          this_fiber::yield();
        }
      },
      cancels);
  EXPECT_EQ(violations.load(), 0) << "two owners at once";
  EXPECT_EQ(inside.load(), 0);
  EXPECT_TRUE(m.try_lock()) << "the lock was lost to a cancelled waiter";
  m.unlock();
  EXPECT_GT(entries.load(), 0);
  RecordProperty("entries", static_cast<int>(entries.load()));
}

TEST_P(SyncCancelStress, SemaphoreNoLostPermits) {
  Runtime rt(config());
  constexpr std::int64_t kPermits = 4;
  Semaphore sem(kPermits);
  std::atomic<std::int64_t> in_use{0};
  std::atomic<long> violations{0}, cancels{0};
  cancel_stress(
      rt, static_cast<int>(scaled(12, 3)), 12, static_cast<int>(scaled(200, 20)), 22,
      [&](std::mt19937& rng) {
        const std::int64_t k = 1 + static_cast<std::int64_t>(rng() % 3);
        sem.acquire(k);
        struct Give {
          Semaphore& sem;
          std::atomic<std::int64_t>& in_use;
          std::int64_t k;
          ~Give() {
            in_use.fetch_sub(k);
            sem.release(k);
          }
        } give{sem, in_use, k};
        if (in_use.fetch_add(k) + k > kPermits) violations.fetch_add(1);
        if (rng() % 8 == 0) {
          this_fiber::sleep_for(random_us(rng, 1500));
        } else {
          this_fiber::yield();
        }
      },
      cancels);
  EXPECT_EQ(violations.load(), 0) << "more permits in use than exist";
  EXPECT_EQ(in_use.load(), 0);
  EXPECT_EQ(sem.available(), kPermits) << "permits lost or created by cancelled acquires";
}

TEST_P(SyncCancelStress, SharedMutexWritersExclusive) {
  Runtime rt(config());
  SharedMutex m;
  std::atomic<int> writers{0}, readers{0};
  std::atomic<long> violations{0}, cancels{0};
  cancel_stress(
      rt, static_cast<int>(scaled(10, 3)), 12, static_cast<int>(scaled(200, 20)), 23,
      [&](std::mt19937& rng) {
        if (rng() % 3 == 0) {
          std::lock_guard g(m);
          if (writers.fetch_add(1) != 0 || readers.load() != 0) violations.fetch_add(1);
          struct Leave {
            std::atomic<int>& n;
            ~Leave() { n.fetch_sub(1); }
          } leave{writers};
          if (rng() % 8 == 0) this_fiber::sleep_for(random_us(rng, 1500));
        } else {
          std::shared_lock g(m);
          readers.fetch_add(1);
          struct Leave {
            std::atomic<int>& n;
            ~Leave() { n.fetch_sub(1); }
          } leave{readers};
          if (writers.load() != 0) violations.fetch_add(1);
          this_fiber::yield();
        }
      },
      cancels);
  EXPECT_EQ(violations.load(), 0);
  EXPECT_TRUE(m.try_lock()) << "a cancelled waiter holds the lock";
  m.unlock();
}

// ---------------------------------------------------------------------------
// The cancellation tree racing fibers that end, spawn and re-parent.

class TreeRace : public WorkersTest {};
WEFT_INSTANTIATE_WORKERS(TreeRace);

// Cancels arriving from a plain thread while the fibers end on their own:
// every fiber ends (normally or Cancelled), nothing crashes (the sanitizer
// builds check the fiber pinning), and a cancelled one ran its destructors.
TEST_P(TreeRace, CancelRacingFiberEnd) {
  Runtime rt(config());
  const int n = static_cast<int>(scaled(2000, 300));
  std::atomic<int> dtors{0};
  std::vector<JoinHandle<int>> hs;
  hs.reserve(n);
  std::mt19937 rng(31);
  for (int i = 0; i < n; ++i) {
    const auto d = random_us(rng, 1500);
    hs.push_back(rt.spawn([&dtors, d] {
      DtorCount g{&dtors};
      this_fiber::sleep_for(d);
      return 1;
    }));
  }
  std::thread canceller([&] {
    std::mt19937 r(32);
    for (int i = 0; i < n; ++i) {
      if (r() % 2 == 0) hs[i].cancel();
      if (i % 64 == 0) std::this_thread::sleep_for(random_us(r, 300));
    }
  });
  canceller.join();
  int normal = 0, cancelled = 0;
  for (auto& h : hs) {
    try {
      normal += h.join();
    } catch (const Cancelled&) {
      ++cancelled;
    }
  }
  EXPECT_EQ(normal + cancelled, n);
  EXPECT_EQ(dtors.load(), n);
  RecordProperty("cancelled", cancelled);
}

// Detached descendants re-parented while their ancestor is cancelled: each
// child spawns grandchildren (detached) and ends at once, handing them to
// the root fiber's node, while a plain thread cancels the root. Every
// grandchild must be reached: none may be left sleeping.
TEST_P(TreeRace, CancelRacingReparenting) {
  Runtime rt(config());
  const int rounds = static_cast<int>(scaled(60, 10));
  std::mt19937 rng(33);
  for (int r = 0; r < rounds; ++r) {
    std::atomic<int> grandchildren_started{0}, grandchildren_done{0};
    constexpr int kChildren = 8, kGrand = 4;
    auto root = rt.spawn([&] {
      for (int c = 0; c < kChildren; ++c) {
        spawn([&] {
          for (int g = 0; g < kGrand; ++g) {
            spawn([&] {
              DtorCount d{&grandchildren_done};
              grandchildren_started.fetch_add(1);
              this_fiber::sleep_for(1h);
            }).detach();
          }
        }).detach();
      }
      this_fiber::sleep_for(1h);
    });
    std::this_thread::sleep_for(random_us(rng, 800));
    root.cancel();
    EXPECT_THROW(root.join(), Cancelled);
    // Grandchildren spawned after the cancel start cancelled.
    ASSERT_TRUE(eventually([&] { return grandchildren_done.load() == kChildren * kGrand; }))
        << "round " << r << ": " << grandchildren_done.load() << " of " << kChildren * kGrand
        << " grandchildren ended (" << grandchildren_started.load() << " started)";
  }
  expect_no_live_fibers(rt);
}

// A deep chain (each fiber spawns the next and joins it) and a wide fan-out
// (more fibers than one cancellation batch): cancelling the root reaches all.
TEST_P(TreeRace, CancelReachesDeepChainAndWideFanOut) {
  Runtime rt(config());
  const int depth = static_cast<int>(scaled(400, 100));
  const int width = static_cast<int>(scaled(3000, 500));
  std::atomic<int> parked_leaves{0}, cancelled{0};
  std::function<void(int)> chain = [&](int level) {
    try {
      if (level == depth) {
        parked_leaves.fetch_add(1);
        this_fiber::sleep_for(1h);
      } else {
        auto h = spawn(with_stack(64 * 1024), [&, level] { chain(level + 1); });
        h.join();
      }
    } catch (const Cancelled&) {
      cancelled.fetch_add(1);
      throw;
    }
  };
  auto deep = rt.spawn([&] { chain(0); });
  auto wide = rt.spawn([&] {
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < width; ++i) {
      hs.push_back(spawn(with_stack(64 * 1024), [&] {
        try {
          parked_leaves.fetch_add(1);
          this_fiber::sleep_for(1h);
        } catch (const Cancelled&) {
          cancelled.fetch_add(1);
          throw;
        }
      }));
    }
    for (auto& h : hs) h.join();
  });
  ASSERT_TRUE(eventually([&] { return parked_leaves.load() == width + 1; }));
  settle_parked(rt, static_cast<std::uint64_t>(depth + width + 2));
  deep.cancel();
  wide.cancel();
  EXPECT_THROW(deep.join(), Cancelled);
  EXPECT_THROW(wide.join(), Cancelled);
  ASSERT_TRUE(eventually([&] { return cancelled.load() == depth + 1 + width; }))
      << cancelled.load() << " of " << depth + 1 + width;
  expect_no_live_fibers(rt);
}

// The stale-wake race (docs/design/cancellation.md): a canceller collects
// the fiber bound to an inner scope and marks it; before its wake-up (after
// a heavy barrier) the fiber, spinning, sees the mark, leaves the scope (the
// flag is recomputed: not cancelled) and parks elsewhere. The late wake-up
// must not cancel that new wait. The canceller is a deadline timer fired by
// another worker, or Scope::cancel() on a plain thread.
TEST_P(TreeRace, LateWakeUpAfterLeavingACancelledScopeIsIgnored) {
  if (workers() < 2) GTEST_SKIP() << "needs a second worker to fire the timer of a spinning fiber";
  // The timer is armed on the worker that then spins: only another worker
  // fires it (help_timers), and that one sleeps until the monitor's backstop
  // wakes it (Config::wake_backstop; nothing else knows the timer is due).
  weft::Config c = config();
  c.wake_backstop = true;
  Runtime rt(c);
  const int rounds = static_cast<int>(scaled(600, 100));
  std::atomic<int> spurious{0}, missed{0};
  rt.block_on([&] {
    for (int i = 0; i < rounds; ++i) {
      if (i % 2 == 0) {
        const auto give_up = Clock::now() + kPatience;
        (void)move_on_after(std::chrono::microseconds(200 + i % 700), [&] {
          while (!this_fiber::is_cancelled() && Clock::now() < give_up) this_fiber::checkpoint();
        });
      } else {
        // The body spins until it sees the cancellation, or until the
        // canceller is done (so the Scope is never used after it closed).
        std::atomic<bool> cancel_returned{false};
        std::thread t;
        scope([&](Scope& s) {
          t = std::thread([&s, &cancel_returned] {
            s.cancel();
            cancel_returned = true;
          });
          while (!this_fiber::is_cancelled() && !cancel_returned.load()) this_fiber::checkpoint();
          if (!this_fiber::is_cancelled()) missed.fetch_add(1);
        });
        t.join();
      }
      try {
        this_fiber::sleep_for(std::chrono::microseconds(300));
      } catch (const Cancelled&) {
        spurious.fetch_add(1);
      }
    }
  });
  EXPECT_EQ(missed.load(), 0) << "Scope::cancel() returned but the body is not cancelled";
  EXPECT_EQ(spurious.load(), 0)
      << "a late wake-up from a scope the fiber had left cancelled a later wait";
}

// Scope::spawn after the scope was cancelled: the child starts cancelled.
// JoinHandle::cancel before the fiber ever ran: its first blocking call
// throws. After it finished: no effect, join returns the value.
TEST_P(TreeRace, CancelBeforeStartAndAfterFinish) {
  Runtime rt(config());
  rt.block_on([] {
    scope([](Scope& s) {
      s.cancel();
      auto h = s.spawn([] {
        const bool at_start = this_fiber::is_cancelled();
        this_fiber::sleep_for(1h);
        return at_start;
      });
      EXPECT_THROW(h.join(), Cancelled);  // the body is cancelled too
    });
    auto early = spawn([] {
      this_fiber::sleep_for(1h);
      return 1;
    });
    early.cancel();
    EXPECT_THROW(early.join(), Cancelled);
    auto done = spawn([] { return 5; });
    while (!done.is_finished()) this_fiber::yield();
    done.cancel();
    EXPECT_EQ(done.join(), 5);
    // A fiber that never blocks finishes normally even if cancelled.
    std::atomic<bool> go{false};
    auto busy = spawn([&] {
      while (!go.load()) this_fiber::yield();
      return this_fiber::is_cancelled();
    });
    busy.cancel();
    go = true;
    EXPECT_TRUE(busy.join());
  });
}

}  // namespace
}  // namespace weft::test
