// Fibers: spawn, JoinHandle, options.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "weft/detail/task.hpp"

namespace weft {

/// Fiber identifier: unique within the process, never reused, never 0
/// (0 means "not a fiber").
using FiberId = std::uint64_t;

/// Scheduling priority. On each worker a runnable fiber of a higher priority
/// always runs before a runnable fiber of a lower one; within one priority the
/// order is LIFO for the most recently woken fiber and FIFO for yields, with a
/// periodic FIFO pick bounding how long any runnable fiber waits.
enum class Priority : std::uint8_t { low = 0, normal = 1, high = 2, critical = 3 };

/// Per-spawn options.
struct FiberOptions {
  /// Shown by stall warnings, stack-overflow reports and this_fiber::name().
  std::string name;
  /// Scheduling priority (see Priority).
  Priority priority = Priority::normal;
  /// Stack size in bytes; 0 = the runtime's Config::stack_size. Same range as
  /// Config::stack_size (16 KiB..1 GiB), else spawn throws
  /// std::invalid_argument.
  std::size_t stack_size = 0;
  /// Under Strategy::thread_per_core: the worker (0..workers-1) the fiber
  /// starts on and, fibers never migrating there, runs on until it ends; a
  /// spawn onto another worker than the caller's goes through that
  /// worker's inbox. -1: the strategy's own placement (the spawner's
  /// worker, or round-robin from outside the workers). Ignored by the
  /// other strategies, whose fibers move between workers anyway. Anything
  /// but -1 or a worker's index: spawn throws std::invalid_argument.
  /// Servers use it to spread connections over the workers (weft-kv).
  int worker = -1;
};

namespace detail {
/// Starts a fiber running `task` on the current runtime (the one whose fiber
/// or blocking thread calls it). Takes ownership of the runner's reference.
/// @throws std::logic_error outside a runtime; std::system_error when no
/// stack can be had (memory, vm.max_map_count) or a limit is reached
/// (weft::ResourceExhausted); std::invalid_argument for a bad stack size.
/// On throw the task has not been started.
void spawn_task(TaskBase* task, const FiberOptions& opts);
/// spawn_task with the child's cancellation node attached under `parent`
/// (instead of the caller's innermost scope) and `hook` told when it
/// completes (weft::scope). Errors as spawn_task.
void spawn_scoped_task(TaskBase* task, const FiberOptions& opts, CancelNode* parent,
                       TaskBase::CompletionHook* hook);
/// Queues `task` on the current runtime's blocking pool.
/// @throws std::logic_error outside a runtime; std::system_error if no pool
/// thread can be started.
void spawn_blocking_task(TaskBase* task);
}  // namespace detail

/// Owner of a spawned fiber's result. Move-only.
///
/// Destroying (or move-assigning over) a handle that was not joined detaches
/// the fiber: it keeps running to completion and its result is discarded. An
/// exception that ends a detached fiber is reported on stderr
/// ("weft: fiber <id> ended with an uncaught exception: ...") rather than lost
/// silently. Thread-safety: a handle is used by one fiber/thread at a time;
/// different handles are independent.
template <class T>
class [[nodiscard]] JoinHandle {
 public:
  JoinHandle() = default;
  /// Adopts `task`: one reference the handle now owns (made by spawn, or
  /// given up by release()).
  explicit JoinHandle(detail::ResultTask<T>* task) noexcept : task_(task) {}
  /// Takes over other's fiber; other is empty afterwards.
  JoinHandle(JoinHandle&& other) noexcept : task_(std::exchange(other.task_, nullptr)) {}
  /// Detaches this handle's fiber (if any), then takes over other's.
  JoinHandle& operator=(JoinHandle&& other) noexcept {
    if (this != &other) {
      reset(true);
      task_ = std::exchange(other.task_, nullptr);
    }
    return *this;
  }
  JoinHandle(const JoinHandle&) = delete;
  JoinHandle& operator=(const JoinHandle&) = delete;
  ~JoinHandle() { reset(true); }

  /// Waits for the fiber to finish and returns its value, or rethrows the
  /// exception it ended with. From a fiber it parks only that fiber; from a
  /// plain thread it blocks the thread. The handle is empty afterwards.
  /// @throws std::logic_error if the handle is empty; weft::Cancelled if the
  /// waiting fiber is cancelled while it waits (the handle then stays valid).
  T join() {
    if (task_ == nullptr) throw std::logic_error("weft: join() on an empty JoinHandle");
    task_->wait();
    auto* task = std::exchange(task_, nullptr);
    struct Release {
      detail::ResultTask<T>* t;
      ~Release() { t->release_handle(false); }
    } release{task};
    return task->take();
  }

