// weft-bench-dump: the cost of a fiber dump (issue 15 §2: a dump of 100,000
// parked fibers finishes in <= 1 s and stops no worker for more than a few
// ms). n fibers park on one Event on a 2-worker runtime; a plain thread
// takes reps dumps (text, then JSON) after one cold dump (the symbolizer
// reads the binaries' symbols and line tables once per process).
//
// "Stopped" is measured from inside the runtime, by probes that run on the
// workers meanwhile, each recording its longest gap:
//   yield   - two fibers loop on this_fiber::yield (one per worker once they
//             spread): the longest time between two of its iterations, i.e.
//             the longest a worker did not come back to it;
//   ping    - two fibers bounce a value over an unbuffered channel: the
//             longest round trip (a wake-up that meets a pinned fiber waits
//             for the dump to unpin it);
//   spawn   - a fiber spawns and joins an empty fiber in a loop: the longest
//             spawn+join (spawn and exit take the fiber registry's shard
//             locks, which the dump holds while it copies fibers).
// The probes run the same time without a dump first (baseline), then during
// the dumps; both maxima are printed, in ms.
// Wall times depend on the machine's load (the dump competes for a core with
// the two busy workers); the dumping thread's CPU time is printed too.
//   weft-bench-dump n=100000 reps=3
#include <time.h>

#include <atomic>
#include <thread>
#include <vector>

#include "common.hpp"

namespace {

// Longest gap seen by a probe, in ns (relaxed: read after the probes stop,
// which the join orders).
struct Gaps {
  std::atomic<std::int64_t> yield{0}, ping{0}, spawn{0};
  void reset() {
    yield.store(0);
    ping.store(0);
    spawn.store(0);
  }
};

void note_max(std::atomic<std::int64_t>& m, std::int64_t v) {
  std::int64_t cur = m.load(std::memory_order_relaxed);
  while (v > cur && !m.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

double thread_cpu_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(wb::clock::now().time_since_epoch())
      .count();
}

// Runs the probes until `stop`, recording into g.
void run_probes(const std::atomic<bool>& stop, Gaps& g) {
  std::vector<weft::JoinHandle<void>> hs;
  for (int i = 0; i < 2; ++i) {
    hs.push_back(weft::spawn([&] {
      std::int64_t t = now_ns();
      while (!stop.load(std::memory_order_relaxed)) {
        weft::this_fiber::yield();
        const std::int64_t t1 = now_ns();
        note_max(g.yield, t1 - t);
        t = t1;
      }
    }));
  }
  auto ch = weft::channel<int>(0);
  auto back = weft::channel<int>(0);
  hs.push_back(weft::spawn([&, rx = ch.second, tx = back.first] {
    while (auto v = rx.recv()) (void)tx.send(*v);
  }));
  hs.push_back(weft::spawn([&, tx = ch.first, rx = back.second]() mutable {
    while (!stop.load(std::memory_order_relaxed)) {
      const std::int64_t t0 = now_ns();
      (void)tx.send(1);
      (void)rx.recv();
      note_max(g.ping, now_ns() - t0);
    }
    tx.close();
  }));
  hs.push_back(weft::spawn([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      const std::int64_t t0 = now_ns();
      weft::spawn([] {}).join();
      note_max(g.spawn, now_ns() - t0);
    }
  }));
  for (auto& h : hs) h.join();
}

}  // namespace

int main(int argc, char** argv) {
  return wb::run_main([&] {
    wb::Args a{argc, argv};
    a.check({"n", "reps"});
    const long n = a.num("n", 100000);
    const int reps = static_cast<int>(a.num("reps", 3));

    weft::Config cfg = weft::Config::from_env();
    cfg.workers = 2;
    weft::Runtime rt(cfg);

    weft::Event release;
    std::vector<weft::JoinHandle<void>> parked;
    parked.reserve(static_cast<std::size_t>(n));
    rt.block_on([&] {
      for (long i = 0; i < n; ++i) parked.push_back(weft::spawn([&] { release.wait(); }));
    });
    while (rt.stats().fibers_parked < static_cast<std::uint64_t>(n)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }

    // Wall time, and the dumping thread's CPU time: the dump runs on the
    // calling thread, so the latter is its own work whatever the load.
    double cpu_ns = 0;
    auto timed_dump = [&](weft::DumpFormat f, std::size_t& bytes) {
      const auto t0 = wb::clock::now();
      const double c0 = thread_cpu_ns();
      const std::string d = rt.dump(f);
      cpu_ns = thread_cpu_ns() - c0;
      bytes = d.size();
      return wb::ns_since(t0);
    };
    std::size_t bytes = 0;
    const double cold = timed_dump(weft::DumpFormat::text, bytes);
    const double cold_cpu = cpu_ns;

    // Dumps of both formats while the probes run, then the same time without.
    Gaps during, base;
    std::vector<double> text_ns, json_ns, text_cpu, json_cpu;
    std::size_t text_bytes = 0, json_bytes = 0;
    std::atomic<bool> stop{false};
    std::thread prober([&] { rt.block_on([&] { run_probes(stop, during); }); });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // probes spread and warm
    during.reset();
    const auto t_dumps = wb::clock::now();
    for (int r = 0; r < reps; ++r) {
      text_ns.push_back(timed_dump(weft::DumpFormat::text, text_bytes));
      text_cpu.push_back(cpu_ns);
      json_ns.push_back(timed_dump(weft::DumpFormat::json, json_bytes));
      json_cpu.push_back(cpu_ns);
    }
    const auto span = wb::clock::now() - t_dumps;
    stop.store(true);
    prober.join();

    stop.store(false);
    std::thread base_prober([&] { rt.block_on([&] { run_probes(stop, base); }); });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    base.reset();
    std::this_thread::sleep_for(span);
    stop.store(true);
    base_prober.join();

    if (text_bytes < static_cast<std::size_t>(n) * 40) {
      wb::die("the text dump is %zu bytes for %ld fibers", text_bytes, n);
    }
    release.set();
    for (auto& h : parked) h.join();

    wb::comment(
        "weft-bench-dump: %ld fibers parked on an Event, 2 workers, dumps from a plain "
        "thread; %d reps; text %zu bytes, JSON %zu bytes",
        n, reps, text_bytes, json_bytes);
    wb::line("dump_cold_text_ms", cold / 1e6, "ms");
    wb::line("dump_text_ms", wb::median(text_ns) / 1e6, "ms");
    wb::line("dump_json_ms", wb::median(json_ns) / 1e6, "ms");
    wb::line("dump_cold_text_cpu_ms", cold_cpu / 1e6, "ms");
    wb::line("dump_text_cpu_ms", wb::median(text_cpu) / 1e6, "ms");
    wb::line("dump_json_cpu_ms", wb::median(json_cpu) / 1e6, "ms");
    const auto ms = [](const std::atomic<std::int64_t>& v) { return v.load() / 1e6; };
    wb::line("max_yield_gap_during_ms", ms(during.yield), "ms");
    wb::line("max_yield_gap_baseline_ms", ms(base.yield), "ms");
    wb::line("max_ping_rtt_during_ms", ms(during.ping), "ms");
    wb::line("max_ping_rtt_baseline_ms", ms(base.ping), "ms");
    wb::line("max_spawn_join_during_ms", ms(during.spawn), "ms");
    wb::line("max_spawn_join_baseline_ms", ms(base.spawn), "ms");
    return 0;
  });
}
