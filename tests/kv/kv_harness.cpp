// The integration-test harness: see kv_harness.hpp.
#include "kv/kv_harness.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <sstream>
#include <system_error>
#include <thread>

#include "weft/errors.hpp"
#include "weft/this_fiber.hpp"

namespace kv::itest {

using namespace std::chrono_literals;
using weft::net::TcpStream;
using weft::process::Child;
using weft::process::Command;
using weft::process::ExitStatus;
using weft::process::Stdio;

namespace {

/// Sleeps the fiber, or the thread outside fibers.
void pause(std::chrono::milliseconds d) {
  if (weft::this_fiber::in_fiber()) {
    weft::this_fiber::sleep_for(d);
  } else {
    std::this_thread::sleep_for(d);
  }
}

std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

std::vector<std::string> split_blanks(std::string_view s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    std::size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string search_path(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::string_view rest = path != nullptr ? path : "/usr/bin:/bin";
  while (!rest.empty()) {
    const std::size_t colon = rest.find(':');
    const std::string_view dir = rest.substr(0, colon);
    const std::string candidate = std::string(dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return "";
}

Target read_target() {
  Target t;
  const std::string ref = env_or("WEFT_KV_REFERENCE", "0");
  t.reference = ref != "0" && ref != "no" && ref != "false";
  t.extra_args = split_blanks(env_or("WEFT_KV_ARGS", ""));
  const std::string configured = env_or("WEFT_KV_SERVER", "");
  if (t.reference) {
    t.binary = search_path(configured.empty() ? "redis-server" : configured);
    if (t.binary.empty()) t.missing = "WEFT_KV_REFERENCE=1 but redis-server is not installed";
    return t;
  }
  if (!configured.empty()) {
    t.binary = search_path(configured);
    if (t.binary.empty()) t.missing = "WEFT_KV_SERVER=" + configured + " is not executable";
    return t;
  }
#ifdef WEFT_KV_DEFAULT_SERVER
  t.binary = search_path(WEFT_KV_DEFAULT_SERVER);
  if (t.binary.empty()) t.missing = std::string(WEFT_KV_DEFAULT_SERVER) + " was not built";
#else
  t.missing =
      "weft-kv is not part of this build; set WEFT_KV_SERVER=/path/to/weft-kv or "
      "WEFT_KV_REFERENCE=1 (redis-server)";
#endif
  return t;
}

std::string read_file(const std::filesystem::path& p, std::size_t from) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return "";
  in.seekg(static_cast<std::streamoff>(from));
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

void escape_into(std::string& out, std::string_view s) {
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          char hex[5];
          std::snprintf(hex, sizeof hex, "\\x%02x", c);
          out += hex;
        } else {
          out += ch;
        }
    }
  }
}

}  // namespace

const Target& target() {
  static const Target t = read_target();
  return t;
}

std::string tool_path(const char* env_var, const char* name) {
  return search_path(env_or(env_var, name));
}
std::string redis_cli() {
  return tool_path("WEFT_KV_REDIS_CLI", "redis-cli");
}
std::string redis_benchmark() {
  return tool_path("WEFT_KV_REDIS_BENCHMARK", "redis-benchmark");
}

std::uint16_t free_port() {
  auto l = weft::net::TcpListener::bind(weft::net::Address::loopback_ipv4(0));
  return l.local_address().port();
}

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t nl = text.find('\n', i);
    if (nl == std::string_view::npos) {
      out.emplace_back(text.substr(i));
      break;
    }
    out.emplace_back(text.substr(i, nl - i));
    i = nl + 1;
  }
  return out;
}

// --- Server ------------------------------------------------------------------------------

Server::Server(ServerConfig config, ServerEnv env)
    : config_(std::move(config)), env_(std::move(env)) {
  if (target().binary.empty())
    throw std::runtime_error("no server under test: " + target().missing);
  // 2,000-connection tests need descriptors on both sides; the server
  // inherits the soft limit.
  weft::test::raise_fd_limit(20000);
  if (config_.dir.empty()) {
    own_dir_ = std::make_unique<weft::test::TempDir>();
    dir_ = own_dir_->path();
  } else {
    dir_ = config_.dir;
  }
  log_path_ = log_dir_.path() / "server.log";
  start();
}

