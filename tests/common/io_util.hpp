// Helpers shared by the reactor (tests/io) and weft::net (tests/net) tests.
//
// Every I/O test runs on both backends: suites derive from IoTest and are
// instantiated with WEFT_INSTANTIATE_IO (io_uring and epoll, 1 and 2
// workers), WEFT_INSTANTIATE_IO_WORKERS (1, 2 and 4 workers: the suites of
// the user-facing APIs) or WEFT_INSTANTIATE_IO_BACKENDS (both backends, 2
// workers; for the heavy ones). WEFT_IO_RUNTIME(rt) builds the runtime and asserts that
// the requested backend is the one in force, so a silent fallback from
// io_uring to epoll cannot make the io_uring half of the matrix test epoll.
//
// Data checks compare content, never only counts: ByteStream is a
// deterministic pseudo-random byte stream that both ends of a connection
// generate from the same seed.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "common/test_util.hpp"
#include "weft/config.hpp"
#include "weft/net.hpp"

namespace weft::test {

struct IoParam {
  weft::IoBackend backend;
  std::size_t workers;
};

inline const char* backend_name(weft::IoBackend b) {
  switch (b) {
    case weft::IoBackend::io_uring:
      return "io_uring";
    case weft::IoBackend::epoll:
      return "epoll";
    case weft::IoBackend::auto_detect:
      return "auto";
  }
  return "?";
}

inline std::string io_param_name(const ::testing::TestParamInfo<IoParam>& info) {
  return std::string(backend_name(info.param.backend)) + "_workers_" +
         std::to_string(info.param.workers);
}

/// Fixture for tests parameterised over the I/O backend and worker count.
class IoTest : public ::testing::TestWithParam<IoParam> {
 protected:
  weft::IoBackend backend() const { return GetParam().backend; }
  std::size_t workers() const { return GetParam().workers; }
  weft::Config config() const {
    weft::Config c = workers_config(GetParam().workers);
    c.io_backend = GetParam().backend;
    return c;
  }
};

/// splitmix64 (Steele, Lea, Flood 2014): a tiny, good-enough generator for
/// sizes, delays and test data.
inline std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// A random number in [lo, hi].
inline std::uint64_t uniform(std::uint64_t& state, std::uint64_t lo, std::uint64_t hi) noexcept {
  return lo + splitmix64(state) % (hi - lo + 1);
}

/// A deterministic pseudo-random byte stream: two instances with the same
/// seed produce the same bytes, however the reads are split.
class ByteStream {
 public:
  explicit ByteStream(std::uint64_t seed) noexcept : state_(seed * 0x2545f4914f6cdd1dULL + 1) {}

  void fill(void* dst, std::size_t n) noexcept {
    auto* p = static_cast<unsigned char*>(dst);
    while (n > 0 && left_ > 0) {
      *p++ = static_cast<unsigned char>(word_);
      word_ >>= 8;
      --left_;
      --n;
    }
    while (n >= 8) {
      const std::uint64_t w = splitmix64(state_);
      std::memcpy(p, &w, 8);
      p += 8;
      n -= 8;
    }
    if (n > 0) {
      word_ = splitmix64(state_);
      left_ = 8;
      fill(p, n);
    }
  }

  std::vector<unsigned char> take(std::size_t n) {
    std::vector<unsigned char> v(n);
    fill(v.data(), n);
    return v;
  }

  /// Compares the next n bytes of the stream with p. Returns the offset of
  /// the first mismatch, or n if all match.
  std::size_t verify(const void* p, std::size_t n) {
    std::vector<unsigned char> want = take(n);
    const auto* got = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) {
      if (got[i] != want[i]) return i;
    }
    return n;
  }

 private:
  std::uint64_t state_;
  std::uint64_t word_ = 0;
  int left_ = 0;
};

/// FNV-1a, 64 bits (Fowler, Noll, Vo).
class Fnv1a {
 public:
  void update(const void* p, std::size_t n) noexcept {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) {
      h_ ^= b[i];
      h_ *= 0x100000001b3ULL;
    }
  }
  std::uint64_t value() const noexcept { return h_; }

 private:
  std::uint64_t h_ = 0xcbf29ce484222325ULL;
};

/// Runs f and returns the error code of the std::system_error it throws, or
/// -1 if it returns normally. Other exceptions propagate.
template <class F>
int errno_of(F&& f) {
  try {
    f();
  } catch (const std::system_error& e) {
    return e.code().value();
  }
  return -1;
}

