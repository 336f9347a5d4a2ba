// JoinHandle's shared state: completion, join, detach.
#include "weft/detail/task.hpp"

#include <cstdio>
#include <new>
#include <utility>

#include "base/sanitizers.hpp"
#include "obs/metrics.hpp"
#include "sched/waiter.hpp"
#include "weft/detail/chan_core.hpp"
#include "weft/errors.hpp"
#include "weft/log.hpp"

namespace weft::detail {
namespace {

void report_lost_exception(std::uint64_t fiber_id, const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const Cancelled&) {
    // Cancellation is an expected end, not a lost error.
  } catch (const std::exception& ex) {
    log::logf(log::Level::error,
              "weft: fiber %llu ended with an uncaught exception: %s (its handle was detached)",
              static_cast<unsigned long long>(fiber_id), ex.what());
  } catch (...) {
    log::logf(log::Level::error,
              "weft: fiber %llu ended with an uncaught exception of a non-std type (its handle "
              "was detached)",
              static_cast<unsigned long long>(fiber_id));
  }
}

// Per-thread free lists of task blocks, one per 64-byte size class up to
// 1 KiB. A block freed on another thread than it was allocated on simply
// joins that thread's list. Bounded (kMaxPerClass blocks a class), released
// at thread exit. Sanitizer builds use the plain allocator so that ASan sees
// use-after-free and TSan sees every allocation.
constexpr std::size_t kClassBytes = 64;
constexpr std::size_t kClasses = 16;
constexpr std::uint32_t kMaxPerClass = 512;

struct TaskBlockCache {
  struct Block {
    Block* next;
  };
  Block* head[kClasses] = {};
  std::uint32_t count[kClasses] = {};
  ~TaskBlockCache() { clear(); }
  void clear() noexcept {
    for (std::size_t c = 0; c < kClasses; ++c) {
      while (head[c] != nullptr) {
        Block* b = std::exchange(head[c], head[c]->next);
        ::operator delete(b);
      }
      count[c] = 0;
    }
  }
};

// Reached only inside operator new/delete, which never switch fibers, so the
// TLS address is never reused across a migration.
thread_local TaskBlockCache tls_task_blocks;

constexpr bool kPoolTasks = !(WEFT_ASAN || WEFT_TSAN);

void* allocate_block(std::size_t size) {
  if constexpr (kPoolTasks) {
    const std::size_t c = (size - 1) / kClassBytes;
    if (c < kClasses) {
      TaskBlockCache& cache = tls_task_blocks;
      if (cache.head[c] != nullptr) {
        --cache.count[c];
        return std::exchange(cache.head[c], cache.head[c]->next);
      }
      return ::operator new((c + 1) * kClassBytes);
    }
  }
  return ::operator new(size);
}

}  // namespace

void* TaskBase::operator new(std::size_t size) {
  // weft_memory_task_block_bytes: blocks in use (cached free blocks are
  // not counted).
  void* p = allocate_block(size);
  obs::add(obs::Counter::task_block_alloc_bytes, size);
  return p;
}

void TaskBase::trim_block_cache() noexcept {
  if constexpr (kPoolTasks) tls_task_blocks.clear();
}

void TaskBase::operator delete(void* p, std::size_t size) noexcept {
  obs::add(obs::Counter::task_block_free_bytes, size);
  if constexpr (kPoolTasks) {
    const std::size_t c = (size - 1) / kClassBytes;
    if (c < kClasses) {
      TaskBlockCache& cache = tls_task_blocks;
      if (cache.count[c] < kMaxPerClass) {
        auto* b = static_cast<TaskBlockCache::Block*>(p);
        b->next = cache.head[c];
        cache.head[c] = b;
        ++cache.count[c];
        return;
      }
      ::operator delete(p);
      return;
    }
  }
  (void)size;
  ::operator delete(p);
}

TaskBase::~TaskBase() {
  if (locals_ != nullptr) fls_destroy_store(locals_);  // never reached a fiber or thread
  if (done_ != nullptr) {
    chan_release(done_, true);
    chan_release(done_, false);
  }
}

ChanCore* TaskBase::done_channel() {
  {
    LockGuard g(lock_);
    if (done_ != nullptr) return done_;
  }
  // Allocated outside the lock; nothing is ever sent on it: complete()
  // closes it, which is what a select's receive case waits for.
  ChanCore* c = chan_create(&kValueOps<char>, 0, false);
  ChanCore* done;
  bool finished = false;
  {
    LockGuard g(lock_);
    if (done_ == nullptr) {
      done_ = std::exchange(c, nullptr);
      finished = finished_.load(std::memory_order_relaxed);
    }
    done = done_;  // ours, or another caller's installed first
  }
  if (c != nullptr) {
    chan_release(c, true);
    chan_release(c, false);
  }
  // complete() reads done_ under the same lock after setting finished_: if
  // it ran before we installed the channel, we close it here.
  if (finished) chan_close(done);
  return done;
}

void TaskBase::complete() noexcept {
  // The hook first: it reads error_, which the joiner may move out once
  // finished_ is published.
  if (hook_ != nullptr) hook_->task_completed(this);
  bool report = false;
  ChanCore* done = nullptr;
  {
    LockGuard g(lock_);
    // release: the result (value_/error_) written by run() before is
    // visible to whoever reads finished_ with acquire.
    finished_.store(true, std::memory_order_release);
    if (joiner_ != nullptr) {
      std::exchange(joiner_, nullptr)->wake(Waiter::kNotified);
    }
    // A scope child's error is the scope's to rethrow: not lost.
    report = handle_gone_ && detached_ && error_ != nullptr && hook_ == nullptr;
    done = done_;
  }
  if (done != nullptr) chan_close(done);  // selects on the join fire
  if (report) report_lost_exception(fiber_id_, error_);
}

void TaskBase::wait(bool cancellable) {
  if (finished_.load(std::memory_order_acquire)) return;
  // A spawn_blocking task has no fiber id.
  Waiter w(fiber_id_ != 0 ? WaitReason::join : WaitReason::blocking, fiber_id_);
  {
    LockGuard g(lock_);
    if (finished_.load(std::memory_order_relaxed)) return;
    joiner_ = &w;
  }
  if (w.wait(-1, cancellable) == Waiter::kNotified) return;
  {
    LockGuard g(lock_);
    if (joiner_ == &w) joiner_ = nullptr;
  }
  throw Cancelled();
}

void TaskBase::release_handle(bool detached) noexcept {
  bool report = false;
  {
    LockGuard g(lock_);
    handle_gone_ = true;
    detached_ = detached;
    report = detached && finished_.load(std::memory_order_relaxed) && error_ != nullptr &&
             hook_ == nullptr;
  }
  if (report) report_lost_exception(fiber_id_, error_);
  unref();
}

void TaskBase::unref() noexcept {
  // acq_rel: the last owner must see every write of the other before it
  // deletes (the usual shared_ptr ordering).
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

}  // namespace weft::detail
