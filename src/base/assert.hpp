// Always-on fatal checks for broken runtime invariants (Go's throw): a
// constant message, then abort. WEFT_DEBUG_ASSERT compiles away in release
// builds (NDEBUG) and guards the costlier checks (state transitions).
#pragma once

namespace weft::detail {
[[noreturn]] void fatal(const char* msg) noexcept;
}

#define WEFT_CHECK(cond, msg)              \
  do {                                     \
    if (__builtin_expect(!(cond), 0)) {    \
      ::weft::detail::fatal("weft: " msg); \
    }                                      \
  } while (0)

#ifdef NDEBUG
#define WEFT_DEBUG_ASSERT(cond, msg) \
  do {                               \
  } while (0)
#else
#define WEFT_DEBUG_ASSERT(cond, msg) WEFT_CHECK(cond, msg)
#endif
