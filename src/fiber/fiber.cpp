// Checks of the fiber control block's layout against the storage a task
// reserves for it (weft/detail/task.hpp); the wait reasons' names.
#include "fiber/fiber.hpp"

#include "fiber/wait_reason.hpp"
#include "weft/detail/task.hpp"

namespace weft::detail {

static_assert(sizeof(Fiber) <= kFiberStorageBytes, "raise kFiberStorageBytes in task.hpp");
static_assert(alignof(Fiber) <= 16);

const char* to_string(WaitReason r) noexcept {
  switch (r) {
    case WaitReason::other:
      return "other";
    case WaitReason::chan_send:
      return "chan_send";
    case WaitReason::chan_recv:
      return "chan_recv";
    case WaitReason::select:
      return "select";
    case WaitReason::mutex:
      return "mutex";
    case WaitReason::condvar:
      return "condvar";
    case WaitReason::rwlock:
      return "rwlock";
    case WaitReason::semaphore:
      return "semaphore";
    case WaitReason::barrier:
      return "barrier";
    case WaitReason::event:
      return "event";
    case WaitReason::join:
      return "join";
    case WaitReason::blocking:
      return "blocking";
    case WaitReason::sleep:
      return "sleep";
    case WaitReason::io_read:
      return "io_read";
    case WaitReason::io_write:
      return "io_write";
    case WaitReason::scope:
      return "scope";
    case WaitReason::parallel:
      return "parallel";
    case WaitReason::signal:
      return "signal";
  }
  return "other";
}

}  // namespace weft::detail
