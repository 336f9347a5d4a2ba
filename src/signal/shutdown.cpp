// Runtime::shutdown_on_signals (the protocol is documented on the public
// method in weft/runtime.hpp).
//
// The watcher is a subscription: its callback runs on the signal layer's
// dispatcher thread, never in a signal handler, so it may take locks, call
// into the scheduler and start a thread. The first signal cancels every
// fiber through the runtime's callback and starts a grace thread that
// sleeps on a condition variable; when the grace period passes with fibers
// still alive, or when a second signal arrives, the process ends with
// _exit(128 + signo), the shell's convention for "terminated by signo"
// (exit handlers and destructors do not run: they could hang just like the
// fibers did).
#include "signal/shutdown.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "signal/signal_impl.hpp"

namespace weft::detail {
namespace {

[[noreturn]] void exit_now(int signo, const char* why) noexcept {
  char msg[160];
  const int n = std::snprintf(msg, sizeof msg, "weft: %s after signal %d (%s): exiting with %d\n",
                              why, signo, sig::description(signo), 128 + signo);
  if (n > 0) {
    [[maybe_unused]] const ssize_t w =
        ::write(STDERR_FILENO, msg, static_cast<std::size_t>(n) < sizeof msg ? n : sizeof msg - 1);
  }
  ::_exit(128 + signo);
}

}  // namespace

ShutdownWatcher::ShutdownWatcher(std::initializer_list<int> signals, std::chrono::nanoseconds grace,
                                 std::function<void()> cancel_all,
                                 std::function<bool()> fibers_alive)
    : grace_(grace), cancel_all_(std::move(cancel_all)), fibers_alive_(std::move(fibers_alive)) {
  if (grace < std::chrono::nanoseconds::zero()) {
    throw std::invalid_argument("weft: shutdown_on_signals: grace must not be negative");
  }
  const sig::SigSet set = sig::validated(signals, "shutdown_on_signals");
  subscription_ = sig::subscribe(set, [this](int signo) { on_signal(signo); });
}

ShutdownWatcher::~ShutdownWatcher() {
  sig::unsubscribe(subscription_);  // no on_signal() runs from here on
  {
    std::lock_guard g(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (grace_thread_.joinable()) grace_thread_.join();
}

void ShutdownWatcher::detach() noexcept {
  std::lock_guard g(mu_);  // waits for a cancel_all_() in progress
  attached_ = false;
}

void ShutdownWatcher::on_signal(int signo) noexcept {
  std::lock_guard g(mu_);
  if (first_ != 0) exit_now(signo, "second signal");
  first_ = signo;
  if (attached_) cancel_all_();
  try {
    grace_thread_ = std::thread([this] { grace_main(); });
  } catch (...) {
    // No thread for the timer: the first signal still cancelled every
    // fiber; only the grace escalation is lost. Say so.
    static const char kMsg[] = "weft: shutdown_on_signals: cannot start the grace timer\n";
    [[maybe_unused]] const ssize_t w = ::write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
  }
}

void ShutdownWatcher::grace_main() noexcept {
  std::unique_lock l(mu_);
  const auto until = std::chrono::steady_clock::now() + grace_;
  if (cv_.wait_until(l, until, [this] { return stopping_; })) return;
  // Detached: the runtime's destructor is still waiting for fibers.
  if (!attached_ || fibers_alive_())
    exit_now(first_, "fibers still running after the grace period");
}

}  // namespace weft::detail
