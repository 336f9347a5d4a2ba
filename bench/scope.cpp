// weft-bench-scope: costs of the scope layer (structured concurrency,
// cancellation, parallel algorithms). One function per figure; main runs
// them in order.
//
//   par_map_speedup_2w   time of a CPU-bound par_map on a 1-worker runtime
//                        divided by its time on a 2-worker runtime (same
//                        process, reps alternate between the two runtimes;
//                        median of each). 2.0 is perfect on two idle cores.
//                        n elements (default 2M) of `work` rounds of integer
//                        hashing each (default 128, a few hundred ns; the
//                        measured ns per element is printed on a # line).
//
//   cancel_latency_us    a fiber parked in recv() on an empty channel (2
//                        workers) is cancelled with JoinHandle::cancel();
//                        time from the cancel() call until its catch block
//                        runs; median of `iters` rounds (p10..p99 on a #
//                        line). cancel_scope_1000_us: Scope::cancel() of a
//                        scope with 1000 parked children until scope()
//                        returns (median of reps).
//   scope_spawn_join_ns  weft::scope whose body spawns `children` empty
//                        children through the Scope and returns; ns per
//                        child (2 workers; _1w: 1 worker). Compare with
//                        weft-bench-spawn's spawn_join_ns (handles, no scope).
//
// Check: the mapped values are summed and compared with a sequential run;
// a mismatch fails the program.
//   weft-bench-scope n=2000000 work=128 reps=5 iters=2000 children=1000000
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <numeric>
#include <vector>

#include "common.hpp"
#include "weft/parallel.hpp"
#include "weft/weft.hpp"

namespace {

/// About 5 cycles per round of dependent integer operations.
std::uint64_t hash_work(std::uint64_t x, long rounds) {
  for (long r = 0; r < rounds; ++r) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 29;
  }
  return x;
}

/// One timed par_map on `rt`, from a fiber of it (the caller works as the
/// root leaf); returns elapsed ns, checks the result against `want`.
double par_map_run(weft::Runtime& rt, const std::vector<std::uint64_t>& in, long rounds,
                   std::uint64_t want) {
  return rt.block_on([&] {
    const auto t0 = wb::clock::now();
    const std::vector<std::uint64_t> out =
        weft::par_map(in, [rounds](std::uint64_t x) { return hash_work(x, rounds); });
    const double el = wb::ns_since(t0);
    const std::uint64_t got = std::accumulate(out.begin(), out.end(), std::uint64_t{0});
    if (got != want)
      wb::die("par_map result sum %llu, want %llu", (unsigned long long)got,
              (unsigned long long)want);
    return el;
  });
}

wb::Series series_of(const std::vector<double>& v) {
  wb::Series s;
  s.all = v;
  s.med = wb::median(v);
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  return s;
}

void par_map_speedup(const wb::Args& a) {
  const long n = a.num("n", 2'000'000);
  const long rounds = a.num("work", 128);
  const int reps = static_cast<int>(a.num("reps", 5));
  if (n <= 0 || rounds <= 0 || reps <= 0) wb::die("n, work and reps must be positive");

  std::vector<std::uint64_t> in(static_cast<std::size_t>(n));
  std::iota(in.begin(), in.end(), std::uint64_t{1});
  std::uint64_t want = 0;
  for (std::uint64_t x : in) want += hash_work(x, rounds);

  weft::Config c1 = weft::Config::from_env();
  c1.workers = 1;
  weft::Config c2 = weft::Config::from_env();
  c2.workers = 2;
  weft::Runtime rt1(c1);
  weft::Runtime rt2(c2);

  // Warm-up of both, then alternate so that drift in machine load hits
  // both series alike. The idle runtime's workers sleep meanwhile.
  par_map_run(rt1, in, rounds, want);
  par_map_run(rt2, in, rounds, want);
  std::vector<double> t1, t2;
  const std::uint64_t spawned0 = rt2.stats().fibers_spawned;
  for (int i = 0; i < reps; ++i) {
    t1.push_back(par_map_run(rt1, in, rounds, want));
    t2.push_back(par_map_run(rt2, in, rounds, want));
  }
  const std::uint64_t spawned = rt2.stats().fibers_spawned - spawned0;
  const double m1 = wb::median(t1), m2 = wb::median(t2);
  wb::comment("weft-bench-scope: par_map, n=%ld, work=%ld rounds (%.1f ns/element on 1 worker)", n,
              rounds, m1 / double(n));
  wb::comment("1 worker: median %.1f ms, %s; 2 workers: median %.1f ms, %s", m1 / 1e6,
              wb::spread(series_of(t1), 1e6, "ms").c_str(), m2 / 1e6,
              wb::spread(series_of(t2), 1e6, "ms").c_str());
  wb::comment("2 workers: %.1f fibers spawned per call (block_on's root included)",
              double(spawned) / reps);
  wb::comment("%s", wb::shape(rt2).c_str());
  wb::line("par_map_speedup_2w", m1 / m2, "ratio");
}

// ---- cancellation and nursery figures (issue 4) ---------------------------

