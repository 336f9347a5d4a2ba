// weft.h: readiness waits and blocking-style I/O on caller-owned
// descriptors.
//
// Each call makes the non-blocking system call first and, on EAGAIN, parks
// in weft::fd::wait_ready (io_uring POLL_ADD, or a one-shot epoll
// registration) until the descriptor is ready, then retries: Go's netpoll
// pattern, with one deadline for the whole call. Sockets are driven with
// MSG_DONTWAIT, so their own blocking mode does not matter; any other
// descriptor must be O_NONBLOCK, which is checked (a blocking read would
// stall the whole worker).
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>

#include "capi/capi.hpp"
#include "weft/errors.hpp"
#include "weft/fd.hpp"

namespace weft::capi {
namespace {

constexpr int kKnownEvents = POLLIN | POLLPRI | POLLOUT | POLLRDHUP;
static_assert(WEFT_FD_READABLE == POLLIN && WEFT_FD_PRIORITY == POLLPRI &&
              WEFT_FD_WRITABLE == POLLOUT && WEFT_FD_RDHUP == POLLRDHUP);

// 0 if fd is non-blocking, -EINVAL (with a message) if not, -errno if it
// is not open.
int require_nonblocking(int fd, const char* call) noexcept {
  const int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0) return -errno;
  if ((fl & O_NONBLOCK) != 0) return 0;
  char msg[160];
  std::snprintf(msg, sizeof msg,
                "weft: %s needs a non-blocking descriptor (O_NONBLOCK); fd %d would block the "
                "worker",
                call, fd);
  set_last_error(msg);
  return -EINVAL;
}

// Runs `attempt` (a non-blocking system call returning >= 0 or -1 with
// errno) until it does not report EAGAIN, waiting for `events` in between,
// all within timeout_ns. Returns attempt's result or a negative errno.
template <class Attempt>
long long retry_when_ready(int fd, short events, std::int64_t timeout_ns, Attempt&& attempt) {
  const Deadline deadline = deadline_after(timeout_ns);
  for (;;) {
    const long long n = attempt();
    if (n >= 0) return n;
    const int e = errno;
    if (e == EINTR) continue;
    if (e != EAGAIN && e != EWOULDBLOCK) return -e;
    try {
      fd::wait_ready(fd, events, deadline);
    } catch (const TimedOut&) {
      return gave_up(timeout_ns);
    }
  }
}

// A read or a write (*done bytes): on a socket, `on_socket` (a call with
// MSG_DONTWAIT, whatever the socket's mode); on any other descriptor,
// found by ENOTSOCK, `on_other`, the plain call, which needs O_NONBLOCK.
template <class OnSocket, class OnOther>
int transfer(int fd, short events, std::int64_t timeout_ns, const char* call, size_t* done,
             OnSocket&& on_socket, OnOther&& on_other) {
  *done = 0;
  return guarded([&] {
    bool socket = true;
    const long long n = retry_when_ready(fd, events, timeout_ns, [&]() -> long long {
      if (socket) {
        const ssize_t r = on_socket();
        if (r >= 0 || errno != ENOTSOCK) return r;
        socket = false;
        if (const int rc = require_nonblocking(fd, call)) {
          errno = -rc;
          return -1;
        }
      }
      return on_other();
    });
    if (n < 0) return static_cast<int>(n);
    *done = static_cast<size_t>(n);
    return 0;
  });
}

}  // namespace
}  // namespace weft::capi

using weft::capi::guarded;
using weft::capi::valid_timeout;

extern "C" {

int weft_fd_wait(int fd, int events, int64_t timeout_ns) {
  if (events <= 0 || (events & ~weft::capi::kKnownEvents) != 0 || !valid_timeout(timeout_ns))
    return -EINVAL;
  return guarded([&] {
    try {
      weft::fd::wait_ready(fd, static_cast<short>(events), weft::capi::deadline_after(timeout_ns));
      return 0;
    } catch (const weft::TimedOut&) {
      return weft::capi::gave_up(timeout_ns);
    }
  });
}

int weft_read(int fd, void* buf, size_t len, int64_t timeout_ns, size_t* nread) {
  if ((buf == nullptr && len != 0) || nread == nullptr || !valid_timeout(timeout_ns))
    return -EINVAL;
  return weft::capi::transfer(
      fd, POLLIN, timeout_ns, "weft_read", nread,
      [&] { return ::recv(fd, buf, len, MSG_DONTWAIT); }, [&] { return ::read(fd, buf, len); });
}

int weft_write(int fd, const void* buf, size_t len, int64_t timeout_ns, size_t* nwritten) {
  if ((buf == nullptr && len != 0) || nwritten == nullptr || !valid_timeout(timeout_ns))
    return -EINVAL;
  return weft::capi::transfer(
      fd, POLLOUT, timeout_ns, "weft_write", nwritten,
      [&] { return ::send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL); },
      [&] { return ::write(fd, buf, len); });
}

int weft_accept(int fd, struct sockaddr* addr, socklen_t* addrlen, int64_t timeout_ns,
                int* out_fd) {
  if (out_fd == nullptr || (addr != nullptr && addrlen == nullptr) || !valid_timeout(timeout_ns))
    return -EINVAL;
  *out_fd = -1;
  if (const int rc = weft::capi::require_nonblocking(fd, "weft_accept")) return rc;
  return guarded([&] {
    const long long n = weft::capi::retry_when_ready(fd, POLLIN, timeout_ns, [&]() -> long long {
      // A connection aborted before it was accepted is skipped.
      for (;;) {
        const int c = ::accept4(fd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0 || errno != ECONNABORTED) return c;
      }
    });
    if (n < 0) return static_cast<int>(n);
    *out_fd = static_cast<int>(n);
    return 0;
  });
}

int weft_connect(int fd, const struct sockaddr* addr, socklen_t addrlen, int64_t timeout_ns) {
  if (addr == nullptr || !valid_timeout(timeout_ns)) return -EINVAL;
  if (const int rc = weft::capi::require_nonblocking(fd, "weft_connect")) return rc;
  return guarded([&] {
    // A non-blocking connect answers EINPROGRESS (or EINTR, after which it
    // goes on in the background too) and is done when the socket turns
    // writable; SO_ERROR then tells how it ended. It is never reissued (a
    // second connect would say EALREADY). Any other error is final (EAGAIN
    // included: a Unix socket's listener has a full backlog).
    if (::connect(fd, addr, addrlen) == 0) return 0;
    if (errno != EINPROGRESS && errno != EINTR) return -errno;
    const weft::Deadline deadline = weft::capi::deadline_after(timeout_ns);
    for (;;) {
      try {
        weft::fd::wait_ready(fd, POLLOUT, deadline);
      } catch (const weft::TimedOut&) {
        return weft::capi::gave_up(timeout_ns);
      }
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return -errno;
      if (err != 0) return -err;
      // Writable with no error: connected, unless the readiness was for
      // something else and the handshake still runs (getpeername says).
      sockaddr_storage peer;
      socklen_t plen = sizeof peer;
      if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) == 0) return 0;
      if (errno != ENOTCONN) return -errno;
    }
  });
}

}  // extern "C"
