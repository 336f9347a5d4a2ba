// Fiber dumps (Runtime::dump, the dump signal): every live fiber with its
// state, what it waits on, its stack and backtrace, its labels, and the
// cancellation tree. Formats and JSON schema: docs/observability.md.
//
// How a dump is taken without stopping the runtime: RuntimeImpl::
// visit_fibers walks the fiber registry shard by shard and pins each parked
// fiber (pin_parked) while its stack is unwound (obs::Symbolizer over the
// saved context) and symbolized; a wake-up that reaches a pinned fiber is
// completed by the unpin. Running fibers' stacks are taken on their workers
// afterwards, as the stall report does (obs::sample_thread). The per-fiber
// fields shared with the public snapshots (id, parent, name, state,
// priority, cancelled) and the cancellation tree come from
// obs/snapshot.hpp, so a dump and a snapshot print one schema.
#pragma once

#include <cstdint>
#include <string>

#include "weft/runtime.hpp"

namespace weft::detail {

class RuntimeImpl;

namespace obs {

/// The dump of every fiber of `rt` in `format` (see Runtime::dump). Any
/// thread or fiber. @throws std::bad_alloc.
std::string dump_fibers(RuntimeImpl& rt, DumpFormat format);

/// Writes the text dump of `rt` to stderr (fd 2, one write(2) per 64 KiB),
/// as the monitor thread does for the dump signal. Out of memory: a one-line
/// notice instead.
void write_dump_to_stderr(RuntimeImpl& rt) noexcept;

/// The deadlock report (RuntimeImpl::DeadlockReporter; Config::
/// deadlock_report): takes the dump of `rt`, which `quiet_ms` of quiet
/// found deadlocked, and writes one `error` event with it to the runtime
/// log. First walks the fibers without unwinding anything, and writes
/// nothing and returns false if one is not parked (any more) or waits for
/// I/O or a signal (the reactor or the signal dispatcher thread wakes it;
/// timers and blocking tasks the runtime rules out itself). The monitor
/// thread calls it.
bool report_deadlock(RuntimeImpl& rt, std::int64_t quiet_ms) noexcept;

/// The dump signal: WEFT_DUMP_SIGNAL's (SIGQUIT, QUIT, SIGUSR1, USR1,
/// SIGUSR2, USR2, SIGHUP, HUP, SIGWINCH, WINCH; `none` disables it; an
/// invalid value is logged as a warning and SIGQUIT is used), read once
/// per process; 0 for none.
int dump_signal() noexcept;

/// A runtime started: installs the dump signal's handler unless the
/// program handles (or ignores) that signal itself, which is never
/// replaced. The handler counts the signal (RuntimeImpl::note_dump_signal)
/// and each runtime's monitor writes its dump; with no runtime alive it
/// restores the default action and raises the signal again. Returns
/// whether weft's handler is in place. Any thread.
bool dump_signal_runtime_started() noexcept;

/// A runtime ended (pairs with dump_signal_runtime_started).
void dump_signal_runtime_ended() noexcept;

}  // namespace obs
}  // namespace weft::detail
