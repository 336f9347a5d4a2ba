// Fault injection for the I/O layer: makes chosen operations fail with a
// chosen errno, or transfer fewer bytes than asked, so tests can drive the
// error paths of everything built on io::perform (net, fs, process, and
// the applications on top) on both backends. Like FoundationDB's buggify
// and TiKV's failpoints, but data-driven: rules, not code at each site.
//
// Compiled in when WEFT_FAULT_INJECTION is 1 (CMake option of the same
// name: on for every build type but Release); compiled out otherwise, and
// then the environment variable is ignored too. With no rule installed the
// cost is one relaxed atomic load per operation.
//
// Rules come from the test API below or, for a process started by a test
// (a server), from the environment, read once at the first I/O operation:
//
//   WEFT_FAULTS="rule;rule;..."   rule = field,field,...   field = key=value
//     op=write|read|fsync|send|recv|accept|connect|openat|...|any  (required;
//                     several with '|'; write matches write and writev,
//                     fsync matches fsync and fdatasync, send matches send
//                     and sendmsg, read and recv likewise)
//     errno=ENOSPC    fail with this error (a name from the list in
//                     fault.cpp, or a number); or
//     short=N         transfer at most N bytes (reads and writes)
//     path=GLOB       only descriptors whose path (/proc/self/fd) or path
//                     operations whose path matches (fnmatch, no flags)
//     fd=N            only this descriptor number
//     after=N         let the first N matching operations pass
//     count=N         inject at most N times (default: unlimited)
//     prob=P          inject with probability P (0..1, default 1), drawn
//                     from a generator seeded by WEFT_FAULTS_SEED (default 1)
//
//   e.g. WEFT_FAULTS="op=write,path=*appendonly.aof,errno=ENOSPC,after=50,count=3"
//
// Injected failures are reported as the operation's result (-errno), so
// they take exactly the path a real failure takes. EAGAIN on a pollable
// descriptor makes the operation wait for readiness first and then run
// (an "EAGAIN storm" exercises the readiness waits, never fails).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "io/request.hpp"

#ifndef WEFT_FAULT_INJECTION
#define WEFT_FAULT_INJECTION 0
#endif

namespace weft::detail::io::fault {

/// One rule (see the header comment for the fields' meaning).
struct Rule {
  std::uint32_t ops = 0;  ///< bit (1 << Op) per operation matched
  int error = 0;          ///< errno to inject; 0 with short_max > 0: a short transfer
  std::size_t short_max = 0;
  std::string path;  ///< fnmatch pattern; empty: any
  int fd = -1;       ///< -1: any
  std::uint64_t after = 0;
  std::uint64_t count = UINT64_MAX;
  double probability = 1.0;
};

/// The bit of `op` in Rule::ops.
constexpr std::uint32_t bit(Op op) noexcept {
  return std::uint32_t{1} << static_cast<unsigned>(op);
}

/// Parses one rule in WEFT_FAULTS syntax. @throws std::invalid_argument
/// naming the bad field.
Rule parse_rule(std::string_view text);

/// Installs a rule (after the ones there are). Thread-safe. No-op (returns
/// false) when fault injection is compiled out.
bool add(Rule rule);
/// Removes every rule. Thread-safe.
void clear() noexcept;
/// How many faults have been injected since the process started.
std::uint64_t injected() noexcept;

/// The hook io::perform calls: 0 when `r` runs as asked; -errno to report
/// instead of running it; or a positive byte count to shorten the transfer
/// to (r's buffer length, for read/write/send/recv). Thread-safe.
std::int64_t intercept(const Request& r) noexcept;

#if WEFT_FAULT_INJECTION
namespace internal {
extern std::atomic<bool> armed;  // any rule installed; pairs with nothing (a hint)
void load_environment() noexcept;
}  // namespace internal
#endif

/// True when some rule may apply: the fast check before intercept().
static inline bool armed() noexcept {
#if WEFT_FAULT_INJECTION
  internal::load_environment();
  return internal::armed.load(std::memory_order_relaxed);
#else
  return false;
#endif
}

}  // namespace weft::detail::io::fault
