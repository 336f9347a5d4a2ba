// weft-kv: allocator figures (memory.hpp). jemalloc's mallctl is a weak
// reference: linked in (the weft-kv executable, not sanitizer builds) it
// answers; absent (the tests, ASan/TSan builds) the figures fall back to
// what glibc can tell.
#include "memory.hpp"

#include <malloc.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <string>

extern "C" int mallctl(const char* name, void* oldp, std::size_t* oldlenp, void* newp,
                       std::size_t newlen) __attribute__((weak));

namespace kv {
namespace {

std::int64_t read_size(const char* name) noexcept {
  std::size_t v = 0;
  std::size_t len = sizeof v;
  if (mallctl(name, &v, &len, nullptr, 0) != 0) return 0;
  return static_cast<std::int64_t>(v);
}

}  // namespace

AllocatorStats allocator_stats() noexcept {
  AllocatorStats s;
  if (mallctl == nullptr) {
    const struct mallinfo2 mi = ::mallinfo2();
    s.allocated = static_cast<std::int64_t>(mi.uordblks + mi.hblkhd);
    s.active = s.allocated;
    s.resident = static_cast<std::int64_t>(mi.arena + mi.hblkhd);
    s.mapped = s.resident;
    return s;
  }
  std::uint64_t epoch = 1;
  std::size_t len = sizeof epoch;
  mallctl("epoch", &epoch, &len, &epoch, len);  // refresh the statistics
  // "5.3.0-0-g54eaed1d..." -> "jemalloc-5.3.0", as Redis reports it; read
  // once (thread-safe static initialisation).
  static const std::string name = [] {
    const char* version = nullptr;
    std::size_t n = sizeof version;
    if (mallctl("version", &version, &n, nullptr, 0) != 0 || version == nullptr)
      return std::string("jemalloc");
    const std::string v(version);
    return "jemalloc-" + v.substr(0, v.find('-'));
  }();
  s.name = name.c_str();
  s.detailed = true;
  s.allocated = read_size("stats.allocated");
  s.active = read_size("stats.active");
  s.resident = read_size("stats.resident");
  s.mapped = read_size("stats.mapped");
  s.retained = read_size("stats.retained");
  return s;
}

void release_free_memory() noexcept {
  if (mallctl != nullptr) {
    // MALLCTL_ARENAS_ALL is 4096 in jemalloc 5.
    mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
    return;
  }
  ::malloc_trim(0);
}

std::int64_t rss_bytes() noexcept {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  long pages = 0, resident = 0;
  const int n = std::fscanf(f, "%ld %ld", &pages, &resident);
  std::fclose(f);
  return n == 2 ? static_cast<std::int64_t>(resident) * ::sysconf(_SC_PAGESIZE) : 0;
}

}  // namespace kv
