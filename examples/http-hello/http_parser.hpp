// The HTTP/1.1 request-head parser of weft-http-hello.
//
// The problem: a keep-alive connection delivers a byte stream in which
// requests follow each other back to back (pipelining), split anywhere by
// the network. The server must find where each request head ends, learn
// from it how many body bytes follow (Content-Length) and whether the
// connection stays open (Connection, the version), and refuse anything it
// cannot frame safely, since a framing mistake desynchronises every later
// request on the connection (request smuggling).
//
// Approaches not taken: an incremental state machine that resumes in the
// middle of a line (llhttp, picohttpparser's "last_len") saves rescanning a
// partial head, but heads here are capped at kMaxHeadBytes (8 KiB), so a
// rescan after each read costs at most a few microseconds and only for
// clients that trickle their heads; a zero-copy parser that hands out every
// header is more than a hello-world server needs.
//
// The protocol chosen: parse_head() is a pure function of the bytes seen so
// far. It walks complete lines only (ending in LF, an optional CR before
// it, RFC 9112 section 2.2), so a verdict about a line never changes when
// more bytes arrive: an error can be reported as soon as the offending line
// is complete, and "incomplete" means "no blank line yet". It keeps only
// what the server needs (method, target, version, body length, keep-alive,
// Expect) and checks the grammar of everything else. Refused, each with the
// status the server answers before closing:
//   400  malformed request line or header line, obsolete line folding,
//        whitespace before a header's colon, control characters, a bad,
//        overflowing or repeated Content-Length, an HTTP/1.1 request
//        without exactly one Host;
//   417  an Expect other than 100-continue (HTTP/1.1);
//   431  no end of head within kMaxHeadBytes;
//   501  any Transfer-Encoding (chunked request bodies are not supported;
//        refusing them also settles the Transfer-Encoding + Content-Length
//        ambiguity);
//   505  an HTTP major version other than 1.
// Empty lines before the request line are skipped (RFC 9112 section 2.2).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace http_hello {

/// The most bytes a request head may take: empty lines before the request
/// line, the request line, the header lines and the blank line ending
/// them. A head that does not end within this many bytes is answered 431.
inline constexpr std::size_t kMaxHeadBytes = 8192;

/// The protocol version of a request, as far as the server cares: HTTP/1.x
/// with x >= 1 behaves as HTTP/1.1 (RFC 9110 section 6.2).
enum class Version : std::uint8_t { http10, http11 };

/// A parsed request head. The views point into the buffer passed to
/// parse_head() and are valid as long as those bytes are unchanged.
struct RequestHead {
  std::string_view method;            ///< e.g. "GET": a token, case-sensitive
  std::string_view target;            ///< the request-target as sent ("/", "/a?b", "*", ...)
  Version version = Version::http11;  ///< HTTP/1.0 or HTTP/1.1
  std::uint64_t content_length = 0;   ///< body bytes after the head (0 without Content-Length)
  bool keep_alive = true;             ///< the connection stays open after the response
  bool expect_continue = false;       ///< "Expect: 100-continue" on an HTTP/1.1 request
  std::size_t head_bytes = 0;         ///< bytes the head took, its blank line included
};

/// How parse_head() ended.
enum class ParseStatus : std::uint8_t {
  complete,    ///< ParseResult::head holds a head of head.head_bytes bytes
  incomplete,  ///< no blank line yet (and fewer than the limit seen): read more, call again
  error,       ///< malformed, unsupported or too large: answer error_status, then close
};

/// The result of parse_head().
struct ParseResult {
  ParseStatus status = ParseStatus::incomplete;  ///< which of the three outcomes
  int error_status = 0;  ///< for ParseStatus::error: 400, 417, 431, 501 or 505
  RequestHead head;      ///< for ParseStatus::complete
};

namespace detail {

/// tchar of RFC 9110 section 5.6.2: the characters of a token.
constexpr std::array<bool, 256> make_token_table() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
inline constexpr std::array<bool, 256> kTokenChar = make_token_table();

/// True if `s` is a non-empty token.
constexpr bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s)
    if (!kTokenChar[static_cast<unsigned char>(c)]) return false;
  return true;
}

/// ASCII lower case.
constexpr char lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c;
}

/// ASCII case-insensitive equality; `lower_b` must be lower case already.
constexpr bool iequals(std::string_view a, std::string_view lower_b) noexcept {
  if (a.size() != lower_b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower_b[i]) return false;
  return true;
}

