// Runtime::shutdown_on_signals, and process behaviour that needs a pristine
// process (SIGPIPE at its default disposition).
//
// Each scenario runs in a child process: the test forks, and the child
// execs this very binary with a filter selecting ShutdownChild.Body and the
// scenario in WEFT_SHUTDOWN_CHILD (exec rather than running on after fork:
// the test process has threads - watchdog, signal dispatcher - and a forked
// copy of a threaded process must not start runtimes). The body ends the
// process with _exit; the parent checks how it ended with waitpid.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "common/process_util.hpp"
#include "weft/process.hpp"
#include "weft/signal.hpp"

namespace {

using namespace std::chrono_literals;

constexpr int kDrained = 42;    // the child's code for "everything went as planned"
constexpr int kUnexpected = 3;  // the child's code for "something else happened"
constexpr const char* kModeVar = "WEFT_SHUTDOWN_CHILD";
constexpr const char* kBackendVar = "WEFT_SHUTDOWN_BACKEND";

// Threads of this process now.
std::size_t thread_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

struct Ended {
  bool exited = false;
  int code = -1;
  int signo = 0;
};

// Runs this binary's ShutdownChild.Body with the given scenario and
// backend, and returns how it ended.
Ended run_child(const std::string& mode, weft::IoBackend backend) {
  // Everything the child needs is prepared before fork(): between fork and
  // exec only async-signal-safe calls are allowed.
  std::string exe(4096, '\0');
  const ssize_t len = ::readlink("/proc/self/exe", exe.data(), exe.size() - 1);
  if (len <= 0) throw std::system_error(errno, std::generic_category(), "readlink");
  exe.resize(static_cast<std::size_t>(len));
  std::vector<std::string> args = {exe, "--gtest_filter=ShutdownChild.Body"};
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  env.push_back(std::string(kModeVar) + "=" + mode);
  env.push_back(std::string(kBackendVar) + "=" +
                (backend == weft::IoBackend::io_uring ? "io_uring" : "epoll"));
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) ::dup2(devnull, STDOUT_FILENO);  // gtest's chatter
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  int st = 0;
  const auto give_up = std::chrono::steady_clock::now() + weft::test::kPatience;
  for (;;) {
    const pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "waitpid");
    if (std::chrono::steady_clock::now() > give_up) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      ADD_FAILURE() << "child scenario '" << mode << "' hung; killed it";
      return Ended{};
    }
    std::this_thread::sleep_for(2ms);
  }
  Ended e;
  e.exited = WIFEXITED(st);
  e.code = e.exited ? WEXITSTATUS(st) : -1;
  e.signo = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
  return e;
}

// The child ended by exit(code), not by a signal.
void expect_exit_code(const Ended& e, int code) {
  EXPECT_TRUE(e.exited) << "killed by signal " << e.signo;
  EXPECT_EQ(e.code, code);
}

// A fiber that refuses to end when cancelled: once cancelled it runs
// on_cancel() and then blocks its worker thread forever. (It makes no
// further weft calls: the runtime's destructor cancels it again every
// millisecond, and that race is not what these tests are about.)
template <class F>
void stubborn_fiber(F on_cancel) {
  weft::spawn([on_cancel] {
    try {
      weft::this_fiber::sleep_for(1h);
    } catch (const weft::Cancelled&) {
      on_cancel();
    }
    for (;;) std::this_thread::sleep_for(5ms);
  }).detach();
}

// rt.block_on(fn), except that the main thread waits in poll(2) rather
// than on a futex. TSan defers a signal delivered to a thread that is not
// inside one of its interceptors until that thread enters one; a thread
// blocked in a raw futex, epoll_pwait2 or io_uring_enter system call never
// does. The kernel prefers the main thread for a process-directed signal,
// so keeping it in an intercepted call makes the scenarios work under TSan
// as everywhere else.
template <class F>
void run_root(weft::Runtime& rt, F fn) {
  auto h = rt.spawn(std::move(fn));
  while (!h.is_finished()) ::poll(nullptr, 0, 5);
  h.join();
}

