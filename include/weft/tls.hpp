// weft::tls: TLS over weft's TCP streams, for fibers.
//
//   auto ctx = weft::tls::Context::server({.cert_chain_file = "cert.pem", .key_file = "key.pem"});
//   weft::tls::Stream s = weft::tls::Stream::server(listener.accept(), ctx);
//   s.handshake(5s);                       // or let the first read/write do it
//   std::size_t n = s.read(buf, sizeof buf, 30s);
//   s.write_all("hello");
//
// OpenSSL (Debian's libssl) does the protocol; weft does the I/O. OpenSSL is
// driven through a BIO over the stream's own buffers, never through the
// socket: it only ever sees bytes already read and hands back bytes to send,
// and the Stream moves them
// with TcpStream::read/write_all. So every call parks only its fiber, takes
// a weft::Deadline and is a cancellation point, on both reactor backends,
// exactly like a plain TcpStream (docs/design/tls.md).
//
// Linking: TLS is a component apart from the core, the CMake target
// weft::tls (library weft_tls, which brings weft and OpenSSL with it);
// programs that do not use TLS link weft alone and need no OpenSSL.
//
// Errors. A failed handshake or a protocol error throws tls::Error, whose
// what() is "weft: tls <operation>: " followed by OpenSSL's reason string and,
// for a certificate that did not verify, the verification error in
// parentheses, e.g. "weft: tls handshake: certificate verify failed (unable
// to get local issuer certificate)" or "weft: tls handshake: tlsv1 alert
// unknown ca". A handshake that runs past its deadline throws
// tls::HandshakeTimeout (a weft::TimedOut: "weft: tls handshake timed out");
// other deadlines throw weft::TimedOut; cancellation throws weft::Cancelled;
// socket errors are std::system_error as for TcpStream. After an exception
// from handshake() or write() the stream is unusable (a record may be half
// sent): every later call throws tls::Error "weft: tls <operation>: stream
// unusable after an earlier error". A read() that times out or is cancelled
// loses nothing and may be retried.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "weft/deadline.hpp"
#include "weft/errors.hpp"
#include "weft/net.hpp"

namespace weft::tls {

/// A TLS failure: OpenSSL's reason (see the file comment for the format).
class Error : public std::runtime_error {
 public:
  /// @param what the message, starting with "weft: tls: ".
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// The handshake did not finish before its deadline (a stalled or slow
/// peer). Caught as weft::TimedOut too.
class HandshakeTimeout : public TimedOut {
 public:
  /// "weft: tls handshake timed out".
  const char* what() const noexcept override { return "weft: tls handshake timed out"; }
};

/// Lowest protocol version a Context accepts.
enum class Version : std::uint8_t { tls1_2, tls1_3 };

/// Whether and how a server asks for client certificates.
enum class ClientAuth : std::uint8_t {
  none,      ///< no client certificate requested
  optional,  ///< requested, verified if sent, not required
  required,  ///< the handshake fails without a valid client certificate
};

/// Settings of a server Context. Files are PEM.
struct ServerOptions {
  /// The server's certificate followed by its intermediates (required).
  std::string cert_chain_file;
  /// The private key of the first certificate (required).
  std::string key_file;
  /// CA certificates that client certificates must chain to (needed unless
  /// client_auth is none).
  std::string ca_file;
  /// Whether to ask for and verify client certificates.
  ClientAuth client_auth = ClientAuth::none;
  /// Protocols offered through ALPN, most preferred first ("h2",
  /// "http/1.1"); empty: no ALPN. The first of these the client also
  /// offers is chosen; a client offering none of them is refused with
  /// the no_application_protocol alert.
  std::vector<std::string> alpn;
  /// The oldest protocol version accepted.
  Version min_version = Version::tls1_2;
};

/// Settings of a client Context. Files are PEM.
struct ClientOptions {
  /// CA certificates to trust; empty: the system's store (OpenSSL's
  /// default paths: /etc/ssl/certs on Debian).
  std::string ca_file;
  /// Verify the server's certificate chain and name (the server_name given
  /// to Stream::client). false is for tests against self-signed peers only.
  bool verify = true;
  /// An optional client certificate (chain) and its key, for servers that
  /// ask for one. Both or neither.
  std::string cert_chain_file;
  /// The client certificate's private key.
  std::string key_file;
  /// Protocols to offer through ALPN, most preferred first.
  std::vector<std::string> alpn;
  /// The oldest protocol version accepted.
  Version min_version = Version::tls1_2;
};

/// Shared TLS configuration (an OpenSSL SSL_CTX): certificates, trust,
/// verification, ALPN, versions. Build one per configuration and share it
/// by copy among every Stream: copies refer to the same context (reference
/// counted). Immutable once built, so safe to use from any number of fibers
/// and threads at once.
class Context {
 public:
  /// A server context. @throws tls::Error naming the file and OpenSSL's
  /// reason when a certificate, key or CA file cannot be loaded or the key
  /// does not match the certificate ("weft: tls context: cannot load
  /// certificate chain '<file>': No such file or directory", "... cannot
  /// load private key '<file>': key values mismatch" for a key that is not
  /// the certificate's, "... cannot load CA file '<file>': ..."); also for
  /// an ALPN name that is empty or longer than 255 bytes, or client_auth
  /// without a ca_file.
  static Context server(const ServerOptions& options);
  /// A client context. @throws tls::Error as server() (a client certificate
  /// without a key or the reverse is an error too).
  static Context client(const ClientOptions& options);

