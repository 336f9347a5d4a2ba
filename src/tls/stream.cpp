// weft::tls::Stream: OpenSSL's protocol engine over a BIO of weft's own
// buffers, with the socket I/O done by weft (design: docs/design/tls.md).
//
// The problem. OpenSSL wants to read and write a socket itself; given a
// non-blocking one it returns WANT_READ/WANT_WRITE and expects the caller
// to poll. Either way OpenSSL would own the descriptor's I/O, outside the
// reactor, its deadlines and its cancellation.
//
// Chosen: the SSL object reads its input from, and writes its output to, a
// BIO whose callbacks only copy between OpenSSL and two buffers of the
// stream (`in`: ciphertext read from the socket; `out`: ciphertext to send);
// it never touches the socket. (Memory BIOs did the same with a heap
// buffer that grew and shrank on every record, and an extra copy each way:
// ten mallocs per echoed message.) Each operation is a loop:
//   1. run the SSL call under ssl_mu (never parks inside);
//   2. send whatever it left in `out` (TcpStream::write_all, parks);
//   3. on WANT_READ, read from the socket (TcpStream::read, parks) into
//      `in` and go round again. A read that finds `in` empty and nothing
//      buffered inside OpenSSL reads the socket first, without the SSL call
//      that could only answer WANT_READ.
// Deadlines and cancellation are then those of TcpStream's calls, on both
// backends, and a stalled peer costs a parked fiber, never a worker.
//
// Concurrency: one reader and one writer may run at once (full duplex).
// read_mu serialises readers (only the reader fills `in`), write_mu
// serialises writers and every send: bytes are taken out of `out` only
// while write_mu is held, so they reach the socket in the order OpenSSL
// produced them. ssl_mu guards the SSL object and both buffers' bounds and
// is held only across non-parking OpenSSL calls. A read may produce output (a TLS
// 1.3 KeyUpdate answer); the reader then try_locks write_mu and flushes,
// and if a writer holds it, that writer flushes it for the reader: after
// releasing write_mu every flusher checks `out` again (try_lock). A
// reader's output was put in `out` before its try_lock failed, so before
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
#include <new>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

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
// records that are sent before the next chunk is encrypted, so `out` never
// holds more than ~16 KiB of ciphertext from a writer.
constexpr std::size_t kWriteChunk = 16 * 1024;
// The input buffer: a whole maximal record (2^14 + 256 bytes of TLS 1.3
// ciphertext, RFC 8446 §5.2; 2^14 + 2048 for TLS 1.2, §6.2.3 of RFC 5246)
// plus its 5-byte header, with room to spare. OpenSSL asks for one record
// at a time, so unread bytes never fill it.
constexpr std::size_t kReadBuffer = 16 * 1024 + 2048 + 512;

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
  ~Impl() { SSL_free(ssl); }  // frees the BIO too

  net::TcpStream tcp;
  std::shared_ptr<const Context::Impl> ctx;
  SSL* ssl = nullptr;  // guarded by ssl_mu (its pointer is constant)
  Mutex ssl_mu;
  // The handshake's own lock. Callers that find the handshake not done
  // wait here, never on read_mu/write_mu: a reader keeps read_mu while it
  // waits for data, and a writer stuck behind it (having come in before the
  // handshake was done) could not send the request that data answers.
  Mutex hs_mu;
  Mutex read_mu;   // one reader at a time; only the reader fills `in`
  Mutex write_mu;  // one sender at a time; `out` is drained only under it
  // Written with release once the handshake completed under both locks;
  // read with acquire by the fast paths of read/write.
  std::atomic<bool> done{false};
  // Set when a handshake or write failed part-way: the stream's bytes are
  // no longer a valid TLS stream. release/acquire like `done`.
  std::atomic<bool> broken{false};
  bool shut = false;  // guarded by write_mu

  // Ciphertext read from the socket: [in_pos, in_end) is OpenSSL's to take
  // (the BIO's read, under ssl_mu); [in_end, kReadBuffer) is the reader's
  // to fill (read_mu) while ssl_mu is not held. Allocated at the first
  // fill, so an idle stream costs no buffer.
  std::unique_ptr<char[]> in;  // the pointer: read_mu
  std::size_t in_pos = 0;      // guarded by ssl_mu
  std::size_t in_end = 0;      // guarded by ssl_mu; grown only by the reader
  bool in_eof = false;         // guarded by ssl_mu: the socket's end was read
  // Ciphertext OpenSSL produced, not yet taken for sending (the BIO's
  // write appends, under ssl_mu); swapped with `sending` under write_mu.
  std::vector<char> out;      // guarded by ssl_mu
  std::vector<char> sending;  // guarded by write_mu

  // The BIO's callbacks (ssl_mu held: they run inside SSL calls).
  int bio_read(char* data, std::size_t len, std::size_t* got) noexcept {
    if (in_pos == in_end) {
      *got = 0;
      return 0;  // the caller sets "retry" unless in_eof
    }
    const std::size_t n = std::min(len, in_end - in_pos);
    std::memcpy(data, in.get() + in_pos, n);
    in_pos += n;
    *got = n;
    return 1;
  }
  bool bio_write(const char* data, std::size_t len) noexcept {
    try {
      out.insert(out.end(), data, data + len);
      return true;
    } catch (const std::bad_alloc&) {
      return false;  // OpenSSL reports a failed write (SSL_ERROR_SYSCALL)
    }
  }

  // Runs op(ssl) under ssl_mu and reads its error state on this thread.
  template <class Op>
  CallResult call(Op op) {
    std::lock_guard g(ssl_mu);
    // SSL_get_error needs an empty queue before the call. Peeking is a
    // fraction of clearing (ERR_clear_error walks all 16 slots), and a
    // successful call leaves the queue empty, so this clears only after
    // code on this thread left errors behind.
    if (ERR_peek_error() != 0) ERR_clear_error();
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
    return !out.empty();
  }

  // Sends everything in `out`. write_mu held.
  void flush_locked(Deadline d) {
    for (;;) {
      {
        std::lock_guard g(ssl_mu);
        if (out.empty()) return;
        out.swap(sending);  // both keep their capacity: no allocation after the first records
      }
      // A throw (timeout, reset) leaves the unsent bytes behind; the
      // callers mark the stream broken, as a half-sent record is.
      tcp.write_all(sending.data(), sending.size(), d);
      sending.clear();
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

  // Reads from the socket into `in`. read_mu held. End of stream is passed
  // on as the BIO's end, which OpenSSL reports (close_notify seen or not).
  // A read that times out or is cancelled loses nothing: the bytes already
  // in `in` stay.
  void fill(Deadline d) {
    if (!in) in = std::make_unique<char[]>(kReadBuffer);
    std::size_t start;
    {
      std::lock_guard g(ssl_mu);
      // Move the unread part (a partial record) to the front; it is small.
      if (in_pos > 0) {
        std::memmove(in.get(), in.get() + in_pos, in_end - in_pos);
        in_end -= in_pos;
        in_pos = 0;
      }
      start = in_end;
    }
    if (start == kReadBuffer) {
      // OpenSSL asks for one record at a time (see kReadBuffer).
      broken.store(true, std::memory_order_release);
      throw Error("weft: tls read: a record larger than the input buffer");
    }
    // [start, kReadBuffer) is only the reader's: no lock while parked.
    const std::size_t n = tcp.read(in.get() + start, kReadBuffer - start, d);
    std::lock_guard g(ssl_mu);
    if (n == 0) {
      in_eof = true;
    } else {
      in_end += n;
    }
  }

  // True when an SSL_read could only answer WANT_READ: nothing unread in
  // `in`, nothing buffered in OpenSSL's record layer or as plaintext, the
  // socket's end not seen, no close_notify received. read_mu held.
  bool needs_input() {
    std::lock_guard g(ssl_mu);
    return in_pos == in_end && !in_eof && SSL_has_pending(ssl) == 0 &&
           (SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN) == 0;
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
    // Held for the invariants (only the reader fills `in`, `out` is drained
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
    if (needs_input()) fill(d);  // TimedOut/Cancelled: nothing consumed
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
        fill(d);  // TimedOut/Cancelled here lose nothing: `in` keeps what came
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

// The BIO of a stream: its callbacks copy between OpenSSL and the stream's
// `in`/`out` buffers (Stream::Impl::bio_read/bio_write). An empty `in` is
// "retry" (WANT_READ) until fill() saw the socket's end, then end of
// stream, as a memory BIO with eof_return -1 then 0.
int stream_bio_read(BIO* b, char* data, std::size_t len, std::size_t* got) {
  auto* s = static_cast<Stream::Impl*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  if (s->bio_read(data, len, got) == 1) return 1;
  if (!s->in_eof) BIO_set_retry_read(b);
  return 0;
}

int stream_bio_write(BIO* b, const char* data, std::size_t len, std::size_t* put) {
  auto* s = static_cast<Stream::Impl*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  if (!s->bio_write(data, len)) {
    *put = 0;
    return 0;
  }
  *put = len;
  return 1;
}

long stream_bio_ctrl(BIO* b, int cmd, long, void*) {
  auto* s = static_cast<Stream::Impl*>(BIO_get_data(b));
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;  // output is sent by the stream, after the call
    case BIO_CTRL_PENDING:
      return static_cast<long>(s->in_end - s->in_pos);
    case BIO_CTRL_WPENDING:
      return static_cast<long>(s->out.size());
    case BIO_CTRL_EOF:
      return s->in_eof && s->in_pos == s->in_end ? 1 : 0;
    default:
      return 0;  // unsupported, as BIO_s_mem answers for the rest
  }
}

BIO_METHOD* stream_bio_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "weft tls stream");
    if (m == nullptr || BIO_meth_set_read_ex(m, stream_bio_read) != 1 ||
        BIO_meth_set_write_ex(m, stream_bio_write) != 1 ||
        BIO_meth_set_ctrl(m, stream_bio_ctrl) != 1) {
      throw Error("weft: tls stream: BIO_meth_new failed: " + detail::take_openssl_error());
    }
    return m;  // lives as long as the process
  }();
  return method;
}

std::unique_ptr<Stream::Impl> make_impl(net::TcpStream tcp,
                                        std::shared_ptr<const Context::Impl> ctx) {
  auto impl = std::make_unique<Stream::Impl>(std::move(tcp), std::move(ctx));
  ERR_clear_error();
  impl->ssl = SSL_new(impl->ctx->ctx);
  if (impl->ssl == nullptr) {
    throw Error("weft: tls stream: SSL_new failed: " + detail::take_openssl_error());
  }
  BIO* bio = BIO_new(stream_bio_method());
  if (bio == nullptr) {
    throw Error("weft: tls stream: BIO_new failed: " + detail::take_openssl_error());
  }
  BIO_set_data(bio, impl.get());
  BIO_set_init(bio, 1);
  SSL_set_bio(impl->ssl, bio, bio);  // one BIO both ways; the SSL owns it now
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
