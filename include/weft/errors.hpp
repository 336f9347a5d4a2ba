// Exceptions thrown by weft for expected-but-exceptional outcomes.
#pragma once

#include <exception>

namespace weft {

/// Thrown from a blocking call (sleep, join, ...) when the calling fiber has
/// been cancelled; today that happens when its Runtime shuts down while the
/// fiber is still parked. Let it propagate: the fiber then ends, and joining
/// it rethrows Cancelled.
class Cancelled : public std::exception {
 public:
  const char* what() const noexcept override { return "weft: fiber cancelled"; }
};

/// Thrown when an operation's deadline passes before it completes.
class TimedOut : public std::exception {
 public:
  const char* what() const noexcept override { return "weft: operation timed out"; }
};

}  // namespace weft
