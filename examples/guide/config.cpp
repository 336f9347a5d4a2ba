// docs/guide/config.md: configuration and limits.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "check.hpp"
#include "weft/weft.hpp"

using namespace std::chrono_literals;

int main() {
  // [code]
  weft::Config config = weft::Config::from_env();  // defaults, WEFT_CONFIG's file, WEFT_* variables
  config.workers = 2;
  config.max_fibers = 100;               // a spawn past it throws weft::ResourceExhausted
  config.network_timeout = 30s;          // every net wait without its own deadline
  weft::Runtime rt(config);              // validates: ConfigError names the bad setting
  std::string settings = rt.describe();  // every setting, its value and where it came from
  // [code end]
  guide::check(settings.find("max_fibers") != std::string::npos, "describe() lists the settings");

  // [invalid]
  weft::Config bad;
  bad.stack_size = 1024;  // below 16 KiB
  std::string why;
  try {
    bad.validate();
  } catch (const weft::ConfigError& e) {
    why = e.what();  // names Config::stack_size, the value and the allowed range
  }
  // [invalid end]
  guide::check(why.find("stack_size") != std::string::npos, "ConfigError names the setting");

  // [limits]
  bool refused = rt.block_on([] {
    weft::Event stop;
    std::vector<weft::JoinHandle<void>> parked;
    bool hit = false;
    try {
      for (int i = 0; i < 200; ++i) parked.push_back(weft::spawn([&stop] { stop.wait(); }));
    } catch (const weft::ResourceExhausted& e) {
      hit = true;  // e.what() names max_fibers and its value; nothing was started
    }
    stop.set();
    for (auto& h : parked) h.join();
    return hit;
  });
  // [limits end]
  guide::check(refused, "max_fibers refuses the 100th spawn");

  // [memory]
  weft::Config bounded;
  bounded.workers = 1;
  bounded.stack_size = 64 * 1024;    // each fiber is charged its whole stack
  bounded.memory_limit = 16u << 20;  // 16 MiB of the runtime's own memory (or WEFT_MEMORY_LIMIT)
  weft::Runtime limited(bounded);
  std::atomic<int> pressure{0};  // past memory_pressure_fraction (0.8) of the limit, once
  limited.on_memory_pressure([&pressure](std::uint64_t /*charged*/, std::uint64_t /*limit*/) {
    pressure.fetch_add(1);  // short, never blocks or spawns: e.g. shed caches
  });
  std::string limit_hit;
  std::size_t admitted = limited.block_on([&limit_hit] {
    weft::Event stop;
    std::vector<weft::JoinHandle<void>> parked;
    try {
      for (int i = 0; i < 100000; ++i) parked.push_back(weft::spawn([&stop] { stop.wait(); }));
    } catch (const weft::ResourceExhausted& e) {
      limit_hit = e.limit();  // "memory_limit"; e.what() gives the limit and the memory in use
    }
    stop.set();
    for (auto& h : parked) h.join();
    return parked.size();
  });
  weft::MemoryUsage usage = limited.memory_usage();  // used, charged, limit, refusals, trims
  // [memory end]
  guide::check(limit_hit == "memory_limit", "the spawn storm is refused for memory_limit");
  guide::check(admitted > 0 && admitted * bounded.stack_size <= bounded.memory_limit,
               "what was admitted fits in the limit");
  guide::check(usage.refusals >= 1 && usage.limit == bounded.memory_limit,
               "memory_usage() counts the refusal");
  guide::check(pressure.load() >= 1, "the pressure callback ran at the crossing");
}
