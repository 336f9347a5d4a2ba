// weft::net sockets over the reactor (src/io).
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "io/backend.hpp"
#include "io/error.hpp"
#include "obs/metrics.hpp"
#include "sched/current.hpp"
#include "sched/runtime_impl.hpp"
#include "sched/waiter.hpp"
#include "weft/errors.hpp"
#include "weft/log.hpp"
#include "weft/net.hpp"
#include "weft/this_fiber.hpp"

namespace weft::net {

using detail::io::check;
using detail::io::Op;
using detail::io::Request;
using detail::io::throw_errno;

namespace {

int new_socket(int family, int type) {
  const int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno(errno, "socket");
  return fd;
}

void set_int_option(int fd, int level, int name, int value, const char* what) {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) throw_errno(errno, what);
}

void apply_bind_options(int fd, const Address& addr, const BindOptions& o, bool stream) {
  if (o.reuse_address && stream)
    set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt(SO_REUSEADDR)");
  if (o.reuse_port) set_int_option(fd, SOL_SOCKET, SO_REUSEPORT, 1, "setsockopt(SO_REUSEPORT)");
  if (addr.is_ipv6()) {
    set_int_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, o.v6_only ? 1 : 0, "setsockopt(IPV6_V6ONLY)");
  }
}

// A Unix socket address for path ('@' prefix: abstract namespace).
socklen_t unix_address(std::string_view path, sockaddr_un& sun) {
  std::memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  if (path.empty()) throw_errno(EINVAL, "empty Unix socket path");
  if (path.size() >= sizeof sun.sun_path) throw_errno(ENAMETOOLONG, "Unix socket path too long");
  std::memcpy(sun.sun_path, path.data(), path.size());
  if (path.front() == '@') {
    sun.sun_path[0] = '\0';
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  }
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
}

// Every wait of weft::net goes through here. Without a deadline of its
// own, a wait gets Config::network_timeout - except accept: a server waits
// for clients as long as it likes.
std::int64_t run(detail::io::IoObject* obj, const Request& r, Deadline d) {
  const std::int64_t deadline_ns =
      r.op == Op::accept ? d.ns()
                         : detail::effective_deadline(d.ns(), detail::TimeoutKind::network).ns;
  return detail::io::perform(r, obj, deadline_ns);
}

// A recv/send of one buffer, or a recvmsg/sendmsg of msg, on fd: the result
// as a count, or std::system_error naming `what`.
std::size_t transfer(detail::io::IoObject* obj, Op op, int fd, const void* buf, std::size_t len,
                     msghdr* msg, Deadline d, const char* what) {
  Request r;
  r.op = op;
  r.fd = fd;
  r.buf = const_cast<void*>(buf);
  r.len = len;
  r.msg = msg;
  const auto n = static_cast<std::size_t>(check(run(obj, r, d), what));
  if (obj != nullptr && obj->tcp.load(std::memory_order_relaxed)) {
    const bool in = op == Op::recv || op == Op::recvmsg;
    detail::obs::add(
        in ? detail::obs::Counter::tcp_received_bytes : detail::obs::Counter::tcp_sent_bytes, n);
  }
  return n;
}

// connect(2) through the reactor; closes nothing (the caller's Socket owns fd).
void connect_fd(detail::io::IoObject* obj, int fd, const sockaddr* sa, socklen_t len, Deadline d,
                const char* what) {
  Request r;
  r.op = Op::connect;
  r.fd = fd;
  r.addr = const_cast<sockaddr*>(sa);
  r.addr_len = len;
  check(run(obj, r, d), what);
}

bool out_of_resources(int err) noexcept {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

// True while the calling fiber's runtime is over its memory limit and
// refuses new work (Config::memory_limit): accept then leaves connections
// in the kernel's backlog instead of taking on their memory.
bool memory_refuses() noexcept {
  detail::RuntimeImpl* rt = detail::current_runtime();
  return rt != nullptr && rt->refusing_new_work();
}

// accept4 through the reactor with the resource-exhaustion policy of
// TcpListener::accept (documented in net.hpp): out of descriptors or
// memory, or over the runtime's memory_limit, it backs off and retries.
// Returns the new fd.
int accept_fd(detail::io::IoObject* obj, int fd, Deadline d) {
  static std::atomic<bool> logged{false};
  static std::atomic<bool> logged_limit{false};
  auto backoff = std::chrono::milliseconds(1);
  for (;;) {
    int err = 0;
    if (memory_refuses()) {
      if (!logged_limit.exchange(true, std::memory_order_relaxed)) {
        log::logf(log::Level::warn,
                  "weft: accept: the runtime is over its memory_limit; leaving connections in "
                  "the backlog until its memory is below 90 %% of the limit (logged once per "
                  "process)");
      }
    } else {
      Request r;
      r.op = Op::accept;
      r.fd = fd;
      const std::int64_t n = run(obj, r, d);
      if (n >= 0) return static_cast<int>(n);
      err = static_cast<int>(-n);
      if (err == ECONNABORTED || err == EPROTO || err == EPERM) continue;  // that peer gave up
      if (!out_of_resources(err)) throw_errno(err, "accept");
    }
    if (err != 0 && !logged.exchange(true, std::memory_order_relaxed)) {
      log::logf(log::Level::warn,
                "weft: accept: %s; backing off and retrying (logged once per process)",
                std::strerror(err));
    }
    if (d.expired()) throw TimedOut();
    const auto pause = std::min<std::chrono::nanoseconds>(backoff, d.remaining());
    this_fiber::sleep_for(pause);  // a cancellation point; on a thread it sleeps
    backoff = std::min(backoff * 2, std::chrono::milliseconds(100));
  }
}

}  // namespace

