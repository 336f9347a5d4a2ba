// this_fiber cancellation queries and ShieldGuard (weft/cancel.hpp).
#include <new>

#include "fiber/fiber.hpp"
#include "sched/blocking_pool.hpp"
#include "sched/current.hpp"
#include "weft/cancel.hpp"
#include "weft/detail/task.hpp"

namespace weft {

ShieldGuard::ShieldGuard() {
  if (!this_fiber::in_fiber()) return;
  new (storage_) detail::CancelScope(detail::CancelScope::Kind::shield, -1);
  active_ = true;
}

ShieldGuard::~ShieldGuard() {
  if (active_) std::launder(reinterpret_cast<detail::CancelScope*>(storage_))->~CancelScope();
}

namespace this_fiber {

bool is_cancelled() noexcept {
  if (detail::Fiber* f = detail::current_fiber()) return detail::is_cancelled(f);
  if (detail::TaskBase* t = detail::current_blocking_task()) return t->cancel_node().is_cancelled();
  return false;
}

void check_cancelled() {
  if (is_cancelled()) throw Cancelled();
}

CancellationToken cancellation_token() noexcept {
  detail::CancelNode* node = nullptr;
  if (detail::Fiber* f = detail::current_fiber()) {
    node = f->cancel_scope;
  } else if (detail::TaskBase* t = detail::current_blocking_task()) {
    node = &t->cancel_node();
  }
  if (node == nullptr) return {};
  node->add_ref();
  return CancellationToken::adopt(node);
}

}  // namespace this_fiber
}  // namespace weft
