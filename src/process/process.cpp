// weft::process: child processes for fibers.
//
// Starting. posix_spawn, not fork+exec: glibc implements it with
// clone(CLONE_VM | CLONE_VFORK), so the cost does not grow with the
// parent's memory, no atfork handler runs, and an exec failure comes back
// as posix_spawn's return value (the child reports it through the shared
// memory before it exits) - a missing program is an ENOENT exception from
// spawn(), not a child exiting with 127. File actions connect stdio
// (dup2 of a pipe end, open of /dev/null) and change directory
// (addchdir_np, glibc 2.29). POSIX_SPAWN_SETSIGMASK gives the child an
// empty signal mask and POSIX_SPAWN_SETSIGDEF default dispositions for
// every signal: the runtime ignores SIGPIPE and a fiber may have signals
// blocked on its worker, and neither must leak into the child. Every pipe
// is created close-on-exec, so a spawn running concurrently on another
// thread never inherits another child's pipe ends; the child's ends are
// made >= 3 so that dup2 onto 0..2 always clears close-on-exec (dup2 of a
// descriptor onto itself would not).
//
// Waiting. Rejected: SIGCHLD plus waitpid(pid) (needs process-wide signal
// state and is racy with pid reuse) and a blocking waitpid on the blocking
// pool (a thread per waiting child). Chosen: pidfd_open(pid) right after
// the spawn. A pidfd becomes readable when the process exits, so the
// reactor waits on it like on a socket (Op::poll: io_uring poll_add, or
// epoll readiness, or poll(2) on a plain thread); then
// waitid(P_PIDFD, WEXITED | WNOHANG) reaps. The pidfd also makes kill()
// race-free (pidfd_send_signal cannot reach a process that reused the pid).
// Tokio and Rust's std use pidfds the same way where available.
//
// Cancellation of wait() terminates the child the way service managers do
// (SIGTERM, a grace period, SIGKILL) with every wait in it non-cancellable,
// so that the fiber that was cancelled still reaps what it started before
// Cancelled propagates. ~Child kills (SIGKILL) and reaps a child nobody
// waited for: no zombie or orphan is ever left behind by weft.
#include "weft/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "io/backend.hpp"
#include "io/error.hpp"
#include "io/io_object.hpp"
#include "io/request.hpp"
#include "signal/signal_impl.hpp"
#include "weft/errors.hpp"
#include "weft/fiber.hpp"
#include "weft/sync.hpp"
#include "weft/this_fiber.hpp"

extern char** environ;  // NOLINT: POSIX

namespace weft::process {
namespace {

namespace io = detail::io;

#ifndef PIDFD_NONBLOCK
constexpr unsigned kPidfdNonblock = O_NONBLOCK;
#else
constexpr unsigned kPidfdNonblock = PIDFD_NONBLOCK;
#endif

constexpr std::size_t kReadChunk = 64 * 1024;

// An owned descriptor, closed unless released.
class Fd {
 public:
  Fd() noexcept = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset() noexcept {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  }

 private:
  int fd_ = -1;
};

// Writes to a pipe whose reader has gone must fail with EPIPE rather than
// kill the process; as in RuntimeImpl's constructor, a disposition the
// program chose itself is left alone.
void ignore_sigpipe() noexcept {
  struct sigaction old {};
  if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) {
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    ::sigaction(SIGPIPE, &ign, nullptr);
  }
}

// Moves fd to a number >= 3 (see the file comment), close-on-exec.
Fd above_stdio(Fd fd) {
  if (fd.get() >= 3) return fd;
  const int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) io::throw_errno(errno, "fcntl(F_DUPFD_CLOEXEC)");
  return Fd(moved);
}

// A pipe for one of the child's standard streams: the parent's end is
// non-blocking (the reactor needs that), the child's stays blocking (the
// program expects ordinary stdio). Both are close-on-exec; the child's loses
// that flag when dup2'ed onto 0..2.
struct StdioPipe {
  Fd parent;
  Fd child;
};

