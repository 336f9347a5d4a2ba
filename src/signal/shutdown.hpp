// Runtime::shutdown_on_signals: the watcher a Runtime owns (shutdown.cpp).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <thread>

namespace weft::detail {

/// Turns the first of a set of signals into "cancel every fiber of this
/// runtime", and makes the process exit with 128 + signo if fibers are
/// still alive `grace` later, or at once on a second signal. The runtime is
/// reached only through the two callbacks, so this layer does not depend
/// on the scheduler's internals.
class ShutdownWatcher {
 public:
  /// @throws std::invalid_argument (bad signal, negative grace),
  ///         std::system_error (signal setup).
  ShutdownWatcher(std::initializer_list<int> signals, std::chrono::nanoseconds grace,
                  std::function<void()> cancel_all, std::function<bool()> fibers_alive);
  /// Stops watching; waits for a callback in progress and the grace timer.
  ~ShutdownWatcher();
  ShutdownWatcher(const ShutdownWatcher&) = delete;
  ShutdownWatcher& operator=(const ShutdownWatcher&) = delete;

  /// The runtime's destructor has begun: the callbacks are never called
  /// again (after a callback in progress has returned). Signals keep their
  /// effect: the destructor cancels every fiber itself, and the grace timer
  /// and a second signal still end the process if it does not finish.
  void detach() noexcept;

 private:
  void on_signal(int signo) noexcept;
  void grace_main() noexcept;

  const std::chrono::nanoseconds grace_;
  const std::function<void()> cancel_all_;
  const std::function<bool()> fibers_alive_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool attached_ = true;      // guarded by mu_: the callbacks may be called
  bool stopping_ = false;     // guarded by mu_: the destructor runs
  int first_ = 0;             // guarded by mu_: the first signal seen, 0 for none
  std::thread grace_thread_;  // started by the first signal (under mu_)
  std::uint64_t subscription_ = 0;
};

}  // namespace weft::detail
