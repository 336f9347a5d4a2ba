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
#include <cstddef>
#include <cstdint>
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

/// A switched-out stack: the saved stack pointer of a context (the frame
/// weft_context_swap leaves, context/switch_*.S) and the bounds of the stack
/// it lies in. Nothing may run on that stack while it is unwound.
struct SavedStack {
  const void* sp = nullptr;
  const void* lo = nullptr;  // lowest usable byte
  const void* hi = nullptr;  // one past the highest
};

/// One frame, symbolized: "function+0xOFF" (demangled; "??" when unknown)
/// and "file:line" (or the module's path; empty when neither is known).
struct Frame {
  std::uintptr_t pc = 0;
  std::string function;
  std::string location;
};

/// Symbols of this process, read once (the loaded modules, their ELF and
/// DWARF), for many backtraces: a fiber dump symbolizes thousands of stacks
/// that share most frames, so frames are cached by address. libdw is loaded
/// with dlopen at the first use (libdw.so.1, not linked); without it names
/// come from dladdr (exported symbols only, no file:line) and saved stacks
/// cannot be unwound. Single-threaded use. @throws std::bad_alloc.
class Symbolizer {
 public:
  Symbolizer();
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  /// Unwinds a switched-out stack with the binaries' call frame information
  /// (.eh_frame; frame pointers are not needed), reading only inside
  /// [s.lo, s.hi). Return addresses innermost first, the first being the
  /// context switch's return into its caller. False (and an empty `out`)
  /// without libdw, on another architecture than x86-64, or when not one
  /// frame could be read.
  bool unwind(const SavedStack& s, RawBacktrace& out) noexcept;

  /// The frame at `pc`; `return_address` says pc is a return address (then
  /// looked up at pc - 1, inside the call instruction).
  const Frame& frame(std::uintptr_t pc, bool return_address);

  /// Appends one line per frame: "    #i 0xADDR function+0xOFF (file:line)".
  /// Frames after the first are return addresses.
  void append(const RawBacktrace& bt, std::string& out);

 private:
  struct Impl;
  Impl* impl_;
};

/// Appends frame number i: "    #i 0xADDR function+0xOFF (file:line)".
/// @throws std::bad_alloc.
void append_frame_line(std::size_t i, const Frame& f, std::string& out);

/// Symbolizer().append(bt, out): for a single backtrace. Not signal-safe.
/// @throws std::bad_alloc.
void symbolize(const RawBacktrace& bt, std::string& out);

}  // namespace weft::detail::obs
