// weft::signal: waiting for POSIX signals from fibers and plain threads.
//
// How signals reach a waiter (src/signal/signal.cpp has the full essay).
// The first time a signal number is waited for (by signal::wait or
// Runtime::shutdown_on_signals), weft installs a sigaction handler for it
// (SA_RESTART | SA_SIGINFO; any earlier handler or disposition is replaced,
// not chained). The handler does only async-signal-safe work: it increments
// a per-signal counter and bumps an eventfd. A small dispatcher thread,
// started on first use with every signal blocked, reads the eventfd and
// wakes each waiter whose signals' counters moved. This is the design of
// Go (os/signal), Tokio (signal-hook) and libuv.
//
// Why not signalfd alone: signalfd only sees a signal that is blocked in
// *every* thread of the process, including threads weft does not own (the
// main thread, threads of other libraries). Wherever one thread leaves it
// unblocked, the kernel delivers the signal there and its default action
// runs (SIGINT, SIGTERM and SIGUSR1 terminate the process) before weft
// could see it. A handler works whichever thread the kernel picks.
//
// Consequences worth knowing:
//   * Once weft handles a signal number it keeps handling it for the rest of
//     the process: the handler is never uninstalled. A signal that arrives
//     while nobody waits for it is counted and otherwise dropped; in
//     particular its default action (terminate, say) no longer runs.
//   * A wait sees only signals that arrive after it started waiting; signals
//     are not queued for later waiters. Several deliveries of one signal
//     between two waits coalesce, as they do in the kernel.
//   * Every current waiter of a signal is woken by each delivery (a
//     broadcast), not just one of them.
//   * After fork(), the child gets its own dispatcher when it next waits;
//     waits of the parent's threads do not carry over.
//   * Child processes spawned by weft::process start with default
//     dispositions and an empty signal mask.
//   * Naming: in code that says `using namespace weft;`, an unqualified
//     call of the C function signal() is ambiguous with this namespace;
//     write ::signal or std::signal there.
#pragma once

#include <cstdint>
#include <initializer_list>

#include "weft/deadline.hpp"

namespace weft::signal {

/// Waits until one of `signals` arrives at the process and returns its
/// number. A fiber parks (its worker runs other fibers); a plain thread
/// blocks. If several of them arrived, the lowest number is returned (the
/// others are not kept for a later wait).
///
/// Allowed signal numbers: 1..NSIG-1 except SIGKILL and SIGSTOP (cannot be
/// caught), SIGSEGV, SIGBUS, SIGILL and SIGFPE (synchronous faults: a
/// handler that returns would re-run the faulting instruction forever) and
/// the numbers glibc reserves for itself below SIGRTMIN.
///
/// Cancellation point: a cancelled fiber gets weft::Cancelled (also if it
/// was cancelled before calling). A signal that arrived before the deadline
/// passed is returned even if the wake-up comes after it.
///
/// Thread-safety: any number of fibers and threads may wait at once, for
/// the same or different signals; each delivery wakes all of them.
///
/// @throws std::invalid_argument for an empty list or a number that is not
///         allowed (see above); weft::TimedOut when the deadline passes
///         first; weft::Cancelled; std::system_error if the handler, the
///         eventfd or the dispatcher thread cannot be set up (first use).
int wait(std::initializer_list<int> signals, Deadline deadline = {});

/// A standing interest in some signals, for a server's shutdown loop:
/// unlike wait(), which sees only signals that arrive while it waits, a
/// Listener counts from its construction, so a signal that arrives before
/// the first wait() or between two wait() calls is not lost.
///
/// The constructor installs weft's handler for every listed signal at once
/// (so from then on their default action, e.g. terminating on SIGTERM, no
/// longer runs; see the notes above). wait() returns the lowest listed
/// signal delivered since the construction or since that signal was last
/// returned; several deliveries of one signal in between coalesce into one.
///
/// Thread-safety: one Listener is used by one fiber or thread at a time;
/// any number of Listeners and signal::wait calls may coexist.
class Listener {
 public:
  /// @throws std::invalid_argument for an empty list or a signal that
  ///         cannot be waited for (as wait()); std::system_error if the
  ///         handler, the eventfd or the dispatcher thread cannot be set up.
  explicit Listener(std::initializer_list<int> signals);

  /// Parks the fiber (blocks a plain thread) until a listed signal has been
  /// delivered since the last report, and returns its number. Cancellation
  /// point. @throws weft::TimedOut when `deadline` passes first;
  /// weft::Cancelled.
  int wait(Deadline deadline = {});

 private:
  std::uint64_t set_ = 0;        // bit (s - 1) for each listed signal s
  std::uint64_t seen_[65] = {};  // per signal number: the delivery count last reported
};

}  // namespace weft::signal
