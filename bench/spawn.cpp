// weft-bench-spawn: spawn + run + exit + join of an empty fiber, in ns per
// fiber, median of reps runs after a warm-up.
//
//   spawn_join_ns       all workers (default Config::workers = hardware
//                       concurrency): the root fiber spawns n empty fibers,
//                       keeping the handles in a pre-reserved vector, then
//                       joins them all. The shape of the Go peer (go + a
//                       WaitGroup of n, then Wait) and of Boost launch=post.
//   spawn_join_ns_1w    the same on a 1-worker runtime.
//   spawn_join_seq_ns   spawn, then join at once, n times (at most one extra
//   spawn_join_seq_ns_1w  fiber alive; compare Boost launch=dispatch).
//
// Check: the runtime's fibers_spawned counter grew by exactly n in each run
// and every handle is empty after its join.
//   weft-bench-spawn n=1000000 reps=5 [workers=N: only this worker count; 0 = default]
#include "common.hpp"

namespace {

struct Result {
  wb::Series batch, seq;
};

Result run(weft::Runtime& rt, long n, int reps) {
  return rt.block_on([&] {
    Result r;
    std::vector<weft::JoinHandle<void>> hs;
    hs.reserve(static_cast<std::size_t>(n));
    auto check = [&](std::uint64_t spawned_before, const char* what) {
      const std::uint64_t d = rt.stats().fibers_spawned - spawned_before;
      if (d != static_cast<std::uint64_t>(n))
        wb::die("%s: fibers_spawned grew by %llu, expected %ld", what,
                static_cast<unsigned long long>(d), n);
    };
    r.batch = wb::repeat(reps, [&] {
      const std::uint64_t before = rt.stats().fibers_spawned;
      auto t0 = wb::clock::now();
      for (long i = 0; i < n; ++i) hs.push_back(weft::spawn([] {}));
      for (auto& h : hs) h.join();
      const double el = wb::ns_since(t0);
      for (auto& h : hs)
        if (h.joinable()) wb::die("spawn_join: a handle is still joinable after join()");
      hs.clear();
      check(before, "spawn_join");
      return el;
    });
    r.seq = wb::repeat(reps, [&] {
      const std::uint64_t before = rt.stats().fibers_spawned;
      auto t0 = wb::clock::now();
      for (long i = 0; i < n; ++i) weft::spawn([] {}).join();
      const double el = wb::ns_since(t0);
      check(before, "spawn_join_seq");
      return el;
    });
    return r;
  });
}

}  // namespace

int main(int argc, char** argv) {
  return wb::run_main([&] {
    wb::Args a{argc, argv};
    a.check({"n", "reps", "workers"});
    const long n = a.num("n", 1000000);
    const int reps = static_cast<int>(a.num("reps", 5));
    const double dn = double(n);

    wb::for_each_worker_pass(a, [&](const weft::Config& cfg, const char* suffix) {
      weft::Runtime rt(cfg);
      const Result r = run(rt, n, reps);
      wb::comment(
          "weft-bench-spawn%s: %s; n=%ld empty fibers per run; median of %d runs after 1 warm-up; "
          "batch (spawn all, keep handles in a reserved vector, then join all) %s; "
          "seq (spawn then join at once) %s",
          suffix, wb::shape(rt).c_str(), n, reps, wb::spread(r.batch, dn, "ns").c_str(),
          wb::spread(r.seq, dn, "ns").c_str());
      wb::line(std::string("spawn_join_ns") + suffix, r.batch.med / dn, "ns");
      wb::line(std::string("spawn_join_seq_ns") + suffix, r.seq.med / dn, "ns");
    });
    return 0;
  });
}
