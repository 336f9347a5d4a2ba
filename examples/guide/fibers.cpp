// docs/guide/fibers.md: spawning fibers, join handles, names and priorities.
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.hpp"
#include "weft/weft.hpp"

using namespace std::chrono_literals;

int main() {
  weft::Runtime rt;
  rt.block_on([] {
    // [join]
    weft::JoinHandle<int> h = weft::spawn([] { return 6 * 7; });
    int answer = h.join();  // parks this fiber until the child has returned
    // [join end]
    guide::check(answer == 42, "join returns the fiber's value");

    // [many]
    std::vector<weft::JoinHandle<long>> handles;
    for (long i = 0; i < 1000; ++i) {
      handles.push_back(weft::spawn([i] {
        weft::this_fiber::sleep_for(1ms);  // parks the fiber, not the worker
        return i;
      }));
    }
    long sum = 0;
    for (auto& handle : handles) sum += handle.join();
    // [many end]
    guide::check(sum == 999 * 1000 / 2, "1000 fibers summed");

    // [exception]
    auto failing = weft::spawn([]() -> int { throw std::runtime_error("no luck"); });
    try {
      failing.join();
    } catch (const std::runtime_error& e) {
      // join() rethrows the exception the fiber ended with
    }
    // [exception end]

    // [options]
    weft::FiberOptions opts{.name = "flusher", .priority = weft::Priority::high};
    auto named = weft::spawn(opts, [] { return std::string(weft::this_fiber::name()); });
    // [options end]
    guide::check(named.join() == "flusher", "the fiber's name");

    // [cancel]
    auto sleeper = weft::spawn([] { weft::this_fiber::sleep_for(1h); });
    sleeper.cancel();  // its sleep throws weft::Cancelled, which ends it
    bool cancelled = false;
    try {
      sleeper.join();
    } catch (const weft::Cancelled&) {
      cancelled = true;
    }
    // [cancel end]
    guide::check(cancelled, "a cancelled fiber ends with Cancelled");

    // [detach]
    weft::spawn([] { weft::this_fiber::yield(); }).detach();  // runs on by itself
    // [detach end]
  });
}
