// Harness of weft-kv's integration tests (tests/kv/*_itest.cpp): starts the
// server under test as a real process, talks RESP to it over TCP, and runs
// redis-cli and redis-benchmark against it.
//
// Which server. The suite judges weft-kv, and is developed and checked
// against the real redis-server 7, the reference whose behaviour weft-kv
// copies. The environment chooses:
//
//   WEFT_KV_SERVER=/path/to/weft-kv   the server binary (default: the
//                                     weft-kv of this build tree, compiled in
//                                     as WEFT_KV_DEFAULT_SERVER)
//   WEFT_KV_REFERENCE=1               run redis-server instead (PATH, or
//                                     WEFT_KV_SERVER if set), with
//                                     --save '' --appendonly no --databases 1
//   WEFT_KV_ARGS="--io epoll ..."     extra arguments for the server (split on
//                                     blanks), e.g. to run the suite per
//                                     backend or worker count
//   WEFT_KV_REDIS_CLI, WEFT_KV_REDIS_BENCHMARK   the tools (default: PATH)
//
// With no server available (no weft-kv target, no WEFT_KV_SERVER, not in
// reference mode) every test skips and says why.
//
// A server runs as `sh -c 'exec SERVER ARGS >>LOG 2>&1'` (the exec keeps
// the pid, so signals reach the server itself), on a port picked free by
// binding port 0, with its own temporary --dir. It is ready when it answers
// PING; if it exits before (say the port was taken meanwhile), it is started
// again on another port. Its destructor kills it (SIGKILL) and reaps it.
//
// Everything here works from plain threads (weft::net and weft::process
// block the thread there) and from fibers (they park the fiber). Waits are
// bounded by weft::test::kPatience, a hang detector, never a performance
// bound.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/io_util.hpp"
#include "common/test_util.hpp"
#include "weft/deadline.hpp"
#include "weft/net.hpp"
#include "weft/process.hpp"

namespace kv::itest {

using weft::Deadline;
using weft::test::kPatience;

// --- the server under test ---------------------------------------------------------------

/// The server the suite judges, read from the environment once.
struct Target {
  bool reference = false;               ///< WEFT_KV_REFERENCE=1: redis-server
  std::string binary;                   ///< the executable; empty when none is available
  std::vector<std::string> extra_args;  ///< WEFT_KV_ARGS
  std::string missing;                  ///< why binary is empty
};
const Target& target();

/// True when the suite runs against redis-server (WEFT_KV_REFERENCE=1).
inline bool reference_mode() {
  return target().reference;
}

/// Skips a test that signals weft-kv from another process when weft-kv is
/// a TSan build: TSan defers an asynchronous signal until the thread it
/// landed on enters an intercepted libc call, and the kernel hands it to
/// weft-kv's main thread, which waits in block_on on a raw futex system
/// call for the server's whole life, so the handler never runs (seen: no
/// reaction in 120 s). The runtime's own signal tests raise in-process and
/// pass under TSan; the plain, clang and ASan runs cover these tests.
#define KV_SKIP_EXTERNAL_SIGNALS_UNDER_TSAN()                                     \
  do {                                                                            \
    if (::weft::test::kThreadSanitizer && !::kv::itest::reference_mode())         \
      GTEST_SKIP() << "TSan defers signals sent to weft-kv (see kv_harness.hpp)"; \
  } while (0)

/// Skips the current test when there is no server to test.
#define KV_REQUIRE_SERVER()                                                      \
  do {                                                                           \
    if (::kv::itest::target().binary.empty()) {                                  \
      GTEST_SKIP() << "no server under test: " << ::kv::itest::target().missing; \
    }                                                                            \
  } while (0)

/// Skips the current test when the suite runs against redis-server.
#define KV_WEFT_KV_ONLY(why)                                                    \
  do {                                                                          \
    if (::kv::itest::reference_mode()) GTEST_SKIP() << "weft-kv only: " << why; \
  } while (0)

/// The path of a helper program (redis-cli, redis-benchmark): the
/// environment variable `env_var` if set, else `name` looked up in PATH;
/// empty when not found.
std::string tool_path(const char* env_var, const char* name);
std::string redis_cli();
std::string redis_benchmark();

/// A port on 127.0.0.1 that was free a moment ago (bind to port 0, close).
std::uint16_t free_port();

/// How to start a server.
struct ServerConfig {
  /// `--name value` options, given to either server (both accept the ones
  /// the tests use: timeout, maxclients, maxmemory, appendonly, ...).
  std::vector<std::pair<std::string, std::string>> options;
  /// The data directory (--dir); empty: a fresh temporary directory that
  /// the Server removes.
  std::filesystem::path dir;
  /// The executable; empty: the server under test (target()). A
  /// redis-server here gets the reference's extra arguments.
  std::string binary = {};
};

/// Environment variables for a server process (e.g. WEFT_FAULTS).
using ServerEnv = std::vector<std::pair<std::string, std::string>>;

/// A running server under test. Move-free: tests hold it by value or in a
/// unique_ptr.
class Server {
 public:
  /// Starts the server and waits until it answers PING.
  /// @throws std::runtime_error with the server's log when it does not come
  /// up within kPatience or keeps exiting.
  explicit Server(ServerConfig config = {}, ServerEnv env = {});
  /// Kills (SIGKILL) and reaps the server if it still runs.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  weft::net::Address address() const { return weft::net::Address::loopback_ipv4(port_); }
  const std::filesystem::path& dir() const noexcept { return dir_; }
  pid_t pid() const noexcept { return child_.pid(); }

