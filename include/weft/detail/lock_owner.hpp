// Who holds a weft::Mutex or a SharedMutex's write lock, for fiber dumps
// (docs/observability.md, "mutex with its owner fiber").
//
// A lock records where its holder's stack was when it took the lock: one
// relaxed store of the stack pointer, no TLS read and no call on the lock's
// fast path (the fiber's id would cost an out-of-line TLS lookup per lock,
// docs/design/HACKING.md's TLS hazard). A fiber dump maps that address to
// the fiber whose stack contains it (src/obs/dump.cpp): a parked fiber's
// stack is known while the dump has it pinned, and so is the stack of the
// fiber taking the dump. A holder the dump cannot place (a fiber running
// on another worker, a plain thread) shows as unknown.
#pragma once

#include <cstdint>

namespace weft::detail {

/// The calling thread's stack pointer now (x86-64), or its frame address
/// elsewhere: an address inside the stack of the fiber or thread that
/// calls. Never 0. Costs one register move on x86-64.
[[gnu::always_inline]] inline std::uintptr_t stack_hint() noexcept {
#if defined(__x86_64__)
  std::uintptr_t sp;
  asm("mov %%rsp, %0" : "=r"(sp));
  return sp;
#else
  return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
#endif
}

/// Reads the owner hints of weft's locks (a friend of Mutex and
/// SharedMutex; defined with the fiber dump, src/obs/dump.cpp).
struct LockOwnerProbe;

}  // namespace weft::detail