  /// True for a server context.
  bool is_server() const noexcept;

  struct Impl;

 private:
  explicit Context(std::shared_ptr<const Impl> impl) noexcept : impl_(std::move(impl)) {}
  friend class Stream;
  std::shared_ptr<const Impl> impl_;
};

/// What the peer's certificate says (the leaf of its chain).
struct PeerCertificate {
  std::string subject;  ///< one-line RFC 2253 form, e.g. "CN=localhost"
  std::string issuer;   ///< the same for the issuer
  std::string pem;      ///< the certificate itself, PEM encoded
};

/// A TLS connection over a TcpStream it owns. Move-only.
///
/// Concurrency: one fiber may read while another writes (the usual
/// full-duplex use, as for TcpStream); two concurrent reads, or two
/// concurrent writes, are serialised (each waits for the other). close()
/// may be called from any fiber while others are blocked in calls on the
/// stream: they fail with EBADF. Moving or destroying a Stream while
/// another fiber uses it is a data race, as for any object.
class Stream {
 public:
  /// An empty stream: every call throws std::logic_error.
  Stream() noexcept;
  /// Takes over other's connection; other is left closed.
  Stream(Stream&&) noexcept;
  /// Drops this stream's connection (no close_notify is sent), then takes over other's.
  Stream& operator=(Stream&&) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  /// Frees the TLS state and closes the socket, without a close_notify
  /// (call shutdown() first for a clean end). Never blocks.
  ~Stream();

  /// The client end of a TLS connection on `tcp`. `server_name` is sent as
  /// SNI and, when the context verifies, is the name (or IP literal) the
  /// server's certificate must match. The handshake happens at the first
  /// call (or explicitly with handshake()). @throws std::logic_error for a
  /// server context; tls::Error if OpenSSL cannot allocate the connection.
  static Stream client(net::TcpStream tcp, const Context& ctx, std::string_view server_name = {});
  /// The server end of a TLS connection on an accepted `tcp`.
  /// @throws std::logic_error for a client context; tls::Error as client().
  static Stream server(net::TcpStream tcp, const Context& ctx);

  /// Runs the handshake to its end (no-op once done). @throws
  /// tls::HandshakeTimeout past the deadline; tls::Error for a failed
  /// handshake (bad or unknown certificate, no shared protocol or cipher,
  /// garbage from the peer, the peer closing mid-handshake: "weft: tls
  /// handshake: unexpected eof while reading"); weft::Cancelled;
  /// std::system_error for socket errors (ECONNRESET, EBADF after close()).
  void handshake(Deadline deadline = {});

  /// Reads up to `len` decrypted bytes, waiting until at least one is
  /// available (handshaking first if needed). Returns the count; 0 at the
  /// end of the stream, i.e. once the peer sent close_notify. A peer that
  /// closes the connection without close_notify makes it throw tls::Error
  /// ("weft: tls read: unexpected eof while reading"): a truncation attack
  /// cannot pass for a clean end. @throws as handshake(); weft::TimedOut
  /// (nothing lost: the call may be retried).
  std::size_t read(void* buf, std::size_t len, Deadline deadline = {});
  /// Reads exactly `len` bytes. @throws net::EndOfStream if the stream
  /// ends first; else as read().
  void read_exact(void* buf, std::size_t len, Deadline deadline = {});
  /// Encrypts and sends `len` bytes (all of them: TLS records are sent
  /// whole). Returns len. @throws as handshake(); weft::TimedOut, after
  /// which the stream is unusable.
  std::size_t write(const void* buf, std::size_t len, Deadline deadline = {});
  /// write() of all `len` bytes (the same as write() for TLS).
  void write_all(const void* buf, std::size_t len, Deadline deadline = {});
  /// write_all(data.data(), data.size(), deadline).
  void write_all(std::string_view data, Deadline deadline = {}) {
    write_all(data.data(), data.size(), deadline);
  }

  /// Sends close_notify (the peer's read() then returns 0) and shuts the
  /// socket down for writing. Does not wait for the peer's close_notify:
  /// read() until it returns 0 for that. Idempotent. @throws as write().
  void shutdown(Deadline deadline = {});

  /// Closes the socket at once (no close_notify). Calls blocked in other
  /// fibers fail with EBADF. Idempotent; never blocks or throws.
  void close() noexcept;

  /// True once the handshake has completed.
  bool handshake_done() const noexcept;
  /// The protocol ALPN chose, or empty (none offered or agreed, or before
  /// the handshake).
  std::optional<std::string> alpn() const;
  /// The peer's certificate, or empty (the client sent none, or before the
  /// handshake). @throws std::bad_alloc.
  std::optional<PeerCertificate> peer_certificate() const;
  /// The SNI name the client sent (server side; empty if none).
  std::optional<std::string> server_name() const;
  /// The negotiated protocol version: "TLSv1.3", "TLSv1.2"; empty before
  /// the handshake.
  std::string version() const;
  /// The underlying TCP stream (for its addresses and options; reading or
  /// writing it directly corrupts the TLS stream).
  net::TcpStream& tcp();

  struct Impl;

 private:
  explicit Stream(std::unique_ptr<Impl> impl) noexcept;
  Impl& checked(const char* what) const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace weft::tls
