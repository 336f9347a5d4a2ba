// FiberRef, this_fiber::handle() and fiber state queries (weft/selector.hpp).
//
// The public state is read from the fiber's park word (Fiber::park, the
// atomic the park/unpark protocol moves; fiber/fiber.hpp) and its task's
// finished flag, never from Fiber::state, which only its holder may read.
// The Fiber lives in its task's storage, which a JoinHandle or FiberRef
// keeps allocated; once the task is finished the control block may have
// been torn down, so finished is checked first and again after the load.
#include <stdexcept>

#include "fiber/fiber.hpp"
#include "sched/current.hpp"
#include "weft/selector.hpp"

namespace weft {

const char* to_string(FiberState s) noexcept {
  switch (s) {
    case FiberState::runnable:
      return "runnable";
    case FiberState::running:
      return "running";
    case FiberState::parked:
      return "parked";
    case FiberState::finished:
      return "finished";
  }
  return "unknown";
}

namespace detail {

weft::FiberState task_state(TaskBase* task) noexcept {
  if (task->is_finished()) return weft::FiberState::finished;
  if (task->fiber_id() == 0) return weft::FiberState::running;  // a spawn_blocking task
  const auto* f = static_cast<const Fiber*>(task->fiber_storage());
  // acquire: pairs with the release side of the park protocol's CASes, so
  // a state seen here is one the fiber really went through.
  const std::uint8_t p = f->park.load(std::memory_order_acquire);
  if (task->is_finished()) return weft::FiberState::finished;
  switch (p) {
    case kParking:
    case kParked:
    case kDumping:  // pinned by a dump, still parked
      return weft::FiberState::parked;
    case kRunnable:
    case kDumpWoken:  // woken; the dump queues it when done
      return weft::FiberState::runnable;
    default:  // kRunning, kNotified (woken before it parked: still running)
      return weft::FiberState::running;
  }
}

}  // namespace detail

FiberRef::FiberRef(const FiberRef& o) noexcept
    : task_(o.task_), name_(o.name_), priority_(o.priority_), parent_id_(o.parent_id_) {
  if (task_ != nullptr) task_->cancel_node().add_ref();
}

FiberRef::~FiberRef() {
  if (task_ != nullptr) task_->cancel_node().release();
}

FiberId FiberRef::id() const noexcept {
  return task_ != nullptr ? task_->fiber_id() : 0;
}

void FiberRef::cancel() const noexcept {
  if (task_ != nullptr) task_->cancel_node().cancel();
}

bool FiberRef::is_cancelled() const noexcept {
  return task_ != nullptr && task_->cancel_node().is_cancelled();
}

namespace this_fiber {

FiberRef handle() {
  detail::Fiber* f = detail::current_fiber();
  if (f == nullptr) throw std::logic_error("weft: this_fiber::handle() outside a fiber");
  detail::TaskBase* task = f->task;
  task->cancel_node().add_ref();  // the task's references are its node's
  return FiberRef(task, f->name, f->priority, f->parent_id);
}

}  // namespace this_fiber
}  // namespace weft
