// Helpers shared by the generator tests.
#pragma once

#include <atomic>
#include <cstddef>
#include <fstream>
#include <string>
#include <vector>

#include "common/test_util.hpp"
#include "weft/generator.hpp"

namespace weft::test {

/// Counts destructions (and constructions) of instances, to observe that a
/// generator body's locals were unwound.
struct Tracker {
  explicit Tracker(std::atomic<int>& dtors) : dtors_(&dtors) {}
  Tracker(const Tracker&) = delete;
  Tracker& operator=(const Tracker&) = delete;
  ~Tracker() { dtors_->fetch_add(1, std::memory_order_relaxed); }
  std::atomic<int>* dtors_;
};

/// Number of lines in /proc/self/maps: the process's kernel mappings (VMAs).
inline std::size_t map_count() {
  std::ifstream maps("/proc/self/maps");
  std::size_t n = 0;
  std::string line;
  while (std::getline(maps, line)) ++n;
  return n;
}

/// A "<key>: <n> kB" line of /proc/self/status, in KiB; -1 if absent.
inline long status_kib(const std::string& key) {
  std::ifstream status("/proc/self/status");
  std::string k;
  while (status >> k) {
    if (k == key) {
      long v = 0;
      status >> v;
      return v;
    }
  }
  return -1;
}

/// Resident set size in KiB.
inline long rss_kib() {
  return status_kib("VmRSS:");
}

/// Mapped address space in KiB. Unlike the mapping count it sees leaked
/// stacks: adjacent stacks guarded with MADV_GUARD_INSTALL merge into one VMA.
inline long vm_size_kib() {
  return status_kib("VmSize:");
}

/// GeneratorOptions with only the stack size set (GCC 12's -Wextra warns
/// about designated initializers that skip members).
inline weft::GeneratorOptions gen_stack(std::size_t bytes, bool guard = true) {
  weft::GeneratorOptions o;
  o.stack_size = bytes;
  o.guard_page = guard;
  return o;
}

/// Drains a generator of an object type into a vector.
template <class T>
std::vector<T> collect(weft::Generator<T>& g) {
  std::vector<T> out;
  while (auto v = g.next()) out.push_back(std::move(*v));
  return out;
}

}  // namespace weft::test
