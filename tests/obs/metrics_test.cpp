// The metrics registry (src/obs/metrics.hpp) and its export
// (weft/metrics.hpp): each metric of docs/observability.md moves as
// documented under a workload that exercises it, exactly where the workload
// fixes the count; the Prometheus text passes `promtool check metrics`.
//
// Metrics are process-wide, so every test compares values before and after
// its workload (the tests of this binary run one at a time, and each
// runtime is gone before the next test starts).
#include "obs/metrics.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <thread>

#include "common/io_util.hpp"
#include "common/test_util.hpp"
#include "sched/runtime_impl.hpp"
#include "weft/metrics.hpp"
#include "weft/weft.hpp"

namespace weft {
namespace {

using test::IoTest;
using test::kPatience;

/// The value of a counter or gauge series (labels must match exactly), or
/// of a histogram's _count; fails the test if the metric is missing.
double value(const std::string& name,
             const std::vector<std::pair<std::string, std::string>>& labels = {}) {
  for (const metrics::Metric& m : metrics::snapshot()) {
    if (m.name != name) continue;
    for (const metrics::Series& s : m.series) {
      if (s.labels != labels) continue;
      return m.type == metrics::MetricType::histogram ? static_cast<double>(s.count) : s.value;
    }
  }
  ADD_FAILURE() << "no metric " << name;
  return -1;
}

/// value(name) now minus `before`.
double moved(const std::string& name, double before,
             const std::vector<std::pair<std::string, std::string>>& labels = {}) {
  return value(name, labels) - before;
}

/// Times every event of the sampled histograms while it lives.
struct TimeEveryEvent {
  TimeEveryEvent() { metrics::set_sample_period(1); }
  ~TimeEveryEvent() { metrics::set_sample_period(64); }
};

// --- shards -------------------------------------------------------------------

/// The retired and live shards' total of a counter.
std::uint64_t shard_total(detail::obs::Counter c) {
  detail::obs::Totals t;
  detail::obs::RuntimeTotals r;
  detail::obs::collect(t, r);
  return t[c];
}

// A thread's counts outlive it: its shard is retired at exit, and an event
// recorded after that (from a thread_local destructor that runs after the
// shard's holder) goes to a late shard, never to the freed one.
TEST(MetricsShards, AThreadsCountsOutliveItEvenFromLateDestructors) {
  using detail::obs::Counter;
  struct Late {
    ~Late() { detail::obs::add(Counter::trace_dropped, 5); }
  };
  const std::uint64_t before = shard_total(Counter::trace_dropped);
  std::thread([] {
    // Constructed before the shard's holder, so destroyed after it.
    static thread_local Late late;
    (void)&late;
    detail::obs::add(Counter::trace_dropped, 3);
  }).join();
  EXPECT_EQ(shard_total(Counter::trace_dropped) - before, 8u);
}

// --- buckets ------------------------------------------------------------------

TEST(MetricsBuckets, BoundsAreLogLinearAndBucketOfAgrees) {
  using detail::obs::bucket_bound_ns;
  using detail::obs::bucket_of;
  using detail::obs::kBuckets;
  EXPECT_EQ(bucket_bound_ns(0), 1024u);
  EXPECT_EQ(bucket_bound_ns(1), 1536u);
  EXPECT_EQ(bucket_bound_ns(2), 2048u);
  EXPECT_EQ(bucket_bound_ns(3), 3072u);
  EXPECT_EQ(bucket_bound_ns(kBuckets - 2), std::uint64_t{1} << 36);
  EXPECT_EQ(bucket_of(0), 0u);
  EXPECT_EQ(bucket_of(1024), 0u);
  for (std::size_t i = 1; i + 1 < kBuckets; ++i) {
    // Every bound belongs to its own bucket, one more ns to the next.
    EXPECT_EQ(bucket_of(bucket_bound_ns(i)), i) << i;
    EXPECT_EQ(bucket_of(bucket_bound_ns(i - 1) + 1), i) << i;
  }
  EXPECT_EQ(bucket_of((std::uint64_t{1} << 36) + 1), kBuckets - 1);
  EXPECT_EQ(bucket_of(~std::uint64_t{0}), kBuckets - 1);
}

TEST(MetricsBuckets, HistogramSeriesAreCumulativeAndEndAtInf) {
  for (const metrics::Metric& m : metrics::snapshot()) {
    if (m.type != metrics::MetricType::histogram) continue;
    ASSERT_EQ(m.series.size(), 1u) << m.name;
    const metrics::Series& s = m.series[0];
    ASSERT_EQ(s.buckets.size(), detail::obs::kBuckets) << m.name;
    EXPECT_TRUE(std::isinf(s.buckets.back().upper_bound)) << m.name;
    EXPECT_EQ(s.buckets.back().cumulative_count, s.count) << m.name;
    for (std::size_t i = 1; i < s.buckets.size(); ++i) {
      EXPECT_LT(s.buckets[i - 1].upper_bound, s.buckets[i].upper_bound);
      EXPECT_LE(s.buckets[i - 1].cumulative_count, s.buckets[i].cumulative_count);
    }
    EXPECT_EQ(m.unit, "seconds") << m.name;
  }
}

// --- fibers and the scheduler -----------------------------------------------

TEST(SchedulerMetrics, SpawnCompleteAndCancelCountExactly) {
  const double spawned = value("weft_fiber_spawned_total");
  const double completed = value("weft_fiber_completed_total");
  const double cancelled = value("weft_fiber_cancelled_total");
  constexpr int kFibers = 50;
  constexpr int kCancelled = 7;
  {
    Runtime rt(test::workers_config(2));
    rt.block_on([] {
      std::vector<JoinHandle<void>> hs;
      for (int i = 0; i < kFibers; ++i) hs.push_back(spawn([] {}));
      for (auto& h : hs) h.join();
      Event never;
      std::vector<JoinHandle<void>> waiters;
      for (int i = 0; i < kCancelled; ++i) waiters.push_back(spawn([&never] { never.wait(); }));
      for (auto& h : waiters) h.cancel();
      for (auto& h : waiters) EXPECT_THROW(h.join(), Cancelled);
    });
  }
  // block_on's root fiber counts too. The counts survive the runtime.
  EXPECT_EQ(moved("weft_fiber_spawned_total", spawned), kFibers + kCancelled + 1);
  EXPECT_EQ(moved("weft_fiber_completed_total", completed), kFibers + kCancelled + 1);
  EXPECT_EQ(moved("weft_fiber_cancelled_total", cancelled), kCancelled);
}

TEST(SchedulerMetrics, ActiveFibersAndParksFollowParkedFibers) {
  Runtime rt(test::workers_config(2));
  const double active = value("weft_scheduler_active_fibers");
  const double parks = value("weft_fiber_parks_total");
  constexpr int kParked = 20;
  Event go;
  std::vector<JoinHandle<void>> hs;
  for (int i = 0; i < kParked; ++i) hs.push_back(rt.spawn([&go] { go.wait(); }));
  test::settle_parked(rt, kParked);
  EXPECT_EQ(moved("weft_scheduler_active_fibers", active), kParked);
  EXPECT_GE(moved("weft_fiber_parks_total", parks), kParked);
  go.set();
  for (auto& h : hs) h.join();
  EXPECT_TRUE(test::eventually([&] { return value("weft_scheduler_active_fibers") == active; }));
}

TEST(SchedulerMetrics, WorkQueueSizeCountsQueuedFibers) {
  Runtime rt(test::workers_config(1));
  constexpr int kQueued = 30;
  rt.block_on([&] {
    const double before = value("weft_scheduler_work_queue_size");
    std::vector<JoinHandle<void>> hs;
    // One worker, busy running us: the children wait in its run queue.
    for (int i = 0; i < kQueued; ++i) hs.push_back(spawn([] {}));
    EXPECT_EQ(value("weft_scheduler_work_queue_size") - before, kQueued);
    for (auto& h : hs) h.join();
  });
}

TEST(SchedulerMetrics, InjectorDepthCountsFibersSpawnedFromOutside) {
  Runtime rt(test::workers_config(1));
  std::atomic<bool> release{false};
  std::atomic<bool> running{false};
  // Keep the only worker busy in a fiber that never switches.
  auto hog = rt.spawn([&] {
    running = true;
    while (!release.load()) std::this_thread::yield();
  });
  ASSERT_TRUE(test::eventually([&] { return running.load(); }));
  const double depth = value("weft_scheduler_injector_depth");
  constexpr int kInjected = 5;
  std::vector<JoinHandle<void>> hs;
  for (int i = 0; i < kInjected; ++i) hs.push_back(rt.spawn([] {}));
  EXPECT_EQ(moved("weft_scheduler_injector_depth", depth), kInjected);
  release = true;
  hog.join();
  for (auto& h : hs) h.join();
  EXPECT_EQ(value("weft_scheduler_injector_depth"), 0);
}

TEST(SchedulerMetrics, IdleWorkersStealQueuedWork) {
  const double attempts = value("weft_scheduler_work_steal_attempts_total");
  const double steals = value("weft_scheduler_work_steals_total");
  const double stolen = value("weft_scheduler_stolen_fibers_total");
  {
    Runtime rt(test::workers_config(2));
    rt.block_on([] {
      // Children that each burn a little CPU: the second worker, woken by
      // the spawns, can only get them by stealing.
      std::vector<JoinHandle<void>> hs;
      for (int i = 0; i < 64; ++i) {
        hs.push_back(spawn([] {
          const auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
          while (std::chrono::steady_clock::now() < end) {
          }
        }));
      }
      for (auto& h : hs) h.join();
    });
  }
  const double a = moved("weft_scheduler_work_steal_attempts_total", attempts);
  const double s = moved("weft_scheduler_work_steals_total", steals);
  EXPECT_GE(s, 1);
  EXPECT_GE(a, s);
  EXPECT_GE(moved("weft_scheduler_stolen_fibers_total", stolen), s);
}

TEST(SchedulerMetrics, SampledHistogramsCountEveryEventAtPeriodOne) {
  TimeEveryEvent every;
  const double exec = value("weft_fiber_execution_duration_seconds");
  const double latency = value("weft_scheduler_scheduling_latency_seconds");
  const double slices = value("weft_scheduler_run_slice_seconds");
  constexpr int kFibers = 40;
  {
    Runtime rt(test::workers_config(1));
    // Let the worker's countdowns restart at the new period.
    rt.block_on([] {
      for (int i = 0; i < 70; ++i) this_fiber::yield();
    });
    const double exec0 = value("weft_fiber_execution_duration_seconds");
    rt.block_on([] {
      std::vector<JoinHandle<void>> hs;
      for (int i = 0; i < kFibers; ++i) hs.push_back(spawn([] {}));
      for (auto& h : hs) h.join();
    });
    // Each child, and the root fiber, ran from its first switch-in to its
    // end once.
    EXPECT_EQ(moved("weft_fiber_execution_duration_seconds", exec0), kFibers + 1);
  }
  EXPECT_GE(moved("weft_fiber_execution_duration_seconds", exec), kFibers + 1);
  // Every child was queued once and ran at least one slice.
  EXPECT_GE(moved("weft_scheduler_scheduling_latency_seconds", latency), kFibers);
  EXPECT_GE(moved("weft_scheduler_run_slice_seconds", slices), kFibers);
}

TEST(SchedulerMetrics, BusySecondsCoverARunningFiber) {
  const double busy = value("weft_worker_busy_seconds_total");
  {
    Runtime rt(test::workers_config(1));
    rt.block_on([] {
      const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
      while (std::chrono::steady_clock::now() < end) {
      }
    });
  }
  EXPECT_GE(moved("weft_worker_busy_seconds_total", busy), 0.05);
}

TEST(SchedulerMetrics, WorkerParksWhenIdleAndNoopUnparksNeverExceedParks) {
  const double parks = value("weft_worker_parks_total");
  const double noops = value("weft_worker_noop_unparks_total");
  {
    Runtime rt(test::workers_config(2));
    rt.block_on([] {
      for (int i = 0; i < 5; ++i) this_fiber::sleep_for(std::chrono::milliseconds(2));
    });
  }
  const double p = moved("weft_worker_parks_total", parks);
  EXPECT_GE(p, 5);  // the worker of the sleeping fiber parks for each sleep
  EXPECT_LE(moved("weft_worker_noop_unparks_total", noops), p);
}

TEST(SchedulerMetrics, NoopUnparkCountsAWakeUpWithNothingToRun) {
  Runtime rt(test::workers_config(1));
  detail::RuntimeImpl* impl = rt.block_on([] { return detail::current_runtime(); });
  auto sleeps = [&] { return rt.stats().workers[0].sleeps; };
  // Wait until the worker is parked idle (a sleep counted, and time to get
  // into the wait), then wake it with nothing to run: it searches, finds
  // nothing and parks again, which counts one no-op unpark.
  ASSERT_TRUE(test::eventually([&] { return sleeps() >= 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double noops = value("weft_worker_noop_unparks_total");
  const std::uint64_t s1 = sleeps();
  impl->worker(0).wake();
  ASSERT_TRUE(test::eventually([&] { return sleeps() > s1; }));
  EXPECT_EQ(moved("weft_worker_noop_unparks_total", noops), 1);
  // A wake-up that runs a fiber is not a no-op.
  const double noops2 = value("weft_worker_noop_unparks_total");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const std::uint64_t s2 = sleeps();
  rt.spawn([] {}).join();
  ASSERT_TRUE(test::eventually([&] { return sleeps() > s2; }));
  EXPECT_EQ(moved("weft_worker_noop_unparks_total", noops2), 0);
}

TEST(SchedulerMetrics, StallIsCounted) {
  Config c = test::workers_config(1);
  c.stall_warning = std::chrono::milliseconds(20);
  const double stalls = value("weft_scheduler_stalls_total");
  {
    Runtime rt(c);
    rt.block_on([] {
      const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
      while (std::chrono::steady_clock::now() < end) {
      }
    });
  }
  EXPECT_EQ(moved("weft_scheduler_stalls_total", stalls), 1);
}

TEST(SchedulerMetrics, BlockingPoolThreadsQueueAndTasks) {
  Config c = test::workers_config(1);
  c.max_blocking_threads = 1;
  const double tasks = value("weft_blocking_pool_tasks_total");
  {
    Runtime rt(c);
    rt.block_on([] {
      std::atomic<bool> release{false};
      auto first = spawn_blocking([&] {
        while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      });
      auto second = spawn_blocking([] {});
      // One thread, busy with the first task: the second waits in the queue.
      EXPECT_TRUE(test::eventually([] { return value("weft_blocking_pool_threads") >= 1; }));
      EXPECT_TRUE(test::eventually([] { return value("weft_blocking_pool_queue_depth") == 1; }));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      EXPECT_EQ(value("weft_blocking_pool_queue_depth"), 1);
      release = true;
      first.join();
      second.join();
      EXPECT_EQ(value("weft_blocking_pool_queue_depth"), 0);
    });
  }
  EXPECT_EQ(moved("weft_blocking_pool_tasks_total", tasks), 2);
}

TEST(SchedulerMetrics, RuntimeLevelsAppearWhileItLives) {
  const double workers = value("weft_scheduler_workers");
  const double reserved = value("weft_memory_stack_reserved_bytes");
  {
    Runtime rt(test::workers_config(2));
    rt.block_on([] {});
    EXPECT_EQ(moved("weft_scheduler_workers", workers), 2);
    EXPECT_GT(moved("weft_memory_stack_reserved_bytes", reserved), 0);  // the root's stack, cached
    EXPECT_GE(value("weft_memory_stacks"), 1);
  }
  EXPECT_EQ(value("weft_scheduler_workers"), workers);
  EXPECT_EQ(value("weft_memory_stack_reserved_bytes"), reserved);
}

TEST(MemoryMetrics, TaskBlocksCountWhileHandlesLive) {
  Runtime rt(test::workers_config(1));
  rt.block_on([] {
    const double before = value("weft_memory_task_block_bytes");
    {
      std::vector<JoinHandle<void>> hs;
      for (int i = 0; i < 10; ++i) hs.push_back(spawn([] {}));
      // Each block holds at least the fiber's control block.
      EXPECT_GE(value("weft_memory_task_block_bytes") - before, 10.0 * 256);
      for (auto& h : hs) h.join();
    }
    EXPECT_EQ(value("weft_memory_task_block_bytes"), before);
  });
}

// --- channels ------------------------------------------------------------------

TEST(ChannelMetrics, SendRecvAndDepthCountExactly) {
  Runtime rt(test::workers_config(2));
  rt.block_on([] {
    const double sends = value("weft_channel_send_total");
    const double recvs = value("weft_channel_recv_total");
    const double depth = value("weft_channel_queue_depth");
    const double bytes = value("weft_memory_channel_buffer_bytes");
    {
      auto [tx, rx] = channel<std::uint64_t>(8);
      for (std::uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(tx.send(i).ok());
      EXPECT_EQ(moved("weft_channel_send_total", sends), 3);
      EXPECT_EQ(moved("weft_channel_queue_depth", depth), 3);
      EXPECT_GE(moved("weft_memory_channel_buffer_bytes", bytes), 3 * sizeof(std::uint64_t));
      ASSERT_EQ(rx.recv(), 0u);
      EXPECT_EQ(moved("weft_channel_recv_total", recvs), 1);
      EXPECT_EQ(moved("weft_channel_queue_depth", depth), 2);
      // Two values die with the channel: the depth goes back.
    }
    EXPECT_EQ(moved("weft_channel_queue_depth", depth), 0);
    EXPECT_EQ(moved("weft_memory_channel_buffer_bytes", bytes), 0);

    // Rendezvous and select: a value passed hand to hand counts once on
    // each side.
    auto [tx, rx] = channel<int>(0);
    auto sender = spawn([tx = tx] {
      for (int i = 0; i < 10; ++i) ASSERT_TRUE(tx.send(i).ok());
    });
    for (int i = 0; i < 5; ++i) ASSERT_EQ(rx.recv(), i);
    for (int i = 5; i < 10; ++i) {
      int got = -1;
      select(on_recv(rx, [&](int v) { got = v; }));
      ASSERT_EQ(got, i);
    }
    sender.join();
    EXPECT_EQ(moved("weft_channel_send_total", sends), 3 + 10);
    EXPECT_EQ(moved("weft_channel_recv_total", recvs), 1 + 10);
  });
}

// Each way a value passes hand to hand, on one worker so that which side
// waits is fixed: the side that finds the other waiting counts both the send
// and the receive (chan_core.cpp, count_handoff), and the waiting side
// counts nothing when it wakes. Exact counts, so a hand-off counted twice or
// not at all fails.
TEST(ChannelMetrics, EachHandOffCountsOneSendAndOneReceive) {
  Runtime rt(test::workers_config(1));
  rt.block_on([] {
    // Named references, not a structured binding: clang 14 does not let a
    // lambda capture one.
    const auto ch = channel<int>(0);
    const Sender<int>& tx = ch.first;
    const Receiver<int>& rx = ch.second;
    auto check = [&](const char* what, const std::function<void()>& waiter,
                     const std::function<void()>& claimer) {
      const double sends = value("weft_channel_send_total");
      const double recvs = value("weft_channel_recv_total");
      auto h = spawn(waiter);
      this_fiber::yield();  // the waiter runs and parks
      claimer();
      h.join();
      EXPECT_EQ(moved("weft_channel_send_total", sends), 1) << what;
      EXPECT_EQ(moved("weft_channel_recv_total", recvs), 1) << what;
    };
    check(
        "receiver waits", [&] { EXPECT_EQ(rx.recv(), 1); }, [&] { ASSERT_TRUE(tx.send(1).ok()); });
    check(
        "sender waits", [&] { ASSERT_TRUE(tx.send(2).ok()); }, [&] { EXPECT_EQ(rx.recv(), 2); });
    check(
        "select receive waits",
        [&] {
          int got = 0;
          select(on_recv(rx, [&](int v) { got = v; }));
          EXPECT_EQ(got, 3);
        },
        [&] { ASSERT_TRUE(tx.send(3).ok()); });
    check(
        "select send waits", [&] { select(on_send(tx, 4, [] {})); },
        [&] { EXPECT_EQ(rx.recv(), 4); });
    // A wait that ends without a value counts nothing.
    const double sends = value("weft_channel_send_total");
    EXPECT_EQ(rx.recv_for(std::chrono::milliseconds(1)).status(), ChannelStatus::timed_out);
    EXPECT_EQ(moved("weft_channel_send_total", sends), 0);
  });
}

TEST(ChannelMetrics, UnboundedBuffersCountTheirBlocks) {
  Runtime rt(test::workers_config(1));
  rt.block_on([] {
    const double bytes = value("weft_memory_channel_buffer_bytes");
    const double depth = value("weft_channel_queue_depth");
    {
      auto [tx, rx] = unbounded_channel<int>();
      for (int i = 0; i < 100; ++i) ASSERT_TRUE(tx.send(i).ok());
      EXPECT_EQ(moved("weft_channel_queue_depth", depth), 100);
      EXPECT_GE(moved("weft_memory_channel_buffer_bytes", bytes), 100 * sizeof(int));
      for (int i = 0; i < 50; ++i) ASSERT_EQ(rx.recv(), i);
      EXPECT_EQ(moved("weft_channel_queue_depth", depth), 50);
    }
    EXPECT_EQ(moved("weft_channel_queue_depth", depth), 0);
    EXPECT_EQ(moved("weft_memory_channel_buffer_bytes", bytes), 0);
  });
}

/// n sends on a rendezvous channel, each of which waits for the receiver.
/// On one worker: the receiver runs only when the sender parks, and yields
/// before each receive, so the sender never finds it already waiting.
void blocked_sends(int n) {
  auto [tx, rx] = channel<int>(0);
  auto receiver = spawn([rx = rx, n] {
    for (int i = 0; i < n; ++i) {
      this_fiber::yield();
      EXPECT_EQ(rx.recv(), i);
    }
  });
  for (int i = 0; i < n; ++i) ASSERT_TRUE(tx.send(i).ok());
  receiver.join();
}

TEST(ChannelMetrics, BlockedSendsAreSampledOneInThePeriod) {
  // One worker, so every send runs on one thread and one countdown: any 640
  // consecutive blocked sends time exactly 10 at the default period of 64.
  Runtime rt(test::workers_config(1));
  rt.block_on([] {
    const double blocked = value("weft_channel_send_blocked_duration_seconds");
    const double sends = value("weft_channel_send_total");
    blocked_sends(640);
    EXPECT_EQ(moved("weft_channel_send_total", sends), 640);
    EXPECT_EQ(moved("weft_channel_send_blocked_duration_seconds", blocked), 10);
  });
}

TEST(ChannelMetrics, BlockedSendIsTimed) {
  TimeEveryEvent every;
  Runtime rt(test::workers_config(1));
  rt.block_on([] {
    blocked_sends(64);  // the thread's countdown restarts at period 1
    const double blocked = value("weft_channel_send_blocked_duration_seconds");
    const double sum_before = [] {
      for (const auto& m : metrics::snapshot()) {
        if (m.name == "weft_channel_send_blocked_duration_seconds") return m.series[0].sum;
      }
      return -1.0;
    }();
    auto [tx, rx] = channel<int>(1);
    ASSERT_TRUE(tx.send(1).ok());  // fills the buffer: does not wait
    auto receiver = spawn([rx = rx] {
      this_fiber::sleep_for(std::chrono::milliseconds(20));
      EXPECT_EQ(rx.recv(), 1);
      EXPECT_EQ(rx.recv(), 2);
    });
    ASSERT_TRUE(tx.send(2).ok());  // waits until the receiver takes the first
    receiver.join();
    EXPECT_EQ(moved("weft_channel_send_blocked_duration_seconds", blocked), 1);
    for (const auto& m : metrics::snapshot()) {
      if (m.name == "weft_channel_send_blocked_duration_seconds") {
        EXPECT_GE(m.series[0].sum - sum_before, 0.015);  // it waited ~20 ms
      }
    }
  });
}

// --- I/O and TCP (both backends) -----------------------------------------------

class IoMetricsTest : public IoTest {};
WEFT_INSTANTIATE_IO(IoMetricsTest);

TEST_P(IoMetricsTest, BytesAndOperationsCountExactly) {
  TimeEveryEvent every;
  Runtime rt(config());
  rt.block_on([] {
    for (int i = 0; i < 70; ++i) this_fiber::yield();  // countdowns at period 1
    auto [a, b] = net::UnixStream::pair();
    const double rbytes = value("weft_io_read_bytes_total");
    const double wbytes = value("weft_io_write_bytes_total");
    const double sends = value("weft_io_operations_total", {{"op", "send"}});
    const double recvs = value("weft_io_operations_total", {{"op", "recv"}});
    const double durations = value("weft_io_operation_duration_seconds");
    const double tcp_sent = value("weft_tcp_bytes_sent_total");
    char buf[100] = {};
    a.write_all(buf, sizeof buf);
    b.read_exact(buf, sizeof buf);
    EXPECT_EQ(moved("weft_io_write_bytes_total", wbytes), 100);
    EXPECT_EQ(moved("weft_io_read_bytes_total", rbytes), 100);
    EXPECT_EQ(moved("weft_io_operations_total", sends, {{"op", "send"}}), 1);
    EXPECT_GE(moved("weft_io_operations_total", recvs, {{"op", "recv"}}), 1);
    EXPECT_GE(moved("weft_io_operation_duration_seconds", durations), 2);
    EXPECT_EQ(moved("weft_tcp_bytes_sent_total", tcp_sent), 0);  // not TCP
    EXPECT_EQ(value("weft_io_pending_operations"), 0);
  });
}

TEST_P(IoMetricsTest, PendingOperationsCountAWaitingRead) {
  Runtime rt(config());
  rt.block_on([] {
    auto pair = net::UnixStream::pair();  // not bound: clang 14 cannot capture bindings
    net::UnixStream& a = pair.first;
    net::UnixStream& b = pair.second;
    const double pending = value("weft_io_pending_operations");
    auto reader = spawn([&b] {
      char c = 0;
      b.read_exact(&c, 1);
    });
    EXPECT_TRUE(
        test::eventually([&] { return moved("weft_io_pending_operations", pending) >= 1; }));
    a.write_all("x", 1);
    reader.join();
    EXPECT_EQ(moved("weft_io_pending_operations", pending), 0);
  });
}

TEST_P(IoMetricsTest, TcpConnectionsBytesAndDurations) {
  Runtime rt(config());
  rt.block_on([] {
    const double total = value("weft_tcp_connections_total");
    const double active = value("weft_tcp_connections_active");
    const double sent = value("weft_tcp_bytes_sent_total");
    const double received = value("weft_tcp_bytes_received_total");
    const double durations = value("weft_tcp_connection_duration_seconds");
    {
      auto l = net::TcpListener::bind(net::Address::loopback_ipv4(0));
      auto c = net::TcpStream::connect(l.local_address(), kPatience);
      auto s = l.accept(kPatience);
      EXPECT_EQ(moved("weft_tcp_connections_total", total), 2);  // both ends are weft's
      EXPECT_EQ(moved("weft_tcp_connections_active", active), 2);
      const std::string msg(1000, 'x');
      c.write_all(msg.data(), msg.size());
      std::string got(msg.size(), '\0');
      s.read_exact(got.data(), got.size());
      EXPECT_EQ(moved("weft_tcp_bytes_sent_total", sent), 1000);
      EXPECT_EQ(moved("weft_tcp_bytes_received_total", received), 1000);
      c.close();
      EXPECT_EQ(moved("weft_tcp_connections_active", active), 1);
      EXPECT_EQ(moved("weft_tcp_connection_duration_seconds", durations), 1);
    }
    EXPECT_EQ(moved("weft_tcp_connections_active", active), 0);
    EXPECT_EQ(moved("weft_tcp_connection_duration_seconds", durations), 2);
  });
}

// --- export ----------------------------------------------------------------------

TEST(MetricsExport, EveryDocumentedMetricIsExportedOnce) {
  std::string page;
  metrics::write_prometheus(page);
  std::set<std::string> names;
  for (const metrics::Metric& m : metrics::snapshot()) {
    EXPECT_TRUE(names.insert(m.name).second) << "twice: " << m.name;
    EXPECT_EQ(m.name.rfind("weft_", 0), 0u) << m.name;
    EXPECT_NE(page.find("# TYPE " + m.name + " " + metrics::to_string(m.type) + "\n"),
              std::string::npos)
        << m.name;
    if (m.type == metrics::MetricType::counter) {
      EXPECT_EQ(m.name.substr(m.name.size() - 6), "_total") << m.name;
    }
  }
  // docs/observability.md documents each exported name, and only those.
  std::ifstream doc(std::string(WEFT_SOURCE_DIR) + "/docs/observability.md");
  ASSERT_TRUE(doc) << "docs/observability.md";
  std::set<std::string> documented;
  for (std::string line; std::getline(doc, line);) {
    if (line.rfind("| `weft_", 0) != 0) continue;
    const auto end = line.find('`', 3);
    documented.insert(line.substr(3, end - 3));
  }
  EXPECT_EQ(documented, names);
}

TEST(MetricsExport, PromtoolAcceptsThePage) {
  // Some traffic first, so that every kind of series has values.
  {
    Runtime rt(test::workers_config(2));
    rt.block_on([] {
      auto [tx, rx] = channel<int>(4);
      ASSERT_TRUE(tx.send(1).ok());
      ASSERT_EQ(rx.recv(), 1);
      auto l = net::TcpListener::bind(net::Address::loopback_ipv4(0));
      auto c = net::TcpStream::connect(l.local_address(), kPatience);
      auto s = l.accept(kPatience);
    });
  }
  std::string page;
  metrics::write_prometheus(page);
  ASSERT_FALSE(page.empty());
  EXPECT_EQ(page.back(), '\n');
  EXPECT_NE(page.find("weft_io_operations_total{op=\"accept\"} "), std::string::npos);
  EXPECT_NE(page.find("weft_fiber_execution_duration_seconds_bucket{le=\"+Inf\"} "),
            std::string::npos);
  EXPECT_NE(page.find("weft_fiber_execution_duration_seconds_bucket{le=\"1.024e-06\"} "),
            std::string::npos);
  // promtool (Debian's prometheus package; scripts/bootstrap.sh installs
  // it) reads the page from stdin and lints it: names, types, HELP,
  // histogram shape and the _total suffix of counters.
  ASSERT_EQ(::access("/usr/bin/promtool", X_OK), 0)
      << "promtool missing: run scripts/bootstrap.sh (package prometheus)";
  char path[] = "/tmp/weft-metrics-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, page.data(), page.size()), static_cast<ssize_t>(page.size()));
  ::close(fd);
  const std::string cmd = std::string("/usr/bin/promtool check metrics < ") + path + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) output += buf;
  const int status = ::pclose(p);
  ::unlink(path);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  EXPECT_EQ(output, "") << output;  // no lint complaint either
}

}  // namespace
}  // namespace weft
