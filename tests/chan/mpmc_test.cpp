// The MPMC stress run: 8 producers and 8 consumers move 1,000,000 messages
// (in total, per run) through a bounded, a rendezvous and an unbounded
// channel on 1, 2 and 4 workers. Every value must arrive exactly once
// (count, two checksums and a per-value seen map), and values of one
// producer must reach any one consumer in the order they were sent (the
// queue is FIFO and a producer's sends are sequential).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using weft::ChannelStatus;
using weft::JoinHandle;
using weft::Receiver;
using weft::Runtime;
using weft::Sender;
using weft::test::Checker;
using weft::test::scaled;
using weft::test::Watchdog;

enum class Kind { bounded, rendezvous, unbounded };

void PrintTo(Kind k, std::ostream* os) {
  *os << (k == Kind::bounded ? "bounded" : k == Kind::rendezvous ? "rendezvous" : "unbounded");
}

constexpr int kProducers = 8;
constexpr int kConsumers = 8;
constexpr std::size_t kBoundedCapacity = 64;

std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Messages per run. The rendezvous run needs a hand-off (and usually a
/// switch) per message; 1,000,000 of them still fits the time budget.
long messages(Kind) {
  return scaled(1'000'000, 20'000);
}

class Mpmc : public ::testing::TestWithParam<std::tuple<Kind, std::size_t>> {
 protected:
  Kind kind() const { return std::get<0>(GetParam()); }
  std::size_t workers() const { return std::get<1>(GetParam()); }
};

std::string mpmc_name(const ::testing::TestParamInfo<std::tuple<Kind, std::size_t>>& info) {
  const Kind k = std::get<0>(info.param);
  const char* kind = k == Kind::bounded      ? "bounded64"
                     : k == Kind::rendezvous ? "rendezvous"
                                             : "unbounded";
  return std::string(kind) + "_workers_" + std::to_string(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(
    Chan, Mpmc,
    ::testing::Combine(::testing::Values(Kind::bounded, Kind::rendezvous, Kind::unbounded),
                       ::testing::Values(std::size_t{1}, std::size_t{2}, std::size_t{4})),
    mpmc_name);

struct Totals {
  std::atomic<std::uint64_t> count{0}, sum{0}, hash{0};
};

TEST_P(Mpmc, EveryValueIsReceivedExactlyOnce) {
  const std::uint64_t per = static_cast<std::uint64_t>(messages(kind()) / kProducers);
  const std::uint64_t total = per * kProducers;
  RecordProperty("messages", std::to_string(total));
  std::uint64_t want_sum = 0, want_hash = 0;
  for (std::uint64_t v = 0; v < total; ++v) {
    want_sum += v;
    want_hash += mix(v);
  }

  auto seen = std::make_unique<std::atomic<std::uint8_t>[]>(total);
  for (std::uint64_t v = 0; v < total; ++v) seen[v].store(0, std::memory_order_relaxed);
  Totals totals;
  Checker check;
  std::vector<std::uint64_t> per_consumer(kConsumers);

  Runtime rt(weft::test::workers_config(workers()));
  {
    Watchdog wd("MPMC run");
    rt.block_on([&] {
      auto [tx, rx] = kind() == Kind::bounded      ? weft::channel<std::uint64_t>(kBoundedCapacity)
                      : kind() == Kind::rendezvous ? weft::channel<std::uint64_t>(0)
                                                   : weft::unbounded_channel<std::uint64_t>();
      std::vector<JoinHandle<void>> hs;
      for (int c = 0; c < kConsumers; ++c) {
        hs.push_back(weft::spawn([&, c, r = rx]() mutable {
          std::vector<std::int64_t> last(kProducers, -1);
          std::uint64_t n = 0, sum = 0, hash = 0;
          for (;;) {
            std::optional<std::uint64_t> v;
            if (c % 2 == 0) {
              v = r.recv();
            } else {
              auto res = r.recv_for(weft::test::kPatience);
              if (!check.check(res.status() != ChannelStatus::timed_out, "recv_for timed out"))
                break;
              v = std::move(res).take();
            }
            if (!v) break;
            const std::uint64_t x = *v;
            if (!check.check(x < total, "value out of range: " + std::to_string(x))) continue;
            seen[x].fetch_add(1, std::memory_order_relaxed);
            const auto p = static_cast<std::size_t>(x / per);
            const auto seq = static_cast<std::int64_t>(x % per);
            check.check(seq > last[p], "producer " + std::to_string(p) + ": seq " +
                                           std::to_string(seq) + " after " +
                                           std::to_string(last[p]));
            last[p] = seq;
            ++n;
            sum += x;
            hash += mix(x);
          }
          per_consumer[c] = n;
          totals.count += n;
          totals.sum += sum;
          totals.hash += hash;
        }));
      }
      for (int p = 0; p < kProducers; ++p) {
        hs.push_back(weft::spawn([&, p, s = tx]() mutable {
          for (std::uint64_t i = 0; i < per; ++i) {
            const std::uint64_t v = p * per + i;
            ChannelStatus st;
            if (p % 2 == 0) {
              st = s.send(v).status();
            } else {
              st = s.send_until(v, weft::Clock::now() + weft::test::kPatience).status();
            }
            if (!check.check(st == ChannelStatus::ok,
                             std::string("send: ") + weft::to_string(st))) {
              return;
            }
          }
        }));
      }
      // Only the producers' copies keep the channel open now: the last one to
      // finish closes it, which ends the consumers.
      tx = Sender<std::uint64_t>();
      rx = Receiver<std::uint64_t>();
      for (auto& h : hs) h.join();
    });
  }

  WEFT_EXPECT_NO_FAILURES(check);
  EXPECT_EQ(totals.count.load(), total);
  EXPECT_EQ(totals.sum.load(), want_sum);
  EXPECT_EQ(totals.hash.load(), want_hash);
  std::uint64_t missing = 0, duplicated = 0, first_bad = total;
  for (std::uint64_t v = 0; v < total; ++v) {
    const auto k = seen[v].load(std::memory_order_relaxed);
    if (k == 0) ++missing;
    if (k > 1) ++duplicated;
    if (k != 1 && first_bad == total) first_bad = v;
  }
  EXPECT_EQ(missing, 0u) << "first bad value " << first_bad;
  EXPECT_EQ(duplicated, 0u) << "first bad value " << first_bad;
  weft::test::expect_no_live_fibers(rt);
}

}  // namespace
