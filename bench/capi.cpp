// weft-bench-capi: what the C ABI (weft.h) costs over the C++ API, paired.
//
// Three shapes, each written twice - in C against weft.h (capi_c.c,
// compiled as C11) and in C++ against weft.hpp (here) - and run on fibers
// of one runtime (made through weft.h), alternately, in `rounds` rounds
// (odd rounds C++ first, even rounds C first); the ratio C / C++ is taken
// per round, and the median over rounds is reported with the range:
//
//   spawn_join    spawn n empty fibers keeping the handles, then join all
//                 (weft-bench-spawn's spawn_join_ns shape)
//   spawn_seq     spawn an empty fiber and join it at once, n times
//   pingpong      n round trips over two rendezvous channels of int64_t
//                 with an echo fiber (weft-bench-chan's, Go's shape)
//
// Lines: <shape>_ns_cpp<sfx>, <shape>_ns_c<sfx> (medians, ns per op) and
// <shape>_ratio<sfx> (median of the per-round ratios); the goal is a ratio
// <= 1.10. Both sides link the static weft; a program using libweft.so
// also pays a PLT indirection per call (about a nanosecond), not measured.
//   weft-bench-capi n=200000 rounds=11 [workers=N: only this count; 0 = default]
//                   [shape=spawn_join|spawn_seq|pingpong: only this one]
//                   [side=c|cpp: only this side, no ratio (for callgrind:
//                    instruction counts of one side, e.g. side=c vs side=cpp)]
#include <weft/weft.h>

#include "common.hpp"

extern "C" {
std::int64_t capi_c_spawn_join(weft_fiber** hs, long n);
std::int64_t capi_c_spawn_join_seq(long n);
std::int64_t capi_c_pingpong(long n);
}

