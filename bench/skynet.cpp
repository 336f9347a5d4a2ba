// weft-bench-skynet: a 10-ary tree of fibers with 1,000,000 leaves (depth 6,
// 1,111,111 fibers in all). node(num, size): a leaf (size 1) returns num;
// an inner node spawns 10 child fibers node(num + i*size/10, size/10) and
// sums their JoinHandle::join() results. There are no channels: results go
// up through join. The tree's root is itself a spawned fiber (as in the Go
// peer, where main starts the root goroutine and waits for its answer).
// The sum must be 499999500000, else the program exits 1.
//
//   skynet_1m_ms      all workers (default Config::workers)
//   skynet_1m_ms_1w   1 worker
// Median of reps runs after one warm-up, in ms.
//   weft-bench-skynet reps=5 [workers=N: only this worker count; 0 = default]
#include <array>
#include <cstdint>

#include "common.hpp"

namespace {

constexpr std::uint64_t kLeaves = 1000000;
constexpr std::uint64_t kWant = 499999500000ULL;

std::uint64_t node(std::uint64_t num, std::uint64_t size) {
  if (size == 1) return num;
  const std::uint64_t step = size / 10;
  std::array<weft::JoinHandle<std::uint64_t>, 10> kids;
  for (std::uint64_t i = 0; i < 10; ++i)
    kids[i] = weft::spawn([n = num + i * step, step] { return node(n, step); });
  std::uint64_t sum = 0;
  for (auto& k : kids) sum += k.join();
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  return wb::run_main([&] {
    wb::Args a{argc, argv};
    a.check({"reps", "workers"});
    const int reps = static_cast<int>(a.num("reps", 5));

    wb::for_each_worker_pass(a, [&](const weft::Config& cfg, const char* suffix) {
      weft::Runtime rt(cfg);
      const long rss0 = wb::rss_bytes();
      wb::Series s = rt.block_on([&] {
        return wb::repeat(reps, [&] {
          auto t0 = wb::clock::now();
          const std::uint64_t got = weft::spawn([] { return node(0, kLeaves); }).join();
          const double el = wb::ns_since(t0);
          if (got != kWant)
            wb::die("skynet: wrong sum %llu, expected %llu", static_cast<unsigned long long>(got),
                    static_cast<unsigned long long>(kWant));
          return el;
        });
      });
      const auto st = rt.stats();
      wb::comment(
          "weft-bench-skynet%s: %s; 10-ary tree, 10^6 leaves, 1111111 fibers per run, every node "
          "and leaf "
          "spawned as a fiber (weft::spawn, default FiberOptions), results returned through "
          "JoinHandle::join (no channels); median of %d runs after 1 warm-up; %s; "
          "RSS after runtime start %.1f MiB, VmHWM now %.1f MiB; steals=%llu",
          suffix, wb::shape(rt).c_str(), reps, wb::spread(s, 1e6, "ms").c_str(), rss0 / 1048576.0,
          wb::status_bytes("VmHWM") / 1048576.0, static_cast<unsigned long long>(st.steals));
      wb::line(std::string("skynet_1m_ms") + suffix, s.med / 1e6, "ms");
    });
    return 0;
  });
}
