// docs/guide/blocking.md: blocking calls and CPU-heavy work.
#include <unistd.h>

#include <cmath>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "check.hpp"
#include "weft/weft.hpp"

int main() {
  weft::Runtime rt;
  rt.block_on([] {
    // [spawn_blocking]
    // A call weft cannot make park (a library doing its own blocking I/O,
    // a syscall weft has no wrapper for) runs on the blocking pool; joining
    // parks only this fiber while a pool thread blocks.
    auto host = weft::spawn_blocking([] {
      char name[256] = {};
      ::gethostname(name, sizeof name - 1);
      return std::string(name);
    });
    std::string hostname = host.join();
    // [spawn_blocking end]
    guide::check(!hostname.empty(), "spawn_blocking");

    // [par]
    std::vector<double> v(100000);
    std::iota(v.begin(), v.end(), 1.0);
    weft::par_for_each(v, [](double& x) { x = std::sqrt(x); });
    std::vector<long> squares = weft::par_map(v, [](double x) { return std::lround(x * x); });
    long total = weft::par_reduce(squares, 0L, std::plus<>{});
    // [par end]
    guide::check(total == 100000L * 100001L / 2, "par_for_each, par_map, par_reduce");

    // [checkpoint]
    long spins = 0;
    for (long i = 0; i < 10000000; ++i) {
      spins += i & 1;
      if ((i & 0xffff) == 0) weft::this_fiber::checkpoint();  // lets others run
    }
    // [checkpoint end]
    guide::check(spins == 5000000, "a CPU loop with checkpoints");
  });
}
