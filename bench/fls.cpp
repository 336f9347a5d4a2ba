// weft-bench-fls: costs of fiber-local storage (weft::FiberLocal), in ns,
// median of reps runs after a warm-up, on one runtime (workers=N, default 1
// for steadier numbers).
//
//   fls_get_ns              get() of a value the fiber holds (8 keys held)
//   fls_try_get_absent_ns   try_get() of a key the fiber holds no value for
//   spawn_join_seq_ns       spawn + join at once of an empty fiber; the
//                           spawner holds no FiberLocal value (the baseline
//                           every program pays; compare weft-bench-spawn)
//   spawn_join_seq_none_ns  same, the spawner holds one none value (nothing
//                           to inherit, but the table is scanned)
//   spawn_join_seq_share_ns same, one share value (a reference taken)
//   spawn_join_seq_copy_ns  same, one copy std::string value of 64 bytes
//                           (a copy made, a store built and destroyed)
//   spawn_join_seq_set_ns   same, empty spawner, and the child sets one value
//                           (its store made, the value destroyed at its end)
//
// Check: every child saw the value it should have (else exits 1).
//   weft-bench-fls n=200000 reps=5 [workers=N]
#include "common.hpp"

namespace {

using weft::FiberLocal;
using weft::Propagation;

double per_op(const wb::Series& s, long n) {
  return s.med / double(n);
}

}  // namespace

int main(int argc, char** argv) {
  return wb::run_main([&] {
    wb::Args a{argc, argv};
    a.check({"n", "reps", "workers"});
    const long n = a.num("n", 200000);
    const int reps = static_cast<int>(a.num("reps", 5));
    weft::Config cfg = weft::Config::from_env();
    cfg.workers = static_cast<std::size_t>(a.num("workers", 1));
    weft::Runtime rt(cfg);

    FiberLocal<long> held[8];
    FiberLocal<long> absent;
    FiberLocal<long> none_key;
    FiberLocal<long> share_key{Propagation::share};
    FiberLocal<std::string> copy_key{Propagation::copy};
    FiberLocal<long> child_key;
    const std::string payload(64, 'x');

    struct Out {
      wb::Series get, try_absent, seq, seq_none, seq_share, seq_copy, seq_set;
    };
    Out o = rt.block_on([&] {
      Out r;
      // Lookups, in a fiber of its own with 8 values held.
      r.get = weft::spawn([&] {
                for (int k = 0; k < 8; ++k) held[k].set(k);
                return wb::repeat(reps, [&] {
                  long sum = 0;
                  auto t0 = wb::clock::now();
                  for (long i = 0; i < n * 10; ++i) sum += held[i & 7].get();
                  const double el = wb::ns_since(t0);
                  if (sum != (n * 10 / 8) * 28) wb::die("fls_get: wrong sum %ld", sum);
                  return el;
                });
              }).join();
      r.try_absent = weft::spawn([&] {
                       held[0].set(1);
                       return wb::repeat(reps, [&] {
                         long hits = 0;
                         auto t0 = wb::clock::now();
                         for (long i = 0; i < n * 10; ++i) hits += absent.try_get() != nullptr;
                         const double el = wb::ns_since(t0);
                         if (hits != 0) wb::die("fls_try_get_absent: found a value");
                         return el;
                       });
                     }).join();
      auto spawn_loop = [&](auto&& child) {
        return wb::repeat(reps, [&] {
          auto t0 = wb::clock::now();
          for (long i = 0; i < n; ++i) {
            if (!weft::spawn(child).join()) wb::die("a child saw the wrong value");
          }
          return wb::ns_since(t0);
        });
      };
      // Each in a fresh fiber holding exactly the values named.
      r.seq = weft::spawn([&] { return spawn_loop([] { return true; }); }).join();
      r.seq_none = weft::spawn([&] {
                     none_key.set(1);
                     return spawn_loop([&] { return !none_key.has_value(); });
                   }).join();
      r.seq_share = weft::spawn([&] {
                      share_key.set(7);
                      const long* addr = &share_key.get();
                      return spawn_loop([&, addr] { return &share_key.get() == addr; });
                    }).join();
      r.seq_copy = weft::spawn([&] {
                     copy_key.set(payload);
                     return spawn_loop([&] { return copy_key.get().size() == payload.size(); });
                   }).join();
      r.seq_set = weft::spawn([&] {
                    return spawn_loop([&] {
                      child_key.set(3);
                      return child_key.get() == 3;
                    });
                  }).join();
      return r;
    });
    wb::comment("weft-bench-fls: %s; n=%ld; median of %d runs after 1 warm-up; lookups x10",
                wb::shape(rt).c_str(), n, reps);
    wb::line("fls_get_ns", per_op(o.get, n * 10), "ns");
    wb::line("fls_try_get_absent_ns", per_op(o.try_absent, n * 10), "ns");
    wb::line("spawn_join_seq_ns", per_op(o.seq, n), "ns");
    wb::line("spawn_join_seq_none_ns", per_op(o.seq_none, n), "ns");
    wb::line("spawn_join_seq_share_ns", per_op(o.seq_share, n), "ns");
    wb::line("spawn_join_seq_copy_ns", per_op(o.seq_copy, n), "ns");
    wb::line("spawn_join_seq_set_ns", per_op(o.seq_set, n), "ns");
    return 0;
  });
}
