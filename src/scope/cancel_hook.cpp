// See cancel_hook.hpp: the scope layer's single reading point of a fiber's
// cancellation state.
#include "scope/cancel_hook.hpp"

#include <atomic>

#include "fiber/fiber.hpp"
#include "sched/worker.hpp"

namespace weft::detail {

const void* cancel_source() noexcept {
  Fiber* f = current_fiber();
  return f != nullptr ? &f->cancel_requested : nullptr;
}

bool cancel_pending(const void* src) noexcept {
  if (src == nullptr) return false;
  // acquire, as this_fiber::sleep_until's check: the flag mirrors the
  // caller's innermost cancel scope (docs/design/cancellation.md); nothing
  // else is published with it, so this only needs to see it eventually.
  return static_cast<const std::atomic<bool>*>(src)->load(std::memory_order_acquire);
}

}  // namespace weft::detail
