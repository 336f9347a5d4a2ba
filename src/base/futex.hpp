// Thin wrappers over futex(2) on a 32-bit atomic word (private futexes), and
// the kernel's form of a relative timeout they and epoll_pwait2 take.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace weft::detail {

/// A relative timeout for the kernel: `*out` set to timeout_ns (ns) and
/// returned, or nullptr (no limit) when timeout_ns < 0.
inline timespec* timeout_timespec(std::int64_t timeout_ns, timespec* out) noexcept {
  if (timeout_ns < 0) return nullptr;
  out->tv_sec = timeout_ns / 1'000'000'000;
  out->tv_nsec = timeout_ns % 1'000'000'000;
  return out;
}

/// Sleeps while *word == expected, at most timeout_ns (< 0: no limit). May
/// return spuriously; callers re-check their condition.
inline void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                       std::int64_t timeout_ns) noexcept {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  timespec ts{};
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected,
          timeout_timespec(timeout_ns, &ts), nullptr, 0);
}

/// Wakes up to n threads sleeping on word. Only the address is used, so it is
/// safe to call after the word's owner may have moved on.
inline void futex_wake(std::atomic<std::uint32_t>* word, int n) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, n, nullptr,
          nullptr, 0);
}

}  // namespace weft::detail
