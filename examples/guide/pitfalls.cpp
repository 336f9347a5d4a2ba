// docs/guide/pitfalls.md: what not to do, and what to do instead.
#include <unistd.h>

#include <chrono>
#include <string>

#include "check.hpp"
#include "weft/weft.hpp"

using namespace std::chrono_literals;

int main() {
  weft::Runtime rt;
  rt.block_on([] {
    // [fls]
    // Not thread_local: a fiber may resume on another worker after any
    // call that parks, and other fibers run on this thread meanwhile.
    static weft::FiberLocal<std::string> request_id;
    auto handle = [](std::string id) {
      request_id.get() = id;
      weft::this_fiber::sleep_for(1ms);  // other fibers run, maybe elsewhere
      return request_id.get() == id;     // still this fiber's value
    };
    auto a = weft::spawn([&] { return handle("a"); });
    auto b = weft::spawn([&] { return handle("b"); });
    // [fls end]
    guide::check(a.join() && b.join(), "each fiber keeps its own value");

    // [blocking]
    // Not ::usleep(), ::sleep(), a blocking read on a descriptor weft does
    // not own, or a library call that blocks: they stop the worker thread
    // and every fiber queued on it. Use weft's call, or the blocking pool.
    weft::this_fiber::sleep_for(2ms);                     // parks only this fiber
    weft::spawn_blocking([] { ::usleep(2000); }).join();  // blocks a pool thread
    // [blocking end]

    // [mutex]
    // Not std::mutex held across a call that parks: the worker would sit
    // on the lock while its fiber is parked, and a fiber on the same
    // worker that wants the lock would deadlock it. weft::Mutex parks.
    weft::Mutex mu;
    int shared = 0;
    auto writer = weft::spawn([&] {
      std::lock_guard lock(mu);
      weft::this_fiber::sleep_for(1ms);  // parking while holding a weft::Mutex is fine
      ++shared;
    });
    {
      std::lock_guard lock(mu);
      ++shared;
    }
    writer.join();
    // [mutex end]
    guide::check(shared == 2, "both increments");
  });
}
