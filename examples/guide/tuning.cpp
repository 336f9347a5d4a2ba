// docs/guide/performance.md: the same workload under a few configurations.
// It prints the time each took; compare them on your machine (the figures
// in docs/benchmarks.md were measured side by side, which this is not).
#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "check.hpp"
#include "weft/weft.hpp"

namespace {

// [workload]
// 50 pairs of fibers passing a token back and forth 40 times each over
// rendezvous channels: switches and wake-ups, no real work.
long ping_pong(weft::Runtime& rt) {
  return rt.block_on([] {
    std::vector<weft::JoinHandle<long>> pairs;
    for (int p = 0; p < 50; ++p) {
      pairs.push_back(weft::spawn([] {
        auto [ping_tx, ping_rx] = weft::channel<int>(0);
        auto [pong_tx, pong_rx] = weft::channel<int>(0);
        auto echo = weft::spawn([rx = ping_rx, tx = pong_tx] {
          while (auto v = rx.recv()) (void)tx.send(*v + 1);
        });
        long sum = 0;
        for (int i = 0; i < 40; ++i) {
          (void)ping_tx.send(i);
          sum += *pong_rx.recv();
        }
        ping_tx = {};  // closes ping: the echo fiber ends
        echo.join();
        return sum;
      }));
    }
    long total = 0;
    for (auto& h : pairs) total += h.join();
    return total;
  });
}
// [workload end]

}  // namespace

int main() {
  // [configs]
  std::vector<std::pair<std::string, weft::Config>> configs;
  weft::Config one_worker;
  one_worker.workers = 1;
  configs.emplace_back("workers=1", one_worker);
  weft::Config single;
  single.strategy = weft::Strategy::single_threaded;
  configs.emplace_back("strategy=single_threaded", single);
  configs.emplace_back("workers=auto (one per CPU)", weft::Config{});
  weft::Config pinned;
  pinned.pin_workers = true;
  configs.emplace_back("pin_workers", pinned);
  weft::Config epoll;
  epoll.io_backend = weft::IoBackend::epoll;
  configs.emplace_back("io_backend=epoll", epoll);
  weft::Config per_core;
  per_core.strategy = weft::Strategy::thread_per_core;
  configs.emplace_back("strategy=thread_per_core", per_core);
  // [configs end]
  for (auto& [name, config] : configs) {
    weft::Runtime rt(config);
    const auto t0 = std::chrono::steady_clock::now();
    const long sum = ping_pong(rt);
    const auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    guide::check(sum == 50L * (40L * 41 / 2), "the workload's result");
    std::printf("%-28s %zu workers  %8lld us\n", name.c_str(), rt.workers(),
                static_cast<long long>(us));
  }

  // [thread_per_core]
  weft::Config tpc;
  tpc.workers = 2;
  tpc.strategy = weft::Strategy::thread_per_core;
  weft::Runtime rt(tpc);
  std::vector<weft::JoinHandle<bool>> fibers;
  for (int i = 0; i < 4; ++i) {  // spawned from a plain thread: homed round-robin, 2 per worker
    fibers.push_back(rt.spawn([] {
      const int home = weft::this_fiber::worker_index();
      bool stayed = true;
      for (int k = 0; k < 1000; ++k) {
        weft::this_fiber::yield();  // also sleeps, I/O, channel waits: it resumes at home
        stayed = stayed && weft::this_fiber::worker_index() == home;
      }
      return stayed;
    }));
  }
  // [thread_per_core end]
  for (auto& f : fibers) guide::check(f.join(), "a fiber under thread_per_core never migrates");
}
