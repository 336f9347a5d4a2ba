// The io_uring backend: one ring per worker.
//
// Setup: IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN (completion work runs
// only when the owner asks for events, so no inter-processor interrupts and
// no completion batches landing mid-fiber), created disabled (R_DISABLED)
// by the runtime's constructor and enabled by the worker thread itself,
// which thereby becomes the ring's single issuer. Older kernels get the
// same ring without those flags.
//
// A request lives on its fiber's stack (UringOp). Submission is batched: the
// SQE is queued and the fiber parks; the worker submits everything queued
// when it runs out of fibers, on its fairness tick, or once kSubmitBatch
// are waiting. The owner reaps completions in poll() and claims the
// request's Waiter: if it wins, it completes it into the driver's list of
// woken fibers (sched/driver.hpp), and the fiber resumes with the result.
//
// If the Waiter was won by the deadline or a cancellation instead, the
// request is still in the kernel and owns the fiber's buffers. The fiber then
// *abandons* it: it asks the owner for IORING_OP_ASYNC_CANCEL - directly if
// it runs on the owner's thread, else through the owner's mailbox (the ring
// accepts submissions from its owner only) - and waits, not cancellable,
// until the owner has both handled the abandon and reaped the completion.
// Those two events happen on the owner's thread, in either order, so two
// owner-only flags (reaped, abandoned) decide which of them wakes the fiber,
// without atomics. The cancel names the request by its user_data, the
// UringOp's address tagged with a 16-bit submission counter, and is
// submitted before the request can complete and its address be reused.
#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>
#include <vector>

#include "base/assert.hpp"
#include "io/backend.hpp"
#include "sched/current.hpp"
#include "sched/waiter.hpp"
#include "weft/errors.hpp"
#include "weft/log.hpp"

