// docs/guide/sync.md: which synchronization primitive when.
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "check.hpp"
#include "weft/weft.hpp"

using namespace std::chrono_literals;

int main() {
  weft::Runtime rt;
  rt.block_on([] {
    // [mutex]
    weft::Mutex mu;
    long counter = 0;  // guarded by mu
    weft::WaitGroup wg(100);
    for (int i = 0; i < 100; ++i) {
      weft::spawn([&] {
        for (int k = 0; k < 100; ++k) {
          std::lock_guard lock(mu);  // parks the fiber while another holds it
          ++counter;
        }
        wg.done();
      }).detach();
    }
    wg.wait();  // parks until every fiber has called done()
    // [mutex end]
    guide::check(counter == 10000, "every increment counted");

    // [synchronized]
    weft::Synchronized<std::map<std::string, int>> hits;
    hits.lock()->emplace("home", 1);
    int home = hits.with_lock([](auto& map) { return ++map["home"]; });
    // [synchronized end]
    guide::check(home == 2, "Synchronized");

    // [semaphore]
    weft::Semaphore slots(3);  // at most 3 downloads at once
    std::atomic<int> running = 0, most = 0;
    std::vector<weft::JoinHandle<void>> downloads;
    for (int i = 0; i < 12; ++i) {
      downloads.push_back(weft::spawn([&] {
        slots.acquire();
        int now = ++running;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        weft::this_fiber::sleep_for(2ms);  // the download
        --running;
        slots.release();
      }));
    }
    for (auto& d : downloads) d.join();
    // [semaphore end]
    guide::check(most.load() <= 3, "the semaphore bounds concurrency");

    // [event]
    weft::Event ready;
    auto waiter = weft::spawn([&] {
      ready.wait();  // parks until set(); every waiter wakes
      return true;
    });
    ready.set();
    // [event end]
    guide::check(waiter.join(), "Event");
  });
}
