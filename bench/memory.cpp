// weft-bench-memory: resident memory per parked fiber. n fibers (default
// 10^6) are parked at once; the program reports (VmRSS with them parked -
// VmRSS before the first spawn) / n, in bytes, like the peers go/mem and
// boost/mem (which block 10^6 goroutines/fibers on one channel).
//
// weft has no channels yet, so the fibers park with the public API only:
//   shape=chain (default): fiber i spawns fiber i+1 and joins it, so every
//     fiber but the last is parked in JoinHandle::join(); the last one sleeps
//     in this_fiber::sleep_for(1ms) steps until the main thread, having seen
//     all n fibers start, has sampled VmRSS and sets a release flag; then the
//     chain unwinds. Each fiber has its own stack, so the 10^6-deep chain of
//     joins needs no deep native stack.
//   shape=sleep: a root fiber spawns n detached fibers that each park in
//     this_fiber::sleep_until(now + 1 h); they are woken by the runtime's
//     shutdown (weft::Cancelled, caught) after the sample.
// One measurement per process (a warm-up would leave stacks pooled, so a
// second run would measure the pool, not fresh fibers); reps does not apply.
// The output name gets suffixes when the shape differs from the defaults:
// _<k>k for a non-default stack size, _noguard without guard pages, _sleep.
//   weft-bench-memory n=1000000 shape=chain|sleep stack=BYTES guard=0|1 workers=N
// stack=0 / guard=-1 / workers=-1 (defaults) keep Config::from_env().
#include <atomic>
#include <mutex>
#include <thread>

#include "common.hpp"

namespace {

long g_n = 0;
std::atomic<long> g_started{0};
std::atomic<bool> g_release{false};
std::atomic<bool> g_failed{false};
std::atomic<long> g_cancelled{0};
std::mutex g_err_mu;
std::string g_err;

void fail(long i, const char* what) {
  std::lock_guard<std::mutex> lk(g_err_mu);
  if (g_err.empty()) g_err = "fiber " + std::to_string(i) + ": " + what;
  g_failed.store(true);
}

void chain(long i) {
  g_started.fetch_add(1, std::memory_order_relaxed);
  if (i + 1 < g_n) {
    weft::JoinHandle<void> h;
    try {
      h = weft::spawn([i] { chain(i + 1); });
    } catch (const std::exception& e) {
      fail(i + 1, e.what());
      return;
    }
    h.join();
  } else {
    while (!g_release.load(std::memory_order_acquire))
      weft::this_fiber::sleep_for(std::chrono::milliseconds(1));
  }
}

void sleepers(long n) {
  for (long i = 0; i < n; ++i) {
    try {
      weft::spawn([] {
        g_started.fetch_add(1, std::memory_order_relaxed);
        try {
          weft::this_fiber::sleep_until(weft::Clock::now() + std::chrono::hours(1));
        } catch (const weft::Cancelled&) {
          g_cancelled.fetch_add(1, std::memory_order_relaxed);
        }
      }).detach();
    } catch (const std::exception& e) {
      fail(i, e.what());
      return;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  return wb::run_main([&] {
    wb::Args a{argc, argv};
    a.check({"n", "shape", "stack", "guard", "workers", "reps"});
    g_n = a.num("n", 1000000);
    const std::string shape = a.str("shape", "chain");
    if (shape != "chain" && shape != "sleep") wb::die("shape must be chain or sleep");
    weft::Config cfg = weft::Config::from_env();
    if (long s = a.num("stack", 0); s > 0) cfg.stack_size = static_cast<std::size_t>(s);
    if (long g = a.num("guard", -1); g >= 0) cfg.guard_pages = g != 0;
    if (long w = a.num("workers", -1); w >= 0) cfg.workers = static_cast<std::size_t>(w);
    const weft::Config defaults{};

    auto rt = std::make_unique<weft::Runtime>(cfg);
    const std::string rt_shape = wb::shape(*rt);
    const long maps0 = wb::map_count();
    const long before = wb::rss_bytes();
    const long pte0 = wb::status_bytes("VmPTE");
    auto t0 = wb::clock::now();
    weft::JoinHandle<void> root =
        shape == "chain" ? rt->spawn([] { chain(0); }) : rt->spawn([] { sleepers(g_n); });
    while (g_started.load(std::memory_order_relaxed) < g_n && !g_failed.load())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const double build_ns = wb::ns_since(t0);
    // Let the last started fibers reach their park (chain: fiber n-2 may be
    // between spawning fiber n-1 and parking in its join).
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const long after = wb::rss_bytes();
    const long pte = wb::status_bytes("VmPTE");
    const long maps1 = wb::map_count();
    const auto st = rt->stats();
    const long started = g_started.load();
    g_release.store(true, std::memory_order_release);
    auto tu = wb::clock::now();
    root.join();
    const double unwind_ns = wb::ns_since(tu);
    auto t1 = wb::clock::now();
    rt.reset();  // shape=sleep: cancels the sleepers
    const double teardown_ns = wb::ns_since(t1);
    const long hwm = wb::status_bytes("VmHWM");

    wb::comment(
        "weft-bench-memory: shape=%s (%s); %s; n=%ld fibers parked at the sample (%ld started); "
        "RSS before %.1f MiB, with them parked %.1f MiB, VmHWM %.1f MiB; page tables (VmPTE, not "
        "in "
        "VmRSS) %.1f -> %.1f MiB = %.0f B/fiber; mappings %ld -> %ld (vm.max_map_count applies)%s; "
        "fibers_parked=%llu fibers_alive=%llu at the sample; "
        "building the set took %.0f ns/fiber, release until the root was joined %.0f ms, runtime "
        "shutdown %.0f ms; one measurement, no warm-up",
        shape.c_str(),
        shape == "chain"
            ? "each fiber parked in JoinHandle::join of the next, the last in sleep_for(1ms)"
            : "each fiber parked in sleep_until(now+1h), woken by shutdown",
        rt_shape.c_str(), g_n, started, before / 1048576.0, after / 1048576.0, hwm / 1048576.0,
        pte0 / 1048576.0, pte / 1048576.0, double(pte - pte0) / double(g_n), maps0, maps1,
        cfg.guard_pages
            ? (maps1 - maps0 < g_n / 2 ? ", so guard pages cost no mapping (MADV_GUARD_INSTALL)"
                                       : ", so each guard page costs a mapping (mprotect)")
            : "",
        static_cast<unsigned long long>(st.fibers_parked),
        static_cast<unsigned long long>(st.fibers_alive), build_ns / double(started ? started : 1),
        unwind_ns / 1e6, teardown_ns / 1e6);
    if (g_failed.load()) wb::die("%s (after %ld fibers had started)", g_err.c_str(), started);
    if (shape == "sleep" && g_cancelled.load() != g_n)
      wb::die("only %ld of %ld sleeping fibers were cancelled at shutdown", g_cancelled.load(),
              g_n);

    std::string name = "parked_fiber_bytes";
    if (cfg.stack_size != defaults.stack_size)
      name += "_" + std::to_string(cfg.stack_size / 1024) + "k";
    if (!cfg.guard_pages) name += "_noguard";
    if (shape == "sleep") name += "_sleep";
    wb::line(name, double(after - before) / double(g_n), "B");
    return 0;
  });
}
