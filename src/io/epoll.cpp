// The epoll backend: one epoll instance per worker, edge-triggered.
//
// A descriptor is registered once, lazily, with the epoll of the worker
// where a fiber first has to wait on it, for EPOLLIN | EPOLLOUT | EPOLLRDHUP
// | EPOLLET, with the object's (index, generation) token as user data.
// Operations are plain non-blocking system calls; on EAGAIN the fiber
// queues on the object's wait list for that direction and parks. The owner
// of the epoll dispatches an edge (in poll(), the driver's) by granting
// every waiter, who then retry; an edge nobody waits for sets
// the direction's `ready` flag instead. The flag closes the window between a
// call's EAGAIN and its waiter being queued: a fiber that finds it set
// consumes it and retries instead of parking (Go's pollDesc does the same
// with pdReady). Regular files are not pollable: their operations, and
// path operations, run on the blocking pool.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

#include "base/futex.hpp"  // timeout_timespec
#include "io/backend.hpp"
#include "sched/waiter.hpp"
#include "weft/errors.hpp"

namespace weft::detail::io {
namespace {

constexpr std::uint64_t kWakeToken = ~std::uint64_t{0};
constexpr int kMaxEvents = 256;

// epoll_wait's timeout: whole milliseconds, rounded up so that a timer is
// never polled for before it is due; < 0 waits without limit.
int timeout_ms(std::int64_t timeout_ns) noexcept {
  if (timeout_ns < 0) return -1;
  const std::int64_t ms = (timeout_ns + 999'999) / 1'000'000;
  return ms > INT32_MAX ? INT32_MAX : static_cast<int>(ms);
}

class EpollBackend final : public Backend {
 public:
  EpollBackend() {
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw std::system_error(errno, std::generic_category(), "weft: epoll_create1");
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) {
      const int e = errno;
      ::close(epfd_);
      throw std::system_error(e, std::generic_category(), "weft: eventfd");
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u64 = kWakeToken;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
      const int e = errno;
      ::close(epfd_);
      ::close(wake_fd_);
      throw std::system_error(e, std::generic_category(), "weft: epoll_ctl(eventfd)");
    }
    // epoll_pwait2 (Linux 5.11) takes a timespec; kernels before it, and
    // container seccomp profiles written before it (Docker's until 20.10.x),
    // refuse it with ENOSYS or EPERM. Probe once with a zero timeout and fall
    // back to epoll_wait, whose timeout is in whole milliseconds.
    // (Nothing is ready yet, so the probe consumes no event.)
    epoll_event probe[1];
    timespec zero{};
    if (::epoll_pwait2(epfd_, probe, 1, &zero, nullptr) < 0 &&
        (errno == ENOSYS || errno == EPERM)) {
      use_pwait2_ = false;
    }
  }
  ~EpollBackend() override {
    if (registered_.load(std::memory_order_relaxed) != 0) forget_poller(this);
    ::close(epfd_);
    ::close(wake_fd_);
  }

  IoBackend kind() const noexcept override { return IoBackend::epoll; }
  void attach() noexcept override {}
  bool has_pending() const noexcept override {
    return registered_.load(std::memory_order_relaxed) != 0;
  }
  void wake() noexcept override {
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }
  void cancel_fd(IoObject*, int) noexcept override {}

  void poll(std::int64_t timeout_ns, FiberList& woken) noexcept override {
    epoll_event events[kMaxEvents];
    timespec ts{};
    if (timeout_ns != 0) bump(blocking_waits_);
    const int n = use_pwait2_ ? ::epoll_pwait2(epfd_, events, kMaxEvents,
                                               timeout_timespec(timeout_ns, &ts), nullptr)
                              : ::epoll_wait(epfd_, events, kMaxEvents, timeout_ms(timeout_ns));
    for (int i = 0; i < n; ++i) {
      const std::uint64_t token = events[i].data.u64;
      if (token == kWakeToken) {
        std::uint64_t v;
        [[maybe_unused]] ssize_t r = ::read(wake_fd_, &v, sizeof v);
        continue;
      }
      IoObject* o = lock_token(token);
      if (o == nullptr) continue;  // closed and recycled since
      o->lock.assert_held();       // lock_token returns it locked
      const std::uint32_t ev = events[i].events;
      // An edge goes to the waiters if there are any (they retry the call;
      // the driver hands them back to the worker); otherwise it is kept for
      // the next caller (Go's netpollunblock).
      if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI)) != 0) {
        if (grant_all(o->waiters[0], false, &woken) == 0) o->ready[0] = true;
      }
      if ((ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) {
        if (grant_all(o->waiters[1], false, &woken) == 0) o->ready[1] = true;
      }
      o->lock.unlock();
    }
  }

  std::int64_t perform(const Request& r, IoObject* o, std::int64_t deadline_ns,
                       bool cancellable) override {
    if (o == nullptr || !o->pollable) return perform_blocking(r);
    const int dir = (r.readiness() & POLLOUT) != 0 ? 1 : 0;
    for (;;) {
      const std::int64_t n = run_syscall(r);
      if (r.op == Op::connect && n == -EINPROGRESS) {
        if (const int w = wait_ready(o, 1, deadline_ns, cancellable); w < 0) return w;
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(r.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return -errno;
        return err == 0 ? 0 : -err;
      }
      if (n != -EAGAIN) return n;
      if (const int w = wait_ready(o, dir, deadline_ns, cancellable); w < 0) return w;
    }
  }

 private:
  // Waits for an edge in direction dir: 0, or -EBADF (closed), or -errno
  // (registration failed). @throws TimedOut, Cancelled.
  int wait_ready(IoObject* o, int dir, std::int64_t deadline_ns, bool cancellable) {
    o->lock.lock();
    if (o->closed) {
      o->lock.unlock();
      return -EBADF;
    }
    if (o->poller == nullptr) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.u64 = o->token();
      if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, o->fd, &ev) != 0) {
        const int e = errno;
        o->lock.unlock();
        return -e;
      }
      o->poller = this;
      registered_.fetch_add(1, std::memory_order_relaxed);
      // Registration reports the current state as an edge; the next
      // wait() delivers it. Nothing is ready as far as we know yet.
    }
    if (o->ready[dir]) {
      o->ready[dir] = false;
      o->lock.unlock();
      return 0;
    }
    bump(submitted_);
    Waiter w(dir == 1 ? WaitReason::io_write : WaitReason::io_read,
             static_cast<std::uint64_t>(o->fd));
    WaitNode node(&w);
    const Waiter::Result res = wait_queued(
        o->lock, o->waiters[dir], node, deadline_ns, [] {}, false, cancellable);
    if (res == Waiter::kNotified) return node.closed ? -EBADF : 0;
    if (res == Waiter::kCancelled) throw Cancelled();
    throw TimedOut();
  }

  int epfd_ = -1;
  int wake_fd_ = -1;
  bool use_pwait2_ = true;  // false: the kernel or a seccomp filter refused it
  // Descriptors registered (never decremented: close(2) removes them
  // silently). Only a hint for has_pending().
  std::atomic<std::uint64_t> registered_{0};
};

}  // namespace

std::unique_ptr<Backend> make_epoll_backend() {
  return std::make_unique<EpollBackend>();
}

}  // namespace weft::detail::io
