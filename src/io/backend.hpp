// The reactor: one Backend per worker, io_uring or epoll (docs/design/io.md).
//
// A fiber's I/O reaches the backend of the worker it runs on through
// perform() (src/io/perform.cpp routes plain threads elsewhere). The worker
// owns its backend: it calls wait() when it looks for work (timeout 0), on
// its fairness ticks, and instead of sleeping on its futex when idle, with
// the nearest timer as the timeout - so I/O completions, timers and
// wake-ups from other workers share one wait.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "io/io_object.hpp"
#include "io/request.hpp"
#include "weft/config.hpp"

namespace weft::detail::io {

class Backend {
 public:
  /// Resolves Config::io_backend (auto_detect: io_uring if a ring with the
  /// runtime's flags initialises here, else epoll) and creates `count`
  /// backends of that kind. @throws std::system_error when the requested
  /// backend cannot be created (io_uring forced where it is unavailable,
  /// out of file descriptors or memory).
  static std::vector<std::unique_ptr<Backend>> create_all(const Config& config, std::size_t count);

  virtual ~Backend() = default;
  virtual IoBackend kind() const noexcept = 0;

  /// Owner thread, once, before any other owner call (enables the ring for
  /// this thread: IORING_SETUP_SINGLE_ISSUER binds it to its submitter).
  virtual void attach() noexcept = 0;

  /// Owner thread: submits queued requests, dispatches completions and
  /// readiness (waking the fibers concerned onto this worker), and waits up
  /// to timeout_ns for at least one event when there is none (0: never
  /// waits; < 0: until an event or wake()).
  virtual void wait(std::int64_t timeout_ns) noexcept = 0;

  /// Owner thread: true if wait(0) could find something (requests queued or
  /// in flight, descriptors registered, messages from other threads).
  virtual bool has_pending() const noexcept = 0;

  /// Any thread: makes the owner's current blocking wait() return, or its
  /// next one return at once.
  virtual void wake() noexcept = 0;

  /// Any thread, with o->lock held: cancels every request in flight on this
  /// backend for o's descriptor `fd` (io_uring; they complete with
  /// -ECANCELED). The caller has taken an operation reference on o for the
  /// backend (++o->ops), which the backend releases with end_op() once the
  /// cancel has completed: until then fd cannot be closed, so the cancel
  /// can never hit a later descriptor that reuses the number. epoll: never
  /// called (no requests are in flight in the kernel).
  virtual void cancel_fd(IoObject* o, int fd) noexcept = 0;

  /// A fiber running on the owner's worker performs r (on o, which the
  /// caller holds an operation on, or nullptr for path operations) and
  /// returns its result: >= 0, or -errno. The fiber parks meanwhile and may
  /// resume on another worker. If the deadline (CLOCK_MONOTONIC ns, < 0:
  /// none) passes or the fiber is cancelled first, the request is cancelled
  /// and waited for; if it completed anyway its result is returned (nothing
  /// is lost), else this throws weft::TimedOut or weft::Cancelled. (epoll
  /// runs operations on regular files and paths on the blocking pool, and
  /// io_uring the operations it has no opcode for (Request::has_ring_opcode):
  /// once started, those run to completion and ignore the deadline.) With
  /// cancellable = false, cancellation is ignored (clean-up that must run
  /// in a cancelled fiber).
  virtual std::int64_t perform(const Request& r, IoObject* o, std::int64_t deadline_ns,
                               bool cancellable) = 0;

  /// Counters for Runtime::stats(): requests submitted (io_uring) or
  /// readiness waits (epoll), and wait() calls that blocked.
  std::uint64_t submitted() const noexcept { return submitted_.load(std::memory_order_relaxed); }
  std::uint64_t blocking_waits() const noexcept {
    return blocking_waits_.load(std::memory_order_relaxed);
  }

 protected:
  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::atomic<std::uint64_t> submitted_{0};
  std::atomic<std::uint64_t> blocking_waits_{0};
};

/// Creates an io_uring backend; nullptr with errno set if the kernel refuses.
std::unique_ptr<Backend> make_uring_backend(const Config& config);
/// Creates an epoll backend. @throws std::system_error.
std::unique_ptr<Backend> make_epoll_backend();

/// Performs r on o (nullptr for path operations) from the calling fiber or
/// thread: on the current worker's backend, or for a plain thread with
/// blocking calls and poll(2). Returns >= 0 or -errno (-EBADF once o is
/// closed). @throws weft::TimedOut, weft::Cancelled (fibers only, and only
/// when cancellable).
std::int64_t perform(const Request& r, IoObject* o, std::int64_t deadline_ns,
                     bool cancellable = true);

/// Runs r on the runtime's blocking pool and waits for it without being
/// cancellable (the call owns the caller's buffers until it returns).
std::int64_t perform_blocking(const Request& r);

/// Throws weft::Cancelled if the calling fiber has a cancellation request.
void check_cancelled();

}  // namespace weft::detail::io