  /// Everything the server wrote to stdout and stderr, from byte `from` on.
  std::string log(std::size_t from = 0) const;
  /// Size of the log now (a position for log(from)).
  std::size_t log_size() const;

  /// Sends `signo` to the server.
  void kill(int signo);
  /// Waits for the server to exit; empty if it is still running at `deadline`.
  std::optional<weft::process::ExitStatus> wait_exit(Deadline deadline = kPatience);
  /// True while the server process runs.
  bool running();

  /// Starts the server again with the same configuration and directory,
  /// on a new port, once the previous process has ended (kills it with
  /// SIGKILL first if not).
  void restart();
  /// Kills the server with SIGKILL and at once (before the old process is
  /// reaped) starts it again on the same port, with no retry on another
  /// one, as a supervisor restarting a crashed server would.
  /// @throws std::runtime_error with the log if it does not answer PING.
  void kill_and_restart_on_same_port();
  /// The configuration and environment, to change before restart().
  ServerConfig& config() noexcept { return config_; }
  ServerEnv& env() noexcept { return env_; }

 private:
  // fixed_port != 0: that port, one attempt. after_spawn runs right after
  // the process is spawned, before it is waited for.
  void start(std::uint16_t fixed_port = 0, const std::function<void()>& after_spawn = {});
  std::vector<std::string> arguments(std::uint16_t port) const;

  ServerConfig config_;
  ServerEnv env_;
  std::unique_ptr<weft::test::TempDir> own_dir_;
  weft::test::TempDir log_dir_;
  std::filesystem::path dir_;
  std::filesystem::path log_path_;
  std::uint16_t port_ = 0;
  weft::process::Child child_;
};

// --- RESP over TCP ---------------------------------------------------------------------

/// One RESP2 reply.
struct Reply {
  enum class Type { status, error, integer, bulk, nil, array, nil_array };
  Type type = Type::nil;
  std::string str;              ///< status text, error text (without '-') or bulk
  std::int64_t integer = 0;     ///< for integer
  std::vector<Reply> elements;  ///< for array

  bool is_error() const noexcept { return type == Type::error; }
  /// A compact rendering for assertions and messages: +OK, -ERR text, :5,
  /// "bulk" (C escapes), (nil), [elem, elem], (nil array).
  std::string describe() const;
};
std::ostream& operator<<(std::ostream& os, const Reply& r);
std::ostream& operator<<(std::ostream& os, Reply::Type t);

/// Thrown when the server's bytes are not RESP2.
class ProtocolViolation : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A RESP2 request: the multibulk encoding of argv.
std::string encode(const std::vector<std::string>& argv);

/// A RESP client on one TCP connection. One fiber or thread at a time.
class Client {
 public:
  /// Connects to 127.0.0.1:port. @throws as weft::net::TcpStream::connect.
  explicit Client(std::uint16_t port, Deadline deadline = kPatience);