// The scenarios, run in the child. Each returns the exit code it wants
// (when it returns at all).
int scenario(const std::string& mode, weft::IoBackend backend) {
  weft::Config cfg = weft::test::workers_config(2);
  cfg.io_backend = backend;

  if (mode == "drain") {
    // The first SIGTERM cancels every fiber; all of them end, block_on
    // rethrows Cancelled and the runtime shuts down normally.
    bool cancelled = false;
    {
      weft::Runtime rt(cfg);
      rt.shutdown_on_signals({SIGINT, SIGTERM}, 60s);
      try {
        run_root(rt, [] {
          auto other = weft::spawn([] { weft::this_fiber::sleep_for(1h); });
          ::kill(::getpid(), SIGTERM);
          weft::this_fiber::sleep_for(1h);
          other.join();
        });
      } catch (const weft::Cancelled&) {
        cancelled = true;
      }
      if (rt.stats().fibers_alive != 0 &&
          !weft::test::eventually([&] { return rt.stats().fibers_alive == 0; })) {
        return kUnexpected;
      }
    }
    return cancelled ? kDrained : kUnexpected;
  }

  if (mode == "grace" || mode == "grace_in_destructor") {
    // A fiber ignores cancellation: 200 ms after SIGTERM the process exits
    // with 128 + SIGTERM, whether the runtime is still in use or already in
    // its destructor (which waits for that fiber forever).
    weft::Runtime rt(cfg);
    rt.shutdown_on_signals({SIGTERM}, 200ms);
    try {
      run_root(rt, [] {
        stubborn_fiber([] {});
        ::kill(::getpid(), SIGTERM);
        weft::this_fiber::sleep_for(1h);
      });
    } catch (const weft::Cancelled&) {
    }
    if (mode == "grace") {
      for (;;) ::poll(nullptr, 0, 1000);  // see run_root
    }
    return kUnexpected;  // ~Runtime never returns: the grace timer ends the process
  }

  if (mode == "second_signal") {
    // The grace period is long; the stubborn fiber sends SIGINT once it
    // has been cancelled by SIGTERM: the second signal ends the process at
    // once with 128 + SIGINT.
    weft::Runtime rt(cfg);
    rt.shutdown_on_signals({SIGINT, SIGTERM}, std::chrono::hours(1));
    run_root(rt, [] {
      stubborn_fiber([] { ::kill(::getpid(), SIGINT); });
      ::kill(::getpid(), SIGTERM);
      try {
        weft::this_fiber::sleep_for(1h);
      } catch (const weft::Cancelled&) {
      }
    });
    for (;;) ::poll(nullptr, 0, 1000);  // see run_root
  }

  if (mode == "no_fiber_alive") {
    // A signal with no fiber alive cancels nothing and does not end the
    // process; fibers spawned after it run to completion, uncancelled; a
    // second signal ends the process at once.
    weft::Runtime rt(cfg);
    rt.shutdown_on_signals({SIGINT, SIGTERM}, std::chrono::hours(1));
    const std::size_t threads = thread_count();
    ::kill(::getpid(), SIGTERM);
    // The watcher has seen it once its grace timer thread exists.
    if (!weft::test::eventually([&] { return thread_count() > threads; })) {
      return kUnexpected;
    }
    bool cancelled = false;
    try {
      run_root(rt, [] {
        auto child = weft::spawn([] { weft::this_fiber::sleep_for(20ms); });
        weft::this_fiber::sleep_for(20ms);
        child.join();
      });
    } catch (const weft::Cancelled&) {
      cancelled = true;
    }
    if (cancelled) return kUnexpected;
    ::kill(::getpid(), SIGINT);
    for (int i = 0; i < 2000; ++i) ::poll(nullptr, 0, 1);  // see run_root
    return kUnexpected;  // the second signal should have ended the process
  }

  if (mode == "replaced") {
    // A second shutdown_on_signals replaces the first one's signals and
    // grace: SIGUSR1 (the first call's) no longer cancels anything; SIGTERM
    // does, and the second call's 200 ms grace ends the stuck process.
    static std::atomic<bool> sigterm_sent{false};
    weft::Runtime rt(cfg);
    rt.shutdown_on_signals({SIGUSR1}, std::chrono::hours(1));
    rt.shutdown_on_signals({SIGTERM}, 200ms);
    try {
      run_root(rt, [] {
        stubborn_fiber([] {
          if (!sigterm_sent.load()) ::_exit(kUnexpected);  // cancelled by SIGUSR1
        });
        ::kill(::getpid(), SIGUSR1);
        weft::this_fiber::sleep_for(100ms);  // time for a stale watcher to act
        sigterm_sent.store(true);
        ::kill(::getpid(), SIGTERM);
        weft::this_fiber::sleep_for(1h);
      });
    } catch (const weft::Cancelled&) {
    }
    for (;;) ::poll(nullptr, 0, 1000);  // see run_root
  }

  if (mode == "handler_replaced") {
    // weft's handler replaces an earlier one (signal.hpp): the program's
    // own handler no longer runs, and weft's waiter sees the signal.
    static std::atomic<int> own_handler_runs{0};
    struct sigaction sa {};
    sa.sa_handler = [](int) { own_handler_runs.fetch_add(1); };
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGUSR2, &sa, nullptr);
    weft::Runtime rt(cfg);
    int got = 0;
    run_root(rt, [&] {
      auto waiter = weft::spawn([] { return weft::signal::wait({SIGUSR2}); });
      weft::this_fiber::sleep_for(50ms);  // the waiter is waiting
      ::kill(::getpid(), SIGUSR2);
      got = waiter.join();
    });
    struct sigaction now {};
    ::sigaction(SIGUSR2, nullptr, &now);
    const bool replaced = now.sa_handler != sa.sa_handler;
    return got == SIGUSR2 && own_handler_runs.load() == 0 && replaced ? kDrained : kUnexpected;
  }

  if (mode == "epipe_plain_thread") {
    // No runtime, SIGPIPE at its default: writing to a child that is gone
    // must give EPIPE, not kill this process.
    ::signal(SIGPIPE, SIG_DFL);
    weft::process::Child c =
        weft::process::Command("/bin/true").std_in(weft::process::Stdio::pipe).spawn();
    if (!c.wait().success()) return kUnexpected;
    try {
      c.stdin_pipe().write_all(std::string(100000, 'x'));
    } catch (const std::system_error& e) {
      return e.code().value() == EPIPE ? kDrained : kUnexpected;
    }
    return kUnexpected;
  }
  return kUnexpected;
}

