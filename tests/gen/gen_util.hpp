// Helpers shared by the generator tests.
#pragma once

#include <atomic>
#include <cstddef>
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
