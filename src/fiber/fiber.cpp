// Fiber helpers: lifecycle checks and the fatal-error path.
#include "fiber/fiber.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <utility>

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

void Fiber::transition(FiberState from, FiberState to) noexcept {
#if !defined(NDEBUG) || defined(WEFT_DEBUG_CHECKS)
  if (state != from) fatal("weft: fiber lifecycle violated (unexpected state at transition)");
#else
  (void)from;
#endif
  state = to;
}

void Fiber::reset() noexcept {
  stack = Stack{};
  stack_size = 0;
  runtime = nullptr;
  task = nullptr;
  id = parent_id = 0;
  priority = Priority::normal;
  state = FiberState::created;
  park.store(kRunning, std::memory_order_relaxed);
  name.clear();
  next = reg_prev = reg_next = nullptr;
  current_waiter = nullptr;
  cancel_requested.store(false, std::memory_order_relaxed);
}

FiberCache::~FiberCache() {
  while (free_ != nullptr) delete std::exchange(free_, free_->next);
}

Fiber* FiberCache::take() {
  if (free_ == nullptr) return new Fiber();
  Fiber* f = std::exchange(free_, free_->next);
  --count_;
  f->next = nullptr;
  return f;
}

void FiberCache::give(Fiber* f) noexcept {
  if (count_ >= kMaxCached) {
    delete f;
    return;
  }
  f->reset();
  f->next = free_;
  free_ = f;
  ++count_;
}

}  // namespace weft::detail
