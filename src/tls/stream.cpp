// weft::tls::Stream: OpenSSL's protocol engine over memory BIOs, with the
// socket I/O done by weft (design: docs/design/tls.md).
//
// The problem. OpenSSL wants to read and write a socket itself; given a
// non-blocking one it returns WANT_READ/WANT_WRITE and expects the caller
// to poll. Either way OpenSSL would own the descriptor's I/O, outside the
// reactor, its deadlines and its cancellation.
//
// Chosen: the SSL object reads its input from a memory BIO (rbio) and
// writes its output to another (wbio); it never touches the socket. Each
// operation is a loop:
//   1. run the SSL call under ssl_mu (never parks inside);
//   2. send whatever it left in wbio (TcpStream::write_all, parks);
//   3. on WANT_READ, read from the socket (TcpStream::read, parks) into
//      rbio and go round again.
// Deadlines and cancellation are then those of TcpStream's calls, on both
// backends, and a stalled peer costs a parked fiber, never a worker.
//
// Concurrency: one reader and one writer may run at once (full duplex).
// read_mu serialises readers (only the reader fills rbio), write_mu
// serialises writers and every send: bytes are taken out of wbio only
// while write_mu is held, so they reach the socket in the order OpenSSL
// produced them. ssl_mu guards the SSL object and both BIOs and is held
// only across non-parking OpenSSL calls. A read may produce output (a TLS
// 1.3 KeyUpdate answer); the reader then try_locks write_mu and flushes,
// and if a writer holds it, that writer flushes it for the reader: after
// releasing write_mu every flusher checks wbio again (try_lock). A
// reader's output was put in wbio before its try_lock failed, so before
// the holder's release, so the holder's re-check sees it. A blocking lock
// there could deadlock: two peers, each with a writer blocked on a full
// socket and a reader that would wait for that writer, never read.
//
// OpenSSL keeps its error queue per thread; a fiber may resume on another
// worker after any park. So every SSL call and the reading of its error
// happen under ssl_mu with no park in between (call() below).
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "tls/tls_impl.hpp"
#include "weft/sync.hpp"

namespace weft::tls {

namespace detail {

std::string take_openssl_error() {
  // The first error queued is the cause; later ones are the layers above
  // reporting that they failed too ("PEM lib" after "no start line").
  const unsigned long e = ERR_peek_error();
  std::string out;
  if (e == 0) {
    out = "unknown error";
  } else if (ERR_SYSTEM_ERROR(e)) {
    out = std::strerror(ERR_GET_REASON(e));  // a failed fopen() and the like
  } else if (const char* r = ERR_reason_error_string(e)) {
    out = r;
  } else {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out = buf;
  }
  ERR_clear_error();
  return out;
}

}  // namespace detail

namespace {

// One TLS record's plaintext at most per SSL_write: each write becomes
// records that are sent before the next chunk is encrypted, so wbio never
// holds more than ~16 KiB of ciphertext.
constexpr std::size_t kWriteChunk = 16 * 1024;
// TCP reads into rbio: a whole maximal record plus its header.
constexpr std::size_t kReadBuffer = 16 * 1024 + 512;

// The outcome of one SSL call, with its error read on the calling thread.
struct CallResult {
  int ret = 0;
  int err = SSL_ERROR_NONE;
  std::string reason;  // for SSL_ERROR_SSL / SSL_ERROR_SYSCALL
};

// A lock that gives up at a deadline (weft::Mutex's try_lock_until).
class DeadlineLock {
 public:
  DeadlineLock(Mutex& m, Deadline d) : m_(m), held_(m.try_lock_until(d)) {}
  ~DeadlineLock() {
    if (held_) m_.unlock();
  }
  DeadlineLock(const DeadlineLock&) = delete;
  DeadlineLock& operator=(const DeadlineLock&) = delete;
  bool held() const noexcept { return held_; }

 private:
  Mutex& m_;
  bool held_;
};

}  // namespace

struct Stream::Impl {
  Impl(net::TcpStream t, std::shared_ptr<const Context::Impl> c) noexcept
      : tcp(std::move(t)), ctx(std::move(c)) {}
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() { SSL_free(ssl); }  // frees rbio and wbio too

