// Command::forward_signals and Command::process_group / Child::kill_group
// (seed 001 §3.4), on both I/O backends.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

#include "common/io_util.hpp"
#include "common/test_util.hpp"
#include "weft/process.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::test::IoTest;
using weft::test::kPatience;
namespace process = weft::process;

using weft::test::message_of;

class ForwardTest : public IoTest {};
WEFT_INSTANTIATE_IO_WORKERS(ForwardTest);

std::string read_line(process::Pipe& p) {
  std::string s;
  char c;
  while (p.read(&c, 1, kPatience) == 1 && c != '\n') s += c;
  return s;
}

// True once `pid` (a grandchild: not ours to reap) is dead or a zombie. A
// killed grandchild stays a zombie until its new parent (init or a
// subreaper) reaps it, and kill(pid, 0) succeeds on a zombie: so that
// reaper's delay is not weft's. A grandchild the group kill missed is still
// running (state S), so this still fails then. (Seen once under a heavily
// loaded CI run: DestroyingAGroupChildKillsTheGroup failed after eventually's
// 30 s; the cause was not confirmed.)
bool dead(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;  // gone meanwhile
  const std::size_t paren = line.rfind(')');   // the name may hold spaces
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}

// The signal, delivered to a plain thread of this process that runs the
// handler before pthread_kill returns (weft's handler is process-wide).
// Not kill(getpid()): the kernel gives a process-directed signal to the main
// thread when it does not block it, and here the main thread sleeps in
// block_on on a raw futex, where TSan keeps the signal pending (it runs
// handlers only at intercepted calls) until the test is over.
void raise_signal(int signo) {
  int rc = -1;
  std::thread([&] { rc = ::pthread_kill(::pthread_self(), signo); }).join();
  ASSERT_EQ(rc, 0);
}

TEST_P(ForwardTest, SignalsReachTheChild) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([&] {
    process::Child child =
        process::Command("sh")
            .args({"-c", "trap 'echo got; exit 7' USR1; echo ready; while :; do sleep 0.01; done"})
            .forward_signals({SIGUSR1})
            .std_out(process::Stdio::pipe)
            .spawn();
    ASSERT_EQ(read_line(child.stdout_pipe()), "ready");
    raise_signal(SIGUSR1);  // to this process: weft forwards it
    EXPECT_EQ(read_line(child.stdout_pipe()), "got");
    EXPECT_EQ(child.wait(kPatience).code(), std::optional<int>(7));
    // Reaped: forwarding stopped; another SIGUSR1 is only counted by weft.
    raise_signal(SIGUSR1);
  });
}

TEST_P(ForwardTest, ProcessGroupKillReachesGrandchildren) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([&] {
    process::Child child = process::Command("sh")
                               .args({"-c", "sleep 1000 & echo $!; wait"})
                               .process_group()
                               .std_out(process::Stdio::pipe)
                               .spawn();
    const pid_t grandchild = static_cast<pid_t>(std::stol(read_line(child.stdout_pipe())));
    EXPECT_EQ(::getpgid(grandchild), child.pid());  // in the child's group
    EXPECT_EQ(::getpgid(child.pid()), child.pid());
    child.kill_group(SIGTERM);
    EXPECT_EQ(child.wait(kPatience).signal(), std::optional<int>(SIGTERM));
    EXPECT_TRUE(weft::test::eventually([&] { return dead(grandchild); }))
        << "the grandchild survived";
    child.kill_group(SIGTERM);  // reaped: nothing happens

    process::Child plain = process::Command("sleep").arg("1000").spawn();
    EXPECT_EQ(message_of([&] { plain.kill_group(); }),
              "weft: Child::kill_group needs Command::process_group()");
    EXPECT_NE(::getpgid(plain.pid()), plain.pid());
  });
}

TEST_P(ForwardTest, DestroyingAGroupChildKillsTheGroup) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([&] {
    pid_t grandchild;
    {
      process::Child child = process::Command("sh")
                                 .args({"-c", "sleep 1000 & echo $!; wait"})
                                 .process_group()
                                 .std_out(process::Stdio::pipe)
                                 .spawn();
      grandchild = static_cast<pid_t>(std::stol(read_line(child.stdout_pipe())));
    }
    EXPECT_TRUE(weft::test::eventually([&] { return dead(grandchild); }));
  });
}

TEST(ForwardErrors, InvalidSignalsAreRefused) {
  process::Command c("true");
  EXPECT_EQ(message_of([&] { c.forward_signals({SIGKILL}); }),
            "weft: Command::forward_signals: signal 9 cannot be waited for");
  EXPECT_EQ(message_of([&] { c.forward_signals({}); }),
            "weft: Command::forward_signals: no signal given");
}

}  // namespace
