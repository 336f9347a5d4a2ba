// weft-bench-gen: weft::Generator costs, no scheduler involved.
//
//   gen_resume_yield_ns         one resume + one yield (two context switches,
//                               value passing included), driven by a plain
//                               thread; the body yields n values in a loop.
//   gen_resume_yield_fiber_ns   the same driven by a fiber on a 1-worker
//                               runtime (resume also lends the fiber's
//                               context to the generator's stack).
//   gen_create_destroy_ns       construct, run to completion (one yield) and
//                               destroy a generator; stacks come from the
//                               per-thread cache in steady state.
//
// Median of reps runs after a warm-up. Compare with boost.ctx_fiber_switch_ns
// (one-way switch, so a round trip is twice that) in
// ../shared/peers/README.md. Check: the values summed by the consumer must
// equal the closed form, else the program fails.
//   weft-bench-gen n=10000000 reps=5
#include "common.hpp"
#include "weft/generator.hpp"

namespace {

double resume_yield_run(long n) {
  weft::Generator<long> g([n](weft::Yield<long>& yield) {
    for (long i = 0; i < n; ++i) yield(long{i});
  });
  long sum = 0;
  const auto t0 = wb::clock::now();
  while (g.resume()) sum += g.value();
  const double el = wb::ns_since(t0);
  if (sum != n * (n - 1) / 2) wb::die("generator summed %ld, want %ld", sum, n * (n - 1) / 2);
  return el;
}

double create_destroy_run(long n) {
  long sum = 0;
  const auto t0 = wb::clock::now();
  for (long i = 0; i < n; ++i) {
    weft::Generator<long> g([i](weft::Yield<long>& yield) { yield(long{i}); });
    sum += *g.next();
    (void)g.next();  // runs the body to its end
  }
  const double el = wb::ns_since(t0);
  if (sum != n * (n - 1) / 2) wb::die("generators summed %ld, want %ld", sum, n * (n - 1) / 2);
  return el;
}

}  // namespace

int main(int argc, char** argv) {
  return wb::run_main([&] {
    wb::Args a{argc, argv};
    a.check({"n", "create", "reps"});
    const long n = a.num("n", 10000000);
    const long creates = a.num("create", 1000000);
    const int reps = static_cast<int>(a.num("reps", 5));

    const wb::Series thread = wb::repeat(reps, [&] { return resume_yield_run(n); });
    wb::comment("weft-bench-gen: resume+yield round trips on a plain thread, n=%ld; %s", n,
                wb::spread(thread, double(n), "ns").c_str());
    wb::line("gen_resume_yield_ns", thread.med / double(n), "ns");

    weft::Config cfg = weft::Config::from_env();
    cfg.workers = 1;
    weft::Runtime rt(cfg);
    const wb::Series fiber =
        rt.block_on([&] { return wb::repeat(reps, [&] { return resume_yield_run(n); }); });
    wb::comment("resume+yield round trips driven by a fiber (%s); %s", wb::shape(rt).c_str(),
                wb::spread(fiber, double(n), "ns").c_str());
    wb::line("gen_resume_yield_fiber_ns", fiber.med / double(n), "ns");

    const wb::Series create = wb::repeat(reps, [&] { return create_destroy_run(creates); });
    wb::comment("create + run + destroy, n=%ld, default 256 KiB guarded stacks; %s", creates,
                wb::spread(create, double(creates), "ns").c_str());
    wb::line("gen_create_destroy_ns", create.med / double(creates), "ns");
    return 0;
  });
}
