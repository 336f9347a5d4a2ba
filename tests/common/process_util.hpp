// Helpers shared by the process and signal tests (tests/process,
// tests/signal): a fixture parameterised over the I/O backend, and a way to
// cancel one particular fiber.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "common/test_util.hpp"
#include "sched/runtime_impl.hpp"
#include "sched/worker.hpp"
#include "weft/weft.hpp"

namespace weft::test {

/// Fixture for tests that run on each reactor backend.
class BackendTest : public ::testing::TestWithParam<weft::IoBackend> {
 protected:
  weft::Config config(std::size_t workers = 2) const {
    weft::Config c = workers_config(workers);
    c.io_backend = GetParam();
    return c;
  }
};

inline std::string backend_name(const ::testing::TestParamInfo<weft::IoBackend>& info) {
  return info.param == weft::IoBackend::io_uring ? "io_uring" : "epoll";
}

/// Lets a test cancel one fiber: the fiber calls capture() first; the test
/// calls cancel() while that fiber is provably still running or parked
/// (the Fiber object must not have ended).
class FiberCanceller {
 public:
  void capture() { fiber_.store(detail::current_fiber(), std::memory_order_release); }
  bool captured() const { return fiber_.load(std::memory_order_acquire) != nullptr; }
  void cancel() { fiber_.load(std::memory_order_acquire)->task->cancel_node().cancel(); }

 private:
  std::atomic<detail::Fiber*> fiber_{nullptr};
};

}  // namespace weft::test

#define WEFT_INSTANTIATE_BACKENDS(Suite)                                                         \
  INSTANTIATE_TEST_SUITE_P(                                                                      \
      Backends, Suite, ::testing::Values(::weft::IoBackend::io_uring, ::weft::IoBackend::epoll), \
      ::weft::test::backend_name)
