// An I/O request: one system call described as data, so that each backend
// can carry it out its own way - as an io_uring submission (uring.cpp), as a
// non-blocking call retried on readiness (epoll.cpp), on the blocking pool
// (file operations under epoll), or directly on a plain thread (perform.cpp).
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

namespace weft::detail::io {

enum class Op : std::uint8_t {
  read,      // fd, buf, len, offset (kCurrentOffset: the file position)
  write,     // fd, buf, len, offset
  readv,     // fd, iov, iovcnt, offset
  writev,    // fd, iov, iovcnt, offset
  recv,      // fd, buf, len, flags
  send,      // fd, buf, len, flags (MSG_NOSIGNAL is always added)
  recvmsg,   // fd, msg, flags
  sendmsg,   // fd, msg, flags (MSG_NOSIGNAL is always added)
  accept,    // fd, addr, addrlen; the new fd is non-blocking and close-on-exec
  connect,   // fd, addr, addr_len
  poll,      // fd, poll_events: waits until one of them is ready
  fsync,     // fd; flags = 1: fdatasync
  truncate,  // fd, offset = the new size: ftruncate(2) (see has_ring_opcode)
  openat,    // dirfd, path, flags, mode -> new fd
  statx,     // dirfd, path, flags, mask (in len), stx
  mkdirat,   // dirfd, path, mode
  renameat,  // dirfd, path, dirfd, path2
  unlinkat,  // dirfd, path, flags (AT_REMOVEDIR)
};

inline constexpr std::uint64_t kCurrentOffset = ~std::uint64_t{0};

struct Request {
  Op op = Op::read;
  int fd = -1;  // or the directory fd of the *at operations
  void* buf = nullptr;
  std::size_t len = 0;
  std::uint64_t offset = kCurrentOffset;
  int flags = 0;
  unsigned mode = 0;
  short poll_events = 0;
  const iovec* iov = nullptr;
  int iovcnt = 0;
  msghdr* msg = nullptr;
  sockaddr* addr = nullptr;
  socklen_t* addrlen = nullptr;  // accept: in/out
  socklen_t addr_len = 0;        // connect
  const char* path = nullptr;
  const char* path2 = nullptr;
  struct statx* stx = nullptr;

  /// True for operations on a descriptor's data that may have to wait for
  /// readiness on a socket, pipe or similar (as opposed to path operations).
  bool on_fd() const noexcept { return op <= Op::truncate; }
  /// True if the io_uring backend has an opcode for this operation. The
  /// others (truncate: IORING_OP_FTRUNCATE is Linux 6.9, and liburing 2.3
  /// does not know it) run on the blocking pool under io_uring too.
  bool has_ring_opcode() const noexcept { return op != Op::truncate; }
  /// The readiness a pollable descriptor needs for this operation: POLLIN
  /// or POLLOUT.
  short readiness() const noexcept;
};

/// Runs `r` as a plain system call on the calling thread, retrying on EINTR.
/// Returns the call's result (>= 0) or -errno. On a non-blocking descriptor
/// it returns -EAGAIN instead of waiting (connect: -EINPROGRESS; poll: the
/// readiness is checked without waiting, -EAGAIN if none).
std::int64_t run_syscall(const Request& r) noexcept;

}  // namespace weft::detail::io