StdioPipe make_pipe(bool child_reads) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) io::throw_errno(errno, "pipe2");
  Fd r(fds[0]);
  Fd w(fds[1]);
  StdioPipe p;
  p.parent = above_stdio(child_reads ? std::move(w) : std::move(r));
  p.child = above_stdio(child_reads ? std::move(r) : std::move(w));
  const int flags = ::fcntl(p.parent.get(), F_GETFL);
  if (flags < 0 || ::fcntl(p.parent.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    io::throw_errno(errno, "fcntl(O_NONBLOCK)");
  }
  return p;
}

int pidfd_open(pid_t pid) noexcept {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, kPidfdNonblock));
  if (fd < 0 && errno == EINVAL) {
    // Kernels before 5.10 have no PIDFD_NONBLOCK; waitid() is only ever
    // called with WNOHANG, so the flag does not matter for it.
    fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0U));
    if (fd >= 0) ::fcntl(fd, F_SETFL, O_NONBLOCK);
  }
  return fd;
}

int pidfd_send_signal(int pidfd, int signo) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signo, nullptr, 0U));
}

// The last resort when a spawned child cannot be tracked: kill and reap it
// synchronously (SIGKILL takes effect at once).
void kill_and_reap_blocking(pid_t pid) noexcept {
  ::kill(pid, SIGKILL);
  int st;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
}

