// Helpers shared by the cancellation and scope tests (tests/cancel, tests/scope).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>

#include "common/test_util.hpp"
#include "fiber/fiber.hpp"
#include "sched/worker.hpp"
#include "weft/weft.hpp"

namespace weft::test {

/// Lets a test see that one particular fiber is parked in a cancellable
/// wait: the fiber calls capture() before blocking; parked() is true once its
/// control block says parked with a waiter published for cancellation. The
/// test must keep the fiber's task alive while it polls (hold its handle, or
/// poll only while the fiber cannot have ended).
class FiberWatch {
 public:
  void capture() { fiber_.store(detail::current_fiber(), std::memory_order_release); }
  bool captured() const { return fiber_.load(std::memory_order_acquire) != nullptr; }
  bool parked() const {
    detail::Fiber* f = fiber_.load(std::memory_order_acquire);
    return f != nullptr && f->park.load(std::memory_order_acquire) == detail::kParked &&
           f->current_waiter.load(std::memory_order_acquire) != nullptr;
  }
  /// Waits (bounded) until parked.
  bool wait_parked() const {
    return eventually([this] { return parked(); });
  }
  void reset() { fiber_.store(nullptr, std::memory_order_release); }

 private:
  std::atomic<detail::Fiber*> fiber_{nullptr};
};

/// Counts destructor runs: put one on a fiber's stack.
struct DtorCount {
  std::atomic<int>* n;
  ~DtorCount() { n->fetch_add(1, std::memory_order_acq_rel); }
};

/// A random delay in [0, max_us) microseconds.
inline std::chrono::microseconds random_us(std::mt19937& rng, unsigned max_us) {
  return std::chrono::microseconds(rng() % max_us);
}

/// Busy-waits (no syscall) for about `d`: a jitter finer than a sleep.
inline void spin_for(std::chrono::nanoseconds d) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}

}  // namespace weft::test
