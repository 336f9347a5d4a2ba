// weft::process: starting child processes, talking to them through pipes,
// waiting for them - from fibers (only the fiber parks) or plain threads.
//
//   auto out = weft::process::Command("git").args({"log", "-1"}).cwd(repo).output();
//   if (!out.status.success()) throw std::runtime_error(out.err);
//
//   auto child = weft::process::Command("cat").std_in(Stdio::pipe)
//                    .std_out(Stdio::pipe).spawn();
//   child.stdin_pipe().write_all("hello");
//   child.stdin_pipe().close();                      // cat sees end of input
//   std::string echoed = child.stdout_pipe().read_to_end();
//   child.wait();
//
// How (src/process/process.cpp): posix_spawn (glibc runs it with
// CLONE_VFORK and reports an exec failure as its return value, so a missing
// program is an exception from spawn(), not a child exiting with 127), with
// the child's signal mask emptied and every signal's disposition reset to
// the default (the runtime ignores SIGPIPE; children must not inherit
// that). The child is then tracked through a pidfd (pidfd_open), which the
// reactor waits on like any descriptor, and reaped with
// waitid(P_PIDFD, ...). A pidfd names the process itself, never a later
// process that reuses its pid, so kill() is safe at any time.
//
// Reaping. weft reaps exactly the children it spawned, through their
// pidfds. A program must not set SIGCHLD to SIG_IGN (the kernel would then
// reap children itself) nor call wait(-1)/waitpid(-1, ...) (that steals
// weft's children; Child::wait would then fail with ECHILD).
//
// Errors: std::system_error with the errno (ENOENT for a missing program
// or working directory, EACCES, EPIPE when writing to a child that closed
// its input, EBADF after close()), weft::TimedOut when a deadline passes,
// weft::Cancelled when the calling fiber is cancelled. A call that times
// out or is cancelled has not transferred anything.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "weft/deadline.hpp"

namespace weft::detail::io {
struct IoObject;
}

namespace weft::process {

/// What a child's standard stream is connected to.
enum class Stdio {
  inherit,  ///< the parent's descriptor (0, 1 or 2)
  null,     ///< /dev/null
  pipe,     ///< a new pipe; the parent's end is Child::stdin_pipe() etc.
};

/// How a child process ended: exited with a code, or killed by a signal.
/// Value type.
class ExitStatus {
 public:
  /// A normal exit with `code` (0..255).
  static ExitStatus exited(int code) noexcept { return ExitStatus(code, 0, false); }
  /// Termination by signal `signo`.
  static ExitStatus killed(int signo, bool core_dumped = false) noexcept {
    return ExitStatus(0, signo, core_dumped);
  }

  /// True for a normal exit with code 0.
  bool success() const noexcept { return signal_ == 0 && code_ == 0; }
  /// The exit code after a normal exit; empty if a signal ended the child.
  std::optional<int> code() const noexcept {
    return signal_ == 0 ? std::optional<int>(code_) : std::nullopt;
  }
  /// The signal that ended the child; empty after a normal exit.
  std::optional<int> signal() const noexcept {
    return signal_ != 0 ? std::optional<int>(signal_) : std::nullopt;
  }
  /// True if a signal ended the child and it dumped core.
  bool core_dumped() const noexcept { return core_; }
  /// The shell's number for it: the code, or 128 + the signal.
  int shell_code() const noexcept { return signal_ != 0 ? 128 + signal_ : code_; }
  /// "exit code 3", "signal 9 (Killed)".
  std::string to_string() const;

  friend bool operator==(const ExitStatus&, const ExitStatus&) = default;