namespace weft::detail::io {
namespace {

constexpr std::uint64_t kWakeTag = 1;    // the read on the wake eventfd
constexpr std::uint64_t kIgnoreTag = 2;  // cancels and other fire-and-forget SQEs
// Low bit set (and not kWakeTag): an IoObject* whose close() asked for a
// cancel_fd; the CQE releases the reference close() took. UringOps are
// 8-byte aligned, so their tagged user_data never has it.
constexpr std::uint64_t kObjectTag = 1;
constexpr std::uint64_t kPtrMask = (std::uint64_t{1} << 48) - 1;
constexpr unsigned kSubmitBatch = 32;

struct UringOp {
  explicit UringOp(const Request& r) noexcept
      : waiter((r.readiness() & POLLOUT) != 0 ? WaitReason::io_write : WaitReason::io_read,
               static_cast<std::uint64_t>(r.fd)) {}
  Waiter waiter;
  std::int32_t res = 0;
  std::uint64_t user_data = 0;
  // Abandon protocol (see the file comment). final is written by the fiber
  // before it posts the op to the owner (the mailbox lock orders it);
  // reaped/abandoned are owner-only.
  Waiter* final = nullptr;
  UringOp* next_mail = nullptr;
  bool reaped = false;
  bool abandoned = false;
  InflightLink link;
};

// The most one read or write transfers, as read(2) caps it (MAX_RW_COUNT):
// SQE lengths are 32 bits, so larger requests must become short counts, not
// wrap around.
constexpr std::size_t kMaxTransfer = 0x7ffff000;

void prep(io_uring_sqe* sqe, const Request& req) noexcept {
  Request r = req;
  if (r.len > kMaxTransfer && r.op != Op::statx) r.len = kMaxTransfer;
  switch (r.op) {
    case Op::read:
      io_uring_prep_read(sqe, r.fd, r.buf, static_cast<unsigned>(r.len), r.offset);
      break;
    case Op::write:
      io_uring_prep_write(sqe, r.fd, r.buf, static_cast<unsigned>(r.len), r.offset);
      break;
    case Op::readv:
      io_uring_prep_readv(sqe, r.fd, r.iov, static_cast<unsigned>(r.iovcnt), r.offset);
      break;
    case Op::writev:
      io_uring_prep_writev(sqe, r.fd, r.iov, static_cast<unsigned>(r.iovcnt), r.offset);
      break;
    case Op::recv:
      io_uring_prep_recv(sqe, r.fd, r.buf, r.len, r.flags);
      break;
    case Op::send:
      io_uring_prep_send(sqe, r.fd, r.buf, r.len, r.flags | MSG_NOSIGNAL);
      break;
    case Op::recvmsg:
      io_uring_prep_recvmsg(sqe, r.fd, r.msg, static_cast<unsigned>(r.flags));
      break;
    case Op::sendmsg:
      io_uring_prep_sendmsg(sqe, r.fd, r.msg, static_cast<unsigned>(r.flags | MSG_NOSIGNAL));
      break;
    case Op::accept:
      io_uring_prep_accept(sqe, r.fd, r.addr, r.addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
      break;
    case Op::connect:
      io_uring_prep_connect(sqe, r.fd, r.addr, r.addr_len);
      break;
    case Op::poll:
      io_uring_prep_poll_add(sqe, r.fd, static_cast<unsigned>(r.poll_events));
      break;
    case Op::fsync:
      io_uring_prep_fsync(sqe, r.fd, r.flags == 1 ? IORING_FSYNC_DATASYNC : 0);
      break;
    case Op::truncate:
      // Never reaches the ring: perform() sends it to the blocking pool
      // (IORING_OP_FTRUNCATE exists since Linux 6.9, but liburing 2.3 has
      // neither the opcode nor a prep helper for it).
      io_uring_prep_nop(sqe);
      break;
    case Op::openat:
      io_uring_prep_openat(sqe, r.fd, r.path, r.flags | O_CLOEXEC, r.mode);
      break;
    case Op::statx:
      io_uring_prep_statx(sqe, r.fd, r.path, r.flags, static_cast<unsigned>(r.len), r.stx);
      break;
    case Op::mkdirat:
      io_uring_prep_mkdirat(sqe, r.fd, r.path, r.mode);
      break;
    case Op::renameat:
      io_uring_prep_renameat(sqe, r.fd, r.path, r.fd, r.path2, 0);
      break;
    case Op::unlinkat:
      io_uring_prep_unlinkat(sqe, r.fd, r.path, r.flags);
      break;
  }
}

class UringBackend final : public Backend {
 public:
  UringBackend() = default;
  ~UringBackend() override {
    if (ring_ok_) io_uring_queue_exit(&ring_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  // Returns 0 or -errno.
  int init(const Config& config) noexcept {
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) return -errno;
    const unsigned entries = config.io_uring_entries;
    // Flag sets to try, best first; a kernel that rejects a flag says EINVAL.
    const unsigned base = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    const unsigned tries[] = {
        base | IORING_SETUP_R_DISABLED | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
            IORING_SETUP_TASKRUN_FLAG,
        base | IORING_SETUP_R_DISABLED | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        IORING_SETUP_CQSIZE,
    };
    int r = -EINVAL;
    for (unsigned flags : tries) {
      io_uring_params p{};
      p.flags = flags;
      p.cq_entries = entries * 4;
      r = io_uring_queue_init_params(entries, &ring_, &p);
      if (r == 0) {
        disabled_ = (flags & IORING_SETUP_R_DISABLED) != 0;
        flags_ = flags;
        break;
      }
      if (r != -EINVAL) break;
    }
    if (r != 0) return r;
    ring_ok_ = true;
    return 0;
  }

  IoBackend kind() const noexcept override { return IoBackend::io_uring; }
  unsigned flags() const noexcept { return flags_; }

  void attach() noexcept override {
    if (disabled_) {
      // Raw syscall: Debian 12's liburing 2.3 declares io_uring_enable_rings
      // but does not export it.
      if (::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr,
                    0) != 0) {
        fatal("weft: IORING_REGISTER_ENABLE_RINGS failed");
      }
      disabled_ = false;
    }
    io_uring_register_ring_fd(&ring_);  // an optimisation: failure is fine
  }

  bool has_pending() const noexcept override {
    return pending_ != 0 || inflight_ != 0 || mail_.load(std::memory_order_relaxed);
  }

  void wake() noexcept override {
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }

  void cancel_fd(IoObject* o, int fd) noexcept override {
    {
      LockGuard g(mail_lock_);
      cancel_fds_.push_back({o, fd});
      mail_.store(true, std::memory_order_relaxed);
    }
    if (!on_owner()) wake();
  }

  void poll(std::int64_t timeout_ns, FiberList& woken) noexcept override {
    drain_mail(woken);
    if (timeout_ns == 0) {
      if (pending_ == 0 && inflight_ == 0) return;
      if (pending_ == 0 && nothing_to_reap()) return;
      enter(0, nullptr, &woken);
    } else {
      arm_wake(&woken);
      __kernel_timespec ts{};
      if (timeout_ns > 0) {
        ts.tv_sec = timeout_ns / 1'000'000'000;
        ts.tv_nsec = timeout_ns % 1'000'000'000;
      }
      bump(blocking_waits_);
      enter(1, timeout_ns > 0 ? &ts : nullptr, &woken);
    }
    reap(&woken);
  }

  std::int64_t perform(const Request& r, IoObject* o, std::int64_t deadline_ns,
                       bool cancellable) override {
    // An operation without an opcode runs where epoll runs file operations;
    // the caller's OpGuard keeps o's descriptor open meanwhile.
    if (!r.has_ring_opcode()) return perform_blocking(r);
    UringOp op(r);
    op.link.owner = this;
    if (o != nullptr) {
      LockGuard g(o->lock);
      if (o->closed) return -EBADF;
      op.link.next = o->inflight;
      if (o->inflight != nullptr) o->inflight->prev = &op.link;
      o->inflight = &op.link;
    }
    io_uring_sqe* sqe = get_sqe(nullptr);
    prep(sqe, r);
    op.user_data = reinterpret_cast<std::uintptr_t>(&op) | (std::uint64_t{++tag_} << 48);
    io_uring_sqe_set_data64(sqe, op.user_data);
    ++pending_;
    ++inflight_;
    bump(submitted_);
    if (pending_ >= kSubmitBatch) enter(0, nullptr, nullptr);

    const Waiter::Result how = op.waiter.wait(deadline_ns, cancellable);
    if (how != Waiter::kNotified) abandon(op);
    if (o != nullptr) {
      LockGuard g(o->lock);
      if (op.link.prev != nullptr) {
        op.link.prev->next = op.link.next;
      } else {
        o->inflight = op.link.next;
      }
      if (op.link.next != nullptr) op.link.next->prev = op.link.prev;
    }
    if (how == Waiter::kNotified || op.res >= 0) return op.res;
    if (how == Waiter::kCancelled) throw Cancelled();
    throw TimedOut();
  }

 private:
  bool on_owner() const noexcept { return current_reactor() == this; }

  // Owner: true if an enter could find nothing: no CQE posted and, with
  // IORING_SETUP_TASKRUN_FLAG, no task work the kernel has flagged for us
  // (a completion it has not posted yet). Saves an empty io_uring_enter on
  // every poll while requests are merely in flight.
  bool nothing_to_reap() const noexcept {
    if ((flags_ & IORING_SETUP_TASKRUN_FLAG) == 0) return false;
    return io_uring_cq_ready(&ring_) == 0 &&
           (IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_TASKRUN) == 0;
  }

  // Owner. A free SQE, submitting what is queued if the ring is full.
  // `woken` as reap()'s (as in every owner helper below that may reap).
  io_uring_sqe* get_sqe(FiberList* woken) noexcept {
    for (;;) {
      if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_)) return sqe;
      enter(0, nullptr, woken);
      reap(woken);
    }
  }

