// weft::net::Address: parsing and formatting of IPv4/IPv6 socket addresses.
#include <arpa/inet.h>
#include <net/if.h>

#include <charconv>
#include <cstring>

#include "weft/net.hpp"

namespace weft::net {
namespace {

bool parse_port(std::string_view text, std::uint16_t& port) noexcept {
  if (text.empty() || text.size() > 5) return false;
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v > 65535) return false;
  port = static_cast<std::uint16_t>(v);
  return true;
}

// Fills storage from an IP literal (brackets allowed around IPv6).
bool parse_ip(std::string_view ip, std::uint16_t port, sockaddr_storage& ss,
              socklen_t& len) noexcept {
  if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  if (ip.empty() || ip.size() >= INET6_ADDRSTRLEN + IF_NAMESIZE) return false;
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 1];
  std::memcpy(buf, ip.data(), ip.size());
  buf[ip.size()] = '\0';
  std::memset(&ss, 0, sizeof ss);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  if (::inet_pton(AF_INET, buf, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  char* zone = std::strchr(buf, '%');
  if (zone != nullptr) *zone++ = '\0';
  if (::inet_pton(AF_INET6, buf, &v6->sin6_addr) != 1) return false;
  if (zone != nullptr) {
    unsigned id = ::if_nametoindex(zone);
    if (id == 0) {
      const std::string_view z(zone);
      const auto [end, ec] = std::from_chars(z.data(), z.data() + z.size(), id);
      if (ec != std::errc() || end != z.data() + z.size()) return false;
    }
    v6->sin6_scope_id = id;
  }
  v6->sin6_family = AF_INET6;
  v6->sin6_port = htons(port);
  len = sizeof(sockaddr_in6);
  return true;
}

Address make(int family, const void* ip, std::uint16_t port) noexcept {
  sockaddr_storage ss{};
  if (family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    std::memcpy(&v4->sin_addr, ip, sizeof v4->sin_addr);
    return Address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), sizeof(sockaddr_in));
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  v6->sin6_family = AF_INET6;
  v6->sin6_port = htons(port);
  std::memcpy(&v6->sin6_addr, ip, sizeof v6->sin6_addr);
  return Address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), sizeof(sockaddr_in6));
}

}  // namespace

Address::Address() noexcept : storage_{}, len_(0) {
  storage_.ss_family = AF_UNSPEC;
}

Address::Address(std::string_view ip, std::uint16_t port) : Address() {
  if (!parse_ip(ip, port, storage_, len_)) {
    throw std::invalid_argument("weft: '" + std::string(ip) +
                                "' is not an IPv4 or IPv6 address (use net::resolve for names)");
  }
}

std::optional<Address> Address::try_parse(std::string_view text) noexcept {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(0, close + 1);
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // v6 needs brackets
    port_text = text.substr(colon + 1);
  }
  std::uint16_t port = 0;
  if (!parse_port(port_text, port)) return std::nullopt;
  Address a;
  if (!parse_ip(host, port, a.storage_, a.len_)) return std::nullopt;
  return a;
}

Address Address::parse(std::string_view text) {
  if (auto a = try_parse(text)) return *a;
  throw std::invalid_argument("weft: '" + std::string(text) +
                              "' is not an address of the form a.b.c.d:port or [v6]:port");
}

Address Address::from_sockaddr(const sockaddr* sa, socklen_t len) {
  Address a;
  if (sa != nullptr && sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    std::memcpy(&a.storage_, sa, sizeof(sockaddr_in));
    a.len_ = sizeof(sockaddr_in);
  } else if (sa != nullptr && sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    std::memcpy(&a.storage_, sa, sizeof(sockaddr_in6));
    a.len_ = sizeof(sockaddr_in6);
  } else {
    throw std::invalid_argument("weft: not an IPv4 or IPv6 socket address");
  }
  return a;
}

Address Address::any_ipv4(std::uint16_t port) noexcept {
  const in_addr any{htonl(INADDR_ANY)};
  return make(AF_INET, &any, port);
}
Address Address::any_ipv6(std::uint16_t port) noexcept {
  return make(AF_INET6, &in6addr_any, port);
}
Address Address::loopback_ipv4(std::uint16_t port) noexcept {
  const in_addr lo{htonl(INADDR_LOOPBACK)};
  return make(AF_INET, &lo, port);
}
Address Address::loopback_ipv6(std::uint16_t port) noexcept {
  return make(AF_INET6, &in6addr_loopback, port);
}

bool Address::is_ipv4() const noexcept {
  return storage_.ss_family == AF_INET;
}
bool Address::is_ipv6() const noexcept {
  return storage_.ss_family == AF_INET6;
}
int Address::family() const noexcept {
  return storage_.ss_family;
}

std::uint16_t Address::port() const noexcept {
  if (is_ipv4()) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (is_ipv6()) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

Address Address::with_port(std::uint16_t port) const noexcept {
  Address a = *this;
  if (is_ipv4()) reinterpret_cast<sockaddr_in*>(&a.storage_)->sin_port = htons(port);
  if (is_ipv6()) reinterpret_cast<sockaddr_in6*>(&a.storage_)->sin6_port = htons(port);
  return a;
}

std::string Address::ip() const {
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2] = {};
  if (is_ipv4()) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf,
                sizeof buf);
    return buf;
  }
  if (is_ipv6()) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
    std::string s = buf;
    if (v6->sin6_scope_id != 0) s += "%" + std::to_string(v6->sin6_scope_id);
    return s;
  }
  return "unspecified";
}

std::string Address::to_string() const {
  if (is_ipv6()) return "[" + ip() + "]:" + std::to_string(port());
  return ip() + ":" + std::to_string(port());
}

bool operator==(const Address& a, const Address& b) noexcept {
  return a.len_ == b.len_ && std::memcmp(&a.storage_, &b.storage_, a.len_) == 0 &&
         a.storage_.ss_family == b.storage_.ss_family;
}

}  // namespace weft::net
