// weft::Runtime, weft::spawn and weft::this_fiber over the scheduler.
#include "weft/runtime.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "fiber/fiber.hpp"
#include "io/backend.hpp"
#include "obs/dump.hpp"
#include "obs/metrics.hpp"
#include "obs/trace.hpp"
#include "sched/runtime_impl.hpp"
#include "sched/waiter.hpp"
#include "sched/worker.hpp"
#include "signal/shutdown.hpp"
#include "weft/cancel.hpp"
#include "weft/errors.hpp"
#include "weft/log.hpp"
#include "weft/this_fiber.hpp"

namespace weft {
namespace detail {

/// A runtime's trace (Runtime::start_trace, WEFT_TRACE): its recording
/// session (obs/trace.hpp) and where the JSON goes when it stops.
class TraceControl {
 public:
  explicit TraceControl(const RuntimeImpl& rt)
      : session_(&rt, rt.worker_count(), rt.config().trace_buffer_events) {}
  ~TraceControl() {
    if (file_ != nullptr) std::fclose(file_);
  }
  TraceControl(const TraceControl&) = delete;
  TraceControl& operator=(const TraceControl&) = delete;

  /// Starts recording into a file at `path` (truncated now) or, with
  /// path empty, for `sink`. `who` prefixes the error messages.
  void start(const char* who, const std::string& path, TraceSink sink) {
    std::lock_guard<std::mutex> g(mu_);
    if (session_.recording()) {
      throw std::logic_error(std::string(who) + ": a trace is already recording in this runtime");
    }
    session_.start();  // first: a refused start must not truncate the file
    if (!path.empty()) {
      file_ = std::fopen(path.c_str(), "w");
      if (file_ == nullptr) {
        const int err = errno;
        std::string discard;
        session_.stop(discard);
        throw std::system_error(err, std::generic_category(),
                                std::string(who) + ": cannot open '" + path + "' for writing");
      }
    }
    path_ = path;
    sink_ = std::move(sink);
  }

  TraceSummary stop() {
    std::lock_guard<std::mutex> g(mu_);
    if (!session_.recording()) throw std::logic_error("weft: stop_trace: no trace is recording");
    std::string json;
    const obs::trace::Summary sum = session_.stop(json);
    obs::Shard& m = obs::local();
    m.add(obs::Counter::trace_events, sum.events);
    m.add(obs::Counter::trace_dropped, sum.dropped);
    TraceSink sink = std::exchange(sink_, nullptr);
    if (std::FILE* f = std::exchange(file_, nullptr)) {
      const bool wrote = std::fwrite(json.data(), 1, json.size(), f) == json.size();
      const int err = errno;
      const bool closed = std::fclose(f) == 0;
      if (!wrote || !closed) {
        throw std::system_error(wrote ? errno : err, std::generic_category(),
                                "weft: stop_trace: cannot write the trace to '" + path_ + "'");
      }
    } else {
      sink(json);
    }
    return {sum.events, sum.dropped};
  }

  /// The runtime's end: a trace still recording is written; errors are logged.
  void stop_at_exit() noexcept {
    try {
      if (!session_.recording()) return;
      const TraceSummary sum = stop();
      if (sum.dropped != 0) {
        log::logf(log::Level::warn, "weft: the trace dropped %llu of %llu events (a full buffer)",
                  static_cast<unsigned long long>(sum.dropped),
                  static_cast<unsigned long long>(sum.dropped + sum.events));
      }
    } catch (const std::exception& e) {
      log::logf(log::Level::error, "%s", e.what());
    } catch (...) {
      log::logf(log::Level::error, "weft: the trace's sink threw");
    }
  }

 private:
  std::mutex mu_;  // start and stop, against each other
  obs::trace::Session session_;
  std::string path_;
  std::FILE* file_ = nullptr;  // the open trace file, or nullptr for a sink
  TraceSink sink_;
};

}  // namespace detail

Runtime::Runtime(Config config)
    : impl_(std::make_unique<detail::RuntimeImpl>(config, &detail::io::make_reactors)),
      trace_(std::make_unique<detail::TraceControl>(*impl_)) {
  if (const char* path = std::getenv("WEFT_TRACE"); path != nullptr && *path != '\0') {
    trace_->start("weft: WEFT_TRACE", path, nullptr);
  }
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
  trace_->stop_at_exit();  // after the workers: their last events are in
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

void Runtime::start_trace(const std::string& path) {
  if (path.empty()) throw std::invalid_argument("weft: start_trace: empty path");
  trace_->start("weft: start_trace", path, nullptr);
}

void Runtime::start_trace(TraceSink sink) {
  if (!sink) throw std::invalid_argument("weft: start_trace: empty sink");
  trace_->start("weft: start_trace", std::string(), std::move(sink));
}

TraceSummary Runtime::stop_trace() {
  return trace_->stop();
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
  live.memory_limit = static_cast<std::size_t>(impl_->memory().limit());
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

void Runtime::set_memory_limit(std::size_t bytes) {
  Config check = impl_->config();
  check.memory_limit = bytes;
  check.validate();
  impl_->set_memory_limit(bytes);
}

std::size_t Runtime::memory_limit() const noexcept {
  return static_cast<std::size_t>(impl_->memory().limit());
}

MemoryUsage Runtime::memory_usage() const noexcept {
  detail::MemoryAccount& m = impl_->memory();
  MemoryUsage u;
  u.used = impl_->memory_usage();
  const std::int64_t charged = m.charged();
  u.charged = charged > 0 ? static_cast<std::uint64_t>(charged) : 0;
  u.limit = m.limit();
  u.refusals = m.refusals();
  u.trims = m.trims();
  u.pressure_events = m.pressure_events();
  u.refusing = m.refusing();
  return u;
}

std::uint64_t Runtime::on_memory_pressure(MemoryPressureCallback fn) {
  return impl_->memory().add_callback(std::move(fn));
}

bool Runtime::remove_memory_pressure_callback(std::uint64_t id) {
  return impl_->memory().remove_callback(id);
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
