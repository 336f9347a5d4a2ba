// Fiber helpers: lifecycle checks and the fatal-error path.
#include "fiber/fiber.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "sched/assert.hpp"

namespace weft::detail {

void fatal(const char* msg) noexcept {
  // write(2), not stdio: this may run with the runtime in any state.
  const ssize_t ignored = ::write(2, msg, std::strlen(msg));
  (void)ignored;
  const ssize_t ignored2 = ::write(2, "\n", 1);
  (void)ignored2;
  std::abort();
}

static_assert(sizeof(Fiber) <= kFiberStorageBytes, "raise kFiberStorageBytes in task.hpp");
static_assert(alignof(Fiber) <= 16);

}  // namespace weft::detail
