// weft-kv: a Redis-protocol key-value server on weft, one fiber per
// connection. See `weft-kv --help` and the README.
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <span>
#include <string_view>

#include "server.hpp"

// jemalloc's options when the executable links it (CMakeLists.txt; ignored
// by glibc's malloc): a background thread returns freed pages after about
// a second (Redis enables jemalloc's background thread too), so RSS comes
// back down after a connection storm or a FLUSHALL.
extern "C" {
// NOLINTNEXTLINE: the name is jemalloc's interface.
const char* malloc_conf = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
}

int main(int argc, char** argv) {
  kv::Options options;
  bool help = false;
  try {
    options = kv::parse_options(
        std::span<char* const>(argv + 1, static_cast<std::size_t>(argc - 1)), &help);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft-kv: %s\n%s", e.what(), kv::kUsage);
    return 2;
  }
  if (help) {
    std::fputs(kv::kUsage, stdout);
    return 0;
  }
  // As Redis (adjustOpenFilesLimit): raise the soft fd limit to the hard
  // one, and serve fewer clients than asked if even that is too low.
  constexpr rlim_t kReservedFds = 32;  // listener, AOF, io_uring, eventfds, stdio
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    const rlim_t want = options.maxclients + kReservedFds;
    if (lim.rlim_cur < want) {
      lim.rlim_cur = std::min(want, lim.rlim_max);
      ::setrlimit(RLIMIT_NOFILE, &lim);
    }
    if (lim.rlim_cur < want) {
      const auto fit =
          static_cast<std::size_t>(lim.rlim_cur > kReservedFds ? lim.rlim_cur - kReservedFds : 1);
      std::fprintf(stderr,
                   "weft-kv: the fd limit is %llu, so maxclients is lowered from %zu to %zu\n",
                   static_cast<unsigned long long>(lim.rlim_cur), options.maxclients, fit);
      options.maxclients = fit;
    }
  }
  try {
    weft::Config config = weft::Config::from_env();
    if (options.workers != 0) config.workers = options.workers;
    config.io_backend = options.io;
    weft::Runtime rt(config);
    rt.block_on([&] {
      kv::Server server(options, rt);
      server.run();
    });
  } catch (const std::exception& e) {
    // Our own errors already say where they come from ("weft-kv: AOF: ...").
    const std::string_view what = e.what();
    std::fprintf(stderr, "%s%s\n", what.starts_with("weft-kv: ") ? "" : "weft-kv: ", e.what());
    return 1;
  }
  return 0;
}
