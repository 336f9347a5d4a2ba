// Internal: the shared state behind a JoinHandle. Not part of the API.
//
// A task is the closure a fiber (or blocking-pool thread) runs, the slot its
// result lands in, and the storage of the fiber's control block, so that a
// spawn costs one allocation. It is reference counted: one reference for the
// JoinHandle, one for the runner. The runner completes it (result stored,
// joiner woken) and, once it no longer needs the fiber storage, drops its
// reference; the handle drops its own on join, detach or destruction.
// Whoever drops the last one deletes it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

#include "weft/detail/cancel_node.hpp"
#include "weft/detail/spinlock.hpp"

namespace weft::detail {

class Waiter;
struct ChanCore;                                     // channel core (weft/detail/chan_core.hpp)
class LocalStore;                                    // fiber-local storage (src/fiber/fls.hpp)
void fls_destroy_store(LocalStore* store) noexcept;  // src/fiber/fls.cpp

/// Bytes reserved in every task for the runtime's fiber control block
/// (static_assert'ed against the real size in the runtime).
inline constexpr std::size_t kFiberStorageBytes = 256;

class TaskBase {
 public:
  /// Tasks come from a per-thread cache of blocks in 64-byte size classes
  /// (task.cpp): spawn-heavy code allocates and frees one per fiber in
  /// bursts that overflow the C allocator's small per-thread caches.
  static void* operator new(std::size_t size);
  static void operator delete(void* p, std::size_t size) noexcept;
  /// Frees the calling thread's cached free blocks (memory pressure:
  /// Config::memory_limit). Never throws; any thread.
  static void trim_block_cache() noexcept;

  TaskBase() = default;
  TaskBase(const TaskBase&) = delete;
  TaskBase& operator=(const TaskBase&) = delete;

  /// Runs the closure, storing its value or exception. Called once.
  virtual void run() noexcept = 0;

  // --- runner side (task.cpp) ---
  /// Publishes completion and wakes the joiner.
  void complete() noexcept;
  /// Drops the runner's reference; the runner must not touch the task (or
  /// the fiber storage) afterwards.
  void drop_runner() noexcept { unref(); }
  void* fiber_storage() noexcept { return fiber_storage_; }

  // --- handle side (task.cpp) ---
  /// Blocks (parks the fiber, or the plain thread) until complete() ran.
  /// @throws weft::Cancelled if the waiting fiber is cancelled meanwhile
  /// (never with cancellable = false).
  void wait(bool cancellable = true);
  bool is_finished() const noexcept { return finished_.load(std::memory_order_acquire); }
  /// Drops the handle's reference. If the task ended with an exception that
  /// nobody will see (detached handle), reports it on stderr.
  void release_handle(bool detached) noexcept;

  /// The task's node in the cancellation tree (JoinHandle::cancel cancels
  /// it). Its references are the task's references.
  CancelNode& cancel_node() noexcept { return node_; }

  /// Optional observer told when the task completes (weft::scope counts
  /// its children this way). Set before the task starts; called by
  /// complete() on the runner, after run() stored the result and before a
  /// joiner can see it.
  struct CompletionHook {
    virtual void task_completed(TaskBase* task) noexcept = 0;

   protected:
    ~CompletionHook() = default;
  };
  void set_completion_hook(CompletionHook* hook) noexcept { hook_ = hook; }

  /// A channel that the task's completion closes, for selecting on a join
  /// (weft::on_join, wait_any; task.cpp). Created on first use and owned by
  /// the task; already closed if the task has finished.
  /// @throws std::bad_alloc.
  ChanCore* done_channel();

  std::uint64_t fiber_id() const noexcept { return fiber_id_; }
  void set_fiber_id(std::uint64_t id) noexcept { fiber_id_ = id; }
  std::exception_ptr& error() noexcept { return error_; }
  /// Fiber-local values (src/fiber/fls.hpp) of a spawn_blocking task; for a
  /// fiber, only from spawn until its Fiber takes them. Runner side.
  LocalStore*& locals() noexcept { return locals_; }

 protected:
  virtual ~TaskBase();
  std::exception_ptr error_;

 private:
  void unref() noexcept;

  // The task's cancellation node: its references are the task's.
  class TaskNode final : public CancelNode {
   public:
    explicit TaskNode(TaskBase* task) noexcept : CancelNode(Kind::task), task_(task) {}
    TaskBase* task() noexcept override { return task_; }
    void add_ref() noexcept override { task_->refs_.fetch_add(1, std::memory_order_relaxed); }
    // Only reached while the node is attached, which the runner's
    // reference outlives.
    bool try_add_ref() noexcept override {
      add_ref();
      return true;
    }
    void release() noexcept override { task_->unref(); }

   private:
    TaskBase* task_;
  };

  std::atomic<std::uint32_t> refs_{2};
  TaskNode node_{this};
  CompletionHook* hook_ = nullptr;
  // finished_: written with release by complete() after the result is
  // stored; read with acquire by is_finished()/wait() before the result.
  std::atomic<bool> finished_{false};
  // Guards joiner_ against complete(): the joiner registers and removes its
  // waiter under it, complete() wakes it under it (waiter lifetime rule,
  // see sched/waiter.hpp).
  SpinLock lock_;
  bool handle_gone_ WEFT_GUARDED_BY(lock_) = false;
  bool detached_ WEFT_GUARDED_BY(lock_) = false;
  Waiter* joiner_ WEFT_GUARDED_BY(lock_) = nullptr;
  ChanCore* done_ WEFT_GUARDED_BY(lock_) = nullptr;  // see done_channel()
  LocalStore* locals_ = nullptr;
  std::uint64_t fiber_id_ = 0;
  alignas(16) unsigned char fiber_storage_[kFiberStorageBytes];
};

/// Task whose result is a T (void allowed).
template <class T>
class ResultTask : public TaskBase {
 public:
  /// Moves the value out, or rethrows the stored exception. The exception is
  /// moved out first, so the joining thread holds its last reference and the
  /// task's deletion (maybe on another thread) never touches it.
  T take() {
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    if constexpr (!std::is_void_v<T>) return std::move(*value_);
  }

 protected:
  struct Empty {};
  std::optional<std::conditional_t<std::is_void_v<T>, Empty, T>> value_;
};

template <class F>
using TaskResult = std::invoke_result_t<std::decay_t<F>&>;

template <class F>
class TaskImpl final : public ResultTask<TaskResult<F>> {
  using T = TaskResult<F>;

 public:
  explicit TaskImpl(F&& fn) : fn_(std::forward<F>(fn)) {}

  void run() noexcept override {
    try {
      if constexpr (std::is_void_v<T>) {
        (*fn_)();
        this->value_.emplace();
      } else {
        this->value_.emplace((*fn_)());
      }
    } catch (...) {
      this->error_ = std::current_exception();
    }
    // Captures die with the fiber, not with the handle.
    try {
      fn_.reset();
    } catch (...) {
      if (!this->error_) this->error_ = std::current_exception();
    }
  }

 private:
  std::optional<std::decay_t<F>> fn_;
};

}  // namespace weft::detail