// --- Socket ----------------------------------------------------------------

Socket::Socket(int fd) : obj_(detail::io::adopt(fd, true)), fd_(fd) {}

Socket::Socket(Socket&& other) noexcept
    : obj_(std::exchange(other.obj_, nullptr)), fd_(std::exchange(other.fd_, -1)) {}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    if (obj_ != nullptr) detail::io::drop_handle(obj_);
    obj_ = std::exchange(other.obj_, nullptr);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

Socket::~Socket() {
  if (obj_ != nullptr) detail::io::drop_handle(obj_);
}

void Socket::close() noexcept {
  if (obj_ != nullptr) detail::io::close(obj_);
}

int Socket::native_handle() const noexcept {
  return is_open() ? fd_ : -1;
}

template <class F>
auto Socket::with_fd(const char* what, F&& fn) const {
  detail::io::OpGuard guard(obj_);
  if (!guard) throw_errno(EBADF, what);
  return fn(fd_);
}

bool Socket::is_open() const noexcept {
  if (obj_ == nullptr) return false;
  detail::LockGuard g(obj_->lock);
  return !obj_->closed;
}

Address Socket::socket_address() const {
  return with_fd("getsockname", [](int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
      throw_errno(errno, "getsockname");
    }
    return Address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  });
}

// --- Stream ----------------------------------------------------------------

std::size_t Stream::read(void* buf, std::size_t len, Deadline d) {
  if (len == 0) return with_fd("read", [](int) { return std::size_t{0}; });
  return transfer(obj_, Op::recv, fd_, buf, len, nullptr, d, "read");
}

void Stream::read_exact(void* buf, std::size_t len, Deadline d) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    const std::size_t n = read(p, len, d);
    if (n == 0) throw EndOfStream();
    p += n;
    len -= n;
  }
}

std::size_t Stream::write(const void* buf, std::size_t len, Deadline d) {
  return transfer(obj_, Op::send, fd_, buf, len, nullptr, d, "write");
}

void Stream::write_all(const void* buf, std::size_t len, Deadline d) {
  const auto* p = static_cast<const char*>(buf);
  while (len > 0) {
    const std::size_t n = write(p, len, d);
    p += n;
    len -= n;
  }
}

std::size_t Stream::readv(std::span<const iovec> bufs, Deadline d) {
  std::size_t total = 0;
  for (const iovec& v : bufs) total += v.iov_len;
  if (total == 0) return read(nullptr, 0, d);
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(bufs.data());
  msg.msg_iovlen = bufs.size();
  return transfer(obj_, Op::recvmsg, fd_, nullptr, 0, &msg, d, "readv");
}

std::size_t Stream::writev(std::span<const iovec> bufs, Deadline d) {
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(bufs.data());
  msg.msg_iovlen = bufs.size();
  return transfer(obj_, Op::sendmsg, fd_, nullptr, 0, &msg, d, "writev");
}

void Stream::shutdown(Shutdown how) {
  const int h = how == Shutdown::read ? SHUT_RD : how == Shutdown::write ? SHUT_WR : SHUT_RDWR;
  with_fd("shutdown", [h](int fd) {
    if (::shutdown(fd, h) != 0) throw_errno(errno, "shutdown");
  });
}

// --- TCP -------------------------------------------------------------------

TcpStream TcpStream::connect(const Address& addr, Deadline d) {
  TcpStream s(new_socket(addr.family(), SOCK_STREAM));
  connect_fd(s.obj_, s.fd_, addr.sockaddr_ptr(), addr.sockaddr_len(), d,
             ("connect to " + addr.to_string()).c_str());
  detail::io::mark_tcp(s.obj_);
  return s;
}

TcpStream TcpStream::connect(std::string_view host, std::uint16_t port, Deadline d) {
  const std::vector<Address> addrs = resolve(host, port, d);
  std::exception_ptr last;
  for (const Address& a : addrs) {
    try {
      return connect(a, d);
    } catch (const std::system_error&) {
      last = std::current_exception();
    }
  }
  std::rethrow_exception(last);
}

void TcpStream::set_nodelay(bool on) {
  with_fd("setsockopt(TCP_NODELAY)", [on](int fd) {
    set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, "setsockopt(TCP_NODELAY)");
  });
}