  /// Requests cancellation of the fiber and of everything running inside
  /// it (fibers it spawned, scopes it opened): its current or next blocking
  /// call throws weft::Cancelled (deferred while it is inside a shield).
  /// For a spawn_blocking task, this_fiber::is_cancelled() turns true on its
  /// thread. No effect on a finished fiber or an empty handle. Does not wait:
  /// join() afterwards to wait for the fiber to end (it usually ends with
  /// weft::Cancelled, which join() rethrows). Never throws; thread-safe.
  void cancel() noexcept {
    if (task_ != nullptr) task_->cancel_node().cancel();
  }

  /// True once the fiber has finished (its result is ready). Never blocks.
  bool is_finished() const noexcept { return task_ != nullptr && task_->is_finished(); }

  /// Lets the fiber run on without a handle (see class comment).
  void detach() noexcept { reset(true); }

  /// The fiber's id; 0 for an empty handle or a spawn_blocking task.
  FiberId id() const noexcept { return task_ ? task_->fiber_id() : 0; }

  /// False once joined, detached or moved from.
  bool joinable() const noexcept { return task_ != nullptr; }

  /// Gives up this handle's ownership without detaching (like
  /// std::unique_ptr::release) and returns the task; the handle is empty
  /// afterwards. The pointer must later be adopted by exactly one
  /// JoinHandle (the explicit constructor) that joins or detaches it;
  /// until then the fiber's result is kept. For layers that keep a handle
  /// in a pointer-sized slot, such as the C ABI (weft.h). Never throws.
  [[nodiscard]] detail::ResultTask<T>* release() noexcept { return std::exchange(task_, nullptr); }
  /// Internal: the shared state (selecting on a join, state queries in
  /// weft/selector.hpp); nullptr for an empty handle.
  detail::TaskBase* task_base() const noexcept { return task_; }

 private:
  void reset(bool detached) noexcept {
    if (task_ != nullptr) std::exchange(task_, nullptr)->release_handle(detached);
  }
  detail::ResultTask<T>* task_ = nullptr;
};

namespace detail {
template <class F, class Start>
auto make_task_and_start(F&& fn, Start&& start) {
  using T = TaskResult<F>;
  auto* task = new TaskImpl<F>(std::forward<F>(fn));
  try {
    start(static_cast<TaskBase*>(task));
  } catch (...) {
    task->release_handle(false);  // the handle's reference
    task->drop_runner();          // the runner's: it never ran
    throw;
  }
  return JoinHandle<T>(task);
}
}  // namespace detail

/// Spawns a fiber running fn() on the current runtime and returns its handle.
/// fn is moved (or copied) into the fiber; its result type may be void or
/// move-only. Callable from a fiber or a spawn_blocking thread of a runtime
/// (use Runtime::spawn from other threads). Cost in steady state: no syscall
/// (stacks are pooled per worker).
/// @throws std::logic_error outside a runtime; std::system_error (ENOMEM)
/// when no stack can be mapped, naming vm.max_map_count when that is the
/// limit hit; weft::ResourceExhausted (a std::system_error, EAGAIN) when
/// Config::max_fibers or Config::max_stack_memory would be exceeded, having
/// started nothing; std::invalid_argument for a bad FiberOptions::stack_size.
template <class F>
auto spawn(const FiberOptions& opts, F&& fn) {
  return detail::make_task_and_start(std::forward<F>(fn),
                                     [&](detail::TaskBase* t) { detail::spawn_task(t, opts); });
}

/// spawn() with default options.
template <class F>
auto spawn(F&& fn) {
  return spawn(FiberOptions{}, std::forward<F>(fn));
}

/// Runs fn() on the runtime's elastic pool of OS threads, for calls that
/// block the thread (file I/O, legacy libraries, CPU-heavy work). Joining the
/// handle parks only the calling fiber. The pool grows on demand up to
/// Config::max_blocking_threads (beyond that tasks queue) and threads idle for
/// Config::blocking_keep_alive exit. fn may call weft::spawn.
/// @throws std::logic_error outside a runtime; std::system_error if the pool
/// has no thread and none can be started.
template <class F>
auto spawn_blocking(F&& fn) {
  return detail::make_task_and_start(std::forward<F>(fn),
                                     [](detail::TaskBase* t) { detail::spawn_blocking_task(t); });
}

}  // namespace weft
