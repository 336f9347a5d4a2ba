// The elastic pool behind weft::spawn_blocking.
//
// A mutex-protected FIFO of tasks served by OS threads. submit() starts a new
// thread when no thread is idle and the pool is below its bound; otherwise
// the task queues. A thread idle for keep_alive exits (it retires), so a
// burst of blocking calls does not leave threads behind (Tokio's
// blocking pool follows the same rules). Threads are detached; the pool
// counts them and shutdown() waits until the last one has left.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>

namespace weft::detail {

class RuntimeImpl;
class TaskBase;

/// The spawn_blocking task the calling pool thread is running, or null (a
/// fiber, a plain thread, an idle pool thread). Not inlined: TLS.
TaskBase* current_blocking_task() noexcept;
void set_current_blocking_task(TaskBase* task) noexcept;

class BlockingPool {
 public:
  BlockingPool(RuntimeImpl* rt, std::size_t max_threads, std::chrono::nanoseconds keep_alive);
  ~BlockingPool();

  /// Queues task. @throws std::logic_error after shutdown; std::system_error
  /// if the pool has no thread and cannot start one.
  void submit(TaskBase* task);

  /// Refuses new tasks, lets queued and running ones finish, waits for every
  /// thread to exit. Idempotent.
  void shutdown() noexcept;

  std::size_t threads() const;
  std::uint64_t completed() const;
  /// Tasks queued and not yet picked up by a thread.
  std::size_t queued() const;
  /// True while a task is queued or running (a thread that is not idle
  /// counts, even one just starting). Takes the pool's mutex.
  bool busy() const;

 private:
  void thread_main() noexcept;

  RuntimeImpl* const rt_;
  const std::size_t max_threads_;
  const std::chrono::nanoseconds keep_alive_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_;          // tasks arrived or shutdown
  std::condition_variable exit_cv_;          // a thread exited
  std::deque<TaskBase*> queue_;              // guarded by mu_
  std::size_t threads_ = 0;                  // guarded by mu_
  std::size_t idle_ = 0;                     // guarded by mu_
  std::atomic<std::uint64_t> completed_{0};  // counted before the joiner wakes
  bool shutdown_ = false;                    // guarded by mu_
};

}  // namespace weft::detail