  net::TcpStream tcp;
  std::shared_ptr<const Context::Impl> ctx;
  SSL* ssl = nullptr;   // guarded by ssl_mu (its pointer is constant)
  BIO* rbio = nullptr;  // guarded by ssl_mu
  BIO* wbio = nullptr;  // guarded by ssl_mu
  Mutex ssl_mu;
  // The handshake's own lock. Callers that find the handshake not done
  // wait here, never on read_mu/write_mu: a reader keeps read_mu while it
  // waits for data, and a writer stuck behind it (having come in before the
  // handshake was done) could not send the request that data answers.
  Mutex hs_mu;
  Mutex read_mu;   // one reader at a time; only the reader fills rbio
  Mutex write_mu;  // one sender at a time; wbio is drained only under it
  // Written with release once the handshake completed under both locks;
  // read with acquire by the fast paths of read/write.
  std::atomic<bool> done{false};
  // Set when a handshake or write failed part-way: the stream's bytes are
  // no longer a valid TLS stream. release/acquire like `done`.
  std::atomic<bool> broken{false};
  bool shut = false;             // guarded by write_mu
  std::unique_ptr<char[]> rbuf;  // guarded by read_mu
  std::unique_ptr<char[]> wbuf;  // guarded by write_mu
  std::size_t wbuf_size = 0;     // guarded by write_mu

  // Runs op(ssl) under ssl_mu and reads its error state on this thread.
  template <class Op>
  CallResult call(Op op) {
    std::lock_guard g(ssl_mu);
    ERR_clear_error();
    CallResult r;
    r.ret = op(ssl);
    if (r.ret <= 0) {
      r.err = SSL_get_error(ssl, r.ret);
      if (r.err == SSL_ERROR_SSL || r.err == SSL_ERROR_SYSCALL) {
        r.reason = detail::take_openssl_error();
        if (r.err == SSL_ERROR_SYSCALL && r.reason == "unknown error") {
          r.reason = "unexpected eof while reading";
        }
        const long v = SSL_get_verify_result(ssl);
        if (v != X509_V_OK && r.reason == "certificate verify failed") {
          r.reason += std::string(" (") + X509_verify_cert_error_string(v) + ")";
        }
      }
    }
    return r;
  }

  bool output_pending() {
    std::lock_guard g(ssl_mu);
    return BIO_ctrl_pending(wbio) > 0;
  }

  // Sends everything in wbio. write_mu held.
  void flush_locked(Deadline d) {
    if (!wbuf) {
      wbuf_size = kWriteChunk + 1024;
      wbuf = std::make_unique<char[]>(wbuf_size);
    }
    for (;;) {
      int n;
      {
        std::lock_guard g(ssl_mu);
        n = BIO_read(wbio, wbuf.get(), static_cast<int>(wbuf_size));
      }
      if (n <= 0) return;
      tcp.write_all(wbuf.get(), static_cast<std::size_t>(n), d);
    }
  }

  // Releases write_mu, then sends output left by readers that could not
  // take it meanwhile (see the file comment).
  void unlock_write(Deadline d) {
    write_mu.unlock();
    while (output_pending() && write_mu.try_lock()) {
      try {
        flush_locked(d);
      } catch (...) {
        write_mu.unlock();
        throw;
      }
      write_mu.unlock();
    }
  }

  // A reader's output (write_mu not held): sent now if write_mu is free,
  // else by its holder.
  void flush_from_reader(Deadline d) {
    if (!output_pending() || !write_mu.try_lock()) return;
    try {
      flush_locked(d);
    } catch (...) {
      write_mu.unlock();
      throw;
    }
    unlock_write(d);
  }

  // Reads from the socket into rbio. read_mu held. End of stream is passed
  // on as the BIO's end, which OpenSSL reports (close_notify seen or not).
  void fill(Deadline d) {
    if (!rbuf) rbuf = std::make_unique<char[]>(kReadBuffer);
    const std::size_t n = tcp.read(rbuf.get(), kReadBuffer, d);
    std::lock_guard g(ssl_mu);
    if (n == 0) {
      BIO_set_mem_eof_return(rbio, 0);
    } else {
      BIO_write(rbio, rbuf.get(), static_cast<int>(n));
    }
  }

  [[noreturn]] void fail(const char* what, const CallResult& r) {
    broken.store(true, std::memory_order_release);
    throw Error(std::string("weft: tls ") + what + ": " + r.reason);
  }

  void check_usable(const char* what) const {
    if (broken.load(std::memory_order_acquire)) {
      throw Error(std::string("weft: tls ") + what + ": stream unusable after an earlier error");
    }
  }

  void handshake(Deadline d) {
    check_usable("handshake");
    if (done.load(std::memory_order_acquire)) return;
    DeadlineLock hl(hs_mu, d);
    if (!hl.held()) throw HandshakeTimeout();
    check_usable("handshake");
    if (done.load(std::memory_order_relaxed)) return;
    // Uncontended: until `done`, every reader and writer waits on hs_mu.
    // Held for the invariants (only the reader fills rbio, wbio is drained
    // under write_mu).
    DeadlineLock rl(read_mu, d);
    DeadlineLock wl(write_mu, d);
    if (!rl.held() || !wl.held()) throw HandshakeTimeout();
    try {
      for (;;) {
        const CallResult r = call([](SSL* s) { return SSL_do_handshake(s); });
        if (r.ret == 1) {
          flush_locked(d);
          done.store(true, std::memory_order_release);
          return;
        }
        if (r.err == SSL_ERROR_WANT_READ) {
          flush_locked(d);
          fill(d);
          continue;
        }
        // Tell the peer why (the alert OpenSSL queued), if the socket still
        // takes it; the handshake's error is what the caller needs to see.
        try {
          flush_locked(Deadline(std::chrono::milliseconds(100)));
        } catch (...) {
        }
        fail("handshake", r);
      }
    } catch (const TimedOut&) {
      broken.store(true, std::memory_order_release);
      throw HandshakeTimeout();
    } catch (const Error&) {
      throw;
    } catch (...) {
      broken.store(true, std::memory_order_release);
      throw;
    }
  }

