// Checks of the fiber control block's layout against the storage a task
// reserves for it (weft/detail/task.hpp).
#include "fiber/fiber.hpp"

#include "weft/detail/task.hpp"

namespace weft::detail {

static_assert(sizeof(Fiber) <= kFiberStorageBytes, "raise kFiberStorageBytes in task.hpp");
static_assert(alignof(Fiber) <= 16);

}  // namespace weft::detail