// Not a test of its own: the body of the child processes started above.
TEST(ShutdownChild, Body) {
  const char* mode = std::getenv(kModeVar);
  if (mode == nullptr) GTEST_SKIP() << "only runs in a child process of the other tests";
  const char* b = std::getenv(kBackendVar);
  const auto backend = (b != nullptr && std::string(b) == "epoll") ? weft::IoBackend::epoll
                                                                   : weft::IoBackend::io_uring;
  int code = kUnexpected;
  try {
    code = scenario(mode, backend);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child scenario %s: %s\n", mode, e.what());
  }
  std::fflush(stderr);
  ::_exit(code);
}

using ShutdownTest = weft::test::BackendTest;
WEFT_INSTANTIATE_BACKENDS(ShutdownTest);

TEST_P(ShutdownTest, FirstSignalCancelsAllFibers) {
  expect_exit_code(run_child("drain", GetParam()), kDrained);
}

TEST_P(ShutdownTest, GracePeriodEndsAStuckProcess) {
  expect_exit_code(run_child("grace", GetParam()), 128 + SIGTERM);
}

TEST_P(ShutdownTest, GracePeriodAppliesDuringRuntimeDestruction) {
  expect_exit_code(run_child("grace_in_destructor", GetParam()), 128 + SIGTERM);
}

TEST_P(ShutdownTest, SecondSignalExitsAtOnce) {
  expect_exit_code(run_child("second_signal", GetParam()), 128 + SIGINT);
}

TEST_P(ShutdownTest, SignalWithNoFiberAliveOnlyArmsTheSecondSignal) {
  expect_exit_code(run_child("no_fiber_alive", GetParam()), 128 + SIGINT);
}

TEST_P(ShutdownTest, SecondCallReplacesTheFirst) {
  expect_exit_code(run_child("replaced", GetParam()), 128 + SIGTERM);
}

TEST_P(ShutdownTest, EarlierHandlerIsReplacedNotChained) {
  expect_exit_code(run_child("handler_replaced", GetParam()), kDrained);
}

TEST(ShutdownApi, RejectsBadArguments) {
  weft::Runtime rt(weft::test::workers_config(1));
  EXPECT_THROW(rt.shutdown_on_signals({}), std::invalid_argument);
  EXPECT_THROW(rt.shutdown_on_signals({SIGKILL}), std::invalid_argument);
  EXPECT_THROW(rt.shutdown_on_signals({SIGTERM}, -1s), std::invalid_argument);
}

TEST(ProcessPristine, WriteToGoneChildIsEpipeWithoutRuntime) {
  expect_exit_code(run_child("epipe_plain_thread", weft::IoBackend::epoll), kDrained);
}

}  // namespace
