// Backtraces of another thread, taken on that thread, and their symbols:
// what the stall report prints for a fiber that runs too long (Seastar's
// reactor stall detector: the reactor signals itself and records its stack
// in the handler).
//
// Problem. A stalled fiber holds its worker's thread; its stack can only be
// walked by that thread (its registers are live, not saved as a parked
// fiber's are). So the monitor asks the thread: it sends it a signal whose
// handler records the return addresses with backtrace(3) into a buffer the
// monitor owns, and the monitor symbolizes them afterwards, outside the
// handler (symbolizing allocates and reads ELF files: not signal-safe).
//
// The handler only calls backtrace() (glibc's, over libgcc's unwinder,
// which walks the signal frame into the interrupted code), warmed up once
// at install so that its first call's dlopen of libgcc_s does not happen in
// a handler. One request at a time, process-wide: a request the handler has
// not taken before the sampler's patience runs out is withdrawn, and a late
// signal then finds nothing to do.
//
// The signal is SIGRTMAX - 1 (kSampleSignal). If the program has its own
// handler for it, weft leaves it alone and reports stalls without
// backtraces. A blocking system call interrupted by the signal is restarted
// (SA_RESTART) where the kernel allows it; a sleep (nanosleep) ends early.
#pragma once

#include <pthread.h>

#include <chrono>
#include <string>

namespace weft::detail::obs {

inline constexpr int kMaxFrames = 48;

/// Return addresses, innermost first (the handler's own frames removed).
struct RawBacktrace {
  void* frames[kMaxFrames] = {};
  int count = 0;
};

/// The signal the sampler uses: SIGRTMAX - 1.
int sample_signal() noexcept;

/// Installs the sample handler (once per process; idempotent). False if the
/// program already handles the signal (weft then takes no backtraces) or
/// the handler cannot be installed. Any thread.
bool install_sample_handler() noexcept;

/// Asks thread `t` to record its stack and waits up to `patience` for it.
/// In the handler, still(arg) decides first whether the stack is still
/// worth taking (the stalled fiber still runs); if not, the result is
/// empty. Returns false (and an empty `out`) if the handler is not
/// installed, the signal cannot be sent, the thread did not answer in
/// time or still() said no. Any thread but `t`; one sample at a time
/// process-wide (callers queue on a mutex). still() runs in a signal
/// handler: it may only read atomics and thread-locals.
bool sample_thread(pthread_t t, bool (*still)(const void* arg), const void* arg,
                   std::chrono::milliseconds patience, RawBacktrace& out) noexcept;

/// Appends one line per frame: "    #i 0xADDR function+0xOFF (file:line)"
/// (demangled; the module's name when the function is unknown; file:line
/// when debug information says). Frames after the first are looked up at
/// their address minus one, inside the call instruction. Not signal-safe.
/// @throws std::bad_alloc.
void symbolize(const RawBacktrace& bt, std::string& out);

}  // namespace weft::detail::obs