Server::~Server() {
  if (child_) {
    try {
      if (!child_.try_wait()) {
        child_.kill(SIGKILL);
        child_.wait(kPatience);
      }
    } catch (...) {
      // The Child destructor kills and reaps whatever is left.
    }
  }
  // A sanitizer build of weft-kv halts at its first report (the suites run
  // with halt_on_error / abort_on_error), but a report after a test's last
  // request would fail nothing: the server's log is checked here.
  try {
    const std::string text = log();
    for (const char* marker : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                               "WARNING: ThreadSanitizer", "runtime error: "}) {
      if (const std::size_t at = text.find(marker); at != std::string::npos) {
        ADD_FAILURE() << "the server's log has a sanitizer report:\n"
                      << text.substr(at > 2000 ? at - 2000 : 0, 8000);
        break;
      }
    }
  } catch (...) {
    // No log (the server never started): nothing to check.
  }
}

std::vector<std::string> Server::arguments(std::uint16_t port) const {
  std::vector<std::string> a = {"--port", std::to_string(port), "--bind", "127.0.0.1",
                                "--dir",  dir_.string()};
  bool appendonly_given = false;
  for (const auto& [name, value] : config_.options) {
    a.push_back("--" + name);
    a.push_back(value);
    if (name == "appendonly") appendonly_given = true;
  }
  if (reference_mode() || (!config_.binary.empty() &&
                           std::filesystem::path(config_.binary).filename() == "redis-server")) {
    // No RDB snapshots (weft-kv has none), no AOF unless asked, and one
    // database as weft-kv has (so SELECT 1 fails on both).
    a.insert(a.end(), {"--save", "", "--databases", "1"});
    if (!appendonly_given) a.insert(a.end(), {"--appendonly", "no"});
  }
  if (config_.binary.empty())
    a.insert(a.end(), target().extra_args.begin(), target().extra_args.end());
  return a;
}

void Server::start(std::uint16_t fixed_port, const std::function<void()>& after_spawn) {
  std::string failures;
  for (int attempt = 0; attempt < (fixed_port != 0 ? 1 : 5); ++attempt) {
    port_ = fixed_port != 0 ? fixed_port : free_port();
    const std::size_t log_from = log_size();
    Command cmd("/bin/sh");
    cmd.arg("-c")
        .arg("exec \"$0\" \"$@\" >>\"$WEFT_KV_ITEST_LOG\" 2>&1")
        .arg(config_.binary.empty() ? target().binary : config_.binary);
    const auto args = arguments(port_);
    cmd.args(std::span<const std::string>(args));
    cmd.env("WEFT_KV_ITEST_LOG", log_path_.string()).std_in(Stdio::null);
    for (const auto& [name, value] : env_) cmd.env(name, value);
    child_ = cmd.spawn();
    if (after_spawn) after_spawn();

    const Deadline give_up(kPatience);
    while (!give_up.expired()) {
      if (auto st = child_.try_wait()) {
        failures += "attempt " + std::to_string(attempt + 1) + " on port " + std::to_string(port_) +
                    ": exited with " + st->to_string() + "; log:\n" + log(log_from) + "\n";
        break;
      }
      try {
        Client c(port_, 500ms);
        const Reply r = c.call({"PING"}, 2s);
        if (r.type == Reply::Type::status && r.str == "PONG") return;
        // Up, with --requirepass: it answers, refusing the unauthenticated PING.
        if (r.is_error() && r.str.rfind("NOAUTH ", 0) == 0) return;
      } catch (const std::exception&) {
        // Not listening yet, or still loading: try again.
      }
      pause(20ms);
    }
    if (child_ && !child_.try_wait()) {
      throw std::runtime_error("server " + target().binary + " did not answer PING within " +
                               std::to_string(kPatience.count()) + " s; log:\n" + log(log_from));
    }
  }
  throw std::runtime_error("server " + target().binary + " does not start:\n" + failures);
}

std::string Server::log(std::size_t from) const {
  return read_file(log_path_, from);
}

