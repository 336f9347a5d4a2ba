// weft-bench-chan: channels, select and the contended Mutex, in the shapes of
// the Go peers in ../shared/peers/go (chanpingpong, mpmc, mutex) and the
// Boost.Fiber peer boost/chanpingpong (threads=1). Every figure is the median
// of reps runs after one warm-up (the Go peers take 3 runs for pingpong and
// mpmc and 5 for mutex); every run checks its result and a wrong one exits 1.
//
//   chan_pingpong_rt_ns_1w  1 worker. The timing fiber (the root, like Go's
//       main goroutine) and an echo fiber bounce a counter over two
//       rendezvous channels (capacity 0): ping.send(v), v = pong.recv(); the
//       echo fiber does pong.send(v + 1) for every ping. n round trips (10^6);
//       the echo fiber is spawned before the clock starts (as in Go). After
//       the loop ping is closed, the echo closes pong and is joined. ns per
//       round trip; the final value must be n.
//   chan_pingpong_rt_ns_2w  the same on 2 workers, with the two fibers started
//       on different workers: the root spawns the echo fiber and spins
//       (without switching) until another worker has stolen and started it;
//       a placement that ends on the same worker is torn down and retried.
//       Fibers may move when they are woken (an unpark from a fiber goes to
//       the waker's worker), so every 1024 round trips both fibers record
//       this_fiber::worker_index() and a "#" line says how many of those
//       samples had them on different workers.
//   chan_mpmc_mmsgs  2 workers, one channel of capacity 1024, 4 producer and
//       4 consumer fibers, 10^7 int64 messages in total (2.5*10^6 per
//       producer). Timed like Go: from before the fibers are spawned until
//       all producers are joined, the channel is closed and every consumer
//       (range-for until closed) is joined. Producer p sends p*per + i, so the
//       consumers' sum must be N(N-1)/2 and their count N. Million msgs/s.
//   mutex_contended_ns  2 workers, 1000 fibers each do 1000 x
//       {lock; ++counter; unlock} on one weft::Mutex. As in Go, all fibers are
//       spawned and park on a gate first (a rendezvous channel that the root
//       closes; a WaitGroup counts them in); the clock runs from opening the
//       gate until a WaitGroup of the workers reaches 0. ns per lock/inc/
//       unlock; the plain (non-atomic) counter must be 10^6.
//   select_2chan_ns  2 workers (no Go or Boost peer). One consumer fiber runs
//       weft::select(on_recv(a), on_recv(b)) select_n times (10^6), fed by
//       two producer fibers that each send select_n/2 values into their own
//       channel of capacity 1024. Timed from spawning the three fibers to
//       joining them; ns per select. Each case must fire exactly select_n/2
//       times with the right sum.
//
//   weft-bench-chan [reps=5] [n=1000000] [mpmc_n=10000000] [g=1000] [ops=1000]
//                   [select_n=1000000] [only=pp1,pp2,mpmc,mutex,select]
//                   [mpmc_workers=2: other counts print chan_mpmc_mmsgs_<N>w]
#include <atomic>
#include <cstdint>
#include <optional>
#include <thread>
#include <utility>
#include <vector>
#include <weft/channel.hpp>
#include <weft/select.hpp>
#include <weft/sync.hpp>

#include "common.hpp"

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

weft::Config config_with(std::size_t workers) {
  weft::Config cfg = weft::Config::from_env();
  cfg.workers = workers;
  return cfg;
}

/// Scheduler activity between two stats snapshots, for the "#" lines.
std::string activity(const weft::RuntimeStats& a, const weft::RuntimeStats& b) {
  std::uint64_t sw = 0, sl = 0;
  for (std::size_t i = 0; i < b.workers.size(); ++i) {
    sw += b.workers[i].switches - (i < a.workers.size() ? a.workers[i].switches : 0);
    sl += b.workers[i].sleeps - (i < a.workers.size() ? a.workers[i].sleeps : 0);
  }
  char buf[200];
  std::snprintf(buf, sizeof buf,
                "over all runs incl. warm-up: switches %llu, fiber parks %llu, steals %llu, worker "
                "futex sleeps %llu",
                static_cast<unsigned long long>(sw),
                static_cast<unsigned long long>(b.fiber_parks - a.fiber_parks),
                static_cast<unsigned long long>(b.steals - a.steals),
                static_cast<unsigned long long>(sl));
  return buf;
}