 private:
  ExitStatus(int code, int signo, bool core) noexcept : code_(code), signal_(signo), core_(core) {}
  int code_ = 0;
  int signal_ = 0;
  bool core_ = false;
};

/// The parent's end of a pipe to or from a child (non-blocking,
/// close-on-exec, registered with the runtime's reactor). Move-only; the
/// destructor closes it.
///
/// Blocking calls park only the calling fiber; from a plain thread they
/// block the thread. Each takes an optional deadline and is a cancellation
/// point. Writing to a pipe whose reader has gone fails with EPIPE and never
/// kills the process: creating a pipe sets SIGPIPE to SIG_IGN if it is still
/// SIG_DFL, as constructing a Runtime does.
///
/// Thread safety: one operation at a time per Pipe, except close(), which
/// may be called from any fiber or thread while another fiber is blocked in
/// an operation on it (that operation then fails with EBADF).
class Pipe {
 public:
  /// An empty (closed) pipe.
  Pipe() noexcept = default;
  /// Takes over other's descriptor; other is left empty.
  Pipe(Pipe&& other) noexcept;
  /// Closes this pipe, then takes over other's descriptor.
  Pipe& operator=(Pipe&& other) noexcept;
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe();

  /// Reads up to `len` bytes, waiting until at least one is available.
  /// Returns the count: 0 at end of stream (every writer closed) or for
  /// len == 0. @throws std::system_error (EBADF when closed or empty),
  /// weft::TimedOut, weft::Cancelled.
  std::size_t read(void* buf, std::size_t len, Deadline deadline = {});
  /// Reads until end of stream and returns everything read. On an
  /// exception the data read so far is lost. Errors as read().
  std::string read_to_end(Deadline deadline = {});
  /// Writes up to `len` bytes, waiting until at least one can be written;
  /// returns the count (may be short). @throws std::system_error (EPIPE when
  /// the child closed its end, EBADF), weft::TimedOut, weft::Cancelled.
  std::size_t write(const void* buf, std::size_t len, Deadline deadline = {});
  /// Writes all `len` bytes. On an exception an unknown prefix may have
  /// been written. Errors as write().
  void write_all(const void* buf, std::size_t len, Deadline deadline = {});
  /// write_all(data.data(), data.size(), deadline).
  void write_all(std::string_view data, Deadline deadline = {}) {
    write_all(data.data(), data.size(), deadline);
  }

  /// Closes the pipe (the child reads end of input from a closed
  /// stdin_pipe()). Calls blocked on it in other fibers wake and fail with
  /// EBADF. Idempotent; never blocks; never throws.
  void close() noexcept;
  /// False for an empty pipe, after close() or after a move.
  bool is_open() const noexcept;
  /// The descriptor, -1 when empty. Owned by this object: do not close it.
  int native_handle() const noexcept { return fd_; }

 private:
  friend class Command;
  explicit Pipe(int fd);  // takes ownership; closes fd and rethrows on failure
  detail::io::IoObject* obj_ = nullptr;
  int fd_ = -1;
};

/// A running or finished child process started by Command::spawn().
/// Move-only.
///
/// Destruction: if the child has not been reaped yet (no wait() or
/// try_wait() saw it end), the destructor kills it with SIGKILL and reaps
/// it, parking the calling fiber (or blocking the thread) until it is gone,
/// usually microseconds. So a Child never leaves a zombie or an orphan
/// behind, whatever exception unwinds past it. To let a process outlive
/// its Child, spawn it through a shell that detaches it (`sh -c 'cmd &'`).
///
/// Thread safety: one fiber or thread uses a Child at a time, except
/// kill(), which may be called from anywhere while another fiber waits.
/// Its pipes are separate objects (see Pipe).
class Child {
 public:
  /// An empty handle (no process).
  Child() noexcept = default;
  /// Takes over other's child; other is left empty.
  Child(Child&& other) noexcept;
  /// Kills and reaps the process this handle had, if still running.
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  /// The process id (kept after the child is reaped; -1 for an empty
  /// handle). Prefer kill() to the kill(2) system call on pid(): it cannot hit a process that
  /// reuses the id.
  pid_t pid() const noexcept { return pid_; }

