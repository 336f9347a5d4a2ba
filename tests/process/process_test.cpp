// weft::process: spawning, pipes, waiting, cancellation - on both reactor
// backends and from plain threads.
#include "weft/process.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "common/process_util.hpp"

namespace {

using namespace std::chrono_literals;
using weft::process::Child;
using weft::process::Command;
using weft::process::ExitStatus;
using weft::process::Output;
using weft::process::Pipe;
using weft::process::Stdio;
using weft::test::BackendTest;
using weft::test::FiberCanceller;

// A fresh directory under /tmp, removed with its contents at the end.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "weft-proc-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::system_error(errno, std::generic_category());
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Reads one '\n'-terminated line (without it); "" at end of stream.
std::string read_line(Pipe& p) {
  std::string line;
  char c;
  while (p.read(&c, 1) == 1 && c != '\n') line += c;
  return line;
}

// True once pid is neither running nor a zombie of ours: reaped.
bool reaped(pid_t pid) {
  int st;
  return ::waitpid(pid, &st, WNOHANG) == -1 && errno == ECHILD && ::kill(pid, 0) == -1 &&
         errno == ESRCH;
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  std::uint32_t x = 12345;
  for (auto& c : s) {
    x = x * 1103515245 + 12345;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

Command sh(const std::string& script) {
  Command c("/bin/sh");
  c.args({"-c", script});
  return c;
}

using ProcessTest = BackendTest;
WEFT_INSTANTIATE_BACKENDS(ProcessTest);

TEST_P(ProcessTest, EchoThroughStdoutPipe) {
  weft::Runtime rt(config());
  auto [text, status] = rt.block_on([] {
    Child c = Command("/bin/echo").args({"hello", "world"}).std_out(Stdio::pipe).spawn();
    EXPECT_GT(c.pid(), 0);
    EXPECT_FALSE(c.stdin_pipe().is_open());
    EXPECT_FALSE(c.stderr_pipe().is_open());
    std::string out = c.stdout_pipe().read_to_end();
    return std::pair(out, c.wait());
  });
  EXPECT_EQ(text, "hello world\n");
  EXPECT_TRUE(status.success());
  EXPECT_EQ(status.code(), 0);
  EXPECT_EQ(status.signal(), std::nullopt);
}

TEST_P(ProcessTest, ExitCodesAndSignals) {
  weft::Runtime rt(config());
  rt.block_on([] {
    ExitStatus three = sh("exit 3").status();
    EXPECT_FALSE(three.success());
    EXPECT_EQ(three.code(), 3);
    EXPECT_EQ(three.signal(), std::nullopt);
    EXPECT_EQ(three.shell_code(), 3);

    ExitStatus killed = sh("kill -KILL $$").status();
    EXPECT_FALSE(killed.success());
    EXPECT_EQ(killed.code(), std::nullopt);
    EXPECT_EQ(killed.signal(), SIGKILL);
    EXPECT_EQ(killed.shell_code(), 128 + SIGKILL);

    Child c = Command("/bin/sleep").arg("10").spawn();
    EXPECT_EQ(c.try_wait(), std::nullopt);
    c.kill(SIGTERM);
    EXPECT_EQ(c.wait().signal(), SIGTERM);
    EXPECT_EQ(c.wait().signal(), SIGTERM);  // reaped once, reported again
    c.kill(SIGKILL);                        // already gone: nothing happens
  });
}

TEST_P(ProcessTest, StdinRoundTripThroughCat) {
  weft::Runtime rt(config());
  const std::string data = pattern(std::size_t{1} << 20);
  const std::string echoed = rt.block_on([&] {
    Child c = Command("cat").std_in(Stdio::pipe).std_out(Stdio::pipe).spawn();
    // The writer needs its own fiber: cat blocks on a full stdout pipe
    // until we read, and we block on a full stdin pipe until it reads.
    auto writer = weft::spawn([&c, &data] {
      c.stdin_pipe().write_all(data);
      c.stdin_pipe().close();
    });
    std::string out = c.stdout_pipe().read_to_end();
    writer.join();
    EXPECT_TRUE(c.wait().success());
    return out;
  });
  ASSERT_EQ(echoed.size(), data.size());
  EXPECT_TRUE(echoed == data) << "content differs";
}

TEST_P(ProcessTest, OutputCollectsBothStreams) {
  weft::Runtime rt(config());
  rt.block_on([] {
    Output o = sh("echo out; echo err >&2; exit 5").output();
    EXPECT_EQ(o.out, "out\n");
    EXPECT_EQ(o.err, "err\n");
    EXPECT_EQ(o.status.code(), 5);

    // 300 KB to stderr first, then to stdout: reading stdout to the end
    // before stderr would deadlock (the child blocks on a full stderr pipe).
    Output big = sh("head -c 300000 /dev/zero >&2; head -c 200000 /dev/zero").output();
    EXPECT_EQ(big.err.size(), 300000u);
    EXPECT_EQ(big.out.size(), 200000u);
    EXPECT_TRUE(big.status.success());

    // output() gives the child /dev/null as input unless told otherwise.
    Output cat = Command("cat").output();
    EXPECT_EQ(cat.out, "");
    EXPECT_TRUE(cat.status.success());
  });
}

TEST_P(ProcessTest, EnvironmentSettings) {
  ::setenv("WEFT_PROC_TEST_PARENT", "inherited", 1);
  weft::Runtime rt(config());
  rt.block_on([] {
    Output set = sh("echo \"$WEFT_A|$WEFT_PROC_TEST_PARENT\"").env("WEFT_A", "1").output();
    EXPECT_EQ(set.out, "1|inherited\n");

    Output removed =
        sh("echo \"${WEFT_PROC_TEST_PARENT-unset}\"").env_remove("WEFT_PROC_TEST_PARENT").output();
    EXPECT_EQ(removed.out, "unset\n");

    Output overridden =
        sh("echo \"$WEFT_PROC_TEST_PARENT\"").env("WEFT_PROC_TEST_PARENT", "mine").output();
    EXPECT_EQ(overridden.out, "mine\n");

    Output cleared =
        Command("/usr/bin/env").env("WEFT_GONE", "x").env_clear().env("WEFT_ONLY", "42").output();
    EXPECT_EQ(cleared.out, "WEFT_ONLY=42\n");
  });
  ::unsetenv("WEFT_PROC_TEST_PARENT");
}

TEST_P(ProcessTest, WorkingDirectory) {
  TempDir dir;
  const std::string real = std::filesystem::canonical(dir.path()).string();
  weft::Runtime rt(config());
  rt.block_on([&] {
    Output o = Command("/bin/pwd").cwd(real).output();
    EXPECT_EQ(o.out, real + "\n");
    try {
      Command("/bin/pwd").cwd(real + "/missing").spawn();
      ADD_FAILURE() << "spawn in a missing directory succeeded";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ENOENT) << e.what();
    }
  });
}

TEST_P(ProcessTest, MissingProgramIsEnoent) {
  weft::Runtime rt(config());
  rt.block_on([] {
    for (const char* prog : {"/nonexistent/weft-no-such-program", "weft-no-such-program-xyz"}) {
      try {
        Command(prog).spawn();
        ADD_FAILURE() << prog << ": spawn succeeded";
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ENOENT) << e.what();
        EXPECT_NE(std::string(e.what()).find("weft-no-such-program"), std::string::npos)
            << e.what();
      }
    }
  });
}

TEST_P(ProcessTest, WaitDeadlineTimesOut) {
  weft::Runtime rt(config());
  rt.block_on([] {
    Child c = Command("/bin/sleep").arg("10").spawn();
    EXPECT_THROW(c.wait(30ms), weft::TimedOut);
    EXPECT_EQ(c.wait_for(10ms), std::nullopt);
    EXPECT_EQ(c.try_wait(), std::nullopt);  // a deadline leaves the child running
    c.kill();
    EXPECT_EQ(c.wait().signal(), SIGKILL);
  });
}

TEST_P(ProcessTest, PipeReadDeadlineAndCloseWakesReader) {
  weft::Runtime rt(config());
  rt.block_on([] {
    Child c = Command("/bin/sleep").arg("10").std_out(Stdio::pipe).spawn();
    char buf[16];
    EXPECT_THROW(c.stdout_pipe().read(buf, sizeof buf, 30ms), weft::TimedOut);

    // A reader parked on the pipe fails with EBADF when another fiber
    // closes it.
    std::atomic<bool> reading{false};
    auto reader = weft::spawn([&] {
      reading = true;
      try {
        c.stdout_pipe().read(buf, sizeof buf);
        return 0;
      } catch (const std::system_error& e) {
        return e.code().value();
      }
    });
    while (!reading) weft::this_fiber::sleep_for(1ms);
    weft::this_fiber::sleep_for(10ms);  // let it park (not required for the outcome)
    c.stdout_pipe().close();
    EXPECT_EQ(reader.join(), EBADF);
    EXPECT_FALSE(c.stdout_pipe().is_open());
  });  // ~Child kills and reaps the sleep
}

TEST_P(ProcessTest, WriteToExitedChildIsEpipe) {
  weft::Runtime rt(config());
  rt.block_on([] {
    Child c = Command("/bin/true").std_in(Stdio::pipe).spawn();
    EXPECT_TRUE(c.wait().success());
    try {
      c.stdin_pipe().write_all(std::string(100000, 'x'));
      ADD_FAILURE() << "write to a pipe without reader succeeded";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EPIPE) << e.what();
    }
  });
}

