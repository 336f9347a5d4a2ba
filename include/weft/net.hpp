// weft::net: TCP, UDP and Unix-domain sockets and DNS for fibers.
//
// Every blocking call parks only the calling fiber (its worker runs other
// fibers meanwhile) on the runtime's reactor, io_uring or epoll
// (docs/design/io.md); called from a plain thread it blocks that thread.
// Every blocking call takes an optional weft::Deadline (a duration or a
// time_point) and is a cancellation point.
//
// Errors: std::system_error carrying the errno (ECONNREFUSED, ECONNRESET,
// EPIPE, EADDRINUSE, ...; EBADF after close()), weft::TimedOut when the
// deadline passes, weft::Cancelled when the fiber is cancelled. A call that
// times out or is cancelled has not transferred anything: a read consumed
// no data, a write sent nothing, an accept took no connection (if the
// operation completed in the kernel anyway, its result is returned instead).
// Writing to a connection the peer has closed fails with EPIPE; it never
// raises SIGPIPE.
//
// Thread safety: one socket object may be used by several fibers at once
// (say one reading, one writing); close() from one fiber wakes the others'
// pending calls, which fail with EBADF. Moving or destroying a socket while
// another fiber uses it is a data race, as for any C++ object.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "weft/deadline.hpp"

namespace weft::detail::io {
struct IoObject;
}

namespace weft::net {

/// Thrown by read_exact() when the stream ends before the requested bytes
/// arrived. Data read so far is lost to the caller.
class EndOfStream : public std::runtime_error {
 public:
  EndOfStream() : std::runtime_error("weft: unexpected end of stream") {}
};

/// An IPv4 or IPv6 socket address (IP and port). Value type.
class Address {
 public:
  /// An unspecified address (family AF_UNSPEC); not usable for I/O.
  Address() noexcept;
  /// `ip` is an IPv4 dotted quad ("127.0.0.1") or an IPv6 literal ("::1",
  /// brackets allowed, a zone like "fe80::1%eth0" too).
  /// @throws std::invalid_argument if ip is not an IP literal.
  Address(std::string_view ip, std::uint16_t port);

  /// Parses "a.b.c.d:port" or "[v6]:port".
  /// @throws std::invalid_argument naming the text when malformed (missing
  /// or out-of-range port, host names: use resolve()).
  static Address parse(std::string_view text);
  /// parse() that returns nullopt instead of throwing.
  static std::optional<Address> try_parse(std::string_view text) noexcept;
  /// From a sockaddr_in or sockaddr_in6. @throws std::invalid_argument for
  /// other families or a short length.
  static Address from_sockaddr(const sockaddr* sa, socklen_t len);
  /// `0.0.0.0:port` (bind to every IPv4 interface).
  static Address any_ipv4(std::uint16_t port) noexcept;
  /// `[::]:port` (bind to every IPv6 interface).
  static Address any_ipv6(std::uint16_t port) noexcept;
  /// `127.0.0.1:port`.
  static Address loopback_ipv4(std::uint16_t port) noexcept;
  /// `[::1]:port`.
  static Address loopback_ipv6(std::uint16_t port) noexcept;

  /// The address family: AF_INET / AF_INET6 (false for both when default
  /// constructed).
  bool is_ipv4() const noexcept;
  /// True for AF_INET6.
  bool is_ipv6() const noexcept;
  /// AF_INET, AF_INET6, or AF_UNSPEC for a default-constructed Address.
  int family() const noexcept;
  /// The port (host byte order); 0 when default constructed.
  std::uint16_t port() const noexcept;
  /// The same IP with another port.
  Address with_port(std::uint16_t port) const noexcept;
  /// The IP alone: "127.0.0.1", "::1".
  std::string ip() const;
  /// "127.0.0.1:80", "[::1]:80" (parse() reads it back).
  std::string to_string() const;

  /// The socket address for system calls, valid while this Address lives,
  /// and its length in bytes (0 when default constructed).
  const sockaddr* sockaddr_ptr() const noexcept {
    return reinterpret_cast<const sockaddr*>(&storage_);
  }
  /// The length of *sockaddr_ptr() in bytes.
  socklen_t sockaddr_len() const noexcept { return len_; }

  /// Same family, IP, port (and IPv6 flow info / scope).
  friend bool operator==(const Address& a, const Address& b) noexcept;

 private:
  sockaddr_storage storage_;
  socklen_t len_;
};

/// Resolves `host` (a name or an IP literal) to addresses for `port`, IPv4
/// and IPv6 in the resolver's order. IP literals are answered without a
/// lookup. In a fiber the lookup (getaddrinfo) runs on the blocking pool,
/// so it never blocks a worker; past the deadline this throws
/// weft::TimedOut and the abandoned lookup finishes in the background. On a
/// plain thread getaddrinfo runs inline and the deadline is checked after.
/// @throws std::system_error (category: weft's "getaddrinfo" category, code:
/// the EAI_* value, what(): gai_strerror) when the name does not resolve;
/// weft::TimedOut; weft::Cancelled.
std::vector<Address> resolve(std::string_view host, std::uint16_t port, Deadline deadline = {});

/// The std::error_category of resolve()'s EAI_* errors.
const std::error_category& resolver_category() noexcept;

/// Which directions shutdown() closes.
enum class Shutdown { read, write, both };

/// An owned socket descriptor registered with the runtime's reactor: the
/// base of every socket type here. Move-only; the destructor closes.
class Socket {
 public:
  Socket() noexcept = default;
  /// Takes over other's descriptor; other is left closed.
  Socket(Socket&& other) noexcept;
  /// Closes this socket, then takes over other's descriptor.
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket();

