// IoObject: the runtime's state for one file descriptor, shared by every
// operation on it (sockets, pipes, files, pidfds).
//
// Lifetime. An object has one owning handle (a TcpStream, a File, ...) and a
// count of operations in progress. close() marks it closed, wakes every
// operation waiting on it (they fail with EBADF) and asks each io_uring
// worker with a request in flight on it to cancel them; the descriptor
// itself is closed by whoever ends the last operation, so its number cannot
// be reused while a system call or a ring request may still name it (Go's
// fdMutex makes the same guarantee). The object is recycled once the handle
// is gone and no operation is left.
//
// Memory is type-stable: objects live in a process-wide table of chunks that
// are never freed, and epoll events carry (index, generation). An event that
// arrives for a recycled slot finds another generation and is dropped, so a
// readiness report racing a close never touches freed memory (Tokio's slab
// with generations, Go's pollDesc cache).
#pragma once

#include <atomic>
#include <cstdint>

#include "base/spinlock.hpp"
#include "sync/wait_list.hpp"

namespace weft::detail::io {

class Backend;

/// An io_uring request in flight on an object (see uring.cpp), linked into
/// the object's list so close() can find the rings to cancel on.
struct InflightLink {
  Backend* owner = nullptr;
  InflightLink* prev = nullptr;
  InflightLink* next = nullptr;
};

struct IoObject {
  SpinLock lock;
  // -1 once closed. Written under lock; read without it by operations that
  // hold an operation reference (OpGuard), which keeps it from changing.
  int fd = -1;
  bool pollable = true;  // socket, pipe, eventfd, pidfd...; false: regular file
  bool closed WEFT_GUARDED_BY(lock) = false;
  bool handle WEFT_GUARDED_BY(lock) = false;    // the owning handle is alive
  std::uint32_t ops WEFT_GUARDED_BY(lock) = 0;  // operations in progress
  std::uint32_t index = 0;                      // constant
  std::uint32_t gen WEFT_GUARDED_BY(lock) = 0;  // bumped when the slot is recycled

  // epoll: the backend the descriptor is registered with (lazily, on the
  // first wait) and, per direction (0 = in, 1 = out), whether an edge was
  // reported since a waiter last consumed it, and the waiters.
  Backend* poller WEFT_GUARDED_BY(lock) = nullptr;
  bool ready[2] WEFT_GUARDED_BY(lock) = {false, false};
  WaitList waiters[2] WEFT_GUARDED_BY(lock);

  // io_uring: requests in flight on this descriptor.
  InflightLink* inflight WEFT_GUARDED_BY(lock) = nullptr;

  // TCP metrics (obs/metrics.hpp): set by mark_tcp() once the connection
  // is established. tcp: read without the lock by transfers (relaxed: set
  // before the handle is handed out, which orders it). tcp_since_ns: when
  // it was established, 0 once close() counted its end.
  std::atomic<bool> tcp{false};
  std::int64_t tcp_since_ns WEFT_GUARDED_BY(lock) = 0;

  /// epoll user data for this slot's current generation.
  std::uint64_t token() const noexcept WEFT_REQUIRES(lock) {
    return (std::uint64_t{gen} << 32) | index;
  }
};

/// Wraps fd (which the object now owns) in a new object with one handle.
/// @throws std::bad_alloc (fd is closed first) when the table is exhausted.
IoObject* adopt(int fd, bool pollable);

/// Marks o as an established TCP connection (weft_tcp_connections_total,
/// _active; its close observes weft_tcp_connection_duration_seconds).
void mark_tcp(IoObject* o) noexcept;

/// Starts an operation: false if the object is closed (the caller reports
/// EBADF). Every true must be paired with end_op().
bool begin_op(IoObject* o) noexcept;
/// Ends an operation; closes the descriptor and recycles the object when
/// that was the last thing keeping them.
void end_op(IoObject* o) noexcept;

/// Closes: idempotent, never blocks, wakes and cancels operations in
/// progress (they fail with EBADF). Returns the close(2) error if the
/// descriptor was closed right here and that failed, else 0.
int close(IoObject* o) noexcept;

/// close(), then drops the owning handle.
void drop_handle(IoObject* o) noexcept;

/// Detaches every object registered with the epoll backend `b`, which is
/// being destroyed (its epoll instance, and the registrations in it, die
/// with it): their next wait registers them again wherever it runs, so a
/// socket outlives the runtime it was first used in.
void forget_poller(const Backend* b) noexcept;

/// The object whose epoll token is `token`, locked, or nullptr if that slot
/// has been recycled since. (The analysis cannot name the lock of a
/// returned object: callers assert it with o->lock.assert_held().)
IoObject* lock_token(std::uint64_t token) noexcept;

/// RAII for begin_op/end_op.
class OpGuard {
 public:
  /// o may be nullptr (path operations): then the guard holds nothing.
  explicit OpGuard(IoObject* o) noexcept : o_(o != nullptr && begin_op(o) ? o : nullptr) {}
  ~OpGuard() {
    if (o_ != nullptr) end_op(o_);
  }
  OpGuard(const OpGuard&) = delete;
  OpGuard& operator=(const OpGuard&) = delete;
  explicit operator bool() const noexcept { return o_ != nullptr; }

 private:
  IoObject* o_;
};

}  // namespace weft::detail::io
