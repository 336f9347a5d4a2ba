// The signal layer's internal interface (design: signal.cpp): signal sets,
// validation, waiting, and subscriptions - callbacks run on the dispatcher
// thread, which Runtime::shutdown_on_signals builds on.
#pragma once

#include <string.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>

namespace weft::detail::sig {

/// A set of signal numbers 1..64 (Linux has NSIG = 65).
struct SigSet {
  std::uint64_t bits = 0;

  bool has(int signo) const noexcept { return ((bits >> (signo - 1)) & 1U) != 0; }
  void add(int signo) noexcept { bits |= std::uint64_t{1} << (signo - 1); }
  bool empty() const noexcept { return bits == 0; }
};

/// The set of `signals`. @throws std::invalid_argument naming the first
/// number weft does not handle (see weft::signal::wait), or for an empty
/// list; `what` names the caller in the message.
SigSet validated(std::initializer_list<int> signals, const char* what);

/// weft::signal::wait on a validated set (deadline_ns: CLOCK_MONOTONIC ns,
/// < 0 for none).
constexpr int kSlots = 65;  // signal numbers 1..64 (NSIG on Linux)

// Waits for a signal of `set`. With `seen` (kSlots counters, a Listener's),
// reports deliveries since those counters and advances the reported one;
// without, deliveries since the call.
int wait_any(SigSet set, std::int64_t deadline_ns, std::uint64_t* seen);

// Installs the handlers of `set` now and stores their counters in `seen`.
void listen(SigSet set, std::uint64_t* seen);

/// Calls fn(signo) on the dispatcher thread for every delivery of a signal
/// in `set` from now on (deliveries that arrive close together may be
/// reported once). fn runs under the subscription lock: it must be quick,
/// must not throw and must not subscribe or unsubscribe. Returns an id for
/// unsubscribe(). @throws std::system_error (setup, as wait_any).
std::uint64_t subscribe(SigSet set, std::function<void(int)> fn);

/// Removes a subscription; once this returns its callback is not running
/// and never runs again. Unknown ids are ignored.
void unsubscribe(std::uint64_t id) noexcept;

/// "Terminated", "Killed", ... for a signal number; "Unknown signal" for
/// others. Thread-safe (strsignal is not, before glibc 2.32).
inline const char* description(int signo) noexcept {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char* d = ::sigdescr_np(signo);
  return d != nullptr ? d : "Unknown signal";
#else
  return ::strsignal(signo);
#endif
}

/// Tests: how many waits are registered with the dispatcher right now.
std::size_t registered_waits() noexcept;

}  // namespace weft::detail::sig