  /// Sends argv and reads one reply. @throws weft::net::EndOfStream when the
  /// server closes first, ProtocolViolation, std::system_error, TimedOut.
  Reply call(const std::vector<std::string>& argv, Deadline deadline = kPatience);
  /// Sends raw bytes.
  void send(std::string_view bytes, Deadline deadline = kPatience);
  /// Sends argv (without reading the reply: for pipelines).
  void send_command(const std::vector<std::string>& argv, Deadline deadline = kPatience) {
    send(encode(argv), deadline);
  }
  /// Reads one reply. Errors as call().
  Reply read_reply(Deadline deadline = kPatience);
  /// Reads until the server closes the connection (a reset counts as a
  /// close) and returns every byte not consumed yet. @throws TimedOut.
  std::string read_until_close(Deadline deadline = kPatience);
  /// True if the server closes the connection before `deadline`, false if
  /// it is still open then. Bytes it sends meanwhile are discarded.
  bool closed_by(Deadline deadline);

  weft::net::TcpStream& stream() noexcept { return stream_; }
  /// This end's port (as CLIENT LIST shows it in addr=).
  std::uint16_t local_port() const { return stream_.local_address().port(); }
  void close() noexcept { stream_.close(); }

 private:
  // Reads more bytes into buf_; false at end of stream.
  bool fill(Deadline deadline);
  std::string read_line(Deadline deadline);

  weft::net::TcpStream stream_;
  std::string buf_;
  std::size_t pos_ = 0;
};

/// Sends every command of `cmds` in one pipeline, then QUIT, and returns
/// every byte the server sent until it closed the connection (the
/// byte-exact tests compare it with what redis-server sends). Errors as
/// Client::read_until_close.
std::string exchange(Client& c, const std::vector<std::vector<std::string>>& cmds);

/// Runs body(client, id) for n clients at once, each on its own fiber and
/// connection to 127.0.0.1:port, in a runtime of 2 workers; a client's
/// exception is recorded in `check` (with its id) and ends only it.
void run_clients(std::uint16_t port, int n, weft::test::Checker& check,
                 const std::function<void(Client&, int)>& body);

/// INFO's reply, parsed: the section headers in order ("Server", ...)
/// and every `field:value` line.
struct Info {
  std::vector<std::string> sections;
  std::map<std::string, std::string> fields;
  bool has(const std::string& field) const { return fields.count(field) != 0; }
  /// The field as an integer. @throws std::runtime_error if missing or not one.
  std::int64_t integer(const std::string& field) const;
};
/// Parses INFO's bulk text. @throws ProtocolViolation for a line that is
/// neither a header, a field nor empty.
Info parse_info(std::string_view text);

/// Every key with its type and contents, in key order: "+string <GET>",
/// LRANGE for a list, ZRANGE WITHSCORES for a sorted set, SMEMBERS and
/// HGETALL sorted (a hashtable's order is each server's own); with
/// `with_ttl`, PEXPIRETIME (absolute Unix ms, -1 for none) too. Not atomic
/// (a KEYS, then one call per key): compare while nothing writes.
std::map<std::string, std::string> keyspace_dump(Client& c, bool with_ttl = false);
/// Sends INFO [section] and parses the reply.
Info info(Client& c, const std::string& section = "");

// --- helper programs -------------------------------------------------------------------

struct ToolResult {
  weft::process::ExitStatus status = weft::process::ExitStatus::exited(0);
  std::string out;
  std::string err;
};

/// Runs `program args...` with `input` on its standard input and collects
/// its outputs. @throws weft::TimedOut (the program is killed) and the
/// errors of weft::process.
ToolResult run_tool(const std::string& program, const std::vector<std::string>& args,
                    std::string_view input = {}, Deadline deadline = kPatience);

/// Splits text into lines on '\n' (a final newline ends the last line, it
/// does not start an empty one).
std::vector<std::string> split_lines(std::string_view text);

// --- fixture ---------------------------------------------------------------------------

/// Base of the suites that share one server: started before the suite's
/// first test, killed after its last. Each test starts on an empty
/// keyspace (FLUSHALL).
class SharedServerTest : public ::testing::Test {
 public:
  static void SetUpTestSuite();
  static void TearDownTestSuite();

 protected:
  void SetUp() override;
  static Server& server() { return *server_; }
  static std::uint16_t port() { return server_->port(); }

 private:
  static std::unique_ptr<Server> server_;
  static std::string start_error_;
};

}  // namespace kv::itest