  /// Closes the socket. Calls blocked on it in other fibers wake and fail
  /// with EBADF; the descriptor is released once the last of them has
  /// returned. Idempotent; never blocks; never throws.
  void close() noexcept;
  /// False after close() or a move.
  bool is_open() const noexcept;
  /// The descriptor (for setsockopt and the like), -1 when closed. Owned by
  /// this object: do not close it, and do not use the number after close():
  /// it may name another descriptor by then.
  int native_handle() const noexcept;

 protected:
  /// Runs fn(fd) while holding the descriptor open (so a concurrent close()
  /// cannot hand its number to another socket meanwhile).
  /// @throws std::system_error(EBADF) if closed.
  template <class F>
  auto with_fd(const char* what, F&& fn) const;
  /// Takes ownership of fd (non-blocking, close-on-exec); closes it and
  /// rethrows if registering it fails.
  explicit Socket(int fd);
  /// The address getsockname(2) reports. @throws std::system_error.
  Address socket_address() const;
  /// Internal: the reactor's registration of the descriptor.
  detail::io::IoObject* obj_ = nullptr;
  /// Internal: the descriptor, -1 when closed.
  int fd_ = -1;
};

/// The byte-stream part shared by TcpStream and UnixStream: a connected
/// stream socket.
class Stream : public Socket {
 public:
  Stream() noexcept = default;

  /// Reads up to `len` bytes into buf, waiting until at least one is
  /// available. Returns the count, 0 at end of stream (peer shut down
  /// writing) or for len == 0. @throws std::system_error (ECONNRESET, EBADF
  /// when closed), weft::TimedOut, weft::Cancelled.
  std::size_t read(void* buf, std::size_t len, Deadline deadline = {});
  /// Reads exactly `len` bytes. @throws EndOfStream if the stream ends
  /// first; else as read().
  void read_exact(void* buf, std::size_t len, Deadline deadline = {});
  /// Writes up to `len` bytes, waiting until at least one can be written;
  /// returns the count (may be short). @throws std::system_error (EPIPE,
  /// ECONNRESET, EBADF), weft::TimedOut, weft::Cancelled.
  std::size_t write(const void* buf, std::size_t len, Deadline deadline = {});
  /// Writes all `len` bytes (retrying partial writes). On an exception, an
  /// unknown prefix may have been sent.
  void write_all(const void* buf, std::size_t len, Deadline deadline = {});
  /// write_all(data.data(), data.size(), deadline).
  void write_all(std::string_view data, Deadline deadline = {}) {
    write_all(data.data(), data.size(), deadline);
  }
  /// Scatter read into several buffers (readv). Returns the total count, 0
  /// at end of stream. Errors as read().
  std::size_t readv(std::span<const iovec> bufs, Deadline deadline = {});
  /// Gather write from several buffers (writev); may be short. Errors as
  /// write().
  std::size_t writev(std::span<const iovec> bufs, Deadline deadline = {});
  /// shutdown(2): ends reading, writing (the peer reads end of stream) or
  /// both. Never blocks. @throws std::system_error (ENOTCONN, EBADF).
  void shutdown(Shutdown how);

 protected:
  /// The socket constructors (a subclass adopts a connected descriptor).
  using Socket::Socket;
};

/// Socket options for TcpListener::bind and UdpSocket::bind.
struct BindOptions {
  /// listen(2) backlog: pending connections the kernel queues (capped by
  /// net.core.somaxconn). TCP only.
  int backlog = 1024;
  /// SO_REUSEADDR: rebind a port whose old connections are in TIME_WAIT.
  /// TCP only: UdpSocket::bind ignores it, because for UDP it lets several
  /// sockets bind one port (even a port 0 request may be handed a port
  /// another such socket holds) and take each other's datagrams. Use
  /// reuse_port for deliberate sharing.
  bool reuse_address = true;
  /// SO_REUSEPORT: several sockets on one port, the kernel spreading
  /// connections (or datagrams) among them.
  bool reuse_port = false;
  /// IPV6_V6ONLY for IPv6 addresses (false: also accept IPv4-mapped).
  bool v6_only = false;
};

/// A connected TCP stream.
class TcpStream : public Stream {
 public:
  TcpStream() noexcept = default;

  /// Connects to `addr`. @throws std::system_error (ECONNREFUSED,
  /// ENETUNREACH, EMFILE...), weft::TimedOut (the half-open socket is
  /// closed), weft::Cancelled.
  static TcpStream connect(const Address& addr, Deadline deadline = {});
  /// Resolves host and tries each address in turn until one connects,
  /// within one overall deadline. Throws the last address's error.
  static TcpStream connect(std::string_view host, std::uint16_t port, Deadline deadline = {});