  /// Waits until the child ends, reaps it and returns how it ended; once
  /// reaped, returns the same status again at once. The calling fiber parks
  /// on the reactor (pidfd readiness); a plain thread blocks.
  ///
  /// Cancellation: if the calling fiber is cancelled, the child is
  /// terminated - SIGTERM, then SIGKILL if it is still running after the
  /// kill grace period (Command::kill_grace, default 2 s) - and reaped,
  /// all without being cancellable itself, before weft::Cancelled
  /// propagates. The status stays available through try_wait(). (A child
  /// that has already ended is reaped and its status returned even to a
  /// cancelled fiber.) A deadline leaves the child running.
  ///
  /// @throws weft::TimedOut (the child keeps running), weft::Cancelled,
  ///         std::system_error (ECHILD if someone else reaped it),
  ///         std::logic_error for an empty handle.
  ExitStatus wait(Deadline deadline = {});
  /// wait() that returns an empty optional instead of throwing TimedOut.
  std::optional<ExitStatus> wait_for(Deadline deadline);
  /// The status if the child has ended (reaping it), else empty. Never
  /// blocks. @throws std::system_error, std::logic_error as wait().
  std::optional<ExitStatus> try_wait();

  /// Sends `signo` to the child (pidfd_send_signal). Does nothing if the
  /// child has already ended. @throws std::system_error (EINVAL for a bad
  /// signal number), std::logic_error for an empty handle.
  void kill(int signo = SIGKILL);

  /// Sends `signo` to the child's whole process group: the child and every
  /// process it started that stayed in the group (grandchildren included).
  /// Only for a child started with Command::process_group(). Does nothing
  /// once the child has been reaped (its group id could be reused).
  /// @throws std::logic_error ("weft: Child::kill_group needs
  /// Command::process_group()"); std::system_error (EINVAL for a bad
  /// signal number).
  void kill_group(int signo = SIGKILL);

  /// How long a cancelled wait() waits after SIGTERM before SIGKILL.
  /// @throws std::invalid_argument if negative.
  void set_kill_grace(std::chrono::nanoseconds grace);
  /// The grace period set by set_kill_grace().
  std::chrono::nanoseconds kill_grace() const noexcept { return grace_; }

  /// The parent's ends of the child's standard streams. Each is an empty
  /// Pipe unless the stream was set to Stdio::pipe. They may be moved out
  /// and used by other fibers.
  Pipe& stdin_pipe() noexcept { return in_; }
  /// As stdin_pipe(), for standard output.
  Pipe& stdout_pipe() noexcept { return out_; }
  /// As stdin_pipe(), for standard error.
  Pipe& stderr_pipe() noexcept { return err_; }

  /// False for an empty handle.
  explicit operator bool() const noexcept { return pid_ > 0; }

 private:
  friend class Command;
  void require() const;
  std::optional<ExitStatus> reap_if_exited();
  void wait_exit(std::int64_t deadline_ns, bool cancellable);
  void terminate() noexcept;            // SIGTERM, grace, SIGKILL, reap; never cancellable
  void release() noexcept;              // kill + reap if needed, then close the pidfd
  void signal_all(int signo) noexcept;  // the group if it has one, else the child
  void stop_forwarding() noexcept;

  pid_t pid_ = -1;
  bool group_ = false;            // leads its own process group (pgid == pid_)
  std::uint64_t forwarding_ = 0;  // signal subscription id (0: none)
  int pidfd_ = -1;
  detail::io::IoObject* pidfd_obj_ = nullptr;
  std::optional<ExitStatus> status_;
  std::chrono::nanoseconds grace_ = std::chrono::seconds(2);
  Pipe in_;
  Pipe out_;
  Pipe err_;
};

/// What Command::output() collected.
struct Output {
  /// How the child ended.
  ExitStatus status = ExitStatus::exited(0);
  std::string out;  ///< everything the child wrote to its standard output
  std::string err;  ///< everything the child wrote to its standard error
};

/// Builder for a child process. Copyable value; each spawn() uses the
/// settings as they are then. All setters return *this for chaining.
class Command {
 public:
  /// `program`: a path if it contains a '/', else looked up in the PATH of
  /// this process (not of the child's environment). It is also argv[0].
  explicit Command(std::string program);