// A signal mask line ("SigIgn:\t<hex>") of /proc/<pid>/status.
std::uint64_t mask_of(const std::string& status, const std::string& field) {
  const std::size_t at = status.find(field + ":\t");
  if (at == std::string::npos) return ~std::uint64_t{0};
  return std::stoull(status.substr(at + field.size() + 2, 16), nullptr, 16);
}

// The child starts with default dispositions and an empty mask although
// the runtime ignores SIGPIPE and the spawning thread blocks SIGUSR2.
TEST_P(ProcessTest, ChildGetsCleanSignalState) {
  weft::Runtime rt(config());
  const std::string status = rt.block_on([] {
    return weft::spawn_blocking([] {
             sigset_t block;
             sigemptyset(&block);
             sigaddset(&block, SIGUSR2);
             sigset_t old;
             pthread_sigmask(SIG_BLOCK, &block, &old);
             std::string s = Command("/bin/cat").arg("/proc/self/status").output().out;
             pthread_sigmask(SIG_SETMASK, &old, nullptr);
             return s;
           })
        .join();
  });
  EXPECT_EQ(mask_of(status, "SigBlk"), 0u) << status;
  // glibc's posix_spawn leaves its two internal signals (32, 33: thread
  // cancellation and setxid) ignored in every child; all others must be
  // at their default.
  const std::uint64_t glibc_internal = (std::uint64_t{1} << 31) | (std::uint64_t{1} << 32);
  EXPECT_EQ(mask_of(status, "SigIgn") & ~glibc_internal, 0u) << status;
}

