// weft::fd: readiness of a file descriptor that the caller owns.
//
// weft::net, weft::fs and weft::process own their descriptors and wait on
// them through the reactor. Code that owns its descriptors itself - a
// language runtime on the C ABI, a library with its own sockets, an
// eventfd, a timerfd, a tty - uses wait_ready() to park only the calling
// fiber until a descriptor is ready, then makes the non-blocking system
// call itself (Tokio's AsyncFd::readable / writable play the same role).
#pragma once

#include "weft/deadline.hpp"

namespace weft::fd {

/// Waits until descriptor `fd` is ready for one of `events` (a mask of
/// poll(2)'s POLLIN, POLLPRI, POLLOUT, POLLRDHUP), or has an error or
/// hang-up condition, and returns poll(2)'s revents for it: some of
/// `events`, and/or POLLERR / POLLHUP. Regular files are always ready.
///
/// In a fiber it parks only the fiber: an io_uring POLL_ADD on `fd`, or
/// under epoll a one-shot registration of `fd` in a private epoll instance
/// whose own readiness the worker's reactor waits for (so nothing is left
/// registered anywhere once it returns, and any number of fibers may wait
/// on the same descriptor at once, in either direction). On a plain thread
/// it blocks in poll(2). `fd` stays the caller's: it must stay open until
/// the call returns (closing it meanwhile leaves the wait to the deadline
/// or to cancellation, as with poll(2)).
///
/// A deadline already passed still reports readiness that needs no
/// waiting. A cancellation point, like every blocking call.
/// @throws std::invalid_argument for an empty mask or other bits;
/// std::system_error (EBADF for a descriptor that is not open; ENOMEM,
/// EMFILE when no epoll instance can be made); weft::TimedOut;
/// weft::Cancelled.
short wait_ready(int fd, short events, Deadline deadline = {});

}  // namespace weft::fd
