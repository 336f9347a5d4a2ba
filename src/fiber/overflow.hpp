// Stack-overflow reporting.
//
// A SIGSEGV handler, run on a per-thread alternate signal stack (the faulting
// stack is exhausted by definition), checks whether the fault address lies in
// the guard page of the fiber running on this thread. If so it prints
//   weft: stack overflow in fiber <id> '<name>'
// with write(2) and aborts. Any other fault is passed on to the handler that
// was installed before ours, or to the default action (core dump), so other
// segfaults behave as they would without weft.
#pragma once

namespace weft::detail {

struct Fiber;

/// Returns the fiber running on the calling thread, or nullptr. Called from
/// the signal handler: it must be async-signal-safe (a TLS read).
using RunningFiberFn = Fiber* (*)() noexcept;

/// Installs the process-wide handler once; `running_fiber` is how it finds
/// the fiber whose guard page a fault may have hit (the scheduler passes
/// current_fiber, so this layer needs nothing from it). Later calls change
/// nothing. Thread-safe.
void install_overflow_handler(RunningFiberFn running_fiber) noexcept;

/// RAII: gives the calling thread an alternate signal stack (64 KiB) for its
/// lifetime. Used by every worker thread.
class AltSignalStack {
 public:
  AltSignalStack() noexcept;
  ~AltSignalStack();
  AltSignalStack(const AltSignalStack&) = delete;
  AltSignalStack& operator=(const AltSignalStack&) = delete;

 private:
  void* mem_ = nullptr;
  bool installed_ = false;
};

}  // namespace weft::detail