void TcpStream::set_keepalive(bool on, int idle_seconds) {
  with_fd("setsockopt(SO_KEEPALIVE)", [on, idle_seconds](int fd) {
    set_int_option(fd, SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0, "setsockopt(SO_KEEPALIVE)");
    if (on && idle_seconds > 0) {
      set_int_option(fd, IPPROTO_TCP, TCP_KEEPIDLE, idle_seconds, "setsockopt(TCP_KEEPIDLE)");
    }
  });
}

Address TcpStream::peer_address() const {
  return with_fd("getpeername", [](int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
      throw_errno(errno, "getpeername");
    }
    return Address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  });
}

Address TcpStream::local_address() const {
  return socket_address();
}

TcpListener TcpListener::bind(const Address& addr, const BindOptions& o) {
  if (o.backlog < 1) throw_errno(EINVAL, "listen backlog must be >= 1");
  TcpListener l(new_socket(addr.family(), SOCK_STREAM));
  apply_bind_options(l.fd_, addr, o, true);
  if (::bind(l.fd_, addr.sockaddr_ptr(), addr.sockaddr_len()) != 0) {
    throw_errno(errno, "bind " + addr.to_string());
  }
  if (::listen(l.fd_, o.backlog) != 0) throw_errno(errno, "listen");
  return l;
}

TcpStream TcpListener::accept(Deadline d) {
  TcpStream s(accept_fd(obj_, fd_, d));
  detail::io::mark_tcp(s.obj_);
  return s;
}

Address TcpListener::local_address() const {
  return socket_address();
}

// --- UDP -------------------------------------------------------------------

UdpSocket UdpSocket::bind(const Address& addr, const BindOptions& o) {
  UdpSocket s(new_socket(addr.family(), SOCK_DGRAM));
  apply_bind_options(s.fd_, addr, o, false);
  if (::bind(s.fd_, addr.sockaddr_ptr(), addr.sockaddr_len()) != 0) {
    throw_errno(errno, "bind " + addr.to_string());
  }
  return s;
}

std::size_t UdpSocket::send_to(const void* buf, std::size_t len, const Address& to, Deadline d) {
  iovec iov{const_cast<void*>(buf), len};
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr*>(to.sockaddr_ptr());
  msg.msg_namelen = to.sockaddr_len();
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  return transfer(obj_, Op::sendmsg, fd_, nullptr, 0, &msg, d, "send_to");
}

std::pair<std::size_t, Address> UdpSocket::recv_from(void* buf, std::size_t len, Deadline d) {
  sockaddr_storage from{};
  iovec iov{buf, len};
  msghdr msg{};
  msg.msg_name = &from;
  msg.msg_namelen = sizeof from;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  const std::size_t n = transfer(obj_, Op::recvmsg, fd_, nullptr, 0, &msg, d, "recv_from");
  return {n, Address::from_sockaddr(reinterpret_cast<sockaddr*>(&from), msg.msg_namelen)};
}

void UdpSocket::connect(const Address& peer) {
  with_fd("connect", [&peer](int fd) {
    if (::connect(fd, peer.sockaddr_ptr(), peer.sockaddr_len()) != 0) {
      throw_errno(errno, "connect " + peer.to_string());
    }
  });
}

std::size_t UdpSocket::send(const void* buf, std::size_t len, Deadline d) {
  return transfer(obj_, Op::send, fd_, buf, len, nullptr, d, "send");
}

std::size_t UdpSocket::recv(void* buf, std::size_t len, Deadline d) {
  return transfer(obj_, Op::recv, fd_, buf, len, nullptr, d, "recv");
}

Address UdpSocket::local_address() const {
  return socket_address();
}

// --- Unix ------------------------------------------------------------------

UnixStream UnixStream::connect(std::string_view path, Deadline d) {
  sockaddr_un sun;
  const socklen_t len = unix_address(path, sun);
  UnixStream s(new_socket(AF_UNIX, SOCK_STREAM));
  connect_fd(s.obj_, s.fd_, reinterpret_cast<sockaddr*>(&sun), len, d,
             ("connect to " + std::string(path)).c_str());
  return s;
}

std::pair<UnixStream, UnixStream> UnixStream::pair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
    throw_errno(errno, "socketpair");
  }
  UnixStream a;
  try {
    a = UnixStream(sv[0]);
  } catch (...) {
    ::close(sv[1]);
    throw;
  }
  return {std::move(a), UnixStream(sv[1])};
}

UnixListener UnixListener::bind(std::string_view path, int backlog) {
  if (backlog < 1) throw_errno(EINVAL, "listen backlog must be >= 1");
  sockaddr_un sun;
  const socklen_t len = unix_address(path, sun);
  UnixListener l(new_socket(AF_UNIX, SOCK_STREAM));
  if (::bind(l.fd_, reinterpret_cast<sockaddr*>(&sun), len) != 0) {
    throw_errno(errno, "bind " + std::string(path));
  }
  if (::listen(l.fd_, backlog) != 0) throw_errno(errno, "listen");
  return l;
}

UnixStream UnixListener::accept(Deadline d) {
  return UnixStream(accept_fd(obj_, fd_, d));
}

}  // namespace weft::net
