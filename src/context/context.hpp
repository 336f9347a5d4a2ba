// weft context layer: the machine context switch and everything that must
// happen at the instant of a switch.
//
// Design. A context is a saved stack pointer; the callee-saved registers and
// the FP control state live on the suspended stack itself (switch_*.S). On top
// of the raw swap, Context::switch_to does the three things every switch
// needs, in this order:
//
//   1. save the per-thread C++ exception-handling globals (libstdc++'s chain
//      of caught exceptions and the uncaught count) into the outgoing context;
//   2. tell the sanitizers: ASan start_switch_fiber (with the target stack's
//      bounds), TSan switch_to_fiber;
//   3. swap; and when this context is later resumed - possibly on another
//      thread - finish the ASan switch and restore *this* context's exception
//      globals into the thread it now runs on.
//
// Step 3 runs in the frame of switch_to, which is the frame that started the
// switch, as ASan requires (finish in the resumed context, right after the
// switch). A brand-new context has no such frame; it must call
// Context::on_first_entry() before anything else.
//
// Rejected: ucontext (a sigprocmask syscall per switch), Boost.Context (an
// outside dependency for the one thing the core must own).
#pragma once

#include <cstddef>
#include <cstdint>

namespace weft::detail {

/// Saved copy of libstdc++'s per-thread __cxa_eh_globals. Kept opaque so no
/// header depends on <cxxabi.h>; layout checked in context.cpp.
struct EhState {
  void* caught_exceptions = nullptr;
  unsigned int uncaught_exceptions = 0;
};

/// One execution context: a worker thread's native stack or a fiber's stack.
/// Not thread-safe: only the thread currently switching touches it.
class Context {
 public:
  /// Entry of a new context. Receives `arg`; must never return.
  using Entry = void (*)(void* arg);

  Context() = default;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  /// Prepares a fresh context on [stack_lo, stack_lo + size) that will call
  /// entry(arg) when first switched to. The stack must be 16-byte aligned at
  /// its top.
  void make(void* stack_lo, std::size_t size, Entry entry, void* arg);

  /// Binds this context to the calling thread's own stack (the worker's
  /// scheduler context). Call once on that thread before the first switch.
  void bind_to_current_thread();

  /// Switches from this (running) context to `to`. Returns when something
  /// switches back to this context, possibly on another thread.
  void switch_to(Context& to);

  /// Like switch_to, but this context is finished and will never be resumed:
  /// ASan drops its fake stack. Does not return.
  [[noreturn]] void switch_to_final(Context& to);

  /// Must be the first call in a new context's entry function: completes the
  /// switch that started it (sanitizers, clean exception state).
  static void on_first_entry();

  /// Releases sanitizer state of a context that finished (TSan fiber). Call
  /// from a different context, after the final switch away from it.
  void release();

  // --- Caller-driven contexts (generators, src/gen) -------------------------
  //
  // A generator always switches back to whoever resumed it last: a thread's
  // stack, a fiber, or another generator, possibly a different one each
  // time. Its "caller" context is re-bound before every resume; the
  // sanitizers then need two things the scheduler's contexts know statically:
  // the TSan fiber of the resumer (read before the switch), and the resumer's
  // stack bounds for ASan, which only ASan itself knows for certain (a fiber
  // or a generator may be the resumer). ASan reports the bounds of the stack
  // we came from when the switch finishes, so the generator side records
  // them into the caller context right after every switch in.

  /// Binds this context to whatever runs now, as the target of a later switch
  /// back: takes the running TSan fiber. Its ASan stack bounds are recorded
  /// by the context it switches to (switch_to(to, note) / on_first_entry(note)).
  void bind_to_running() noexcept;

  /// Like switch_to; when this context is later resumed, also records into
  /// `note` the ASan bounds of the stack that resumed it.
  void switch_to(Context& to, Context& note);

  /// Like on_first_entry(), and records into `note` the ASan bounds of the
  /// stack that started this context.
  static void on_first_entry(Context& note);

  /// What the sanitizers know a suspended context by: the stack its saved
  /// registers live on (ASan) and its TSan fiber. A fiber that drives a
  /// generator lends its Context to the generator's stack for as long as the
  /// generator runs (a park inside the generator's body saves the registers
  /// of the generator's stack into the fiber's Context), so the generator
  /// swaps its own identity in and restores the fiber's afterwards.
  struct SanitizerIdentity {
    const void* stack_lo = nullptr;
    std::size_t stack_size = 0;
    void* tsan_fiber = nullptr;
  };
  SanitizerIdentity sanitizer_identity() const noexcept {
    return {stack_lo_, stack_size_, tsan_fiber_};
  }
  void set_sanitizer_identity(const SanitizerIdentity& id) noexcept {
    stack_lo_ = id.stack_lo;
    stack_size_ = id.stack_size;
    tsan_fiber_ = id.tsan_fiber;
  }

  /// The stack pointer a switched-out context saved (its callee-saved
  /// registers and return address are stored from there up; the layout is
  /// the .S file's), or nullptr before the first switch. Read only while
  /// the context cannot be resumed (a parked fiber a dump has pinned).
  const void* saved_sp() const noexcept { return sp_; }

 private:
  void* sp_ = nullptr;
  EhState eh_{};
  // Sanitizer bookkeeping (unused in plain builds).
  [[maybe_unused]] void* asan_fake_stack_ = nullptr;
  [[maybe_unused]] const void* stack_lo_ = nullptr;
  [[maybe_unused]] std::size_t stack_size_ = 0;
  [[maybe_unused]] void* tsan_fiber_ = nullptr;
  [[maybe_unused]] bool owns_tsan_fiber_ = false;
};

}  // namespace weft::detail
