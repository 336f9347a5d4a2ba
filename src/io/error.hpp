// Turning -errno results of io::perform into exceptions.
#pragma once

#include <cstdint>
#include <string>
#include <system_error>

namespace weft::detail::io {

/// Throws std::system_error(err, generic_category) whose what() starts with
/// "weft: <what>".
[[noreturn]] inline void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), "weft: " + what);
}

/// n if n >= 0; else throws for errno -n.
inline std::int64_t check(std::int64_t n, const char* what) {
  if (n < 0) throw_errno(static_cast<int>(-n), what);
  return n;
}

}  // namespace weft::detail::io
