// The fatal-error path of WEFT_CHECK (base/assert.hpp).
#include "base/assert.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace weft::detail {

void fatal(const char* msg) noexcept {
  // write(2), not stdio: this may run with the runtime in any state.
  const ssize_t ignored = ::write(2, msg, std::strlen(msg));
  (void)ignored;
  const ssize_t ignored2 = ::write(2, "\n", 1);
  (void)ignored2;
  std::abort();
}

}  // namespace weft::detail
