// docs/guide/config.md: configuration and limits.
#include <chrono>
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
}