std::size_t Server::log_size() const {
  std::error_code ec;
  const auto n = std::filesystem::file_size(log_path_, ec);
  return ec ? 0 : static_cast<std::size_t>(n);
}

void Server::kill(int signo) {
  child_.kill(signo);
}

std::optional<ExitStatus> Server::wait_exit(Deadline deadline) {
  return child_.wait_for(deadline);
}

bool Server::running() {
  return child_ && !child_.try_wait();
}

void Server::restart() {
  if (running()) {
    child_.kill(SIGKILL);
    child_.wait(kPatience);
  }
  start();
}

void Server::kill_and_restart_on_same_port() {
  // The new process is spawned first and the old one killed right after:
  // the new one binds within milliseconds of the kill, before the kernel
  // has necessarily released the old listening socket ("at once", as a
  // supervisor restarting a crashed server would, only faster).
  weft::process::Child old = std::move(child_);
  start(port_, [&] {
    if (old && !old.try_wait()) old.kill(SIGKILL);
  });
  if (old) old.wait(kPatience);
}

// --- Reply -------------------------------------------------------------------------------

std::string Reply::describe() const {
  std::string out;
  switch (type) {
    case Type::status:
      return "+" + str;
    case Type::error:
      return "-" + str;
    case Type::integer:
      return ":" + std::to_string(integer);
    case Type::bulk:
      out = "\"";
      escape_into(out, str);
      return out + "\"";
    case Type::nil:
      return "(nil)";
    case Type::nil_array:
      return "(nil array)";
    case Type::array:
      out = "[";
      for (std::size_t i = 0; i < elements.size(); ++i) {
        if (i > 0) out += ", ";
        out += elements[i].describe();
      }
      return out + "]";
  }
  return "?";
}

std::ostream& operator<<(std::ostream& os, const Reply& r) {
  return os << r.describe();
}

std::ostream& operator<<(std::ostream& os, Reply::Type t) {
  switch (t) {
    case Reply::Type::status:
      return os << "status";
    case Reply::Type::error:
      return os << "error";
    case Reply::Type::integer:
      return os << "integer";
    case Reply::Type::bulk:
      return os << "bulk";
    case Reply::Type::nil:
      return os << "nil";
    case Reply::Type::array:
      return os << "array";
    case Reply::Type::nil_array:
      return os << "nil array";
  }
  return os << "?";
}

std::string encode(const std::vector<std::string>& argv) {
  std::string out = "*" + std::to_string(argv.size()) + "\r\n";
  for (const auto& a : argv) {
    out += "$" + std::to_string(a.size()) + "\r\n";
    out += a;
    out += "\r\n";
  }
  return out;
}

// --- Client ------------------------------------------------------------------------------

Client::Client(std::uint16_t port, Deadline deadline)
    : stream_(TcpStream::connect(weft::net::Address::loopback_ipv4(port), deadline)) {
  stream_.set_nodelay(true);
}

Reply Client::call(const std::vector<std::string>& argv, Deadline deadline) {
  send_command(argv, deadline);
  return read_reply(deadline);
}

void Client::send(std::string_view bytes, Deadline deadline) {
  stream_.write_all(bytes, deadline);
}

bool Client::fill(Deadline deadline) {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  char tmp[16 * 1024];
  const std::size_t n = stream_.read(tmp, sizeof tmp, deadline);
  if (n == 0) return false;
  buf_.append(tmp, n);
  return true;
}

std::string Client::read_line(Deadline deadline) {
  for (;;) {
    const std::size_t crlf = buf_.find("\r\n", pos_);
    if (crlf != std::string::npos) {
      std::string line = buf_.substr(pos_, crlf - pos_);
      pos_ = crlf + 2;
      return line;
    }
    if (!fill(deadline)) throw weft::net::EndOfStream();
  }
}

