#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "io/request.hpp"

namespace weft::detail::io {

short Request::readiness() const noexcept {
  switch (op) {
    case Op::write:
    case Op::writev:
    case Op::send:
    case Op::sendmsg:
    case Op::connect:
      return POLLOUT;
    case Op::poll:
      return poll_events;
    default:
      return POLLIN;
  }
}

namespace {

std::int64_t once(const Request& r) noexcept {
  const bool at_pos = r.offset == kCurrentOffset;
  const auto off = static_cast<off_t>(r.offset);
  switch (r.op) {
    case Op::read:
      return at_pos ? ::read(r.fd, r.buf, r.len) : ::pread(r.fd, r.buf, r.len, off);
    case Op::write:
      return at_pos ? ::write(r.fd, r.buf, r.len) : ::pwrite(r.fd, r.buf, r.len, off);
    case Op::readv:
      return at_pos ? ::readv(r.fd, r.iov, r.iovcnt) : ::preadv(r.fd, r.iov, r.iovcnt, off);
    case Op::writev:
      return at_pos ? ::writev(r.fd, r.iov, r.iovcnt) : ::pwritev(r.fd, r.iov, r.iovcnt, off);
    case Op::recv:
      return ::recv(r.fd, r.buf, r.len, r.flags | MSG_DONTWAIT);
    case Op::send:
      return ::send(r.fd, r.buf, r.len, r.flags | MSG_DONTWAIT | MSG_NOSIGNAL);
    case Op::recvmsg:
      return ::recvmsg(r.fd, r.msg, r.flags | MSG_DONTWAIT);
    case Op::sendmsg:
      return ::sendmsg(r.fd, r.msg, r.flags | MSG_DONTWAIT | MSG_NOSIGNAL);
    case Op::accept:
      return ::accept4(r.fd, r.addr, r.addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    case Op::connect:
      return ::connect(r.fd, r.addr, r.addr_len);
    case Op::poll: {
      pollfd p{r.fd, r.poll_events, 0};
      const int n = ::poll(&p, 1, 0);
      if (n < 0) return -1;
      if (n == 0) {
        errno = EAGAIN;
        return -1;
      }
      return p.revents;
    }
    case Op::fsync:
      return r.flags == 1 ? ::fdatasync(r.fd) : ::fsync(r.fd);
    case Op::truncate:
      return ::ftruncate(r.fd, off);
    case Op::openat:
      return ::openat(r.fd, r.path, r.flags | O_CLOEXEC, r.mode);
    case Op::statx:
      return ::statx(r.fd, r.path, r.flags, static_cast<unsigned>(r.len), r.stx);
    case Op::mkdirat:
      return ::mkdirat(r.fd, r.path, r.mode);
    case Op::renameat:
      return ::renameat(r.fd, r.path, r.fd, r.path2);
    case Op::unlinkat:
      return ::unlinkat(r.fd, r.path, r.flags);
  }
  errno = EINVAL;
  return -1;
}

}  // namespace

std::int64_t run_syscall(const Request& r) noexcept {
  for (;;) {
    const std::int64_t n = once(r);
    if (n >= 0) return n;
    // EINTR: a signal arrived before anything was transferred; retry. A
    // connect interrupted this way keeps connecting in the background, so
    // its retry reports EALREADY: treat it as in progress.
    if (errno == EINTR) {
      if (r.op == Op::connect) return -EINPROGRESS;
      continue;
    }
    if (errno == EWOULDBLOCK) return -EAGAIN;
    return -errno;
  }
}

}  // namespace weft::detail::io
