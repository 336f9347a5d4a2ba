// The reactor: one Backend per worker, io_uring or epoll (docs/design/io.md).
//
// A Backend is the I/O half of a worker's driver (sched/driver.hpp): the
// worker parks on its driver, which polls the backend; the backend hands
// the fibers whose operations completed back in the driver's list and never
// schedules anything itself. A fiber's I/O reaches the backend of the
// worker it runs on through perform() (src/io/perform.cpp routes plain
// threads elsewhere).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "io/io_object.hpp"
#include "io/request.hpp"
#include "sched/driver.hpp"
#include "weft/config.hpp"

namespace weft::detail::io {

/// A worker's reactor (sched/driver.hpp's Reactor) that also carries out
/// requests. The Reactor calls (poll, has_pending, wake, attach) are the
/// driver's; perform and cancel_fd are the I/O layer's.
class Backend : public Reactor {
 public:
  /// Resolves Config::io_backend (auto_detect: io_uring if a ring with the
  /// runtime's flags initialises here, else epoll) and creates `count`
  /// backends of that kind. @throws std::system_error when the requested
  /// backend cannot be created (io_uring forced where it is unavailable,
  /// out of file descriptors or memory).
  static std::vector<std::unique_ptr<Backend>> create_all(const Config& config, std::size_t count);

  /// The backend of the worker whose fiber calls, or nullptr on a plain
  /// thread (or a worker's scheduler context). Out of line (TLS hazard).
  static Backend* of_calling_fiber() noexcept;

  /// Any thread, with o->lock held: cancels every request in flight on this
  /// backend for o's descriptor `fd` (io_uring; they complete with
  /// -ECANCELED). The caller has taken an operation reference on o for the
  /// backend (++o->ops), which the backend releases with end_op() once the
  /// cancel has completed: until then fd cannot be closed, so the cancel
  /// can never hit a later descriptor that reuses the number. epoll: never
  /// called (no requests are in flight in the kernel).
  virtual void cancel_fd(IoObject* o, int fd) noexcept WEFT_REQUIRES(o->lock) = 0;

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
};

/// Makes the reactors of a new runtime (RuntimeImpl's ReactorFactory):
/// Backend::create_all. @throws std::system_error as create_all.
std::vector<std::unique_ptr<Reactor>> make_reactors(const Config& config, std::size_t count);

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

}  // namespace weft::detail::io