// Cancelling a fiber blocked in wait(): the child gets SIGTERM (its trap
// writes a marker and exits 0), is reaped, and Cancelled propagates.
TEST_P(ProcessTest, CancelledWaitSendsSigtermAndReaps) {
  TempDir dir;
  const std::string marker = (dir.path() / "marker").string();
  weft::Runtime rt(config());
  FiberCanceller canceller;
  std::atomic<pid_t> pid{-1};
  std::atomic<bool> waiting{false};
  std::optional<ExitStatus> after;
  auto h = rt.spawn([&] {
    canceller.capture();
    Child c = Command("/bin/sh")
                  .args({"-c",
                         "trap 'echo term > \"$1\"; exit 0' TERM; echo ready; "
                         "while :; do sleep 0.05; done",
                         "sh", marker})
                  .std_out(Stdio::pipe)
                  .kill_grace(60s)  // the trap answers at once: no SIGKILL
                  .spawn();
    pid = c.pid();
    EXPECT_EQ(read_line(c.stdout_pipe()), "ready");  // the trap is installed
    waiting = true;
    try {
      c.wait();
      ADD_FAILURE() << "wait() returned although cancelled";
    } catch (const weft::Cancelled&) {
      after = c.try_wait();
      throw;
    }
  });
  ASSERT_TRUE(weft::test::eventually([&] { return waiting.load(); }));
  weft::test::settle_parked(rt, 1);
  canceller.cancel();
  EXPECT_THROW(h.join(), weft::Cancelled);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->code(), 0) << after->to_string();  // the TERM trap ran
  EXPECT_EQ(slurp(marker), "term\n");
  EXPECT_TRUE(reaped(pid));
}

