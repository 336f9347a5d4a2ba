// Routing of I/O requests, the plain-thread path, blocking-pool requests and
// backend selection.
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <system_error>

#include "fiber/fiber.hpp"
#include "io/backend.hpp"
#include "io/fault.hpp"
#include "obs/metrics.hpp"
#include "obs/trace.hpp"
#include "sched/current.hpp"
#include "sched/runtime_impl.hpp"
#include "sched/waiter.hpp"
#include "weft/detail/task.hpp"
#include "weft/errors.hpp"

namespace weft::detail::io {
namespace {

// A plain thread: blocking system calls, waiting for readiness with poll(2).
std::int64_t perform_on_thread(const Request& r, IoObject* o, std::int64_t deadline_ns) {
  if (o == nullptr || !o->pollable) return run_syscall(r);
  bool connecting = false;  // a connect in progress is waited for, never reissued
  for (;;) {
    if (!connecting) {
      const std::int64_t n = run_syscall(r);
      connecting = r.op == Op::connect && n == -EINPROGRESS;
      if (n != -EAGAIN && !connecting) return n;
    }
    int timeout_ms = -1;
    if (deadline_ns >= 0) {
      const std::int64_t left = deadline_ns - monotonic_ns();
      if (left <= 0) throw TimedOut();
      const std::int64_t ms = (left + 999'999) / 1'000'000;
      timeout_ms = ms > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(ms);
    }
    pollfd p{r.fd, r.readiness(), 0};
    const int k = ::poll(&p, 1, timeout_ms);
    if (k < 0 && errno != EINTR) return -errno;
    if (k > 0 && connecting) {
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(r.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return -errno;
      return err == 0 ? 0 : -err;
    }
    if (k > 0 && r.op == Op::poll) return p.revents;
  }
}

constexpr bool reads_data(Op op) noexcept {
  return op == Op::read || op == Op::readv || op == Op::recv || op == Op::recvmsg;
}
constexpr bool writes_data(Op op) noexcept {
  return op == Op::write || op == Op::writev || op == Op::send || op == Op::sendmsg;
}
static_assert(static_cast<std::size_t>(Op::unlinkat) + 1 == obs::kIoOps,
              "obs::Counter reserves one io_op counter per io::Op");

// The trace's I/O events (obs/trace.hpp), from the calling fiber's side:
// submit when the call starts, complete when it returns to the fiber.
[[gnu::noinline, gnu::cold]] void trace_io(obs::trace::Kind kind, const Request& r,
                                           std::int64_t result) noexcept {
  const Fiber* f = current_fiber();
  obs::trace::record(kind, f != nullptr ? f->id : 0, static_cast<std::uint64_t>(r.fd),
                     static_cast<std::uint64_t>(result),
                     obs::kIoOpNames[static_cast<std::size_t>(r.op)]);
}

// The I/O metrics of one io::perform call: weft_io_operations_total{op},
// weft_io_pending_operations (started - finished), the bytes moved and the
// sampled duration. Bumped on the thread the call starts and ends on (a
// fiber may end it on another worker: both are thread shards, and the sums
// are what is read). With a trace recording, also its submit and complete
// events (a call that throws completes with -ECANCELED).
class IoMetrics {
 public:
  explicit IoMetrics(const Request& r) noexcept : r_(r) {
    if (obs::trace::on()) trace_io(obs::trace::Kind::io_submit, r_, 0);
    obs::Shard& m = obs::local();
    m.add(static_cast<obs::Counter>(static_cast<std::size_t>(obs::Counter::io_op_first) +
                                    static_cast<std::size_t>(r.op)));
    m.add(obs::Counter::io_started);
    if (m.sample(obs::Hist::io_duration)) t0_ = monotonic_ns();
  }
  ~IoMetrics() {
    obs::Shard& m = obs::local();  // afresh: the fiber may have moved
    m.add(obs::Counter::io_finished);
    if (n_ > 0 && reads_data(r_.op))
      m.add(obs::Counter::io_read_bytes, static_cast<std::uint64_t>(n_));
    if (n_ > 0 && writes_data(r_.op)) {
      m.add(obs::Counter::io_write_bytes, static_cast<std::uint64_t>(n_));
    }
    if (t0_ != 0)
      m.observe(obs::Hist::io_duration, static_cast<std::uint64_t>(monotonic_ns() - t0_));
    if (obs::trace::on()) trace_io(obs::trace::Kind::io_complete, r_, done_ ? n_ : -ECANCELED);
  }
  IoMetrics(const IoMetrics&) = delete;
  IoMetrics& operator=(const IoMetrics&) = delete;
  std::int64_t done(std::int64_t n) noexcept {
    done_ = true;
    return n_ = n;
  }

 private:
  const Request& r_;
  bool done_ = false;
  std::int64_t n_ = 0;
  std::int64_t t0_ = 0;
};

struct BlockingSyscall final : TaskBase {
  explicit BlockingSyscall(const Request& req) : r(req) {}
  void run() noexcept override { result = run_syscall(r); }
  Request r;
  std::int64_t result = 0;
};

}  // namespace

Backend* Backend::of_calling_fiber() noexcept {
  // Every reactor of a runtime is a Backend (make_reactors).
  return current_fiber() != nullptr ? static_cast<Backend*>(current_reactor()) : nullptr;
}

std::vector<std::unique_ptr<Reactor>> make_reactors(const Config& config, std::size_t count) {
  auto backends = Backend::create_all(config, count);
  std::vector<std::unique_ptr<Reactor>> out;
  out.reserve(backends.size());
  for (auto& b : backends) out.push_back(std::move(b));
  return out;
}

std::int64_t perform_blocking(const Request& r) {
  if (current_fiber() == nullptr) return run_syscall(r);
  auto* task = new BlockingSyscall(r);
  try {
    current_runtime()->spawn_blocking(task);
  } catch (...) {
    task->release_handle(false);
    task->drop_runner();
    throw;
  }
  task->wait(false);  // the pool thread owns the caller's buffers until done
  const std::int64_t result = task->result;
  task->release_handle(false);
  return result;
}

namespace {

// perform() once the operation reference is held: on backend b, or on the
// calling plain thread when b is null.
std::int64_t dispatch(const Request& r, IoObject* o, Backend* b, std::int64_t deadline_ns,
                      bool cancellable) {
  std::int64_t n;
  if (b == nullptr) {
    n = perform_on_thread(r, o, deadline_ns);
  } else {
    for (;;) {
      try {
        n = b->perform(r, o, deadline_ns, cancellable);
        break;
      } catch (const TimedOut&) {
        // The timer wheel clamps far deadlines (~12 days): an early expiry
        // withdrew the request without transferring anything; reissue it.
        if (deadline_ns < 0 || monotonic_ns() >= deadline_ns) throw;
        b = Backend::of_calling_fiber();
      }
    }
    // Kernels that answer a request on a non-blocking descriptor with
    // EAGAIN instead of waiting: wait for readiness, then retry.
    while (n == -EAGAIN && o != nullptr && o->pollable && r.op != Op::poll &&
           b->kind() == IoBackend::io_uring) {
      Request p;
      p.op = Op::poll;
      p.fd = r.fd;
      p.poll_events = r.readiness();
      // Each request goes to the ring of the worker the fiber runs on now:
      // it may have moved while it was parked.
      n = Backend::of_calling_fiber()->perform(p, o, deadline_ns, cancellable);
      if (n < 0) break;
      n = Backend::of_calling_fiber()->perform(r, o, deadline_ns, cancellable);
    }
  }
  if (o != nullptr && n == -ECANCELED) {
    LockGuard g(o->lock);
    if (o->closed) n = -EBADF;
  }
  return n;
}

// Test-only fault injection (fault.hpp): a failure is reported as the
// operation's result without running it; a short transfer runs with a
// smaller length; an injected EAGAIN on a pollable descriptor waits for
// readiness first, as a real one would make the backend do.
std::int64_t dispatch_with_faults(const Request& r, IoObject* o, Backend* b,
                                  std::int64_t deadline_ns, bool cancellable) {
  const std::int64_t f = fault::intercept(r);
  if (f == 0) return dispatch(r, o, b, deadline_ns, cancellable);
  if (f == -EAGAIN && o != nullptr && o->pollable && r.op != Op::poll) {
    Request p;
    p.op = Op::poll;
    p.fd = r.fd;
    p.poll_events = r.readiness();
    const std::int64_t ready = dispatch(p, o, b, deadline_ns, cancellable);
    if (ready < 0) return ready;
    if (b != nullptr) b = Backend::of_calling_fiber();  // the fiber may have moved
    return dispatch(r, o, b, deadline_ns, cancellable);
  }
  if (f < 0) return f;
  Request shorter = r;
  shorter.len = static_cast<std::size_t>(f);
  return dispatch(shorter, o, b, deadline_ns, cancellable);
}

}  // namespace

std::int64_t perform(const Request& r, IoObject* o, std::int64_t deadline_ns, bool cancellable) {
  // A cancellation point even when the call would not block (io.md).
  if (cancellable && is_cancelled(current_fiber())) throw Cancelled();
  IoMetrics metrics(r);
  OpGuard guard(o);
  if (o != nullptr && !guard) return -EBADF;
  Backend* b = Backend::of_calling_fiber();
  if (fault::armed()) return metrics.done(dispatch_with_faults(r, o, b, deadline_ns, cancellable));
  return metrics.done(dispatch(r, o, b, deadline_ns, cancellable));
}

std::vector<std::unique_ptr<Backend>> Backend::create_all(const Config& config, std::size_t count) {
  std::vector<std::unique_ptr<Backend>> out;
  out.reserve(count);
  IoBackend kind = config.io_backend;
  if (kind != IoBackend::epoll) {
    auto first = make_uring_backend(config);
    if (first == nullptr) {
      const int e = errno;
      if (kind == IoBackend::io_uring) {
        throw std::system_error(e, std::generic_category(),
                                "weft: io_uring requested (Config::io_backend / WEFT_IO_BACKEND) "
                                "but io_uring_queue_init failed");
      }
      kind = IoBackend::epoll;
    } else {
      kind = IoBackend::io_uring;
      out.push_back(std::move(first));
    }
  }
  while (out.size() < count) {
    if (kind == IoBackend::epoll) {
      out.push_back(make_epoll_backend());
      continue;
    }
    auto b = make_uring_backend(config);
    if (b == nullptr) {
      throw std::system_error(
          errno, std::generic_category(),
          "weft: io_uring_queue_init failed for worker " + std::to_string(out.size()));
    }
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace weft::detail::io