// cancel_latency_us: a fiber parked in recv() on an empty channel is
// cancelled with JoinHandle::cancel() from the root fiber; the figure is the
// time from the cancel() call until the victim's catch block runs (clock read
// there), median over `iters` rounds. Also cancel_scope_1000_us: Scope::cancel
// of a scope whose 1000 children are all parked, until scope() returns.
void cancel_latency(weft::Runtime& rt, int iters, int reps) {
  rt.block_on([&] {
    std::vector<double> lat;
    lat.reserve(static_cast<std::size_t>(iters));
    for (int i = 0; i < iters + 10; ++i) {
      auto [tx, rx] = weft::channel<int>(1);
      std::atomic<bool> parked{false};
      std::atomic<std::int64_t> woke_ns{0};
      auto h = weft::spawn([&, rx = rx] {
        parked.store(true, std::memory_order_release);
        try {
          (void)rx.recv();
        } catch (const weft::Cancelled&) {
          woke_ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                            wb::clock::now().time_since_epoch())
                            .count(),
                        std::memory_order_release);
          throw;
        }
        wb::die("cancel_latency: recv returned instead of throwing Cancelled");
      });
      while (!parked.load(std::memory_order_acquire)) weft::this_fiber::yield();
      weft::this_fiber::sleep_for(std::chrono::microseconds(200));  // really parked
      const auto t0 = wb::clock::now();
      h.cancel();
      try {
        h.join();
        wb::die("cancel_latency: the victim did not end with Cancelled");
      } catch (const weft::Cancelled&) {
      }
      const double ns = static_cast<double>(
          woke_ns.load() -
          std::chrono::duration_cast<std::chrono::nanoseconds>(t0.time_since_epoch()).count());
      if (i >= 10) lat.push_back(ns);
    }
    std::sort(lat.begin(), lat.end());
    wb::comment("cancel_latency: %d rounds; p10 %.1f us, p50 %.1f us, p90 %.1f us, p99 %.1f us",
                iters, lat[lat.size() / 10] / 1e3, lat[lat.size() / 2] / 1e3,
                lat[lat.size() * 9 / 10] / 1e3, lat[lat.size() * 99 / 100] / 1e3);
    wb::line("cancel_latency_us", lat[lat.size() / 2] / 1e3, "us");

    constexpr int kChildren = 1000;
    auto s = wb::repeat(reps, [&] {
      std::atomic<int> parked_children{0};
      std::atomic<int> cancelled{0};
      wb::clock::time_point t0;
      weft::scope([&](weft::Scope& sc) {
        for (int c = 0; c < kChildren; ++c) {
          sc.spawn([&] {
            parked_children.fetch_add(1, std::memory_order_relaxed);
            try {
              weft::this_fiber::sleep_for(std::chrono::hours(1));
            } catch (const weft::Cancelled&) {
              cancelled.fetch_add(1, std::memory_order_relaxed);
              throw;
            }
          });
        }
        while (parked_children.load() < kChildren) weft::this_fiber::yield();
        weft::this_fiber::sleep_for(std::chrono::milliseconds(1));
        t0 = wb::clock::now();
        sc.cancel();
      });
      const double el = wb::ns_since(t0);
      if (cancelled.load() != kChildren)
        wb::die("cancel_scope: %d of %d children cancelled", cancelled.load(), kChildren);
      return el;
    });
    wb::comment("cancel_scope_1000: runs %.1f..%.1f us", s.min / 1e3, s.max / 1e3);
    wb::line("cancel_scope_1000_us", s.med / 1e3, "us");
  });
}

// scope_spawn_join_ns: weft::scope whose body spawns n empty children
// through the Scope (handles dropped) and returns; the scope joins them all.
// ns per child, median of reps runs. spawn_join_ns (weft-bench-spawn) is the
// same work with JoinHandles and no scope.
void scope_spawn_join(weft::Runtime& rt, long n, int reps, const char* name) {
  rt.block_on([&] {
    auto s = wb::repeat(reps, [&] {
      std::atomic<long> ran{0};
      auto t0 = wb::clock::now();
      weft::scope([&](weft::Scope& sc) {
        for (long i = 0; i < n; ++i)
          sc.spawn([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
      });
      const double el = wb::ns_since(t0);
      if (ran.load() != n) wb::die("scope_spawn_join: %ld of %ld children ran", ran.load(), n);
      return el / static_cast<double>(n);
    });
    wb::comment("%s: n=%ld per run; runs %.1f..%.1f ns", name, n, s.min, s.max);
    wb::line(name, s.med, "ns");
  });
}

}  // namespace

int main(int argc, char** argv) {
  return wb::run_main([&] {
    wb::Args a{argc, argv};
    a.check({"n", "work", "reps", "iters", "children"});
    const int reps = static_cast<int>(a.num("reps", 5));
    {
      weft::Config c = weft::Config::from_env();
      c.workers = 2;
      weft::Runtime rt(c);
      cancel_latency(rt, static_cast<int>(a.num("iters", 2000)), reps);
      scope_spawn_join(rt, a.num("children", 1'000'000), reps, "scope_spawn_join_ns");
    }
    {
      weft::Config c = weft::Config::from_env();
      c.workers = 1;
      weft::Runtime rt(c);
      scope_spawn_join(rt, a.num("children", 1'000'000), reps, "scope_spawn_join_ns_1w");
    }
    par_map_speedup(a);
    return 0;
  });
}