// RAII for the posix_spawn structures.
struct SpawnActions {
  SpawnActions() {
    if (const int e = ::posix_spawn_file_actions_init(&fa); e != 0) {
      io::throw_errno(e, "posix_spawn_file_actions_init");
    }
  }
  ~SpawnActions() { ::posix_spawn_file_actions_destroy(&fa); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
  void check(int e, const char* what) const {
    if (e != 0) io::throw_errno(e, what);
  }
  posix_spawn_file_actions_t fa;
};

struct SpawnAttr {
  SpawnAttr() {
    if (const int e = ::posix_spawnattr_init(&attr); e != 0) {
      io::throw_errno(e, "posix_spawnattr_init");
    }
  }
  ~SpawnAttr() { ::posix_spawnattr_destroy(&attr); }
  SpawnAttr(const SpawnAttr&) = delete;
  SpawnAttr& operator=(const SpawnAttr&) = delete;
  posix_spawnattr_t attr;
};

void check_grace(std::chrono::nanoseconds grace) {
  if (grace < std::chrono::nanoseconds::zero()) {
    throw std::invalid_argument("weft: process kill grace must not be negative");
  }
}

std::string describe(pid_t pid) {
  return "process " + std::to_string(pid);
}

// Reads both pipes to their end on a plain thread: poll(2) over the two
// non-blocking descriptors. (No second thread needed; the caller blocks
// anyway.) The pipes are owned by the caller alone, so going around the
// reactor is fine.
void drain_both_on_thread(Pipe& out, Pipe& err, std::string& out_data, std::string& err_data,
                          Deadline deadline) {
  struct Stream {
    int fd;
    std::string* data;
  } streams[2] = {{out.native_handle(), &out_data}, {err.native_handle(), &err_data}};
  int open = 0;
  for (const Stream& s : streams) open += s.fd >= 0;
  while (open > 0) {
    pollfd p[2];
    Stream* which[2];
    nfds_t n = 0;
    for (Stream& s : streams) {
      if (s.fd < 0) continue;
      p[n] = pollfd{s.fd, POLLIN, 0};
      which[n++] = &s;
    }
    int timeout_ms = -1;
    if (!deadline.is_none()) {
      const auto left = deadline.remaining();
      if (left.count() == 0) throw TimedOut();
      timeout_ms = static_cast<int>((left.count() + 999'999) / 1'000'000);
    }
    const int k = ::poll(p, n, timeout_ms);
    if (k < 0) {
      if (errno == EINTR) continue;
      io::throw_errno(errno, "poll");
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (p[i].revents == 0) continue;
      Stream& s = *which[i];
      for (;;) {
        const std::size_t old = s.data->size();
        s.data->resize(old + kReadChunk);
        const ssize_t r = ::read(s.fd, s.data->data() + old, kReadChunk);
        s.data->resize(old + (r > 0 ? static_cast<std::size_t>(r) : 0));
        if (r > 0) continue;
        if (r == 0) {
          s.fd = -1;
          --open;
          break;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        io::throw_errno(errno, "read from a child's pipe");
      }
    }
  }
}

// Standard error drained by a second fiber for output(): shared with it so
// that output() may return (deadline, cancellation) before the fiber ends.
struct ErrDrain {
  Pipe pipe;
  std::string data;
  std::exception_ptr error;
  Event done;
};

}  // namespace

// --- ExitStatus ---------------------------------------------------------------

std::string ExitStatus::to_string() const {
  if (signal_ == 0) return "exit code " + std::to_string(code_);
  std::string s =
      "signal " + std::to_string(signal_) + " (" + detail::sig::description(signal_) + ")";
  if (core_) s += ", core dumped";
  return s;
}

// --- Pipe -------------------------------------------------------------------

Pipe::Pipe(int fd) : obj_(io::adopt(fd, true)), fd_(fd) {}

Pipe::Pipe(Pipe&& other) noexcept
    : obj_(std::exchange(other.obj_, nullptr)), fd_(std::exchange(other.fd_, -1)) {}

Pipe& Pipe::operator=(Pipe&& other) noexcept {
  if (this != &other) {
    if (obj_ != nullptr) io::drop_handle(obj_);
    obj_ = std::exchange(other.obj_, nullptr);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

Pipe::~Pipe() {
  if (obj_ != nullptr) io::drop_handle(obj_);
}

void Pipe::close() noexcept {
  if (obj_ != nullptr) io::close(obj_);
}

bool Pipe::is_open() const noexcept {
  if (obj_ == nullptr) return false;
  detail::LockGuard g(obj_->lock);
  return !obj_->closed;
}

std::size_t Pipe::read(void* buf, std::size_t len, Deadline deadline) {
  if (obj_ == nullptr) io::throw_errno(EBADF, "read from an empty pipe");
  if (len == 0) return 0;
  io::Request r;
  r.op = io::Op::read;
  r.fd = fd_;
  r.buf = buf;
  r.len = len;
  return static_cast<std::size_t>(
      io::check(io::perform(r, obj_, deadline.ns()), "read from a child's pipe"));
}

std::string Pipe::read_to_end(Deadline deadline) {
  std::string data;
  for (;;) {
    const std::size_t old = data.size();
    data.resize(old + kReadChunk);
    const std::size_t n = read(data.data() + old, kReadChunk, deadline);
    data.resize(old + n);
    if (n == 0) return data;
  }
}

std::size_t Pipe::write(const void* buf, std::size_t len, Deadline deadline) {
  if (obj_ == nullptr) io::throw_errno(EBADF, "write to an empty pipe");
  if (len == 0) return 0;
  io::Request r;
  r.op = io::Op::write;
  r.fd = fd_;
  r.buf = const_cast<void*>(buf);
  r.len = len;
  return static_cast<std::size_t>(
      io::check(io::perform(r, obj_, deadline.ns()), "write to a child's pipe"));
}

void Pipe::write_all(const void* buf, std::size_t len, Deadline deadline) {
  const auto* p = static_cast<const char*>(buf);
  while (len > 0) {
    const std::size_t n = write(p, len, deadline);
    p += n;
    len -= n;
  }
}

// --- Child ------------------------------------------------------------------

Child::Child(Child&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      group_(std::exchange(other.group_, false)),
      forwarding_(std::exchange(other.forwarding_, 0)),
      pidfd_(std::exchange(other.pidfd_, -1)),
      pidfd_obj_(std::exchange(other.pidfd_obj_, nullptr)),
      status_(std::exchange(other.status_, std::nullopt)),
      grace_(other.grace_),
      in_(std::move(other.in_)),
      out_(std::move(other.out_)),
      err_(std::move(other.err_)) {}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    release();
    pid_ = std::exchange(other.pid_, -1);
    group_ = std::exchange(other.group_, false);
    forwarding_ = std::exchange(other.forwarding_, 0);
    pidfd_ = std::exchange(other.pidfd_, -1);
    pidfd_obj_ = std::exchange(other.pidfd_obj_, nullptr);
    status_ = std::exchange(other.status_, std::nullopt);
    grace_ = other.grace_;
    in_ = std::move(other.in_);
    out_ = std::move(other.out_);
    err_ = std::move(other.err_);
  }
  return *this;
}

Child::~Child() {
  release();
}

void Child::stop_forwarding() noexcept {
  // Once this returns the dispatcher no longer runs the callback, which
  // uses pidfd_ and pid_: only then may the pidfd close.
  if (forwarding_ != 0) detail::sig::unsubscribe(std::exchange(forwarding_, 0));
}

void Child::signal_all(int signo) noexcept {
  // The group while the leader is unreaped: its zombie holds the id, so the
  // group id cannot name another group yet.
  if (group_ && !status_) ::kill(-pid_, signo);
  pidfd_send_signal(pidfd_, signo);
}

void Child::release() noexcept {
  stop_forwarding();
  if (pidfd_obj_ == nullptr) return;
  if (!status_) {
    signal_all(SIGKILL);
    try {
      while (!reap_if_exited()) wait_exit(detail::kNoDeadline, false);
    } catch (...) {
      // waitid failed (ECHILD: reaped elsewhere) or the reactor refused the
      // wait: nothing more can be done through the pidfd.
    }
  }
  io::drop_handle(std::exchange(pidfd_obj_, nullptr));
  pidfd_ = -1;
}

void Child::require() const {
  if (pidfd_obj_ == nullptr) throw std::logic_error("weft: use of an empty process::Child");
}

std::optional<ExitStatus> Child::reap_if_exited() {
  if (status_) return status_;
  siginfo_t info{};
  while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_), &info,
                  WEXITED | WNOHANG) != 0) {
    if (errno != EINTR) io::throw_errno(errno, "waitid(" + describe(pid_) + ")");
  }
  if (info.si_pid == 0) return std::nullopt;  // still running
  stop_forwarding();
  switch (info.si_code) {
    case CLD_EXITED:
      status_ = ExitStatus::exited(info.si_status);
      break;
    case CLD_DUMPED:
      status_ = ExitStatus::killed(info.si_status, true);
      break;
    default:  // CLD_KILLED
      status_ = ExitStatus::killed(info.si_status);
      break;
  }
  return status_;
}

void Child::wait_exit(std::int64_t deadline_ns, bool cancellable) {
  io::Request r;
  r.op = io::Op::poll;
  r.fd = pidfd_;
  r.poll_events = POLLIN;
  io::check(io::perform(r, pidfd_obj_, deadline_ns, cancellable),
            ("wait for " + describe(pid_)).c_str());
}

void Child::terminate() noexcept {
  try {
    if (reap_if_exited()) return;
    signal_all(SIGTERM);
    const std::int64_t until = Deadline::after(grace_).ns();
    try {
      while (!reap_if_exited()) wait_exit(until, false);
      return;
    } catch (const TimedOut&) {
    }
    signal_all(SIGKILL);
    while (!reap_if_exited()) wait_exit(detail::kNoDeadline, false);
  } catch (...) {
    // As in release(): nothing more can be done; ~Child tries again.
  }
}

ExitStatus Child::wait(Deadline deadline) {
  require();
  try {
    for (;;) {
      if (auto s = reap_if_exited()) return *s;
      wait_exit(deadline.ns(), true);
    }
  } catch (const Cancelled&) {
    // Terminate outside the handler: it parks, and Cancelled is rethrown
    // fresh afterwards.
  }
  terminate();
  throw Cancelled();
}

std::optional<ExitStatus> Child::wait_for(Deadline deadline) {
  try {
    return wait(deadline);
  } catch (const TimedOut&) {
    return std::nullopt;
  }
}

std::optional<ExitStatus> Child::try_wait() {
  require();
  return reap_if_exited();
}

void Child::kill(int signo) {
  require();
  if (pidfd_send_signal(pidfd_, signo) != 0 && errno != ESRCH) {
    io::throw_errno(errno, "kill(" + describe(pid_) + ", " + std::to_string(signo) + ")");
  }
}

void Child::kill_group(int signo) {
  require();
  if (!group_) throw std::logic_error("weft: Child::kill_group needs Command::process_group()");
  if (status_) return;
  if (::kill(-pid_, signo) != 0 && errno != ESRCH) {
    io::throw_errno(
        errno, "kill(process group " + std::to_string(pid_) + ", " + std::to_string(signo) + ")");
  }
}

void Child::set_kill_grace(std::chrono::nanoseconds grace) {
  check_grace(grace);
  grace_ = grace;
}

// --- Command ----------------------------------------------------------------

Command::Command(std::string program) : program_(std::move(program)) {}

Command& Command::arg(std::string_view a) {
  args_.emplace_back(a);
  return *this;
}

Command& Command::args(std::initializer_list<std::string_view> as) {
  for (std::string_view a : as) args_.emplace_back(a);
  return *this;
}

Command& Command::args(std::span<const std::string> as) {
  args_.insert(args_.end(), as.begin(), as.end());
  return *this;
}

Command& Command::env(std::string_view key, std::string_view value) {
  env_.insert_or_assign(std::string(key), std::string(value));
  return *this;
}

Command& Command::env_remove(std::string_view key) {
  env_.insert_or_assign(std::string(key), std::nullopt);
  return *this;
}

Command& Command::env_clear() {
  env_clear_ = true;
  env_.clear();
  return *this;
}

Command& Command::cwd(std::string dir) {
  cwd_ = std::move(dir);
  return *this;
}

Command& Command::std_in(Stdio s) {
  in_ = s;
  return *this;
}

Command& Command::std_out(Stdio s) {
  out_ = s;
  return *this;
}

Command& Command::std_err(Stdio s) {
  err_ = s;
  return *this;
}

Command& Command::forward_signals(std::initializer_list<int> signals) {
  forward_ = detail::sig::validated(signals, "Command::forward_signals").bits;
  return *this;
}

Command& Command::process_group(bool on) {
  group_ = on;
  return *this;
}

Command& Command::kill_grace(std::chrono::nanoseconds grace) {
  check_grace(grace);
  grace_ = grace;
  return *this;
}

Child Command::spawn() const {
  return spawn_with(in_.value_or(Stdio::inherit), out_, err_);
}

Child Command::spawn_with(Stdio in, Stdio out, Stdio err) const {
  const Stdio modes[3] = {in, out, err};
  StdioPipe pipes[3];
  SpawnActions actions;
  for (int i = 0; i < 3; ++i) {
    if (modes[i] == Stdio::null) {
      actions.check(::posix_spawn_file_actions_addopen(&actions.fa, i, "/dev/null",
                                                       i == 0 ? O_RDONLY : O_WRONLY, 0),
                    "posix_spawn_file_actions_addopen");
    } else if (modes[i] == Stdio::pipe) {
      ignore_sigpipe();
      pipes[i] = make_pipe(i == 0);
      actions.check(::posix_spawn_file_actions_adddup2(&actions.fa, pipes[i].child.get(), i),
                    "posix_spawn_file_actions_adddup2");
    }
  }
  if (cwd_) {
    actions.check(::posix_spawn_file_actions_addchdir_np(&actions.fa, cwd_->c_str()),
                  "posix_spawn_file_actions_addchdir_np");
  }

  SpawnAttr attr;
  sigset_t none;
  sigset_t all;
  sigemptyset(&none);
  sigfillset(&all);
  ::posix_spawnattr_setsigmask(&attr.attr, &none);
  ::posix_spawnattr_setsigdefault(&attr.attr, &all);
  short spawn_flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (group_) {
    ::posix_spawnattr_setpgroup(&attr.attr, 0);  // a new group, led by the child
    spawn_flags |= POSIX_SPAWN_SETPGROUP;
  }
  ::posix_spawnattr_setflags(&attr.attr, spawn_flags);

  std::vector<char*> argv;
  argv.reserve(args_.size() + 2);
  argv.push_back(const_cast<char*>(program_.c_str()));
  for (const std::string& a : args_) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  std::vector<std::string> env_strings;
  std::vector<char*> envp;
  char** env_ptr = environ;
  if (env_clear_ || !env_.empty()) {
    if (!env_clear_) {
      for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        const std::string_view kv(*e);
        const std::string_view key = kv.substr(0, kv.find('='));
        if (env_.find(key) == env_.end()) env_strings.emplace_back(kv);
      }
    }
    for (const auto& [key, value] : env_) {
      if (value) env_strings.push_back(key + "=" + *value);
    }
    envp.reserve(env_strings.size() + 1);
    for (std::string& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    env_ptr = envp.data();
  }

  pid_t pid = -1;
  const bool is_path = program_.find('/') != std::string::npos;
  const int rc =
      is_path
          ? ::posix_spawn(&pid, program_.c_str(), &actions.fa, &attr.attr, argv.data(), env_ptr)
          : ::posix_spawnp(&pid, program_.c_str(), &actions.fa, &attr.attr, argv.data(), env_ptr);
  for (StdioPipe& p : pipes) p.child.reset();
  if (rc != 0) {
    std::string what = "spawn '" + program_ + "'";
    if (cwd_) what += " in '" + *cwd_ + "'";
    io::throw_errno(rc, what);
  }

  const int pidfd = pidfd_open(pid);
  if (pidfd < 0) {
    const int e = errno;
    kill_and_reap_blocking(pid);
    io::throw_errno(e, "pidfd_open(" + describe(pid) + ")");
  }
  Child child;
  try {
    child.pidfd_obj_ = io::adopt(pidfd, true);  // closes pidfd if it throws
  } catch (...) {
    kill_and_reap_blocking(pid);
    throw;
  }
  child.pid_ = pid;
  child.pidfd_ = pidfd;
  child.grace_ = grace_;
  child.group_ = group_;
  if (forward_ != 0) {
    // On the dispatcher thread: async-signal-safe work only, and nothing
    // that can outlive the Child (stop_forwarding() waits it out).
    const bool group = group_;
    child.forwarding_ =
        detail::sig::subscribe(detail::sig::SigSet{forward_}, [pid, pidfd, group](int s) {
          if (group) ::kill(-pid, s);
          pidfd_send_signal(pidfd, s);
        });
  }
  // From here on ~Child kills and reaps if anything throws.
  Pipe* ends[3] = {&child.in_, &child.out_, &child.err_};
  for (int i = 0; i < 3; ++i) {
    if (pipes[i].parent.get() >= 0) *ends[i] = Pipe(pipes[i].parent.release());
  }
  return child;
}

ExitStatus Command::status(Deadline deadline) const {
  Child child = spawn();
  return child.wait(deadline);  // on TimedOut, ~Child kills and reaps
}

Output Command::output(Deadline deadline) const {
  Child child = spawn_with(in_.value_or(Stdio::null), Stdio::pipe, Stdio::pipe);
  child.in_.close();  // only with Stdio::pipe: nobody could write to it
  Output result;
  if (!this_fiber::in_fiber()) {
    // Plain thread: no cancellation; ~Child kills and reaps on any throw.
    drain_both_on_thread(child.out_, child.err_, result.out, result.err, deadline);
    result.status = child.wait(deadline);
    return result;
  }

  auto drain = std::make_shared<ErrDrain>();
  drain->pipe = std::move(child.err_);
  // The fiber never throws (a detached fiber's exception would be reported
  // on stderr); it hands its outcome over through the shared state.
  weft::spawn([drain, deadline] {
    try {
      drain->data = drain->pipe.read_to_end(deadline);
    } catch (...) {
      drain->error = std::current_exception();
    }
    drain->done.set();
  }).detach();

  try {
    result.out = child.out_.read_to_end(deadline);
    if (!drain->done.wait_until(deadline.when())) throw TimedOut();
    if (drain->error) std::rethrow_exception(drain->error);
    result.err = std::move(drain->data);
    result.status = child.wait(deadline);
    return result;
  } catch (const Cancelled&) {
    drain->pipe.close();  // the drain fiber ends with EBADF soon
  } catch (...) {
    drain->pipe.close();
    throw;  // ~Child kills and reaps
  }
  child.terminate();  // outside the handler: it parks
  throw Cancelled();
}

}  // namespace weft::process
