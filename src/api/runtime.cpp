// weft::Runtime, weft::spawn and weft::this_fiber over the scheduler.
#include "weft/runtime.hpp"

#include <stdexcept>
#include <thread>

#include "fiber/fiber.hpp"
#include "io/backend.hpp"
#include "obs/dump.hpp"
#include "sched/runtime_impl.hpp"
#include "sched/waiter.hpp"
#include "sched/worker.hpp"
#include "signal/shutdown.hpp"
#include "weft/cancel.hpp"
#include "weft/errors.hpp"
#include "weft/this_fiber.hpp"

namespace weft {

Runtime::Runtime(Config config)
    : impl_(std::make_unique<detail::RuntimeImpl>(config, &detail::io::make_reactors)) {
  // The dump signal (SIGQUIT unless WEFT_DUMP_SIGNAL says otherwise): the
  // monitor writes the text dump to stderr.
  detail::obs::dump_signal_runtime_started();
  impl_->set_dump_writer(&detail::obs::write_dump_to_stderr);
  impl_->set_deadlock_reporter(&detail::obs::report_deadlock);
}

Runtime::~Runtime() {
  // The watcher stops calling into impl_ before impl_'s shutdown begins,
  // and outlives it so that a hung shutdown still obeys a second signal
  // and the grace period.
  if (shutdown_) shutdown_->detach();
  impl_.reset();
  shutdown_.reset();
  detail::obs::dump_signal_runtime_ended();  // after the monitor's last dump
}

void Runtime::shutdown_on_signals(std::initializer_list<int> signals,
                                  std::chrono::nanoseconds grace) {
  detail::RuntimeImpl* rt = impl_.get();
  auto fresh = std::make_unique<detail::ShutdownWatcher>(
      signals, grace, [rt] { rt->cancel_all(); }, [rt] { return rt->alive() != 0; });
  shutdown_ = std::move(fresh);  // the old watcher (if any) stops here
}

RuntimeStats Runtime::stats() const {
  return impl_->stats();
}

std::string Runtime::dump(DumpFormat format) const {
  return detail::obs::dump_fibers(*impl_, format);
}
const Config& Runtime::config() const noexcept {
  return impl_->config();
}
IoBackend Runtime::io_backend() const noexcept {
  return impl_->io_backend();
}

std::string Runtime::describe() const {
  Config live = impl_->config();
  live.stall_warning = std::chrono::nanoseconds(impl_->stall_warning_ns());
  live.spin_before_park = std::chrono::nanoseconds(impl_->spin_before_park_ns());
  return live.describe();
}

void Runtime::set_stall_warning(std::chrono::nanoseconds threshold) {
  Config check = impl_->config();
  check.stall_warning = threshold;
  check.validate();
  impl_->set_stall_warning_ns(threshold.count());
}

void Runtime::set_spin_before_park(std::chrono::nanoseconds spin) {
  Config check = impl_->config();
  check.spin_before_park = spin;
  check.validate();
  impl_->set_spin_before_park_ns(spin.count());
}

std::size_t Runtime::workers() const noexcept {
  return impl_->worker_count();
}

void Runtime::spawn_task(detail::TaskBase* task, const FiberOptions& opts) {
  impl_->spawn(task, opts);
}

namespace detail {

void spawn_task(TaskBase* task, const FiberOptions& opts) {
  RuntimeImpl* rt = current_runtime();
  if (rt == nullptr) {
    throw std::logic_error(
        "weft::spawn called outside a runtime (use Runtime::spawn or Runtime::block_on)");
  }
  rt->spawn(task, opts);
}

void spawn_scoped_task(TaskBase* task, const FiberOptions& opts, CancelNode* parent,
                       TaskBase::CompletionHook* hook) {
  RuntimeImpl* rt = current_runtime();
  if (rt == nullptr) {
    throw std::logic_error("weft::Scope::spawn called outside a runtime");
  }
  task->set_completion_hook(hook);
  rt->spawn(task, opts, parent);
}

void spawn_blocking_task(TaskBase* task) {
  RuntimeImpl* rt = current_runtime();
  if (rt == nullptr) {
    throw std::logic_error("weft::spawn_blocking called outside a runtime");
  }
  rt->spawn_blocking(task);
}

}  // namespace detail

namespace this_fiber {

void yield() noexcept {
  detail::Worker* w = detail::current_worker();
  if (w == nullptr || w->current() == nullptr) {
    std::this_thread::yield();
    return;
  }
  w->yield_current();
}

void sleep_until(Clock::time_point deadline) {
  const std::int64_t deadline_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
  if (detail::current_fiber() == nullptr) {
    std::this_thread::sleep_until(deadline);
    return;
  }
  // steady_clock is CLOCK_MONOTONIC on Linux, the clock of deadline_ns.
  for (;;) {
    if (detail::monotonic_ns() >= deadline_ns) {
      check_cancelled();  // still a cancellation point when already due
      return;
    }
    detail::Waiter w(detail::WaitReason::sleep, static_cast<std::uint64_t>(deadline_ns));
    if (w.wait(deadline_ns) == detail::Waiter::kCancelled) throw Cancelled();
    // kTimedOut: loop re-checks the clock (the wheel clamps far deadlines).
  }
}

void sleep_until(Deadline deadline) {
  if (!deadline.is_none()) {
    sleep_until(deadline.when());
    return;
  }
  if (detail::current_fiber() == nullptr) {
    for (;;) std::this_thread::sleep_for(std::chrono::hours(24));
  }
  for (;;) {
    detail::Waiter w(detail::WaitReason::sleep, static_cast<std::uint64_t>(std::int64_t{-1}));
    if (w.wait(-1) == detail::Waiter::kCancelled) throw Cancelled();
  }
}

FiberId id() noexcept {
  detail::Fiber* f = detail::current_fiber();
  return f != nullptr ? f->id : 0;
}

std::string_view name() noexcept {
  detail::Fiber* f = detail::current_fiber();
  return f != nullptr ? std::string_view(f->name) : std::string_view();
}

void set_label(std::string_view key, std::string_view value) {
  detail::Fiber* f = detail::current_fiber();
  if (f == nullptr) throw std::logic_error("weft: this_fiber::set_label() outside a fiber");
  f->runtime->set_label(f, key, value);
}

Priority priority() noexcept {
  detail::Fiber* f = detail::current_fiber();
  return f != nullptr ? f->priority : Priority::normal;
}

bool in_fiber() noexcept {
  return detail::current_fiber() != nullptr;
}

void checkpoint() noexcept {
  detail::Worker* w = detail::current_worker();
  if (w != nullptr && w->current() != nullptr && w->preempt_requested()) w->yield_current();
}

int worker_index() noexcept {
  detail::Worker* w = detail::current_worker();
  return w != nullptr && w->current() != nullptr ? w->index() : -1;
}

}  // namespace this_fiber
}  // namespace weft
