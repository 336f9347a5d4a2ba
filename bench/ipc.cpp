// weft::ipc channel throughput between two processes, against the raw
// loop the kernel allows: messages per second for messages of `size` bytes.
//
//   weft-bench-ipc [sizes=64,4096] [count=200000] [reps=5] [workers=1]
//
// Three measurements per size, interleaved (raw, ipc, raw_batched, raw,
// ...; one warm-up round first), each in a fresh child process:
//   * raw: a socketpair(2); the parent write(2)s each message (size bytes)
//     in a loop, the child read(2)s exactly size bytes per message in a
//     loop; a one-byte reply when all have arrived stops the clock. One
//     system call per message on each side, no framing, no runtime: the
//     physical limit of a per-message loop on this machine.
//   * raw_batched: the same socketpair, but 64 KiB of messages per write(2)
//     and up to 64 KiB per read(2): the socket's byte throughput, the limit
//     of any framing layer that batches (as the ipc writer pump does).
//   * ipc: a weft::ipc::channel<std::string> over a Unix socket; the
//     parent's fiber sends `count` messages, the child's fiber receives
//     them and answers with one message. Frames (4-byte length + bytes),
//     pumps, bounded channels and backpressure included.
// The child is forked while the parent has no runtime (no threads), and
// builds its own runtime. Output: "ipc_<size>B_msgs_per_s",
// "raw_<size>B_msgs_per_s" (medians) and "ipc_vs_raw_<size>B" (the median
// of the per-round ratios) lines, "#" lines with the spread.
#include "weft/ipc.hpp"

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "common.hpp"
#include "weft/net.hpp"

namespace {

// Writes or reads exactly len bytes on a blocking descriptor.
void raw_write_all(int fd, const char* p, std::size_t len) {
  while (len > 0) {
    const ssize_t n = ::write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) wb::die("raw write: %s", std::strerror(errno));
    p += n;
    len -= static_cast<std::size_t>(n);
  }
}
void raw_read_exact(int fd, char* p, std::size_t len) {
  while (len > 0) {
    const ssize_t n = ::read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) wb::die("raw read: %s", n == 0 ? "end of stream" : std::strerror(errno));
    p += n;
    len -= static_cast<std::size_t>(n);
  }
}

void reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) wb::die("child failed (status %d)", status);
}

// batch > 1: the parent writes `batch` messages per write(2) and the child
// reads whatever is there (up to 64 KiB) per read(2): the socket's byte
// throughput, which no framing layer can beat.
double run_raw(std::size_t size, long count, std::size_t batch = 1) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) wb::die("socketpair");
  const pid_t pid = ::fork();
  if (pid < 0) wb::die("fork");
  if (pid == 0) {
    ::close(sv[0]);
    if (batch == 1) {
      std::vector<char> buf(size);
      for (long i = 0; i < count; ++i) raw_read_exact(sv[1], buf.data(), size);
    } else {
      std::vector<char> buf(64 * 1024);
      for (std::size_t left = size * static_cast<std::size_t>(count); left > 0;) {
        const ssize_t n = ::read(sv[1], buf.data(), std::min(left, buf.size()));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) wb::die("raw read: %s", n == 0 ? "end of stream" : std::strerror(errno));
        left -= static_cast<std::size_t>(n);
      }
    }
    raw_write_all(sv[1], "k", 1);
    std::_Exit(0);
  }
  ::close(sv[1]);
  const std::string msg(size * batch, 'x');
  const auto t0 = wb::clock::now();
  for (long i = 0; i < count; i += static_cast<long>(batch)) {
    const long k = std::min<long>(static_cast<long>(batch), count - i);
    raw_write_all(sv[0], msg.data(), size * static_cast<std::size_t>(k));
  }
  char ack;
  raw_read_exact(sv[0], &ack, 1);
  const double ns = wb::ns_since(t0);
  ::close(sv[0]);
  reap(pid);
  return ns;
}

