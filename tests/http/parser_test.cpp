// Unit tests of weft-http-hello's request-head parser
// (examples/http-hello/http_parser.hpp): framing, the refusals with their
// statuses, and that a verdict never depends on where the stream was cut.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "http_parser.hpp"

namespace {

using http_hello::kMaxHeadBytes;
using http_hello::parse_head;
using http_hello::ParseStatus;
using http_hello::Version;

/// The error status parse_head() gives `text`, 0 when it parses completely,
/// -1 when incomplete.
int verdict(std::string_view text) {
  const auto r = parse_head(text);
  if (r.status == ParseStatus::complete) return 0;
  if (r.status == ParseStatus::incomplete) return -1;
  return r.error_status;
}

TEST(HttpParser, SimpleGet) {
  const std::string text = "GET /a?b=c HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\nNEXT";
  const auto r = parse_head(text);
  ASSERT_EQ(r.status, ParseStatus::complete);
  EXPECT_EQ(r.head.method, "GET");
  EXPECT_EQ(r.head.target, "/a?b=c");
  EXPECT_EQ(r.head.version, Version::http11);
  EXPECT_EQ(r.head.content_length, 0u);
  EXPECT_TRUE(r.head.keep_alive);
  EXPECT_FALSE(r.head.expect_continue);
  EXPECT_EQ(r.head.head_bytes, text.size() - 4);  // "NEXT" is the next request's
}

TEST(HttpParser, EveryPrefixIsIncompleteAndTheWholeIsComplete) {
  const std::string text =
      "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\nConnection: keep-alive\r\n\r\n";
  for (std::size_t n = 0; n < text.size(); ++n)
    EXPECT_EQ(verdict(text.substr(0, n)), -1) << "prefix of " << n << " bytes";
  const auto r = parse_head(text);
  ASSERT_EQ(r.status, ParseStatus::complete);
  EXPECT_EQ(r.head.content_length, 12u);
  EXPECT_EQ(r.head.head_bytes, text.size());
}

TEST(HttpParser, BareLineFeedsAndLeadingEmptyLines) {
  const std::string text = "\r\n\nGET / HTTP/1.1\nHost: h\n\n";
  const auto r = parse_head(text);
  ASSERT_EQ(r.status, ParseStatus::complete);
  EXPECT_EQ(r.head.method, "GET");
  EXPECT_EQ(r.head.head_bytes, text.size());
}

TEST(HttpParser, KeepAliveRules) {
  auto keep = [](std::string_view text) {
    const auto r = parse_head(text);
    EXPECT_EQ(r.status, ParseStatus::complete) << text;
    return r.head.keep_alive;
  };
  EXPECT_TRUE(keep("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.1\r\nHost: h\r\nconnection:  Upgrade , CLOSE\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.1\r\nHost: h\r\nConnection: a\r\nConnection: close\r\n\r\n"));
  EXPECT_TRUE(keep("GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.0\r\n\r\n"));
  EXPECT_TRUE(keep("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
  EXPECT_TRUE(keep("GET / HTTP/1.2\r\nHost: h\r\n\r\n"));  // 1.x behaves as 1.1
}

TEST(HttpParser, ExpectContinue) {
  auto r =
      parse_head("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::complete);
  EXPECT_TRUE(r.head.expect_continue);
  r = parse_head("PUT / HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::complete);
  EXPECT_FALSE(r.head.expect_continue);  // ignored for HTTP/1.0
  EXPECT_EQ(verdict("PUT / HTTP/1.1\r\nHost: h\r\nExpect: teapot\r\n\r\n"), 417);
}

TEST(HttpParser, ContentLength) {
  // "=N" for a length of N, else the error status.
  auto length = [](std::string_view value) {
    const std::string text =
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:" + std::string(value) + "\r\n\r\n";
    const auto r = parse_head(text);
    return r.status == ParseStatus::complete ? "=" + std::to_string(r.head.content_length)
                                             : std::to_string(r.error_status);
  };
  EXPECT_EQ(length("0"), "=0");
  EXPECT_EQ(length(" 42 "), "=42");
  EXPECT_EQ(length("\t007"), "=7");
  EXPECT_EQ(length("18446744073709551615"), "=18446744073709551615");
  EXPECT_EQ(length("18446744073709551616"), "400");  // overflows
  EXPECT_EQ(length("99999999999999999999999"), "400");
  EXPECT_EQ(length(""), "400");
  EXPECT_EQ(length("-1"), "400");
  EXPECT_EQ(length("+1"), "400");
  EXPECT_EQ(length("1 2"), "400");
  EXPECT_EQ(length("0x10"), "400");
  EXPECT_EQ(length("5, 5"), "400");
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n"),
            400);
}

TEST(HttpParser, MalformedIs400) {
  const char* bad[] = {
      "GARBAGE\r\n\r\n",
      "GET /\r\n\r\n",                              // HTTP/0.9
      "GET / HTTP/1.1 \r\nHost: h\r\n\r\n",         // trailing space
      "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",         // two spaces
      "GET / FTP/1.1\r\nHost: h\r\n\r\n",           //
      "GET / HTTP/1.10\r\nHost: h\r\n\r\n",         //
      "GET / HTTP/a.1\r\nHost: h\r\n\r\n",          //
      "G(T / HTTP/1.1\r\nHost: h\r\n\r\n",          // not a token
      "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n",     // control in target
      "GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",  // non-ASCII target
      "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n",
      "GET / HTTP/1.1\r\nHost : h\r\n\r\n",  // space before the colon
      "GET / HTTP/1.1\r\n: h\r\nHost: h\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n  folded\r\n\r\n",  // obs-fold
      "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",           // bare CR
      "GET / HTTP/1.1\r\n\r\n",                                 // no Host
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",           // two Hosts
      "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
  };
  for (const char* text : bad) EXPECT_EQ(verdict(text), 400) << text;
  // A NUL in a value (string_view keeps it).
  static constexpr char kNul[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n";
  EXPECT_EQ(verdict(std::string_view(kNul, sizeof kNul - 1)), 400);
  // Obs-text in a value is allowed.
  EXPECT_EQ(verdict("GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\r\n\r\n"), 0);
}

TEST(HttpParser, ErrorsAreReportedAsSoonAsTheLineIsComplete) {
  EXPECT_EQ(verdict("BAD LINE\r\n"), 400);
  EXPECT_EQ(verdict("GET / HTTP/1.1\r\nHost : h\r\n"), 400);
  EXPECT_EQ(verdict("GET / HTTP/2.0\r\n"), 505);
  EXPECT_EQ(verdict("GET / HTTP/1.1\r\nHost: h\r\nHost"), -1);  // line not complete yet
}

TEST(HttpParser, UnsupportedVersionIs505) {
  EXPECT_EQ(verdict("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
  EXPECT_EQ(verdict("GET / HTTP/0.9\r\nHost: h\r\n\r\n"), 505);
}

TEST(HttpParser, TransferEncodingIs501) {
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                    "transfer-encoding: gzip, chunked\r\n\r\n"),
            501);
}

TEST(HttpParser, HeadLimitIs431) {
  // A head of exactly kMaxHeadBytes parses; one byte more is refused.
  auto head_of = [](std::size_t size) {
    const std::string start = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
    const std::string end = "\r\n\r\n";
    return start + std::string(size - start.size() - end.size(), 'a') + end;
  };
  const std::string fits = head_of(kMaxHeadBytes);
  ASSERT_EQ(fits.size(), kMaxHeadBytes);
  EXPECT_EQ(verdict(fits), 0);
  EXPECT_EQ(verdict(fits + "GET / HTTP/1.1\r\n"), 0);  // what follows does not count
  EXPECT_EQ(verdict(head_of(kMaxHeadBytes + 1)), 431);
  // No blank line within the limit: 431 once the limit is reached, not before.
  const std::string open = "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(kMaxHeadBytes, 'a');
  EXPECT_EQ(verdict(open.substr(0, kMaxHeadBytes - 1)), -1);
  EXPECT_EQ(verdict(open.substr(0, kMaxHeadBytes)), 431);
  EXPECT_EQ(verdict(open), 431);
  // Empty lines before the request line count too.
  EXPECT_EQ(verdict(std::string(kMaxHeadBytes, '\n')), 431);
  // A smaller limit is honoured.
  EXPECT_EQ(parse_head("GET / HTTP/1.1\r\nHost: h\r\n\r\n", 10).error_status, 431);
}

TEST(HttpParser, PipelinedHeadsParseOneAfterAnother) {
  const std::string stream =
      "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
      "HEAD /2 HTTP/1.1\r\nHost: h\r\n\r\n"
      "GET /3 HTTP/1.0\r\n\r\n";
  std::string_view rest = stream;
  const char* targets[] = {"/1", "/2", "/3"};
  for (const char* t : targets) {
    const auto r = parse_head(rest);
    ASSERT_EQ(r.status, ParseStatus::complete);
    EXPECT_EQ(r.head.target, t);
    rest.remove_prefix(r.head.head_bytes);
  }
  EXPECT_TRUE(rest.empty());
}

}  // namespace