  std::size_t read(void* buf, std::size_t len, Deadline d) {
    if (!done.load(std::memory_order_acquire)) handshake(d);
    check_usable("read");
    if (len == 0) return 0;
    DeadlineLock rl(read_mu, d);
    if (!rl.held()) throw TimedOut();
    const int want = static_cast<int>(std::min<std::size_t>(len, INT32_MAX));
    for (;;) {
      std::size_t got = 0;
      const CallResult r =
          call([&](SSL* s) { return SSL_read_ex(s, buf, static_cast<std::size_t>(want), &got); });
      if (r.ret == 1) {
        flush_from_reader(d);
        return got;
      }
      if (r.err == SSL_ERROR_ZERO_RETURN) return 0;  // close_notify
      if (r.err == SSL_ERROR_WANT_READ) {
        flush_from_reader(d);
        fill(d);  // TimedOut/Cancelled here lose nothing: rbio keeps what came
        continue;
      }
      fail("read", r);
    }
  }

  std::size_t write(const void* buf, std::size_t len, Deadline d) {
    if (!done.load(std::memory_order_acquire)) handshake(d);
    check_usable("write");
    if (len == 0) return 0;
    if (!write_mu.try_lock_until(d)) throw TimedOut();
    try {
      if (shut) throw Error("weft: tls write: the stream was shut down");
      const auto* p = static_cast<const char*>(buf);
      std::size_t left = len;
      while (left > 0) {
        const std::size_t chunk = std::min(left, kWriteChunk);
        std::size_t put = 0;
        const CallResult r = call([&](SSL* s) { return SSL_write_ex(s, p, chunk, &put); });
        if (r.ret != 1) fail("write", r);
        flush_locked(d);
        p += put;
        left -= put;
      }
    } catch (...) {
      broken.store(true, std::memory_order_release);
      write_mu.unlock();
      throw;
    }
    unlock_write(d);
    return len;
  }

  void shutdown(Deadline d) {
    if (!done.load(std::memory_order_acquire)) handshake(d);
    check_usable("shutdown");
    if (!write_mu.try_lock_until(d)) throw TimedOut();
    try {
      if (!shut) {
        const CallResult r = call([](SSL* s) { return SSL_shutdown(s); });
        if (r.ret < 0) fail("shutdown", r);
        flush_locked(d);
        tcp.shutdown(net::Shutdown::write);
        shut = true;
      }
    } catch (...) {
      broken.store(true, std::memory_order_release);
      write_mu.unlock();
      throw;
    }
    unlock_write(d);
  }
};

namespace {

bool is_ip_literal(const std::string& name) {
  unsigned char addr[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, name.c_str(), addr) == 1 ||
         ::inet_pton(AF_INET6, name.c_str(), addr) == 1;
}

std::string name_of(X509_NAME* n) {
  BIO* b = BIO_new(BIO_s_mem());
  if (b == nullptr) throw std::bad_alloc();
  X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long len = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<std::size_t>(len));
  BIO_free(b);
  return out;
}

std::unique_ptr<Stream::Impl> make_impl(net::TcpStream tcp,
                                        std::shared_ptr<const Context::Impl> ctx) {
  auto impl = std::make_unique<Stream::Impl>(std::move(tcp), std::move(ctx));
  ERR_clear_error();
  impl->ssl = SSL_new(impl->ctx->ctx);
  if (impl->ssl == nullptr) {
    throw Error("weft: tls stream: SSL_new failed: " + detail::take_openssl_error());
  }
  impl->rbio = BIO_new(BIO_s_mem());
  impl->wbio = BIO_new(BIO_s_mem());
  if (impl->rbio == nullptr || impl->wbio == nullptr) {
    BIO_free(impl->rbio);
    BIO_free(impl->wbio);
    throw Error("weft: tls stream: BIO_new failed: " + detail::take_openssl_error());
  }
  // An empty rbio means "no data yet" (retry), not end of stream, until
  // fill() sees the socket's end.
  BIO_set_mem_eof_return(impl->rbio, -1);
  SSL_set_bio(impl->ssl, impl->rbio, impl->wbio);  // the SSL owns both now
  return impl;
}

}  // namespace