bool wanted(const std::string& only, const char* name) {
  if (only.empty()) return true;
  std::size_t p = 0;
  while (p <= only.size()) {
    std::size_t q = only.find(',', p);
    if (q == std::string::npos) q = only.size();
    if (only.compare(p, q - p, name) == 0) return true;
    p = q + 1;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Ping-pong.

struct PingPongStats {
  long samples = 0;         // samples taken (both fibers)
  long different = 0;       // samples with the fibers on different workers
  int placement_tries = 0;  // echo spawns needed to get different workers
  bool placed_apart = true;
};

// One run: n round trips. When `apart`, the echo fiber must start on a
// worker other than the caller's. Returns elapsed ns.
double pingpong_run(long n, bool apart, PingPongStats& st) {
  const long nsamples = n / 1024 + 1;
  std::vector<int> main_w(static_cast<std::size_t>(nsamples), -2);
  std::vector<int> echo_w(static_cast<std::size_t>(nsamples), -2);

  for (int attempt = 1;; ++attempt) {
    auto [ping_tx, ping_rx] = weft::channel<long>(0);
    auto [pong_tx, pong_rx] = weft::channel<long>(0);
    std::atomic<int> echo_start{-1};  // worker the echo fiber started on
    auto echo = weft::spawn([&, ping_rx = ping_rx, pong_tx = pong_tx]() mutable {
      echo_start.store(weft::this_fiber::worker_index(), std::memory_order_release);
      long got = 0;
      for (long v : ping_rx) {
        if ((v & 1023) == 0)
          echo_w[static_cast<std::size_t>(v >> 10)] = weft::this_fiber::worker_index();
        ++got;
        if (!pong_tx.send(v + 1)) wb::die("chan_pingpong: pong send failed (closed)");
      }
      pong_tx.close();
      return got;
    });
    if (apart) {
      // Spin without switching, so the echo fiber can only start by being
      // stolen by another worker. Give up after 200 ms and let it run here.
      const auto t0 = wb::clock::now();
      while (echo_start.load(std::memory_order_acquire) < 0 &&
             wb::clock::now() - t0 < std::chrono::milliseconds(200))
        cpu_relax();
      while (echo_start.load(std::memory_order_acquire) < 0) weft::this_fiber::yield();
      if (echo_start.load() == weft::this_fiber::worker_index()) {
        if (attempt < 20) {  // tear down and spawn the echo fiber again
          ping_tx.close();
          if (pong_rx.recv()) wb::die("chan_pingpong: value on pong during placement retry");
          echo.join();
          continue;
        }
        st.placed_apart = false;  // run anyway; reported in the "#" line
      }
      st.placement_tries = std::max(st.placement_tries, attempt);
    }

    const auto t0 = wb::clock::now();
    long v = 0;
    for (long i = 0; i < n; ++i) {
      if (!ping_tx.send(v)) wb::die("chan_pingpong: ping send failed (closed)");
      std::optional<long> r = pong_rx.recv();
      if (!r) wb::die("chan_pingpong: pong closed early at %ld", i);
      v = *r;
      if ((i & 1023) == 0)
        main_w[static_cast<std::size_t>(i >> 10)] = weft::this_fiber::worker_index();
    }
    const double el = wb::ns_since(t0);
    ping_tx.close();
    if (pong_rx.recv()) wb::die("chan_pingpong: extra value on pong after close");
    const long got = echo.join();
    if (v != n) wb::die("chan_pingpong: got %ld, want %ld", v, n);
    if (got != n) wb::die("chan_pingpong: echo saw %ld pings, want %ld", got, n);
    for (long k = 0; k < nsamples; ++k) {
      const auto i = static_cast<std::size_t>(k);
      if (main_w[i] == -2 || echo_w[i] == -2) continue;
      ++st.samples;
      if (main_w[i] != echo_w[i]) ++st.different;
    }
    return el;
  }
}

void bench_pingpong(std::size_t workers, long n, int reps) {
  weft::Runtime rt(config_with(workers));
  const bool apart = workers > 1;
  PingPongStats st;
  const auto before = rt.stats();
  wb::Series s =
      rt.block_on([&] { return wb::repeat(reps, [&] { return pingpong_run(n, apart, st); }); });
  const auto after = rt.stats();
  const std::string name = "chan_pingpong_rt_ns_" + std::to_string(workers) + "w";
  wb::comment(
      "weft-bench-chan %s: %s; two rendezvous channels (capacity 0), %ld round trips, root fiber "
      "pings, spawned echo fiber pongs; median of %d runs after 1 warm-up; %s; %s",
      name.c_str(), wb::shape(rt).c_str(), n, reps, wb::spread(s, double(n), "ns").c_str(),
      activity(before, after).c_str());
  if (apart) {
    wb::comment(
        "%s placement: echo started on another worker than the pinger in every run: %s (at most "
        "%d spawn(s) needed); worker_index sampled every 1024 round trips in all %d runs: "
        "different workers in %ld of %ld samples (%.1f%%)",
        name.c_str(), st.placed_apart ? "yes" : "NO", st.placement_tries, reps + 1, st.different,
        st.samples, st.samples ? 100.0 * double(st.different) / double(st.samples) : 0.0);
  }
  wb::line(name, s.med / double(n), "ns");
}

// ---------------------------------------------------------------------------
// MPMC.

void bench_mpmc(long total_in, int reps, std::size_t workers) {
  constexpr int kProd = 4, kCons = 4;
  constexpr std::size_t kCap = 1024;
  const long per = total_in / kProd;
  const long total = per * kProd;
  const std::uint64_t want_sum =
      static_cast<std::uint64_t>(total) * static_cast<std::uint64_t>(total - 1) / 2;
  weft::Runtime rt(config_with(workers));
  long min_per_consumer = total, max_per_consumer = 0;
  const auto before = rt.stats();
  wb::Series s = rt.block_on([&] {
    return wb::repeat(reps, [&] {
      struct Part {
        std::uint64_t sum = 0;
        long count = 0;
      };
      auto t0 = wb::clock::now();
      auto [tx, rx] = weft::channel<std::int64_t>(kCap);
      std::vector<weft::JoinHandle<Part>> cons;
      std::vector<weft::JoinHandle<void>> prod;
      cons.reserve(kCons);
      prod.reserve(kProd);
      for (int c = 0; c < kCons; ++c) {
        cons.push_back(weft::spawn([rx = rx]() mutable {
          Part p;
          for (std::int64_t v : rx) {
            p.sum += static_cast<std::uint64_t>(v);
            ++p.count;
          }
          return p;
        }));
      }
      for (int p = 0; p < kProd; ++p) {
        prod.push_back(weft::spawn([tx = tx, base = std::int64_t(p) * per, per]() mutable {
          for (long i = 0; i < per; ++i)
            if (!tx.send(base + i)) wb::die("mpmc: send failed (closed)");
        }));
      }
      for (auto& h : prod) h.join();
      tx.close();
      Part all;
      for (auto& h : cons) {
        Part p = h.join();
        all.sum += p.sum;
        all.count += p.count;
        min_per_consumer = std::min(min_per_consumer, p.count);
        max_per_consumer = std::max(max_per_consumer, p.count);
      }
      const double el = wb::ns_since(t0);
      if (all.count != total || all.sum != want_sum)
        wb::die("mpmc: received %ld values with sum %llu, want %ld with sum %llu", all.count,
                static_cast<unsigned long long>(all.sum), total,
                static_cast<unsigned long long>(want_sum));
      return el;
    });
  });
  const std::string name = workers == 2 ? std::string("chan_mpmc_mmsgs")
                                        : "chan_mpmc_mmsgs_" + std::to_string(workers) + "w";
  wb::comment(
      "weft-bench-chan %s: %s; channel<int64_t>(1024), %d producers x %ld sends, %d "
      "consumers (range-for), %ld messages; timed from spawning to joining all, checksum "
      "N(N-1)/2 verified; median of %d runs after 1 warm-up; %s per run; values per consumer "
      "%ld..%ld; %s",
      name.c_str(), wb::shape(rt).c_str(), kProd, per, kCons, total, reps,
      wb::spread(s, 1e6, "ms").c_str(), min_per_consumer, max_per_consumer,
      activity(before, rt.stats()).c_str());
  wb::line(name, double(total) / (s.med / 1e9) / 1e6, "Mmsg/s");
}

// ---------------------------------------------------------------------------
// Contended mutex.

void bench_mutex(long g, long ops, int reps) {
  weft::Runtime rt(config_with(2));
  const double total = double(g) * double(ops);
  const auto before = rt.stats();
  wb::Series s = rt.block_on([&] {
    return wb::repeat(reps, [&] {
      weft::Mutex mu;
      long counter = 0;
      weft::WaitGroup ready(g), done(g);
      auto [gate_tx, gate_rx] = weft::channel<char>(0);
      std::vector<weft::JoinHandle<void>> hs;
      hs.reserve(static_cast<std::size_t>(g));
      for (long i = 0; i < g; ++i) {
        hs.push_back(weft::spawn([&, gate = gate_rx]() mutable {
          ready.done();
          if (gate.recv()) wb::die("mutex: value on the gate");
          for (long j = 0; j < ops; ++j) {
            mu.lock();
            ++counter;
            mu.unlock();
          }
          done.done();
        }));
      }
      ready.wait();
      const auto t0 = wb::clock::now();
      gate_tx.close();
      done.wait();
      const double el = wb::ns_since(t0);
      for (auto& h : hs) h.join();
      mu.lock();
      const long c = counter;
      mu.unlock();
      if (c != g * ops) wb::die("mutex: counter %ld, want %ld", c, g * ops);
      return el;
    });
  });
  const auto after = rt.stats();
  wb::comment(
      "weft-bench-chan mutex_contended_ns: %s; %ld fibers x %ld {lock; ++counter; unlock} on one "
      "weft::Mutex, all parked on a gate (closed rendezvous channel) first; timed from opening "
      "the gate to a WaitGroup reaching 0; counter verified; median of %d runs after 1 warm-up; "
      "%s; %s (gate parks included)",
      wb::shape(rt).c_str(), g, ops, reps, wb::spread(s, total, "ns").c_str(),
      activity(before, after).c_str());
  wb::line("mutex_contended_ns", s.med / total, "ns");
}

// ---------------------------------------------------------------------------
// select over two channels.

void bench_select(long n_in, int reps) {
  const long half = n_in / 2;
  const long n = 2 * half;
  constexpr std::size_t kCap = 1024;
  weft::Runtime rt(config_with(2));
  const std::int64_t want_a = std::int64_t(half) * (half - 1) / 2;
  const std::int64_t want_b = want_a + std::int64_t(half) * half;  // values half..2*half-1
  const auto before = rt.stats();
  wb::Series s = rt.block_on([&] {
    return wb::repeat(reps, [&] {
      auto t0 = wb::clock::now();
      auto [atx, arx] = weft::channel<std::int64_t>(kCap);
      auto [btx, brx] = weft::channel<std::int64_t>(kCap);
      auto pa = weft::spawn([tx = std::move(atx), half]() mutable {
        for (long i = 0; i < half; ++i)
          if (!tx.send(i)) wb::die("select: send on a failed");
      });
      auto pb = weft::spawn([tx = std::move(btx), half]() mutable {
        for (long i = 0; i < half; ++i)
          if (!tx.send(half + i)) wb::die("select: send on b failed");
      });
      struct Got {
        long na = 0, nb = 0;
        std::int64_t sa = 0, sb = 0;
      };
      auto cons = weft::spawn([arx = std::move(arx), brx = std::move(brx), n]() mutable {
        Got g;
        for (long i = 0; i < n; ++i) {
          const std::size_t r = weft::select(weft::on_recv(arx,
                                                           [&](std::int64_t v) {
                                                             ++g.na;
                                                             g.sa += v;
                                                           }),
                                             weft::on_recv(brx, [&](std::int64_t v) {
                                               ++g.nb;
                                               g.sb += v;
                                             }));
          if (r > 1) wb::die("select: returned %zu", r);
        }
        return g;
      });
      pa.join();
      pb.join();
      const Got g = cons.join();
      const double el = wb::ns_since(t0);
      if (g.na != half || g.nb != half || g.sa != want_a || g.sb != want_b)
        wb::die(
            "select: a fired %ld (sum %lld), b fired %ld (sum %lld); want %ld each, sums %lld "
            "and %lld",
            g.na, static_cast<long long>(g.sa), g.nb, static_cast<long long>(g.sb), half,
            static_cast<long long>(want_a), static_cast<long long>(want_b));
      return el;
    });
  });
  wb::comment(
      "weft-bench-chan select_2chan_ns: %s; one fiber runs select(on_recv(a), on_recv(b)) %ld "
      "times, fed by 2 producer fibers sending %ld values each into their own "
      "channel<int64_t>(1024); timed from spawning the 3 fibers to joining them; ns per select; "
      "per-case counts and sums verified; no Go/Boost peer; median of %d runs after 1 warm-up; %s; "
      "%s",
      wb::shape(rt).c_str(), n, half, reps, wb::spread(s, double(n), "ns").c_str(),
      activity(before, rt.stats()).c_str());
  wb::line("select_2chan_ns", s.med / double(n), "ns");
}

}  // namespace

int main(int argc, char** argv) {
  return wb::run_main([&] {
    wb::Args a{argc, argv};
    a.check({"reps", "n", "mpmc_n", "mpmc_workers", "g", "ops", "select_n", "only"});
    const int reps = static_cast<int>(a.num("reps", 5));
    const long n = a.num("n", 1000000);
    const long mpmc_n = a.num("mpmc_n", 10000000);
    const long mpmc_workers = a.num("mpmc_workers", 2);
    const long g = a.num("g", 1000);
    const long ops = a.num("ops", 1000);
    const long select_n = a.num("select_n", 1000000);
    const std::string only = a.str("only", "");
    if (reps < 1 || n < 1 || mpmc_n < 4 || g < 1 || ops < 1 || select_n < 2 || mpmc_workers < 1)
      wb::die("reps, n, g, ops, mpmc_workers must be >= 1, mpmc_n >= 4, select_n >= 2");
    if (!only.empty()) {
      std::size_t p = 0;
      while (p <= only.size()) {
        std::size_t q = only.find(',', p);
        if (q == std::string::npos) q = only.size();
        const std::string item = only.substr(p, q - p);
        if (item != "pp1" && item != "pp2" && item != "mpmc" && item != "mutex" && item != "select")
          wb::die("only=: unknown benchmark '%s' (known: pp1,pp2,mpmc,mutex,select)", item.c_str());
        p = q + 1;
      }
    }

    if (wanted(only, "pp1")) bench_pingpong(1, n, reps);
    if (wanted(only, "pp2")) bench_pingpong(2, n, reps);
    if (wanted(only, "mpmc")) bench_mpmc(mpmc_n, reps, static_cast<std::size_t>(mpmc_workers));
    if (wanted(only, "mutex")) bench_mutex(g, ops, reps);
    if (wanted(only, "select")) bench_select(select_n, reps);
    return 0;
  });
}
