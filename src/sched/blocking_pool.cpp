#include "sched/blocking_pool.hpp"

#include <stdexcept>
#include <system_error>
#include <thread>

#include "fiber/fls.hpp"
#include "sched/runtime_impl.hpp"
#include "sched/worker.hpp"
#include "weft/detail/task.hpp"

namespace weft::detail {

namespace {
thread_local TaskBase* tls_blocking_task = nullptr;
}  // namespace

[[gnu::noinline]] TaskBase* current_blocking_task() noexcept {
  asm volatile("" ::: "memory");
  return tls_blocking_task;
}

[[gnu::noinline]] void set_current_blocking_task(TaskBase* task) noexcept {
  tls_blocking_task = task;
}

BlockingPool::BlockingPool(RuntimeImpl* rt, std::size_t max_threads,
                           std::chrono::nanoseconds keep_alive)
    : rt_(rt), max_threads_(max_threads), keep_alive_(keep_alive) {}

BlockingPool::~BlockingPool() {
  shutdown();
}

void BlockingPool::submit(TaskBase* task) {
  std::unique_lock<std::mutex> lock(mu_);
  if (shutdown_) throw std::logic_error("weft: spawn_blocking on a runtime that has shut down");
  queue_.push_back(task);
  if (idle_ > 0) {
    lock.unlock();
    work_cv_.notify_one();
    return;
  }
  if (threads_ >= max_threads_) return;  // queued until a thread frees up
  ++threads_;
  try {
    std::thread([this] { thread_main(); }).detach();
  } catch (...) {
    --threads_;
    if (threads_ == 0) {
      queue_.pop_back();
      throw std::system_error(EAGAIN, std::system_category(),
                              "weft: cannot start a spawn_blocking thread");
    }
    // Others are running: they will get to the task.
  }
}

void BlockingPool::thread_main() noexcept {
  set_current_runtime(rt_);
  rt_->unpin_current_thread();  // started by a pinned worker: back to the whole mask
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    while (queue_.empty() && !shutdown_) {
      ++idle_;
      const bool timed_out = work_cv_.wait_for(lock, keep_alive_) == std::cv_status::timeout;
      --idle_;
      if (timed_out && queue_.empty()) goto retire;
    }
    if (queue_.empty()) break;  // shutdown with nothing left
    {
      TaskBase* task = queue_.front();
      queue_.pop_front();
      lock.unlock();
      set_current_blocking_task(task);
      // FLS hook: the task's store is this thread's while it runs; end()
      // destroys its values before join() can return.
      BlockingLocals locals(task);
      task->run();
      locals.end();
      set_current_blocking_task(nullptr);
      // Leave the cancellation tree before the joiner can return (a scope
      // waiting for us must not see us attached afterwards).
      task->cancel_node().detach();
      // Counted before complete(): a joiner that returns must see its task
      // in stats() (complete() publishes with release, join acquires).
      completed_.fetch_add(1, std::memory_order_relaxed);
      task->complete();
      task->drop_runner();
      lock.lock();
    }
  }
retire:
  --threads_;
  set_current_runtime(nullptr);
  // Notify under the lock: shutdown() may destroy the pool as soon as it
  // sees threads_ == 0.
  exit_cv_.notify_all();
}

void BlockingPool::shutdown() noexcept {
  std::unique_lock<std::mutex> lock(mu_);
  shutdown_ = true;
  work_cv_.notify_all();
  exit_cv_.wait(lock, [this] { return threads_ == 0; });
}

std::size_t BlockingPool::threads() const {
  std::lock_guard<std::mutex> g(mu_);
  return threads_;
}

std::size_t BlockingPool::queued() const {
  std::lock_guard<std::mutex> g(mu_);
  return queue_.size();
}

bool BlockingPool::busy() const {
  std::lock_guard<std::mutex> g(mu_);
  return !queue_.empty() || threads_ > idle_;
}

std::uint64_t BlockingPool::completed() const {
  return completed_.load(std::memory_order_relaxed);
}

}  // namespace weft::detail