Reply Client::read_reply(Deadline deadline) {
  const std::string line = read_line(deadline);
  if (line.empty()) throw ProtocolViolation("empty reply line");
  Reply r;
  const std::string_view rest = std::string_view(line).substr(1);
  auto number = [&]() -> std::int64_t {
    std::int64_t v = 0;
    const auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
    if (ec != std::errc() || p != rest.data() + rest.size()) {
      throw ProtocolViolation("bad number in reply line '" + line + "'");
    }
    return v;
  };
  switch (line[0]) {
    case '+':
      r.type = Reply::Type::status;
      r.str = rest;
      return r;
    case '-':
      r.type = Reply::Type::error;
      r.str = rest;
      return r;
    case ':':
      r.type = Reply::Type::integer;
      r.integer = number();
      return r;
    case '$': {
      const std::int64_t len = number();
      if (len == -1) return r;  // nil
      if (len < 0) throw ProtocolViolation("bad bulk length in '" + line + "'");
      const auto n = static_cast<std::size_t>(len);
      while (buf_.size() - pos_ < n + 2) {
        if (!fill(deadline)) throw weft::net::EndOfStream();
      }
      if (buf_.compare(pos_ + n, 2, "\r\n") != 0) {
        throw ProtocolViolation("bulk of length " + std::to_string(n) + " not followed by CRLF");
      }
      r.type = Reply::Type::bulk;
      r.str = buf_.substr(pos_, n);
      pos_ += n + 2;
      return r;
    }
    case '*': {
      const std::int64_t len = number();
      if (len == -1) {
        r.type = Reply::Type::nil_array;
        return r;
      }
      if (len < 0) throw ProtocolViolation("bad array length in '" + line + "'");
      r.type = Reply::Type::array;
      for (std::int64_t i = 0; i < len; ++i) r.elements.push_back(read_reply(deadline));
      return r;
    }
    default:
      throw ProtocolViolation("not a RESP2 reply line: '" + line + "'");
  }
}

std::string Client::read_until_close(Deadline deadline) {
  try {
    while (fill(deadline)) {
    }
  } catch (const std::system_error& e) {
    if (e.code() != std::errc::connection_reset) throw;
  }
  std::string rest = buf_.substr(pos_);
  buf_.clear();
  pos_ = 0;
  return rest;
}

bool Client::closed_by(Deadline deadline) {
  try {
    read_until_close(deadline);
    return true;
  } catch (const weft::TimedOut&) {
    return false;
  }
}

// --- INFO ------------------------------------------------------------------------------

std::int64_t Info::integer(const std::string& field) const {
  const auto it = fields.find(field);
  if (it == fields.end()) throw std::runtime_error("INFO has no field " + field);
  std::int64_t v = 0;
  const auto& s = it->second;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    throw std::runtime_error("INFO field " + field + " is not an integer: '" + s + "'");
  }
  return v;
}

namespace {
// The elements of an array reply, sorted; pairs (HGETALL) stay pairs.
std::string sorted_elements(const Reply& r, std::size_t group) {
  std::vector<std::string> items;
  for (std::size_t i = 0; i + group <= r.elements.size(); i += group) {
    std::string item;
    for (std::size_t j = 0; j < group; ++j) item += r.elements[i + j].describe() + " ";
    items.push_back(item);
  }
  std::sort(items.begin(), items.end());
  std::string out;
  for (const std::string& item : items) out += item + "| ";
  return out;
}
}  // namespace

std::map<std::string, std::string> keyspace_dump(Client& c, bool with_ttl) {
  std::map<std::string, std::string> out;
  for (const Reply& k : c.call({"KEYS", "*"}).elements) {
    const std::string type = c.call({"TYPE", k.str}).describe();
    std::string contents;
    if (type == "+string")
      contents = c.call({"GET", k.str}).describe();
    else if (type == "+list")
      contents = c.call({"LRANGE", k.str, "0", "-1"}).describe();
    else if (type == "+hash")
      contents = sorted_elements(c.call({"HGETALL", k.str}), 2);
    else if (type == "+set")
      contents = sorted_elements(c.call({"SMEMBERS", k.str}), 1);
    else if (type == "+zset")
      contents = c.call({"ZRANGE", k.str, "0", "-1", "WITHSCORES"}).describe();
    if (with_ttl) contents += " ttl " + c.call({"PEXPIRETIME", k.str}).describe();
    out[k.str] = type + " " + contents;
  }
  return out;
}

