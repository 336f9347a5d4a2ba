// The C ABI layer (weft.h) over the public C++ API: what its translation
// units share.
//
// Design. Every extern "C" function is a thin adapter: it checks its
// arguments, calls the C++ API, and turns each outcome into an int (0 or a
// negative errno) with guarded(), so that no C++ exception ever crosses
// the ABI. Only the public headers (include/weft/*.hpp) are used, so the
// runtime's internals can change underneath. Where the C++ API reports an
// expected outcome as a value (a channel status, a timed wait's bool), the
// adapter maps the value; where it throws (weft::Cancelled, TimedOut,
// std::system_error, std::bad_alloc, std::invalid_argument), current_error()
// maps the exception and keeps its message for weft_last_error().
//
// Visibility. The library is compiled with -fvisibility=hidden; weft.h is
// included here inside `#pragma GCC visibility push(default)`, which gives
// every function it declares default visibility, so the shared library
// exports exactly weft.h (its version script, weft.map, names the same
// set and tags it WEFT_1).
#pragma once

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <utility>

#include "weft/deadline.hpp"

#pragma GCC visibility push(default)
#include "weft/weft.h"
#pragma GCC visibility pop

namespace weft::capi {

/// Records `message` as the caller's weft_last_error() (fiber, task or
/// thread). Never throws: a message that cannot be stored is dropped.
void set_last_error(const char* message) noexcept;

/// Inside a catch block: the negative errno for the exception being
/// handled, its message recorded for weft_last_error(). weft::Cancelled is
/// -ECANCELED, weft::TimedOut -ETIMEDOUT, std::system_error -code,
/// std::bad_alloc -ENOMEM, std::invalid_argument -EINVAL, any other
/// std::logic_error `logic_error_code` (the C++ API throws those for "not
/// in a runtime", which the caller knows the meaning of), anything else
/// -ENOTRECOVERABLE.
int current_error(int logic_error_code) noexcept;

/// fn() (an int), or the code of the exception it throws.
template <class F>
int guarded(F&& fn, int logic_error_code = -EINVAL) noexcept {
  try {
    return fn();
  } catch (...) {
    return current_error(logic_error_code);
  }
}

/// *out = new T(args...), for the *_new calls: 0, -EINVAL (out NULL), or
/// the constructor's error (*out NULL then).
template <class T, class... A>
int new_handle(T** out, A&&... args) noexcept {
  if (out == nullptr) return -EINVAL;
  *out = nullptr;
  return guarded([&] {
    *out = new T(std::forward<A>(args)...);
    return 0;
  });
}

/// True for a timeout weft.h accepts: -1 (none), 0 (never wait), > 0.
constexpr bool valid_timeout(std::int64_t timeout_ns) noexcept {
  return timeout_ns >= -1;
}

/// The deadline of a valid timeout: none for -1, now + timeout otherwise
/// (already passed for 0).
inline Deadline deadline_after(std::int64_t timeout_ns) noexcept {
  return timeout_ns < 0 ? Deadline::none() : Deadline::after(std::chrono::nanoseconds(timeout_ns));
}

/// A weft.h deadline (CLOCK_MONOTONIC ns, -1 none) as a weft::Deadline.
inline Deadline deadline_at(std::int64_t deadline_ns) noexcept {
  if (deadline_ns < 0) return Deadline::none();
  return Deadline(Deadline::Clock::time_point(std::chrono::nanoseconds(deadline_ns)));
}

/// What giving up on a wait returns: -EAGAIN when the caller asked not to
/// wait at all (timeout 0), -ETIMEDOUT otherwise.
constexpr int gave_up(std::int64_t timeout_ns) noexcept {
  return timeout_ns == 0 ? -EAGAIN : -ETIMEDOUT;
}

}  // namespace weft::capi