  // Owner: submits the queued SQEs and, waiting for wait_nr completions (up
  // to ts), lets the kernel post the completions due to this task.
  void enter(unsigned wait_nr, __kernel_timespec* ts, FiberList* woken) noexcept {
    for (;;) {
      int r;
      if (wait_nr == 0) {
        r = io_uring_submit_and_get_events(&ring_);
      } else {
        io_uring_cqe* cqe = nullptr;
        r = io_uring_submit_and_wait_timeout(&ring_, &cqe, wait_nr, ts, nullptr);
      }
      if (r >= 0 || r == -ETIME || r == -EINTR) break;
      if (r == -EAGAIN || r == -EBUSY) {
        // Completion queue full or kernel short of memory: make room.
        reap(woken);
        continue;
      }
      log::logf(log::Level::error, "weft: io_uring_enter failed: %s", std::strerror(-r));
      fatal("weft: io_uring submission failed");
    }
    pending_ = io_uring_sq_ready(&ring_);
  }

  void arm_wake(FiberList* woken) noexcept {
    if (wake_armed_) return;
    io_uring_sqe* sqe = get_sqe(woken);
    io_uring_prep_read(sqe, wake_fd_, &wake_buf_, sizeof wake_buf_, 0);
    io_uring_sqe_set_data64(sqe, kWakeTag);
    ++pending_;
    wake_armed_ = true;
  }

