// weft::fd::wait_ready: readiness of a descriptor the caller owns.
//
// The reactor (src/io) keeps per-descriptor state in IoObjects, which own
// their descriptor: epoll registrations are edge-triggered and made once,
// lazily, and a descriptor leaves an epoll instance only when its last
// reference in the process is closed. A descriptor the caller owns cannot
// be registered that way: weft would not know when it is closed, and a
// registration left behind would outlive it (and shadow a later descriptor
// with the same number). So a wait on it leaves nothing behind:
//
// - io_uring: one IORING_OP_POLL_ADD on the descriptor, a one-shot request
//   that the ring completes (or cancels, on timeout and cancellation).
// - epoll: a private epoll instance holding only this descriptor, level-
//   triggered, owned by a temporary IoObject; the worker's reactor waits
//   for that instance to turn readable (an epoll descriptor is readable
//   while it has events), and epoll_wait on it then reads the revents.
//   Closing the private instance drops the registration. It costs three
//   system calls more than io_uring's, only when the fiber actually waits.
// - a plain thread: poll(2).
//
// Several fibers may wait on one descriptor at once, in any directions:
// each wait is its own request or its own instance.
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

#include "io/backend.hpp"
#include "io/error.hpp"
#include "io/io_object.hpp"
#include "io/request.hpp"
#include "sched/waiter.hpp"  // monotonic_ns
#include "weft/cancel.hpp"
#include "weft/errors.hpp"
#include "weft/fd.hpp"

namespace weft::fd {
namespace {

namespace io = detail::io;

constexpr short kKnownEvents = POLLIN | POLLPRI | POLLOUT | POLLRDHUP;

// The poll and epoll event bits used here are the same numbers on Linux,
// which lets a mask pass between the two without translation.
static_assert(POLLIN == EPOLLIN && POLLPRI == EPOLLPRI && POLLOUT == EPOLLOUT &&
              POLLRDHUP == EPOLLRDHUP && POLLERR == EPOLLERR && POLLHUP == EPOLLHUP);

// One poll(2) of fd for up to timeout_ms: revents, 0 if not ready.
short poll_once(int fd, short events, int timeout_ms) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int k = ::poll(&p, 1, timeout_ms);
    if (k < 0) {
      if (errno == EINTR) continue;
      io::throw_errno(errno, "poll");
    }
    if (k == 0) return 0;
    if ((p.revents & POLLNVAL) != 0) io::throw_errno(EBADF, "wait_ready on a closed descriptor");
    return p.revents;
  }
}

short wait_on_thread(int fd, short events, std::int64_t deadline_ns) {
  for (;;) {
    int timeout_ms = -1;
    if (deadline_ns >= 0) {
      const std::int64_t left = deadline_ns - detail::monotonic_ns();
      if (left <= 0) {
        if (const short r = poll_once(fd, events, 0)) return r;
        throw TimedOut();
      }
      const std::int64_t ms = (left + 999'999) / 1'000'000;
      timeout_ms = ms > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(ms);
    }
    if (const short r = poll_once(fd, events, timeout_ms)) return r;
  }
}

short wait_uring(int fd, short events, std::int64_t deadline_ns) {
  io::Request r;
  r.op = io::Op::poll;
  r.fd = fd;
  r.poll_events = events;
  return static_cast<short>(io::check(io::perform(r, nullptr, deadline_ns), "wait_ready"));
}

short wait_epoll(int fd, short events, std::int64_t deadline_ns) {
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) io::throw_errno(errno, "epoll_create1 for wait_ready");
  epoll_event ev{};
  ev.events = static_cast<std::uint32_t>(events);
  ev.data.fd = fd;
  if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
    const int e = errno;
    ::close(ep);
    // epoll refuses regular files and directories, which poll(2) reports
    // as always ready.
    if (e == EPERM) return events & (POLLIN | POLLOUT);
    io::throw_errno(e, "epoll_ctl for wait_ready");
  }
  io::IoObject* obj = io::adopt(ep, true);  // owns ep from here (closes it if it throws)
  struct Release {
    io::IoObject* o;
    ~Release() { io::drop_handle(o); }
  } release{obj};
  io::Request r;
  r.op = io::Op::poll;
  r.fd = ep;
  r.poll_events = POLLIN;
  for (;;) {
    io::check(io::perform(r, obj, deadline_ns), "wait_ready");
    epoll_event got{};
    const int k = ::epoll_wait(ep, &got, 1, 0);
    if (k == 1) return static_cast<short>(got.events);
    if (k < 0 && errno != EINTR) io::throw_errno(errno, "epoll_wait for wait_ready");
    // The private instance was readable but had nothing by the time we
    // looked (the condition went away): wait again.
  }
}

}  // namespace

short wait_ready(int fd, short events, Deadline deadline) {
  if (events == 0 || (events & ~kKnownEvents) != 0) {
    throw std::invalid_argument(
        "weft::fd::wait_ready: events must be a non-empty mask of POLLIN, POLLPRI, POLLOUT, "
        "POLLRDHUP");
  }
  if (fd < 0) io::throw_errno(EBADF, "wait_ready on a negative descriptor");
  io::Backend* b = io::Backend::of_calling_fiber();
  if (b == nullptr) return wait_on_thread(fd, events, deadline.ns());
  this_fiber::check_cancelled();
  if (deadline.expired()) {
    if (const short r = poll_once(fd, events, 0)) return r;
    throw TimedOut();
  }
  // Every backend of a runtime is of one kind; b is not used past a call
  // that may park (the fiber may move to another worker's backend).
  if (b->kind() == IoBackend::io_uring) return wait_uring(fd, events, deadline.ns());
  return wait_epoll(fd, events, deadline.ns());
}

}  // namespace weft::fd
