// Internal state of weft::tls (context.cpp, stream.cpp).
#pragma once

#include <openssl/ssl.h>

#include <string>
#include <vector>

#include "weft/tls.hpp"

namespace weft::tls {

struct Context::Impl {
  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl();

  SSL_CTX* ctx = nullptr;
  bool server = false;
  bool verify = false;              // client: verify the server's name
  std::vector<unsigned char> alpn;  // ALPN wire format (length-prefixed names)
};

namespace detail {

/// OpenSSL's reason for the most recent error of this thread's error queue
/// ("certificate verify failed", "tlsv1 alert unknown ca", ...), then
/// clears the queue. "unknown error" when the queue is empty.
///
/// OpenSSL's error queue is thread-local and a fiber may resume on another
/// worker after parking: callers read it right after the failing call,
/// before anything that can park.
std::string take_openssl_error();

}  // namespace detail
}  // namespace weft::tls