  // Owner: dispatches every posted completion. From the driver's poll() the
  // fibers it completes go to `woken`; from a fiber of this worker (a full
  // ring, an abandon) woken is null and they are unparked the ordinary way,
  // as any waker running in a fiber does.
  void reap(FiberList* woken) noexcept {
    io_uring_cqe* cqe;
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      const std::uint64_t ud = cqe->user_data;
      if (ud == kWakeTag) {
        wake_armed_ = false;
        continue;
      }
      if (ud == kIgnoreTag) continue;
      if ((ud & kObjectTag) != 0) {  // a close()'s cancel_fd has completed
        --inflight_;
        end_op(reinterpret_cast<IoObject*>(ud & ~kObjectTag));
        continue;
      }
      auto* op = reinterpret_cast<UringOp*>(ud & kPtrMask);
      --inflight_;
      op->res = cqe->res;
      if (op->waiter.claim()) {
        finish_op(op->waiter, woken);  // op may be gone from here on
        continue;
      }
      op->reaped = true;
      if (op->abandoned) wake_final(*op->final, woken);
    }
    io_uring_cq_advance(&ring_, seen);
  }

  // The fiber side of an abandon (see the file comment).
  void abandon(UringOp& op) {
    Waiter final;
    op.final = &final;
    if (on_owner()) {
      if (handle_abandon(&op, nullptr)) return;
      enter(0, nullptr, nullptr);  // the cancel should not wait for the next batch
      reap(nullptr);               // (which may complete op already)
    } else {
      {
        LockGuard g(mail_lock_);
        op.next_mail = abandoned_;
        abandoned_ = &op;
        mail_.store(true, std::memory_order_relaxed);
      }
      wake();
    }
    final.wait(-1, false);
  }

  // Owner: true if op is complete (its fiber may go on), else queues the
  // cancel of its request. `woken` as reap()'s.
  bool handle_abandon(UringOp* op, FiberList* woken) noexcept {
    if (op->reaped) return true;
    io_uring_sqe* sqe = get_sqe(woken);
    io_uring_prep_cancel64(sqe, op->user_data, 0);
    io_uring_sqe_set_data64(sqe, kIgnoreTag);
    ++pending_;
    op->abandoned = true;
    return false;
  }

  void drain_mail(FiberList& woken) noexcept {
    if (!mail_.load(std::memory_order_relaxed)) return;
    UringOp* ops;
    std::vector<std::pair<IoObject*, int>> fds;
    {
      LockGuard g(mail_lock_);
      ops = std::exchange(abandoned_, nullptr);
      fds.swap(cancel_fds_);
      mail_.store(false, std::memory_order_relaxed);
    }
    while (ops != nullptr) {
      UringOp* next = ops->next_mail;  // before a wake lets the op go
      if (handle_abandon(ops, &woken)) wake_final(*ops->final, &woken);
      ops = next;
    }
    for (auto [o, fd] : fds) {
      io_uring_sqe* sqe = get_sqe(&woken);
      io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
      io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uintptr_t>(o) | kObjectTag);
      ++pending_;
      ++inflight_;
    }
  }

  // A completion's wake-up: into the driver's list when there is one.
  static void finish_op(Waiter& w, FiberList* woken) noexcept {
    if (woken != nullptr) {
      w.complete(Waiter::kNotified, *woken);
    } else {
      w.complete(Waiter::kNotified);
    }
  }
  static void wake_final(Waiter& w, FiberList* woken) noexcept {
    if (woken != nullptr) {
      w.wake(Waiter::kNotified, *woken);
    } else {
      w.wake(Waiter::kNotified);
    }
  }

  io_uring ring_{};
  bool ring_ok_ = false;
  bool disabled_ = false;
  unsigned flags_ = 0;
  int wake_fd_ = -1;
  std::uint64_t wake_buf_ = 0;
  bool wake_armed_ = false;
  unsigned pending_ = 0;      // owner: SQEs queued, not yet submitted
  std::size_t inflight_ = 0;  // owner: requests submitted, not yet reaped
  std::uint16_t tag_ = 0;     // owner: user_data tag counter

  SpinLock mail_lock_;
  std::atomic<bool> mail_{false};  // hint: the mailbox may be non-empty
  UringOp* abandoned_ WEFT_GUARDED_BY(mail_lock_) = nullptr;
  std::vector<std::pair<IoObject*, int>> cancel_fds_ WEFT_GUARDED_BY(mail_lock_);
};

}  // namespace

std::unique_ptr<Backend> make_uring_backend(const Config& config) {
  auto b = std::make_unique<UringBackend>();
  const int r = b->init(config);
  if (r != 0) {
    errno = -r;
    return nullptr;
  }
  return b;
}

}  // namespace weft::detail::io