double run_ipc(std::size_t size, long count, std::size_t workers, int round) {
  const std::string path = "@weft-bench-ipc-" + std::to_string(::getpid()) + "-" +
                           std::to_string(round) + "-" + std::to_string(size);
  weft::Config config;
  config.workers = workers;
  const pid_t pid = ::fork();
  if (pid < 0) wb::die("fork");
  if (pid == 0) {
    weft::Runtime rt(config);
    rt.block_on([&] {
      weft::net::UnixStream s;
      for (int tries = 0;; ++tries) {  // until the parent listens
        try {
          s = weft::net::UnixStream::connect(path);
          break;
        } catch (const std::system_error&) {
          if (tries > 5000) wb::die("child: cannot connect to %s", path.c_str());
          weft::this_fiber::sleep_for(std::chrono::milliseconds(1));
        }
      }
      auto [tx, rx] = weft::ipc::channel<std::string>(std::move(s));
      for (long i = 0; i < count; ++i) {
        std::optional<std::string> m = rx.recv();
        if (!m || m->size() != size) wb::die("child: message %ld missing or wrong", i);
      }
      if (!tx.send("k").ok() || !tx.drain()) wb::die("child: ack not sent");
    });
    std::_Exit(0);
  }
  double ns = 0;
  {
    weft::Runtime rt(config);
    rt.block_on([&] {
      auto listener = weft::net::UnixListener::bind(path);
      auto [tx, rx] = weft::ipc::channel<std::string>(listener.accept());
      const std::string msg(size, 'x');
      const auto t0 = wb::clock::now();
      for (long i = 0; i < count; ++i) {
        if (!tx.send(msg).ok()) wb::die("parent: send %ld failed", i);
      }
      const std::optional<std::string> ack = rx.recv();
      ns = wb::ns_since(t0);
      if (!ack || *ack != "k") wb::die("parent: no ack");
      tx.close();
    });
  }
  reap(pid);
  return ns;
}

}  // namespace

int main(int argc, char** argv) {
  wb::Args args{argc, argv};
  args.check({"sizes", "count", "reps", "workers"});
  const long count = args.num("count", 200000);
  const int reps = static_cast<int>(args.num("reps", 5));
  const auto workers = static_cast<std::size_t>(args.num("workers", 1));
  std::vector<std::size_t> sizes;
  {
    const std::string s = args.str("sizes", "64,4096");
    std::size_t at = 0;
    while (at < s.size()) {
      const std::size_t comma = s.find(',', at);
      sizes.push_back(std::stoul(s.substr(at, comma - at)));
      at = comma == std::string::npos ? s.size() : comma + 1;
    }
  }
  wb::comment("weft::ipc vs raw socketpair write/read, %ld messages, %d reps, %zu workers", count,
              reps, workers);
  int round = 0;
  for (std::size_t size : sizes) {
    std::vector<double> raw, batched, ipc, ratio, ratio_batched;
    const std::size_t batch = std::max<std::size_t>(1, 65536 / size);
    for (int r = 0; r <= reps; ++r) {  // r == 0: warm-up pair
      const double a = run_raw(size, count);
      const double b = run_ipc(size, count, workers, ++round);
      const double c = run_raw(size, count, batch);
      if (r == 0) continue;
      raw.push_back(count / (a / 1e9));
      ipc.push_back(count / (b / 1e9));
      batched.push_back(count / (c / 1e9));
      ratio.push_back(a / b);  // paired: the runs of one round
      ratio_batched.push_back(c / b);
    }
    const std::string tag = std::to_string(size) + "B";
    wb::comment(
        "raw %s runs %.0f..%.0f, ipc runs %.0f..%.0f msgs/s", tag.c_str(),
        *std::min_element(raw.begin(), raw.end()), *std::max_element(raw.begin(), raw.end()),
        *std::min_element(ipc.begin(), ipc.end()), *std::max_element(ipc.begin(), ipc.end()));
    wb::line("raw_" + tag + "_msgs_per_s", wb::median(raw), "msgs/s");
    wb::line("ipc_" + tag + "_msgs_per_s", wb::median(ipc), "msgs/s");
    wb::line("raw_batched_" + tag + "_msgs_per_s", wb::median(batched), "msgs/s");
    wb::line("ipc_vs_raw_" + tag, wb::median(ratio), "ratio");
    wb::line("ipc_vs_raw_batched_" + tag, wb::median(ratio_batched), "ratio");
  }
  return 0;
}
