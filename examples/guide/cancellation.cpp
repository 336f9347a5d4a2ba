// docs/guide/cancellation.md: scopes, deadlines, shields, cancellation.
#include <chrono>
#include <optional>
#include <stdexcept>
#include <vector>

#include "check.hpp"
#include "weft/weft.hpp"

using namespace std::chrono_literals;

int main() {
  weft::Runtime rt;
  rt.block_on([] {
    // [scope]
    std::vector<int> results(3);
    weft::scope([&](weft::Scope& s) {
      for (int i = 0; i < 3; ++i) s.spawn([&results, i] { results[i] = i * i; });
    });  // returns once every child has ended
    // [scope end]
    guide::check(results[2] == 4, "scope waits for its children");

    // [failure]
    bool sibling_cancelled = false;
    try {
      weft::scope([&](weft::Scope& s) {
        s.spawn([&] {
          try {
            weft::this_fiber::sleep_for(1h);
          } catch (const weft::Cancelled&) {
            sibling_cancelled = true;
            throw;  // let the fiber end as cancelled
          }
        });
        s.spawn([] { throw std::runtime_error("disk full"); });
      });
    } catch (const std::runtime_error& e) {
      // the first failure, rethrown once both children have ended
    }
    // [failure end]
    guide::check(sibling_cancelled, "a failure cancels the siblings");

    // [deadlines]
    std::optional<int> fast = weft::move_on_after(1s, [] { return 1; });
    std::optional<int> slow = weft::move_on_after(10ms, [] {
      weft::this_fiber::sleep_for(1h);  // cancelled after 10 ms
      return 2;
    });
    bool timed_out = false;
    try {
      weft::fail_after(10ms, [] { weft::this_fiber::sleep_for(1h); });
    } catch (const weft::TimedOut&) {
      timed_out = true;
    }
    // [deadlines end]
    guide::check(fast == 1 && !slow && timed_out, "move_on_after and fail_after");

    // [shield]
    bool flushed = false;
    auto worker = weft::spawn([&] {
      try {
        weft::this_fiber::sleep_for(1h);
      } catch (const weft::Cancelled&) {
        weft::shield([&] {
          weft::this_fiber::sleep_for(5ms);  // would throw Cancelled without the shield
          flushed = true;
        });
        throw;
      }
    });
    worker.cancel();
    try {
      worker.join();
    } catch (const weft::Cancelled&) {
    }
    // [shield end]
    guide::check(flushed, "the shield let the cleanup finish");

    // [source]
    weft::CancellationSource source;
    auto job = weft::spawn([token = source.token()] {
      return weft::with_cancellation(token, [] {
        weft::this_fiber::sleep_for(1h);
        return 0;
      });
    });
    source.cancel();  // from any thread or fiber
    bool job_cancelled = false;
    try {
      job.join();
    } catch (const weft::Cancelled&) {
      job_cancelled = true;
    }
    // [source end]
    guide::check(job_cancelled, "a CancellationSource cancels work under its token");
  });
}