  /// TCP_NODELAY: send small segments at once (no Nagle delay).
  void set_nodelay(bool on);
  /// SO_KEEPALIVE; with idle > 0 also TCP_KEEPIDLE (seconds of silence
  /// before the first probe). @throws std::system_error.
  void set_keepalive(bool on, int idle_seconds = 0);
  /// The peer's address. @throws std::system_error (ENOTCONN, EBADF).
  Address peer_address() const;
  /// This end's address. @throws std::system_error.
  Address local_address() const;

 private:
  friend class TcpListener;
  using Stream::Stream;
};

/// A listening TCP socket. Move-only; RAII.
class TcpListener : public Socket {
 public:
  TcpListener() noexcept = default;

  /// socket + options + bind + listen. Port 0 picks a free port (see
  /// local_address()). @throws std::system_error (EADDRINUSE, EACCES,
  /// EMFILE, EINVAL for a bad backlog).
  static TcpListener bind(const Address& addr, const BindOptions& options = {});

  /// Waits for and accepts one connection; the stream is non-blocking and
  /// close-on-exec. When the process or system is out of descriptors
  /// (EMFILE, ENFILE) or memory (ENOBUFS, ENOMEM), accept logs it once on
  /// stderr and retries with a backoff (1 ms doubling to 100 ms) until it
  /// succeeds, the deadline passes or the fiber is cancelled: the server
  /// keeps serving, without spinning. The same backoff applies while the
  /// runtime is over its Config::memory_limit (spawns refused): accept
  /// waits, leaving new connections in the kernel's listen backlog (their
  /// clients see a connection that is not answered yet, then, with the
  /// backlog full, unanswered SYNs), and resumes once the runtime's memory
  /// is below 90 % of the limit; it never returns an error for it.
  /// Connections aborted before they were accepted (ECONNABORTED) are
  /// skipped.
  /// @throws std::system_error (EBADF when closed), weft::TimedOut,
  /// weft::Cancelled.
  TcpStream accept(Deadline deadline = {});
  /// The bound address (with the actual port). @throws std::system_error.
  Address local_address() const;
  /// Closes; a fiber blocked in accept() fails with EBADF. Never throws.
 private:
  using Socket::Socket;
};

/// A UDP socket. Move-only; RAII.
class UdpSocket : public Socket {
 public:
  UdpSocket() noexcept = default;

  /// A socket bound to addr (port 0: any free port). backlog is ignored.
  /// @throws std::system_error.
  static UdpSocket bind(const Address& addr, const BindOptions& options = {});

  /// Sends one datagram of `len` bytes to `to`. Returns len.
  /// @throws std::system_error (EMSGSIZE, ...), weft::TimedOut,
  /// weft::Cancelled.
  std::size_t send_to(const void* buf, std::size_t len, const Address& to, Deadline deadline = {});
  /// Receives one datagram (truncated to len: the rest is discarded).
  /// Returns the bytes stored in buf (<= len) and the sender. Errors as send_to().
  std::pair<std::size_t, Address> recv_from(void* buf, std::size_t len, Deadline deadline = {});
  /// Sets the default peer (and filters incoming datagrams to it).
  /// @throws std::system_error.
  void connect(const Address& peer);
  /// send_to / recv_from the connected peer.
  std::size_t send(const void* buf, std::size_t len, Deadline deadline = {});
  /// recv_from the connected peer. Errors as recv_from.
  std::size_t recv(void* buf, std::size_t len, Deadline deadline = {});
  /// The bound address. @throws std::system_error.
  Address local_address() const;

 private:
  using Socket::Socket;
};

/// A connected Unix-domain stream socket.
class UnixStream : public Stream {
 public:
  UnixStream() noexcept = default;

  /// Connects to the socket at `path` (a leading '@' names the abstract
  /// namespace). @throws std::system_error (ENOENT, ECONNREFUSED,
  /// ENAMETOOLONG), weft::TimedOut, weft::Cancelled.
  static UnixStream connect(std::string_view path, Deadline deadline = {});
  /// A connected pair (socketpair(2)). @throws std::system_error.
  static std::pair<UnixStream, UnixStream> pair();

 private:
  friend class UnixListener;
  using Stream::Stream;
};

/// A listening Unix-domain stream socket. Move-only; RAII (closing does not
/// unlink the path).
class UnixListener : public Socket {
 public:
  UnixListener() noexcept = default;

  /// Binds and listens at `path` ('@' prefix: abstract namespace).
  /// @throws std::system_error (EADDRINUSE if the path exists,
  /// ENAMETOOLONG beyond 107 bytes).
  static UnixListener bind(std::string_view path, int backlog = 1024);
  /// As TcpListener::accept (same descriptor-exhaustion handling).
  UnixStream accept(Deadline deadline = {});

 private:
  using Socket::Socket;
};

}  // namespace weft::net