/// `s` without leading and trailing spaces and tabs (OWS).
constexpr std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// A field value may hold HTAB, SP, visible ASCII and obs-text (>= 0x80),
/// nothing else (no NUL, CR, other controls or DEL).
constexpr bool valid_field_value(std::string_view v) noexcept {
  for (char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

/// 1*DIGIT into `out`; false when empty, not all digits, or above 2^64-1.
constexpr bool parse_length(std::string_view v, std::uint64_t& out) noexcept {
  if (v.empty()) return false;
  std::uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (n > (UINT64_MAX - d) / 10) return false;
    n = n * 10 + d;
  }
  out = n;
  return true;
}

/// Parses "method SP target SP HTTP/d.d" into `h`; 0 or the error status.
constexpr int parse_request_line(std::string_view line, RequestHead& h) noexcept {
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return 400;
  h.method = line.substr(0, sp1);
  if (!is_token(h.method)) return 400;
  const std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return 400;
  h.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (h.target.empty()) return 400;
  for (char ch : h.target) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f) return 400;
  }
  const std::string_view v = line.substr(sp2 + 1);
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
      v[7] < '0' || v[7] > '9') {
    return 400;
  }
  if (v[5] != '1') return 505;
  h.version = v[7] == '0' ? Version::http10 : Version::http11;
  return 0;
}

}  // namespace detail

/// Parses the request head at the start of `data` (bytes received on a
/// connection and not consumed yet). Never reads past data.size() nor,
/// looking for the end of the head, past `max_head` bytes. Returns
/// complete with the head, incomplete when the blank line has not arrived
/// yet, or error with the status to answer (see the file comment). Never
/// throws, never allocates.
inline ParseResult parse_head(std::string_view data,
                              std::size_t max_head = kMaxHeadBytes) noexcept {
  ParseResult r;
  RequestHead& h = r.head;
  auto fail = [&r](int status) {
    r.status = ParseStatus::error;
    r.error_status = status;
    return r;
  };
  const std::size_t limit = data.size() < max_head ? data.size() : max_head;
  bool have_request_line = false;
  bool have_length = false;
  bool transfer_encoding = false;
  bool conn_close = false;
  bool conn_keep_alive = false;
  bool expect_other = false;
  int hosts = 0;
  std::size_t pos = 0;
  for (;;) {
    const void* nl = std::memchr(data.data() + pos, '\n', limit - pos);
    if (nl == nullptr) {
      if (data.size() >= max_head) return fail(431);
      return r;  // incomplete
    }
    const auto end = static_cast<std::size_t>(static_cast<const char*>(nl) - data.data());
    std::string_view line = data.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = end + 1;

    if (!have_request_line) {
      if (line.empty()) continue;  // empty lines before the request line
      if (const int e = detail::parse_request_line(line, h); e != 0) return fail(e);
      have_request_line = true;
      continue;
    }
    if (line.empty()) break;  // the blank line: end of the head

    if (line.front() == ' ' || line.front() == '\t') return fail(400);  // obs-fold
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return fail(400);
    const std::string_view name = line.substr(0, colon);
    if (!detail::is_token(name)) return fail(400);  // also: whitespace before the colon
    const std::string_view raw = line.substr(colon + 1);
    if (!detail::valid_field_value(raw)) return fail(400);
    const std::string_view value = detail::trim(raw);

    switch (detail::lower(name.front())) {
      case 'c':
        if (detail::iequals(name, "content-length")) {
          if (have_length || !detail::parse_length(value, h.content_length)) return fail(400);
          have_length = true;
        } else if (detail::iequals(name, "connection")) {
          std::string_view rest = value;
          while (!rest.empty()) {
            const std::size_t comma = rest.find(',');
            const std::string_view opt = detail::trim(rest.substr(0, comma));
            if (detail::iequals(opt, "close")) conn_close = true;
            if (detail::iequals(opt, "keep-alive")) conn_keep_alive = true;
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
          }
        }
        break;
      case 'h':
        if (detail::iequals(name, "host")) ++hosts;
        break;
      case 't':
        if (detail::iequals(name, "transfer-encoding")) transfer_encoding = true;
        break;
      case 'e':
        if (detail::iequals(name, "expect")) {
          if (detail::iequals(value, "100-continue")) {
            h.expect_continue = true;
          } else {
            expect_other = true;
          }
        }
        break;
      default:
        break;
    }
  }

  const bool http11 = h.version == Version::http11;
  if (http11 && hosts != 1) return fail(400);
  if (!http11 && hosts > 1) return fail(400);
  if (transfer_encoding) return fail(501);
  if (!http11) h.expect_continue = false;  // RFC 9110 10.1.1: ignored for HTTP/1.0
  if (http11 && expect_other) return fail(417);
  h.keep_alive = !conn_close && (http11 || conn_keep_alive);
  h.head_bytes = pos;
  r.status = ParseStatus::complete;
  return r;
}

}  // namespace http_hello
