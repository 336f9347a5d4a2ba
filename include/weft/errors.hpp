// Exceptions thrown by weft for expected-but-exceptional outcomes.
#pragma once

#include <cstdint>
#include <exception>
#include <string>
#include <system_error>
#include <utility>

namespace weft {

/// Thrown from a blocking call (sleep, join, ...) when the calling fiber has
/// been cancelled; today that happens when its Runtime shuts down while the
/// fiber is still parked. Let it propagate: the fiber then ends, and joining
/// it rethrows Cancelled.
class Cancelled : public std::exception {
 public:
  /// "weft: fiber cancelled".
  const char* what() const noexcept override { return "weft: fiber cancelled"; }
};

/// Thrown when an operation's deadline passes before it completes.
class TimedOut : public std::exception {
 public:
  /// "weft: operation timed out".
  const char* what() const noexcept override { return "weft: operation timed out"; }
};

/// Thrown by spawn when a runtime limit (Config::max_fibers,
/// Config::max_stack_memory) would be exceeded. A std::system_error with
/// EAGAIN (std::errc::resource_unavailable_try_again): nothing was started
/// and nothing else changed, so the same spawn may succeed once fibers have
/// ended. what() names the limit, its value and the usage, e.g.
/// `weft: cannot spawn: max_fibers is 1000 and 1000 fibers are alive
/// (Config::max_fibers, WEFT_MAX_FIBERS)`.
class ResourceExhausted : public std::system_error {
 public:
  /// `limit`: the setting's schema key ("max_fibers"); `value`: its value
  /// (a count, or bytes).
  ResourceExhausted(std::string limit, std::uint64_t value, const std::string& what)
      : std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again), what),
        limit_(std::move(limit)),
        value_(value) {}
  /// The schema key of the limit that was hit, e.g. "max_fibers".
  const std::string& limit() const noexcept { return limit_; }
  /// The limit's value: fibers for max_fibers, bytes for max_stack_memory.
  std::uint64_t limit_value() const noexcept { return value_; }

 private:
  std::string limit_;
  std::uint64_t value_;
};

}  // namespace weft