  /// Appends one argument.
  Command& arg(std::string_view a);
  /// Appends several arguments.
  Command& args(std::initializer_list<std::string_view> as);
  /// Appends several arguments.
  Command& args(std::span<const std::string> as);

  /// Sets an environment variable for the child.
  Command& env(std::string_view key, std::string_view value);
  /// Removes a variable from the child's environment.
  Command& env_remove(std::string_view key);
  /// Starts the child's environment empty (variables set afterwards with
  /// env() are still passed); also forgets earlier env() calls.
  Command& env_clear();
  /// The child's working directory (default: the parent's). A directory
  /// that does not exist makes spawn() fail with ENOENT.
  Command& cwd(std::string dir);

  /// Standard input, output and error of the child. Default: Stdio::inherit
  /// for spawn() and status(); output() pipes the outputs and uses
  /// Stdio::null for an input not set here.
  Command& std_in(Stdio s);
  /// As std_in(), for standard output.
  Command& std_out(Stdio s);
  /// As std_in(), for standard error.
  Command& std_err(Stdio s);

  /// Forwards `signals` to the child while it runs (seed 001 §3.4): each
  /// one this process receives is sent on to the child (to its process
  /// group with process_group()). weft then handles those signals for the
  /// rest of the process (weft/signal.hpp: their default action, e.g.
  /// terminating on SIGTERM, no longer runs; use Runtime::shutdown_on_signals
  /// or signal::wait as well to act on them here). Forwarding stops when
  /// the child is reaped or its Child destroyed. Replaces an earlier list.
  /// @throws std::invalid_argument for an empty list or a signal that
  /// cannot be handled ("weft: Command::forward_signals: ...", as
  /// weft::signal::wait).
  Command& forward_signals(std::initializer_list<int> signals);

  /// Starts the child in a new process group of its own (setpgid(0, 0)),
  /// so that Child::kill_group(), forwarded signals, a cancelled wait()'s
  /// termination and ~Child's SIGKILL reach every process it starts too.
  /// The child also leaves the terminal's foreground group: a Ctrl-C then
  /// reaches it only through forward_signals().
  Command& process_group(bool on = true);

  /// The kill grace period of spawned children (see Child::wait).
  /// @throws std::invalid_argument if negative.
  Command& kill_grace(std::chrono::nanoseconds grace);

  /// Starts the child. Never blocks on the child (posix_spawn returns once
  /// the program is executing). @throws std::system_error: ENOENT (no such
  /// program or working directory), EACCES, ENOEXEC, EMFILE, ... with the
  /// program's name in what().
  Child spawn() const;

  /// spawn() then wait(): runs the child to completion with inherited
  /// stdio (unless set otherwise) and returns its status. Errors, deadline
  /// and cancellation as spawn() and Child::wait(); on TimedOut the child
  /// is killed and reaped.
  ExitStatus status(Deadline deadline = {}) const;

  /// Runs the child to completion and collects its standard output and
  /// error. Both pipes are drained at once (a second fiber, or a second
  /// thread when called from a plain thread), so a child filling one while
  /// the other is read cannot deadlock. If the deadline passes, the child
  /// is killed (SIGKILL) and reaped and weft::TimedOut is thrown; if the
  /// fiber is cancelled, the child is terminated as Child::wait() does.
  /// @throws as spawn(), Pipe::read(), Child::wait().
  Output output(Deadline deadline = {}) const;

 private:
  Child spawn_with(Stdio in, Stdio out, Stdio err) const;

  std::string program_;
  std::vector<std::string> args_;
  bool env_clear_ = false;
  std::map<std::string, std::optional<std::string>, std::less<>> env_;  // nullopt: remove
  std::optional<std::string> cwd_;
  std::optional<Stdio> in_;
  Stdio out_ = Stdio::inherit;
  Stdio err_ = Stdio::inherit;
  std::chrono::nanoseconds grace_ = std::chrono::seconds(2);
  std::uint64_t forward_ = 0;  // signals to forward: bit (s - 1) for signal s
  bool group_ = false;
};

}  // namespace weft::process