/// Raises the soft RLIMIT_NOFILE to at least `want` (bounded by the hard
/// limit). Returns the soft limit in force afterwards.
inline rlim_t raise_fd_limit(rlim_t want) {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < want) {
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? want : std::min(want, rl.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

/// Descriptors open in this process now.
inline int count_open_fds() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n - 1;  // the directory iterator's own descriptor
}

/// The highest descriptor open in this process now.
inline int highest_open_fd() {
  int hi = 2;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    hi = std::max(hi, std::stoi(e.path().filename().string()));
  }
  return hi;
}

/// Installs a signal handler (without SA_RESTART unless given) and restores
/// the previous disposition on destruction.
class ScopedSignal {
 public:
  ScopedSignal(int sig, void (*handler)(int), int flags = 0) : sig_(sig) {
    struct sigaction sa {};
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, &old_);
  }
  ~ScopedSignal() { ::sigaction(sig_, &old_, nullptr); }
  ScopedSignal(const ScopedSignal&) = delete;
  ScopedSignal& operator=(const ScopedSignal&) = delete;

 private:
  int sig_;
  struct sigaction old_ {};
};

/// CPU time consumed by every thread of the process.
inline std::chrono::nanoseconds process_cpu_time() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

/// Thread ids (for tgkill) of every thread of this process.
inline std::vector<pid_t> process_threads() {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    out.push_back(static_cast<pid_t>(std::stol(e.path().filename().string())));
  }
  return out;
}

inline int tgkill(pid_t tid, int sig) {
  return static_cast<int>(::syscall(SYS_tgkill, ::getpid(), tid, sig));
}

/// A unique name for an abstract Unix socket ("@weft-test-<pid>-<n>").
inline std::string abstract_socket_name(const std::string& tag) {
  static std::atomic<int> counter{0};
  return "@weft-test-" + std::to_string(::getpid()) + "-" + tag + "-" +
         std::to_string(counter.fetch_add(1));
}

/// A fresh temporary directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "weft-net-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::system_error(errno, std::generic_category());
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace weft::test

/// Both backends, 1 and 2 workers.
#define WEFT_INSTANTIATE_IO(Suite)                                             \
  INSTANTIATE_TEST_SUITE_P(                                                    \
      Io, Suite,                                                               \
      ::testing::Values(::weft::test::IoParam{::weft::IoBackend::io_uring, 1}, \
                        ::weft::test::IoParam{::weft::IoBackend::io_uring, 2}, \
                        ::weft::test::IoParam{::weft::IoBackend::epoll, 1},    \
                        ::weft::test::IoParam{::weft::IoBackend::epoll, 2}),   \
      ::weft::test::io_param_name)

/// Both backends, 1, 2 and 4 workers: the suites of the user-facing APIs
/// (TLS, IPC, files, signal forwarding), where 4 workers on 2 cores adds
/// the preemption of a worker mid-operation that 2 workers rarely see.
#define WEFT_INSTANTIATE_IO_WORKERS(Suite)                                     \
  INSTANTIATE_TEST_SUITE_P(                                                    \
      Io, Suite,                                                               \
      ::testing::Values(::weft::test::IoParam{::weft::IoBackend::io_uring, 1}, \
                        ::weft::test::IoParam{::weft::IoBackend::io_uring, 2}, \
                        ::weft::test::IoParam{::weft::IoBackend::io_uring, 4}, \
                        ::weft::test::IoParam{::weft::IoBackend::epoll, 1},    \
                        ::weft::test::IoParam{::weft::IoBackend::epoll, 2},    \
                        ::weft::test::IoParam{::weft::IoBackend::epoll, 4}),   \
      ::weft::test::io_param_name)

/// Both backends, 2 workers (heavy tests).
#define WEFT_INSTANTIATE_IO_BACKENDS(Suite)                                    \
  INSTANTIATE_TEST_SUITE_P(                                                    \
      Io, Suite,                                                               \
      ::testing::Values(::weft::test::IoParam{::weft::IoBackend::io_uring, 2}, \
                        ::weft::test::IoParam{::weft::IoBackend::epoll, 2}),   \
      ::weft::test::io_param_name)

/// Declares `weft::Runtime rt(config())` in an IoTest and asserts that the
/// backend in force is the one requested.
#define WEFT_IO_RUNTIME(rt)     \
  ::weft::Runtime rt(config()); \
  ASSERT_EQ(rt.io_backend(), backend()) << "requested " << ::weft::test::backend_name(backend())