namespace {

std::int64_t cpp_spawn_join(std::vector<weft::JoinHandle<void>>& hs, long n) {
  hs.clear();
  const auto t0 = wb::clock::now();
  for (long i = 0; i < n; ++i) hs.push_back(weft::spawn([] {}));
  for (auto& h : hs) h.join();
  return static_cast<std::int64_t>(wb::ns_since(t0));
}

std::int64_t cpp_spawn_join_seq(long n) {
  const auto t0 = wb::clock::now();
  for (long i = 0; i < n; ++i) weft::spawn([] {}).join();
  return static_cast<std::int64_t>(wb::ns_since(t0));
}

std::int64_t cpp_pingpong(long n) {
  auto [ping_tx, ping_rx] = weft::channel<std::int64_t>(0);
  auto [pong_tx, pong_rx] = weft::channel<std::int64_t>(0);
  auto echo = weft::spawn([&ping_rx = ping_rx, &pong_tx = pong_tx] {
    for (std::int64_t v : ping_rx) {
      if (!pong_tx.send(v)) break;
    }
  });
  bool bad = false;
  const auto t0 = wb::clock::now();
  for (std::int64_t i = 0; i < n; ++i) {
    if (!ping_tx.send(i)) {
      bad = true;
      break;
    }
    std::optional<std::int64_t> back = pong_rx.recv();
    if (!back || *back != i) {
      bad = true;
      break;
    }
  }
  const auto elapsed = static_cast<std::int64_t>(wb::ns_since(t0));
  ping_tx.close();
  echo.join();
  return bad ? -1 : elapsed;
}

struct Shape {
  const char* name;
  std::function<std::int64_t()> cpp, c;
  std::vector<double> cpp_ns, c_ns, ratio;
};

double check(std::int64_t ns, const char* shape, const char* side) {
  if (ns < 0) wb::die("%s (%s): wrong result", shape, side);
  return static_cast<double>(ns);
}

// Runs on a fiber of the runtime: every round of every shape. side: 'b'
// both (paired), 'c' or '+' (C++) alone.
void run_rounds(std::vector<Shape>& shapes, int rounds, long n, char side) {
  const bool do_cpp = side != 'c', do_c = side != '+';
  for (auto& s : shapes) {  // warm-up: stacks, task caches, channel buffers
    if (do_cpp) check(s.cpp(), s.name, "C++");
    if (do_c) check(s.c(), s.name, "C");
  }
  for (int r = 0; r < rounds; ++r) {
    for (auto& s : shapes) {
      double cpp = 0, c = 0;
      if (r % 2 == 0) {
        if (do_cpp) cpp = check(s.cpp(), s.name, "C++");
        if (do_c) c = check(s.c(), s.name, "C");
      } else {
        if (do_c) c = check(s.c(), s.name, "C");
        if (do_cpp) cpp = check(s.cpp(), s.name, "C++");
      }
      s.cpp_ns.push_back(cpp / double(n));
      s.c_ns.push_back(c / double(n));
      s.ratio.push_back(do_c && do_cpp ? c / cpp : 0);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  return wb::run_main([&] {
    wb::Args a{argc, argv};
    a.check({"n", "rounds", "workers", "shape", "side"});
    const long n = a.num("n", 200000);
    const int rounds = static_cast<int>(a.num("rounds", 11));
    if (n <= 0 || rounds <= 0) wb::die("n and rounds must be positive");
    const std::string only_shape = a.str("shape", "");
    const std::string side_arg = a.str("side", "both");
    if (side_arg != "both" && side_arg != "c" && side_arg != "cpp") wb::die("side=c|cpp");
    const char side = side_arg == "c" ? 'c' : side_arg == "cpp" ? '+' : 'b';
    bool met = true;

    wb::for_each_worker_pass(a, [&](const weft::Config& cfg, const char* suffix) {
      weft_config c;
      weft_config_init(&c);
      c.workers = static_cast<std::uint32_t>(cfg.workers);
      weft_runtime* rt = nullptr;
      if (weft_runtime_new(&c, &rt) != 0) wb::die("weft_runtime_new: %s", weft_last_error());

      std::vector<weft::JoinHandle<void>> cpp_handles;
      cpp_handles.reserve(static_cast<std::size_t>(n));
      std::vector<weft_fiber*> c_handles(static_cast<std::size_t>(n));
      std::vector<Shape> shapes;
      shapes.push_back({"spawn_join",
                        [&] { return cpp_spawn_join(cpp_handles, n); },
                        [&] { return capi_c_spawn_join(c_handles.data(), n); },
                        {},
                        {},
                        {}});
      shapes.push_back({"spawn_seq",
                        [&] { return cpp_spawn_join_seq(n); },
                        [&] { return capi_c_spawn_join_seq(n); },
                        {},
                        {},
                        {}});
      shapes.push_back({"pingpong",
                        [&] { return cpp_pingpong(n); },
                        [&] { return capi_c_pingpong(n); },
                        {},
                        {},
                        {}});
      if (!only_shape.empty()) {
        std::erase_if(shapes, [&](const Shape& s) { return only_shape != s.name; });
        if (shapes.empty()) wb::die("shape=spawn_join|spawn_seq|pingpong");
      }

      struct Ctx {
        std::vector<Shape>* shapes;
        int rounds;
        long n;
        char side;
      } ctx{&shapes, rounds, n, side};
      const int rc = weft_block_on(
          rt,
          [](void* p) -> void* {
            auto* x = static_cast<Ctx*>(p);
            run_rounds(*x->shapes, x->rounds, x->n, x->side);
            return nullptr;
          },
          &ctx, nullptr);
      if (rc != 0) wb::die("weft_block_on: %s (%s)", weft_strerror(rc), weft_last_error());
      const std::size_t workers = cfg.resolved_workers();
      weft_runtime_free(rt);

      for (auto& s : shapes) {
        if (side != 'b') {
          const auto& v = side == 'c' ? s.c_ns : s.cpp_ns;
          wb::line(std::string(s.name) + (side == 'c' ? "_ns_c" : "_ns_cpp") + suffix,
                   wb::median(v), "ns");
          continue;
        }
        auto [lo, hi] = std::minmax_element(s.ratio.begin(), s.ratio.end());
        const double ratio = wb::median(s.ratio);
        met = met && ratio <= 1.10;
        wb::comment(
            "weft-bench-capi%s %s: workers=%zu n=%ld rounds=%d (paired, alternating order); "
            "C++ %.1f ns (%.1f..%.1f), C %.1f ns (%.1f..%.1f); ratio C/C++ per round "
            "median %.3f, range %.3f..%.3f",
            suffix, s.name, workers, n, rounds, wb::median(s.cpp_ns),
            *std::min_element(s.cpp_ns.begin(), s.cpp_ns.end()),
            *std::max_element(s.cpp_ns.begin(), s.cpp_ns.end()), wb::median(s.c_ns),
            *std::min_element(s.c_ns.begin(), s.c_ns.end()),
            *std::max_element(s.c_ns.begin(), s.c_ns.end()), ratio, *lo, *hi);
        wb::line(std::string(s.name) + "_ns_cpp" + suffix, wb::median(s.cpp_ns), "ns");
        wb::line(std::string(s.name) + "_ns_c" + suffix, wb::median(s.c_ns), "ns");
        wb::line(std::string(s.name) + "_ratio" + suffix, ratio, "ratio");
      }
    });
    if (side == 'b') wb::comment("goal: every ratio <= 1.10: %s", met ? "met" : "NOT met");
    return 0;
  });
}
