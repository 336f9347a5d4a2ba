// weft-bench-yield: two fibers on a 1-worker runtime hand the worker back and
// forth with weft::this_fiber::yield(); n yields in total (n/2 each). Prints
// nanoseconds per switch (elapsed / n), median of reps runs after a warm-up.
// Same shape as the peers go/yield (runtime.Gosched, GOMAXPROCS=1) and
// boost/yield (round_robin, one thread).
//
// Check: after each yield a fiber looks whether the other fiber ran in
// between; if (almost) every yield did not hand over, yield() returned
// without switching and the figure would be meaningless, so it fails.
//   weft-bench-yield n=10000000 reps=5
#include <atomic>

#include "common.hpp"

int main(int argc, char** argv) {
  return wb::run_main([&] {
    wb::Args a{argc, argv};
    a.check({"n", "reps"});
    const long per = a.num("n", 10000000) / 2;
    const long total = 2 * per;
    const int reps = static_cast<int>(a.num("reps", 5));

    weft::Config cfg = weft::Config::from_env();
    cfg.workers = 1;
    weft::Runtime rt(cfg);

    std::atomic<int> last{-1};
    std::atomic<long> handoffs{0};
    std::atomic<long> min_handoffs{total};
    wb::Series s = rt.block_on([&] {
      return wb::repeat(reps, [&] {
        handoffs.store(0, std::memory_order_relaxed);
        last.store(-1, std::memory_order_relaxed);
        auto body = [&](int me) {
          return [&, me] {
            long mine = 0;
            for (long i = 0; i < per; ++i) {
              weft::this_fiber::yield();
              if (last.load(std::memory_order_relaxed) != me) {
                ++mine;
                last.store(me, std::memory_order_relaxed);
              }
            }
            handoffs.fetch_add(mine, std::memory_order_relaxed);
          };
        };
        auto t0 = wb::clock::now();
        auto f1 = weft::spawn(body(1));
        auto f2 = weft::spawn(body(2));
        f1.join();
        f2.join();
        double el = wb::ns_since(t0);
        long h = handoffs.load();
        if (h < min_handoffs.load()) min_handoffs.store(h);
        return el;
      });
    });
    const long h = min_handoffs.load();
    wb::comment(
        "weft-bench-yield: 2 fibers alternate with this_fiber::yield on a 1-worker runtime (%s); "
        "n=%ld yields in total; median of %d runs after 1 warm-up; %s; fewest handoffs in a run "
        "%ld of %ld",
        wb::shape(rt).c_str(), total, reps, wb::spread(s, double(total), "ns").c_str(), h, total);
    // A yield that finds the other fiber runnable must run it. Allow 1% of
    // non-handoffs (at the start and end of a run the other fiber has not
    // started yet / has finished).
    if (h < total - total / 100 - 2)
      wb::die("yield did not alternate: only %ld of %ld yields handed over", h, total);
    wb::line("yield_switch_ns", s.med / double(total), "ns");
    return 0;
  });
}