Info parse_info(std::string_view text) {
  Info info;
  for (auto line : split_lines(text)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line.rfind("# ", 0) == 0) {
      info.sections.push_back(line.substr(2));
      continue;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0) {
      throw ProtocolViolation("INFO line is neither '# Section' nor 'field:value': '" + line + "'");
    }
    info.fields[line.substr(0, colon)] = line.substr(colon + 1);
  }
  return info;
}

Info info(Client& c, const std::string& section) {
  const Reply r = section.empty() ? c.call({"INFO"}) : c.call({"INFO", section});
  if (r.type != Reply::Type::bulk) throw ProtocolViolation("INFO replied " + r.describe());
  return parse_info(r.str);
}

// --- helper programs -------------------------------------------------------------------

ToolResult run_tool(const std::string& program, const std::vector<std::string>& args,
                    std::string_view input, Deadline deadline) {
  Command cmd(program);
  cmd.args(std::span<const std::string>(args));
  cmd.std_in(Stdio::pipe).std_out(Stdio::pipe).std_err(Stdio::pipe);
  Child child = cmd.spawn();
  // Three streams at once, each on its own thread, so that the program
  // filling one pipe while we serve another cannot deadlock.
  std::string err;
  std::exception_ptr writer_error;
  std::thread writer([&] {
    try {
      child.stdin_pipe().write_all(input, deadline);
    } catch (const std::system_error& e) {
      if (e.code() != std::errc::broken_pipe) writer_error = std::current_exception();
    } catch (...) {
      writer_error = std::current_exception();
    }
    child.stdin_pipe().close();
  });
  std::thread err_reader([&] {
    try {
      err = child.stderr_pipe().read_to_end(deadline);
    } catch (...) {
      // A timeout shows up on stdout's reader as well.
    }
  });
  ToolResult result;
  try {
    result.out = child.stdout_pipe().read_to_end(deadline);
    result.status = child.wait(deadline);
  } catch (...) {
    child.kill(SIGKILL);
    writer.join();
    err_reader.join();
    throw;
  }
  writer.join();
  err_reader.join();
  if (writer_error) std::rethrow_exception(writer_error);
  result.err = std::move(err);
  return result;
}

// --- SharedServerTest --------------------------------------------------------------------

std::unique_ptr<Server> SharedServerTest::server_;
std::string SharedServerTest::start_error_;

void SharedServerTest::SetUpTestSuite() {
  start_error_.clear();
  if (target().binary.empty()) return;
  try {
    server_ = std::make_unique<Server>();
  } catch (const std::exception& e) {
    start_error_ = e.what();
  }
}

void SharedServerTest::TearDownTestSuite() {
  server_.reset();
}

std::string exchange(Client& c, const std::vector<std::vector<std::string>>& cmds) {
  std::string batch;
  for (const auto& argv : cmds) batch += encode(argv);
  batch += encode({"QUIT"});
  c.send(batch);
  return c.read_until_close();
}

void run_clients(std::uint16_t port, int n, weft::test::Checker& check,
                 const std::function<void(Client&, int)>& body) {
  weft::Runtime rt(weft::test::workers_config(2));
  rt.block_on([&] {
    std::vector<weft::JoinHandle<void>> fibers;
    for (int id = 0; id < n; ++id) {
      fibers.push_back(weft::spawn([&, id] {
        try {
          Client c(port);
          body(c, id);
        } catch (const std::exception& e) {
          check.check(false, "client " + std::to_string(id) + ": " + e.what());
        }
      }));
    }
    for (auto& f : fibers) f.join();
  });
}

void SharedServerTest::SetUp() {
  KV_REQUIRE_SERVER();
  ASSERT_TRUE(start_error_.empty()) << start_error_;
  ASSERT_TRUE(server_ && server_->running()) << "the suite's server is gone; log:\n"
                                             << (server_ ? server_->log() : "");
  Client c(server_->port());
  const Reply r = c.call({"FLUSHALL"});
  ASSERT_EQ(r.describe(), "+OK");
}

}  // namespace kv::itest