Stream::Stream() noexcept = default;
Stream::Stream(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Stream::Stream(Stream&&) noexcept = default;
Stream& Stream::operator=(Stream&&) noexcept = default;
Stream::~Stream() = default;

Stream Stream::client(net::TcpStream tcp, const Context& ctx, std::string_view server_name) {
  if (ctx.impl_ == nullptr || ctx.impl_->server) {
    throw std::logic_error("weft: tls::Stream::client needs a client Context");
  }
  auto impl = make_impl(std::move(tcp), ctx.impl_);
  SSL_set_connect_state(impl->ssl);
  if (!server_name.empty()) {
    const std::string name(server_name);
    const bool ip = is_ip_literal(name);
    // SNI carries host names only (RFC 6066 §3: no IP literals).
    if (!ip && SSL_set_tlsext_host_name(impl->ssl, name.c_str()) != 1) {
      throw Error("weft: tls stream: cannot set the server name '" + name +
                  "': " + detail::take_openssl_error());
    }
    if (ctx.impl_->verify) {
      const int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(impl->ssl), name.c_str())
                        : SSL_set1_host(impl->ssl, name.c_str());
      if (ok != 1) {
        throw Error("weft: tls stream: cannot verify against the name '" + name +
                    "': " + detail::take_openssl_error());
      }
    }
  }
  return Stream(std::move(impl));
}

Stream Stream::server(net::TcpStream tcp, const Context& ctx) {
  if (ctx.impl_ == nullptr || !ctx.impl_->server) {
    throw std::logic_error("weft: tls::Stream::server needs a server Context");
  }
  auto impl = make_impl(std::move(tcp), ctx.impl_);
  SSL_set_accept_state(impl->ssl);
  return Stream(std::move(impl));
}

Stream::Impl& Stream::checked(const char* what) const {
  if (!impl_)
    throw std::logic_error(std::string("weft: tls::Stream::") + what + " on an empty stream");
  return *impl_;
}

void Stream::handshake(Deadline deadline) {
  checked("handshake").handshake(deadline);
}

std::size_t Stream::read(void* buf, std::size_t len, Deadline deadline) {
  return checked("read").read(buf, len, deadline);
}

void Stream::read_exact(void* buf, std::size_t len, Deadline deadline) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    const std::size_t n = read(p, len, deadline);
    if (n == 0) throw net::EndOfStream();
    p += n;
    len -= n;
  }
}

std::size_t Stream::write(const void* buf, std::size_t len, Deadline deadline) {
  return checked("write").write(buf, len, deadline);
}

void Stream::write_all(const void* buf, std::size_t len, Deadline deadline) {
  checked("write").write(buf, len, deadline);
}

void Stream::shutdown(Deadline deadline) {
  checked("shutdown").shutdown(deadline);
}

void Stream::close() noexcept {
  if (impl_) impl_->tcp.close();
}

bool Stream::handshake_done() const noexcept {
  return impl_ && impl_->done.load(std::memory_order_acquire);
}

std::optional<std::string> Stream::alpn() const {
  Impl& s = checked("alpn");
  std::lock_guard g(s.ssl_mu);
  const unsigned char* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(s.ssl, &p, &len);
  if (p == nullptr || len == 0) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(p), len);
}

std::optional<PeerCertificate> Stream::peer_certificate() const {
  Impl& s = checked("peer_certificate");
  std::lock_guard g(s.ssl_mu);
  X509* cert = SSL_get1_peer_certificate(s.ssl);
  if (cert == nullptr) return std::nullopt;
  struct Free {
    X509* c;
    ~Free() { X509_free(c); }
  } release{cert};
  PeerCertificate out;
  out.subject = name_of(X509_get_subject_name(cert));
  out.issuer = name_of(X509_get_issuer_name(cert));
  BIO* b = BIO_new(BIO_s_mem());
  if (b == nullptr) throw std::bad_alloc();
  PEM_write_bio_X509(b, cert);
  char* data = nullptr;
  const long len = BIO_get_mem_data(b, &data);
  out.pem.assign(data, static_cast<std::size_t>(len));
  BIO_free(b);
  return out;
}

std::optional<std::string> Stream::server_name() const {
  Impl& s = checked("server_name");
  std::lock_guard g(s.ssl_mu);
  const char* name = SSL_get_servername(s.ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return std::nullopt;
  return std::string(name);
}

std::string Stream::version() const {
  Impl& s = checked("version");
  if (!s.done.load(std::memory_order_acquire)) return {};
  std::lock_guard g(s.ssl_mu);
  return SSL_get_version(s.ssl);
}

net::TcpStream& Stream::tcp() {
  return checked("tcp").tcp;
}

}  // namespace weft::tls
