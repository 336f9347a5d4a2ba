// weft::tls::Context: an OpenSSL SSL_CTX built from ServerOptions or
// ClientOptions (design: docs/design/tls.md).
//
// Everything that can fail with a user's file or setting fails here, at
// construction, with the file named: a Stream never discovers a bad key in
// the middle of a handshake. The context is immutable afterwards, which is
// what makes sharing it between fibers on several workers safe (OpenSSL
// allows concurrent use of one SSL_CTX by many SSL objects).
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdexcept>
#include <string>
#include <utility>

#include "tls/tls_impl.hpp"

namespace weft::tls {
namespace {

[[noreturn]] void context_error(const std::string& what) {
  throw Error("weft: tls context: " + what + ": " + detail::take_openssl_error());
}

// ALPN's wire format: each name prefixed by its length (RFC 7301 §3.1).
std::vector<unsigned char> alpn_wire(const std::vector<std::string>& names) {
  std::vector<unsigned char> wire;
  for (const std::string& n : names) {
    if (n.empty() || n.size() > 255) {
      throw Error("weft: tls context: ALPN protocol names must be 1..255 bytes, got '" + n + "'");
    }
    wire.push_back(static_cast<unsigned char>(n.size()));
    wire.insert(wire.end(), n.begin(), n.end());
  }
  return wire;
}

int min_version(Version v) noexcept {
  return v == Version::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

// The server's ALPN choice: its own most preferred protocol that the
// client offers; none in common is a fatal no_application_protocol alert
// (RFC 7301 §3.2).
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
  const auto* impl = static_cast<const Context::Impl*>(arg);
  unsigned char* chosen = nullptr;
  // SSL_select_next_proto takes non-const pointers but only reads them.
  const int r = SSL_select_next_proto(
      &chosen, outlen, const_cast<unsigned char*>(impl->alpn.data()),
      static_cast<unsigned>(impl->alpn.size()), const_cast<unsigned char*>(in), inlen);
  if (r != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

std::shared_ptr<Context::Impl> new_impl(bool server) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == nullptr) context_error("SSL_CTX_new failed");
  auto impl = std::make_shared<Context::Impl>();
  impl->ctx = ctx;
  impl->server = server;
  // Renegotiation (TLS 1.2) would let a read need a write in the middle of
  // the stream; nobody needs it any more and it has a history of attacks.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  // Per-record cost (docs/benchmarks.md, series T3; callgrind per 64-byte
  // echo): OpenSSL keeps its read and write buffers (~17 KiB each) for the
  // connection's life instead of freeing them after every record and
  // allocating them again for the next (SSL_MODE_RELEASE_BUFFERS, ~1,400
  // instructions and two mallocs per echo), and reads ahead: it takes all
  // the ciphertext `in` holds in one BIO read instead of a header then a
  // body per record (~450 instructions per echo). Read-ahead bytes count in
  // SSL_has_pending, which is what Stream's read checks before it waits on
  // the socket.
  SSL_CTX_set_read_ahead(ctx, 1);
  // One session ticket after a server handshake, as Go's crypto/tls sends,
  // instead of OpenSSL's two: each is an encryption and a record.
  if (server && SSL_CTX_set_num_tickets(ctx, 1) != 1) context_error("cannot set the ticket count");
  return impl;
}

void load_chain(SSL_CTX* ctx, const std::string& chain, const std::string& key) {
  if (SSL_CTX_use_certificate_chain_file(ctx, chain.c_str()) != 1) {
    context_error("cannot load certificate chain '" + chain + "'");
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    context_error("cannot load private key '" + key + "'");
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    context_error("private key '" + key + "' does not match the certificate");
  }
}

void load_ca(SSL_CTX* ctx, const std::string& ca) {
  if (SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr) != 1) {
    context_error("cannot load CA file '" + ca + "'");
  }
}

}  // namespace

Context::Impl::~Impl() {
  SSL_CTX_free(ctx);
}

Context Context::server(const ServerOptions& o) {
  if (o.cert_chain_file.empty() || o.key_file.empty()) {
    throw Error("weft: tls context: a server needs cert_chain_file and key_file");
  }
  if (o.client_auth != ClientAuth::none && o.ca_file.empty()) {
    throw Error("weft: tls context: client_auth needs a ca_file to verify clients against");
  }
  std::vector<unsigned char> alpn = alpn_wire(o.alpn);
  std::shared_ptr<Impl> impl = new_impl(true);
  SSL_CTX* ctx = impl->ctx;
  if (SSL_CTX_set_min_proto_version(ctx, min_version(o.min_version)) != 1) {
    context_error("cannot set the minimum protocol version");
  }
  load_chain(ctx, o.cert_chain_file, o.key_file);
  if (o.client_auth != ClientAuth::none) {
    load_ca(ctx, o.ca_file);
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.ca_file.c_str());
    if (names == nullptr) context_error("cannot read CA names from '" + o.ca_file + "'");
    SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
    int mode = SSL_VERIFY_PEER;
    if (o.client_auth == ClientAuth::required) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, nullptr);
  }
  impl->alpn = std::move(alpn);
  if (!impl->alpn.empty()) SSL_CTX_set_alpn_select_cb(ctx, &select_alpn, impl.get());
  return Context(std::move(impl));
}

Context Context::client(const ClientOptions& o) {
  if (o.cert_chain_file.empty() != o.key_file.empty()) {
    throw Error("weft: tls context: a client certificate needs both cert_chain_file and key_file");
  }
  std::vector<unsigned char> alpn = alpn_wire(o.alpn);
  std::shared_ptr<Impl> impl = new_impl(false);
  SSL_CTX* ctx = impl->ctx;
  if (SSL_CTX_set_min_proto_version(ctx, min_version(o.min_version)) != 1) {
    context_error("cannot set the minimum protocol version");
  }
  if (!o.cert_chain_file.empty()) load_chain(ctx, o.cert_chain_file, o.key_file);
  if (o.verify) {
    if (!o.ca_file.empty()) {
      load_ca(ctx, o.ca_file);
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      context_error("cannot load the system's CA store");
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  impl->verify = o.verify;
  // SSL_CTX_set_alpn_protos returns 0 on success (unlike its neighbours).
  if (!alpn.empty() &&
      SSL_CTX_set_alpn_protos(ctx, alpn.data(), static_cast<unsigned>(alpn.size())) != 0) {
    context_error("cannot set the ALPN protocols");
  }
  impl->alpn = std::move(alpn);
  return Context(std::move(impl));
}

bool Context::is_server() const noexcept {
  return impl_ != nullptr && impl_->server;
}

}  // namespace weft::tls
