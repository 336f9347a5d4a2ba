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
// Figures still to come (separate functions, same output format):
// cancel_latency_us, scope_spawn_join_ns.
//
// Check: the mapped values are summed and compared with a sequential run;
// a mismatch fails the program.
//   weft-bench-scope n=2000000 work=128 reps=5
#include <cstdint>
#include <numeric>
#include <vector>

#include "common.hpp"
#include "weft/parallel.hpp"

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

}  // namespace

int main(int argc, char** argv) {
  return wb::run_main([&] {
    wb::Args a{argc, argv};
    a.check({"n", "work", "reps"});
    par_map_speedup(a);
    // cancel_latency_us and scope_spawn_join_ns will be functions like
    // par_map_speedup, called here in turn.
    return 0;
  });
}