// A child that ignores SIGTERM is killed with SIGKILL after the grace.
TEST_P(ProcessTest, CancelledWaitEscalatesToSigkill) {
  weft::Runtime rt(config());
  FiberCanceller canceller;
  std::atomic<pid_t> pid{-1};
  std::atomic<bool> waiting{false};
  std::optional<ExitStatus> after;
  auto h = rt.spawn([&] {
    canceller.capture();
    Child c = sh("trap '' TERM; echo ready; exec sleep 30").std_out(Stdio::pipe).spawn();
    c.set_kill_grace(100ms);
    EXPECT_EQ(c.kill_grace(), 100ms);
    pid = c.pid();
    EXPECT_EQ(read_line(c.stdout_pipe()), "ready");
    waiting = true;
    try {
      c.wait();
    } catch (const weft::Cancelled&) {
      after = c.try_wait();
      throw;
    }
  });
  ASSERT_TRUE(weft::test::eventually([&] { return waiting.load(); }));
  weft::test::settle_parked(rt, 1);
  canceller.cancel();
  EXPECT_THROW(h.join(), weft::Cancelled);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->signal(), SIGKILL) << after->to_string();
  EXPECT_TRUE(reaped(pid));
}

// Cancelling output() terminates the child the same way.
TEST_P(ProcessTest, CancelledOutputTerminatesChild) {
  TempDir dir;
  const std::string started = (dir.path() / "started").string();
  const std::string marker = (dir.path() / "marker").string();
  weft::Runtime rt(config());
  FiberCanceller canceller;
  auto h = rt.spawn([&] {
    canceller.capture();
    return Command("/bin/sh")
        .args({"-c",
               "trap 'echo term > \"$2\"; exit 0' TERM; : > \"$1\"; "
               "while :; do sleep 0.05; done",
               "sh", started, marker})
        .output();
  });
  ASSERT_TRUE(weft::test::eventually([&] { return std::filesystem::exists(started); }));
  weft::test::settle_parked(rt, 2);  // output() and its stderr drain
  canceller.cancel();
  EXPECT_THROW(h.join(), weft::Cancelled);
  EXPECT_EQ(slurp(marker), "term\n");
  weft::test::expect_no_live_fibers(rt);
}

TEST_P(ProcessTest, OutputDeadlineKillsChild) {
  weft::Runtime rt(config());
  rt.block_on([] { EXPECT_THROW(sh("exec sleep 30").output(50ms), weft::TimedOut); });
  weft::test::expect_no_live_fibers(rt);
}

// ~Child kills (SIGKILL) and reaps a child that would otherwise run for
// ~11 days. (Were it not killed, the destructor would wait for it: the
// bounded wait below then fails and cleans up.)
TEST_P(ProcessTest, DestructorKillsAndReaps) {
  weft::Runtime rt(config());
  std::atomic<pid_t> pids[3] = {-1, -1, -1};
  auto h = rt.spawn([&] {
    {
      Child c = Command("/bin/sleep").arg("999999").spawn();
      pids[0] = c.pid();
    }
    // Move assignment releases the process the target had.
    Child a = Command("/bin/sleep").arg("999999").spawn();
    Child b = Command("/bin/sleep").arg("999999").spawn();
    pids[1] = a.pid();
    pids[2] = b.pid();
    a = std::move(b);
    EXPECT_FALSE(static_cast<bool>(b));  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(a.pid(), pids[2].load());
  });
  const bool done = weft::test::eventually([&] { return h.is_finished(); });
  EXPECT_TRUE(done) << "~Child did not kill its process";
  while (!h.is_finished()) {  // only when broken: unblock the destructors
    for (auto& p : pids) {
      if (p > 0) ::kill(p, SIGKILL);
    }
    std::this_thread::sleep_for(10ms);
  }
  h.join();
  for (auto& p : pids) EXPECT_TRUE(reaped(p)) << p;
}

// The pid of this process's child whose command line is exactly `argv`
// (NUL-separated, as in /proc/<pid>/cmdline), or -1.
pid_t child_with_cmdline(const std::string& argv) {
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (slurp(e.path() / "cmdline") != argv) continue;
    std::ifstream stat(e.path() / "stat");
    std::string pid, comm, state;
    long ppid = 0;
    stat >> pid >> comm >> state >> ppid;
    if (ppid == ::getpid()) return static_cast<pid_t>(std::stol(name));
  }
  return -1;
}

