// weft::net::resolve: getaddrinfo on the blocking pool, with a deadline.
#include <netdb.h>

#include <memory>
#include <string>

#include "io/error.hpp"
#include "weft/channel.hpp"
#include "weft/errors.hpp"
#include "weft/fiber.hpp"
#include "weft/net.hpp"
#include "weft/this_fiber.hpp"

namespace weft::net {
namespace {

class ResolverCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "getaddrinfo"; }
  std::string message(int code) const override { return ::gai_strerror(code); }
};

struct Lookup {
  int status = 0;     // getaddrinfo's return value
  int sys_errno = 0;  // errno when status == EAI_SYSTEM
  std::vector<Address> addresses;
};

Lookup lookup(const std::string& host, std::uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* res = nullptr;
  Lookup out;
  const std::string service = std::to_string(port);
  out.status = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (out.status == EAI_SYSTEM) out.sys_errno = errno;
  if (out.status != 0) return out;
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, &::freeaddrinfo);
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    Address a = Address::from_sockaddr(ai->ai_addr, ai->ai_addrlen);
    bool dup = false;
    for (const Address& b : out.addresses) dup |= a == b;
    if (!dup) out.addresses.push_back(a);
  }
  return out;
}

std::vector<Address> finish(Lookup&& l, std::string_view host) {
  if (l.status == EAI_SYSTEM)
    detail::io::throw_errno(l.sys_errno, "resolving " + std::string(host));
  if (l.status != 0) {
    throw std::system_error(l.status, resolver_category(), "weft: resolving " + std::string(host));
  }
  if (l.addresses.empty()) {
    throw std::system_error(EAI_NONAME, resolver_category(),
                            "weft: resolving " + std::string(host) + ": no IPv4/IPv6 address");
  }
  return std::move(l.addresses);
}

}  // namespace

const std::error_category& resolver_category() noexcept {
  static const ResolverCategory category;
  return category;
}

std::vector<Address> resolve(std::string_view host, std::uint16_t port, Deadline deadline) {
  if (auto a = Address::try_parse(std::string(host) + ":" + std::to_string(port))) return {*a};
  if (host.find(':') != std::string_view::npos) {
    return {Address(host, port)};  // an IPv6 literal, or invalid_argument
  }
  std::string name(host);
  if (!this_fiber::in_fiber()) {
    Lookup l = lookup(name, port);
    if (deadline.expired()) throw TimedOut();
    return finish(std::move(l), host);
  }
  auto [tx, rx] = oneshot<Lookup>();
  spawn_blocking([tx = std::move(tx), name, port]() mutable {
    (void)tx.send(lookup(name, port));  // the fiber may have given up
  }).detach();
  if (deadline.is_none()) {
    auto v = rx.recv();
    if (!v) throw std::runtime_error("weft: resolver task ended without an answer");
    return finish(std::move(*v), host);
  }
  RecvResult<Lookup> r = rx.recv_until(deadline.when());
  if (r.status() == ChannelStatus::timed_out) throw TimedOut();
  if (!r.ok()) throw std::runtime_error("weft: resolver task ended without an answer");
  return finish(std::move(*r), host);
}

}  // namespace weft::net