// Command::status(deadline): "on TimedOut the child is killed and reaped".
// A watcher thread learns the child's pid from /proc while status() waits;
// after the TimedOut the child must be gone (no process, no zombie), from a
// fiber and from a plain thread.
TEST_P(ProcessTest, StatusDeadlineKillsAndReapsTheChild) {
  weft::Runtime rt(config());
  auto run = [&](const char* where) {
    const std::string seconds = std::to_string(3000 + ::getpid() % 1000);  // unique enough
    std::atomic<pid_t> pid{-1};
    std::atomic<bool> done{false};
    std::thread watcher([&] {
      while (!done.load() && pid.load() < 0) {
        pid.store(child_with_cmdline(std::string("/bin/sleep") + '\0' + seconds + '\0'));
        std::this_thread::sleep_for(1ms);
      }
    });
    EXPECT_THROW(Command("/bin/sleep").arg(seconds).status(weft::Deadline::after(300ms)),
                 weft::TimedOut);
    done.store(true);
    watcher.join();
    ASSERT_GT(pid.load(), 0) << where << ": the child was never seen";
    if (!reaped(pid.load())) {
      ADD_FAILURE() << where << ": child " << pid.load() << " still there after TimedOut";
      ::kill(pid.load(), SIGKILL);  // only when broken: leave nothing behind
      int st;
      ::waitpid(pid.load(), &st, 0);
    }
  };
  rt.block_on([&] { run("fiber"); });
  run("thread");
}

TEST_P(ProcessTest, ManyConcurrentChildren) {
  constexpr int kChildren = 50;
  weft::Runtime rt(config(4));
  weft::test::Checker check;
  rt.block_on([&] {
    std::vector<weft::JoinHandle<void>> hs;
    for (int i = 0; i < kChildren; ++i) {
      hs.push_back(weft::spawn([i, &check] {
        Output o = sh("echo $0; exit $(($0 % 7))").arg(std::to_string(i)).output();
        check.equal(o.out, std::to_string(i) + "\n", "output of child " + std::to_string(i));
        check.equal(o.status.code().value_or(-1), i % 7, "exit code of child " + std::to_string(i));
      }));
    }
    for (auto& h : hs) h.join();
  });
  WEFT_EXPECT_NO_FAILURES(check);
}

TEST_P(ProcessTest, StdioNullAndInherit) {
  weft::Runtime rt(config());
  rt.block_on([] {
    // stdout to /dev/null: nothing arrives on our stderr pipe either.
    Child c = sh("echo hidden; echo shown >&2").std_out(Stdio::null).std_err(Stdio::pipe).spawn();
    EXPECT_EQ(c.stderr_pipe().read_to_end(), "shown\n");
    EXPECT_TRUE(c.wait().success());
  });
}

TEST(ProcessApi, EmptyHandlesAndBadArguments) {
  Child empty;
  EXPECT_FALSE(static_cast<bool>(empty));
  EXPECT_EQ(empty.pid(), -1);
  EXPECT_THROW(empty.wait(), std::logic_error);
  EXPECT_THROW(empty.try_wait(), std::logic_error);
  EXPECT_THROW(empty.kill(), std::logic_error);
  EXPECT_THROW(empty.set_kill_grace(-1s), std::invalid_argument);
  EXPECT_THROW(Command("x").kill_grace(-1ms), std::invalid_argument);
  Pipe p;
  char c;
  EXPECT_FALSE(p.is_open());
  p.close();
  EXPECT_THROW(p.read(&c, 1), std::system_error);
  EXPECT_THROW(p.write(&c, 1), std::system_error);
  EXPECT_EQ(ExitStatus::exited(3).to_string(), "exit code 3");
  EXPECT_NE(ExitStatus::killed(SIGKILL).to_string().find("signal 9"), std::string::npos);
}

// Everything from a plain thread, without any runtime: blocking calls with
// poll(2), output() draining both pipes with one thread.
TEST(ProcessThread, PlainThreadWithoutRuntime) {
  Output o = sh("echo out; head -c 300000 /dev/zero >&2; echo done").output();
  EXPECT_EQ(o.out, "out\ndone\n");
  EXPECT_EQ(o.err.size(), 300000u);
  EXPECT_TRUE(o.status.success());

  const std::string data = pattern(200000);
  Child c = Command("cat").std_in(Stdio::pipe).std_out(Stdio::pipe).spawn();
  std::thread writer([&] {
    c.stdin_pipe().write_all(data);
    c.stdin_pipe().close();
  });
  const std::string echoed = c.stdout_pipe().read_to_end();
  writer.join();
  EXPECT_TRUE(echoed == data);
  EXPECT_TRUE(c.wait().success());

  Child s = Command("/bin/sleep").arg("10").spawn();
  EXPECT_THROW(s.wait(20ms), weft::TimedOut);
  EXPECT_THROW(sh("exec sleep 10").output(20ms), weft::TimedOut);
  s.kill();
  EXPECT_EQ(s.wait().signal(), SIGKILL);
  EXPECT_EQ(sh("exit 7").status().code(), 7);
}

}  // namespace
