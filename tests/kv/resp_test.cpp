// weft-kv's RESP2 request parser and reply encoders (examples/weft-kv/resp.*):
// every request split at every byte offset and fed a byte at a time, pipelined
// batches, inline quoting as Redis's sdssplitargs does it, skipped empty
// requests, binary-safe bulks, the limits at and one past the boundary, every
// protocol error text (as redis-server 7.0 sends it), sticky errors, bounded
// buffer memory over 10^6 pipelined commands, big bulks received in place,
// and the reply encoders byte for byte.
#include "resp.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <ostream>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace std::string_literals;
using kv::ParseLimits;
using kv::ParseStatus;
using kv::Reply;
using kv::RequestParser;

using Command = std::vector<std::string>;
using Commands = std::vector<Command>;

constexpr std::size_t kKiB = 1024;

// Everything a parser yielded for some input.
struct Result {
  Commands commands;
  ParseStatus status = ParseStatus::incomplete;  // of the last next()
  std::string error;
  std::size_t buffered = 0;
  bool operator==(const Result&) const = default;
};

std::string printable(std::string_view s) {
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '\\') {
      out.push_back(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

std::ostream& operator<<(std::ostream& os, ParseStatus s) {
  switch (s) {
    case ParseStatus::complete:
      return os << "complete";
    case ParseStatus::incomplete:
      return os << "incomplete";
    case ParseStatus::error:
      return os << "error";
  }
  return os << "?";
}

// gtest prints a Result with this.
[[maybe_unused]] void PrintTo(const Result& r, std::ostream* os) {
  *os << "{commands:";
  for (const auto& c : r.commands) {
    *os << " [";
    for (std::size_t i = 0; i < c.size(); ++i)
      *os << (i ? " " : "") << '"' << printable(c[i]) << '"';
    *os << "]";
  }
  *os << ", status: " << r.status << ", error: \"" << r.error << "\", buffered: " << r.buffered
      << "}";
}

// Drives a RequestParser the way a connection does: each feed() is one read
// (prepare, copy, commit) followed by next() until it stops returning
// complete. Checks the contract of next() on every call.
class Driver {
 public:
  explicit Driver(ParseLimits limits = {}) : parser_(limits) {}

  void feed(std::string_view bytes, std::size_t min_bytes = 1) {
    const std::span<char> room = parser_.prepare(std::max(bytes.size(), min_bytes));
    ASSERT_GE(room.size(), std::max(bytes.size(), min_bytes));
    if (!bytes.empty()) std::memcpy(room.data(), bytes.data(), bytes.size());
    parser_.commit(bytes.size());
    drain();
  }

  void drain() {
    for (;;) {
      argv_.assign(2, "stale");  // next() must clear it
      result_.status = parser_.next(argv_);
      if (result_.status != ParseStatus::complete) {
        EXPECT_TRUE(argv_.empty());
        break;
      }
      ASSERT_FALSE(argv_.empty());
      result_.commands.emplace_back(argv_.begin(), argv_.end());
    }
    if (result_.status == ParseStatus::error) {
      // Sticky: the same error, however often asked.
      const std::string first = parser_.error();
      EXPECT_FALSE(first.empty());
      EXPECT_EQ(parser_.next(argv_), ParseStatus::error);
      EXPECT_TRUE(argv_.empty());
      EXPECT_EQ(parser_.error(), first);
    } else {
      EXPECT_TRUE(parser_.error().empty());
    }
  }

  // After an error the connection closes: what is buffered then is moot, so
  // it is recorded as 0.
  Result result() {
    result_.error = parser_.error();
    result_.buffered = result_.status == ParseStatus::error ? 0 : parser_.buffered();
    return result_;
  }

  RequestParser& parser() { return parser_; }
  const std::vector<std::string_view>& argv() const { return argv_; }

 private:
  RequestParser parser_;
  std::vector<std::string_view> argv_;
  Result result_;
};

Result parse_whole(std::string_view input, ParseLimits limits = {}) {
  Driver d(limits);
  d.feed(input);
  return d.result();
}

// Feeds input[0, cuts[0]), input[cuts[0], cuts[1]), ..., input[cuts.back(), end).
Result parse_pieces(std::string_view input, const std::vector<std::size_t>& cuts,
                    ParseLimits limits = {}) {
  Driver d(limits);
  std::size_t at = 0;
  for (const std::size_t cut : cuts) {
    d.feed(input.substr(at, cut - at));
    at = cut;
  }
  d.feed(input.substr(at));
  return d.result();
}

Result parse_bytewise(std::string_view input, ParseLimits limits = {}) {
  Driver d(limits);
  for (const char c : input) d.feed(std::string_view(&c, 1));
  return d.result();
}

// A multibulk request for argv.
std::string multibulk(const Command& argv) {
  std::string out;
  Reply::array_header(out, argv.size());
  for (const auto& a : argv) Reply::bulk(out, a);
  return out;
}

Result done(Commands commands) {
  return {std::move(commands), ParseStatus::incomplete, "", 0};
}

Result failed(Commands commands, std::string error) {
  Result r{std::move(commands), ParseStatus::error, std::move(error), 0};
  return r;
}

// --- the same result however the bytes are split ------------------------------

struct Stream {
  const char* name;
  std::string input;
  Result expected;  // buffered is ignored for error results
  ParseLimits limits{};
};

std::vector<Stream> streams() {
  std::vector<Stream> s;
  s.push_back(
      {"set", "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n", done({{"SET", "key", "value"}})});
  s.push_back({"pipelined_mix",
               "*1\r\n$4\r\nPING\r\n"
               "ECHO \"a b\"\r\n"
               "\r\n"
               "*0\r\n"
               "*2\r\n$3\r\nGET\r\n$0\r\n\r\n"
               "  'x'  y\n"
               "*-1\r\n"
               "\n"
               "*2\r\n$4\r\nECHO\r\n$4\r\nPI\r\n\r\n"
               "get \"\\x41\\n\" '\\''\r\n",
               done({{"PING"},
                     {"ECHO", "a b"},
                     {"GET", ""},
                     {"x", "y"},
                     {"ECHO", "PI\r\n"},
                     {"get", "A\n", "'"}})});
  s.push_back({"binary_bulks",
               "*4\r\n$3\r\nSET\r\n$3\r\n\0\r\n\r\n$6\r\n\r\n\r\n\r\n\r\n$5\r\n*1\r\n$\r\n"s,
               done({{"SET", "\0\r\n"s, "\r\n\r\n\r\n", "*1\r\n$"}})});
  s.push_back({"inline_quotes", "SET \"k\\x00\\x7f\\xff\" 'it\\'s' x\"y z\"\r\n  \t PING  \r\n",
               done({{"SET", "k\0\x7f\xff"s, "it's", "xy z"}, {"PING"}})});
  s.push_back({"redis_leniency",  // the byte after '\r' and the two after a bulk are not checked
               "*2\rX$4\rXECHO!!$3\r\0abc\r\n*1\r\n$4\r\nPING\r\n"s,
               done({{"ECHO", "abc"}, {"PING"}})});
  s.push_back({"error_after_commands", "PING\r\n*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$x\r\n",
               failed({{"PING"}, {"PING"}}, "ERR Protocol error: invalid bulk length")});
  s.push_back({"unbalanced_after_command", "PING\r\nECHO \"abc\r\n*1\r\n$4\r\nPING\r\n",
               failed({{"PING"}}, "ERR Protocol error: unbalanced quotes in request")});
  s.push_back({"expected_dollar", "*2\r\n$4\r\nECHO\r\n:1\r\n",
               failed({}, "ERR Protocol error: expected '$', got ':'")});
  ParseLimits small;
  small.max_inline_len = 32;
  small.max_bulk_len = 8;
  small.max_multibulk_len = 3;
  s.push_back({"inline_nul_stall", "PING\r\nPI\0NG\r\nPING\r\n"s + std::string(32, '\n'),
               failed({{"PING"}}, "ERR Protocol error: too big inline request"), small});
  s.push_back({"small_limits_ok",
               "*3\r\n$8\r\n12345678\r\n$0\r\n\r\n$1\r\nx\r\n" + std::string(32, 'y') + "\n",
               done({{"12345678", "", "x"}, {std::string(32, 'y')}}), small});
  s.push_back({"small_limits_bulk", "*1\r\n$9\r\n123456789\r\n",
               failed({}, "ERR Protocol error: invalid bulk length"), small});
  s.push_back({"small_limits_header", "*1\r\n$" + std::string(32, '1'),
               failed({}, "ERR Protocol error: too big bulk count string"), small});
  return s;
}

void expect_matches(const Result& got, const Result& expected, const std::string& what) {
  EXPECT_EQ(got.commands, expected.commands) << what;
  EXPECT_EQ(got.status, expected.status) << what;
  EXPECT_EQ(got.error, expected.error) << what;
  EXPECT_EQ(got.buffered, expected.buffered) << what;  // 0 after an error (Driver)
}

TEST(RespParser, WholeInputParsesAsExpected) {
  for (const auto& s : streams())
    expect_matches(parse_whole(s.input, s.limits), s.expected, s.name);
}

TEST(RespParser, EverySplitOffsetGivesTheSameResult) {
  for (const auto& s : streams()) {
    for (std::size_t cut = 0; cut <= s.input.size(); ++cut) {
      expect_matches(parse_pieces(s.input, {cut}, s.limits), s.expected,
                     std::string(s.name) + " cut at " + std::to_string(cut));
    }
  }
}

TEST(RespParser, EveryPairOfSplitOffsetsGivesTheSameResult) {
  for (const auto& s : streams()) {
    if (s.input.size() > 120) continue;
    for (std::size_t a = 0; a <= s.input.size(); ++a) {
      for (std::size_t b = a; b <= s.input.size(); ++b) {
        expect_matches(
            parse_pieces(s.input, {a, b}, s.limits), s.expected,
            std::string(s.name) + " cut at " + std::to_string(a) + "," + std::to_string(b));
      }
    }
  }
}

TEST(RespParser, ByteAtATimeGivesTheSameResult) {
  for (const auto& s : streams()) {
    expect_matches(parse_bytewise(s.input, s.limits), s.expected, s.name);
  }
}

TEST(RespParser, PartialRequestIsBufferedNotConsumed) {
  const std::string req = "*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n";
  for (std::size_t n = 1; n < req.size(); ++n) {
    const Result r = parse_whole(req.substr(0, n));
    EXPECT_TRUE(r.commands.empty()) << n;
    EXPECT_EQ(r.status, ParseStatus::incomplete) << n;
    EXPECT_EQ(r.buffered, n) << n;
  }
  Driver d;
  d.feed(req + "PI");
  EXPECT_EQ(d.result().commands, (Commands{{"ECHO", "hello"}}));
  EXPECT_EQ(d.result().buffered, 2u);
}

// --- pipelining -----------------------------------------------------------------

// A deterministic mix of requests and the commands they parse to.
void make_batch(std::size_t count, std::uint32_t seed, std::string& input, Commands& expected) {
  std::mt19937 rng(seed);
  for (std::size_t i = 0; i < count; ++i) {
    const std::string key = "key:" + std::to_string(i);
    std::string value(rng() % 64, 'v');
    for (auto& c : value) c = static_cast<char>(rng());  // any bytes
    switch (rng() % 4) {
      case 0:
        expected.push_back({"SET", key, value});
        input += multibulk(expected.back());
        break;
      case 1:
        expected.push_back({"GET", key});
        input += "GET " + key + "\r\n";
        break;
      case 2:
        expected.push_back({"ECHO", "a b\t\"c\""});
        input += "ECHO \"a b\\t\\\"c\\\"\"\n";
        break;
      default:
        input += i % 2 ? "\r\n" : "*0\r\n";  // skipped: no command
        break;
    }
  }
}

TEST(RespParser, PipelinedBatchInOneRead) {
  std::string input;
  Commands expected;
  make_batch(5000, 1, input, expected);
  EXPECT_EQ(parse_whole(input), done(expected));
}

TEST(RespParser, PipelinedBatchInRandomReads) {
  std::string input;
  Commands expected;
  make_batch(5000, 2, input, expected);
  std::mt19937 rng(3);
  for (int round = 0; round < 20; ++round) {
    std::vector<std::size_t> cuts;
    const std::size_t max_read = std::size_t{1} << (rng() % 14);
    for (std::size_t at = 0; at < input.size();) {
      at = std::min(input.size(), at + 1 + rng() % max_read);
      cuts.push_back(at);
    }
    EXPECT_EQ(parse_pieces(input, cuts), done(expected)) << "round " << round;
  }
}

// --- inline requests: sdssplitargs ----------------------------------------------

struct InlineCase {
  std::string line;  // without the terminator
  Command argv;      // empty: "unbalanced quotes"
};

// Each verified against redis-server 7.0.15 with ECHO or an unknown command
// (whose error lists the arguments).
std::vector<InlineCase> inline_cases() {
  return {
      {"PING", {"PING"}},
      {"  SET   a  b  ", {"SET", "a", "b"}},
      {"a\tb", {"a", "b"}},
      {"a\rb", {"a", "b"}},                  // a CR inside the line separates
      {"a\vb", {"a\vb"}},                    // \v and \f do not end a token...
      {"\v\fECHO\v ab", {"ECHO\v", "ab"}},   // ...but are skipped between tokens
      {"ECHO \"a\\nb\"", {"ECHO", "a\nb"}},  // escapes in double quotes
      {"\"a\\tb\\bc\\ad\\re\"", {"a\tb\bc\ad\re"}},
      {"\"\\x41\\x4a\\xzz\\q\"", {"AJxzzq"}},  // \x needs two hex digits
      {"\"\\xAf\\x00\"", {"\xaf\0"s}},
      {"\"\\x4\"", {"x4"}},
      {"\"say \\\"hi\\\"\"", {"say \"hi\""}},
      {"\"a\\\\b\"", {"a\\b"}},
      {"'a\\'b\\n'", {"a'b\\n"}},  // only \' in single quotes
      {"'a\\\\b'", {"a\\\\b"}},
      {"'it\\'s'", {"it's"}},
      {"x\"a b\"", {"xa b"}},  // a quote may open mid-token
      {"x'a b'", {"xa b"}},
      {"\"\"", {""}},
      {"''", {""}},
      {"\"\" ''", {"", ""}},
      {"\"a\"\v", {"a"}},  // any isspace may follow a quote
      {"\"a\"\t'b'", {"a", "b"}},
      {"\"a\rb\"", {"a\rb"}},  // a raw CR inside quotes is kept
      {"\"a\"\r", {"a"}},      // "a"\r\r\n: one CR is the terminator's
      {"\xc3\xa9 \xff", {"\xc3\xa9", "\xff"}},
      {"\"ab\"c", {}},  // a closing quote must be followed by a blank
      {"'ab'c", {}},
      {"\"ab", {}},
      {"'ab", {}},
      {"a'b", {}},
      {"\"a\\\"", {}},  // the quote is escaped: unterminated
      {"\"a\\", {}},
      {"\"", {}},
      {"'", {}},
  };
}

TEST(RespParser, InlineSplitsLikeSdssplitargs) {
  for (const auto& c : inline_cases()) {
    for (const char* terminator : {"\r\n", "\n"}) {
      const std::string input = c.line + terminator;
      const Result r = parse_whole(input);
      if (c.argv.empty()) {
        EXPECT_EQ(r, failed({}, "ERR Protocol error: unbalanced quotes in request"))
            << printable(input);
      } else {
        EXPECT_EQ(r, done({c.argv})) << printable(input);
      }
      EXPECT_EQ(parse_bytewise(input), r) << printable(input);
    }
  }
}

TEST(RespParser, InlineUnquotingInPlaceLeavesTheNextRequestIntact) {
  const std::string input =
      "SET \"\\x41\\x42\" 'c\\'d'\r\n*2\r\n$3\r\nGET\r\n$2\r\nAB\r\nX \"\\n\"\n";
  EXPECT_EQ(parse_whole(input), done({{"SET", "AB", "c'd"}, {"GET", "AB"}, {"X", "\n"}}));
}

// --- skipped requests -----------------------------------------------------------

TEST(RespParser, EmptyLinesAndEmptyMultibulksAreSkipped) {
  const std::string input =
      "\r\n\n   \r\n\t\n*0\r\n*-1\r\n*-9223372036854775808\r\n\r\r\nPING\r\n*0\r\n\n";
  EXPECT_EQ(parse_whole(input), done({{"PING"}}));
  EXPECT_EQ(parse_bytewise(input), done({{"PING"}}));
  // A lone CR or "*0\r" is an incomplete request, not a skipped one.
  EXPECT_EQ(parse_whole("\r"), (Result{{}, ParseStatus::incomplete, "", 1}));
  EXPECT_EQ(parse_whole("*0\r"), (Result{{}, ParseStatus::incomplete, "", 3}));
}

// --- binary-safe bulks ----------------------------------------------------------

TEST(RespParser, BulksAreBinarySafe) {
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte.push_back(static_cast<char>(b));
  const Command argv = {"SET",        every_byte, "\0"s, "\r\n", "", "*1\r\n$4\r\nPING\r\n",
                        "\n\r\0\r\n"s};
  EXPECT_EQ(parse_whole(multibulk(argv)), done({argv}));
  EXPECT_EQ(parse_bytewise(multibulk(argv)), done({argv}));
}

TEST(RespParser, NulBytesFollowRedis) {
  // Inside a bulk and after a header's CR a NUL is data; before a line's
  // terminator it stalls the line (Redis's strchr stops there), so only the
  // size limit ends the request.
  EXPECT_EQ(parse_whole("*1\r\n$4\r\nP\0NG\r\n"s), done({{"P\0NG"s}}));
  EXPECT_EQ(parse_whole("*1\r\0$4\r\0PING\0\0"s), done({{"PING"}}));
  ParseLimits limits;
  limits.max_inline_len = 16;
  for (const std::string& stalled :
       {"PING\0\r\n"s, "\0\r\n"s, "*1\0\r\n"s, "*1\r\n$\0\r\n"s, "*1\r\n$4\0\r\nPING\r\n"s}) {
    std::string input = stalled + "PING\r\nPING\r\n";  // newlines after the NUL do not count
    EXPECT_EQ(parse_whole(input.substr(0, 16), limits).status, ParseStatus::incomplete)
        << printable(input);
    input.resize(40, '\n');
    const Result r = parse_whole(input, limits);
    EXPECT_EQ(r.status, ParseStatus::error) << printable(input);
    EXPECT_TRUE(r.commands.empty());
    EXPECT_EQ(parse_bytewise(input, limits), r) << printable(input);
  }
  EXPECT_EQ(parse_whole("PING\0\r\n"s + std::string(16, 'x'), limits).error,
            "ERR Protocol error: too big inline request");
  EXPECT_EQ(parse_whole("*1\0\r\n"s + std::string(16, 'x'), limits).error,
            "ERR Protocol error: too big mbulk count string");
  EXPECT_EQ(parse_whole("*1\r\n$\0\r\n"s + std::string(16, 'x'), limits).error,
            "ERR Protocol error: too big bulk count string");
}

// --- limits ---------------------------------------------------------------------

TEST(RespParser, BulkLengthLimit) {
  ParseLimits limits;
  limits.max_bulk_len = 10;
  EXPECT_EQ(parse_whole("*1\r\n$10\r\n0123456789\r\n", limits), done({{"0123456789"}}));
  EXPECT_EQ(parse_whole("*1\r\n$11\r\n", limits),
            failed({}, "ERR Protocol error: invalid bulk length"));
  // The default: proto-max-bulk-len, 512 MB (only the header is sent).
  const Result at_limit = parse_whole("*1\r\n$536870912\r\n");
  EXPECT_EQ(at_limit.status, ParseStatus::incomplete);
  EXPECT_EQ(at_limit.buffered, 16u);
  EXPECT_EQ(parse_whole("*1\r\n$536870913\r\n"),
            failed({}, "ERR Protocol error: invalid bulk length"));
}

TEST(RespParser, MultibulkCountLimit) {
  ParseLimits limits;
  limits.max_multibulk_len = 4;
  EXPECT_EQ(parse_whole("*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n", limits),
            done({{"a", "b", "c", "d"}}));
  EXPECT_EQ(parse_whole("*5\r\n", limits),
            failed({}, "ERR Protocol error: invalid multibulk length"));
  // The default, 2^20.
  EXPECT_EQ(parse_whole("*1048576\r\n").status, ParseStatus::incomplete);
  EXPECT_EQ(parse_whole("*1048577\r\n"),
            failed({}, "ERR Protocol error: invalid multibulk length"));
  // Above INT_MAX Redis refuses whatever the limit.
  limits.max_multibulk_len = SIZE_MAX;
  EXPECT_EQ(parse_whole("*2147483647\r\n", limits).status, ParseStatus::incomplete);
  EXPECT_EQ(parse_whole("*2147483648\r\n", limits),
            failed({}, "ERR Protocol error: invalid multibulk length"));
}

TEST(RespParser, InlineLengthLimit) {
  ParseLimits limits;
  limits.max_inline_len = 16;
  const std::string x16(16, 'x');
  EXPECT_EQ(parse_whole(x16 + "\n", limits), done({{x16}}));
  EXPECT_EQ(parse_bytewise(x16 + "\n", limits), done({{x16}}));
  EXPECT_EQ(parse_whole(x16, limits), (Result{{}, ParseStatus::incomplete, "", 16}));
  const Result too_big = failed({}, "ERR Protocol error: too big inline request");
  EXPECT_EQ(parse_whole(x16 + "x", limits), too_big);
  EXPECT_EQ(parse_whole(x16 + "x\n", limits), too_big);
  // The CR before the LF counts: 16 bytes + CR is 17 unterminated bytes.
  EXPECT_EQ(parse_whole(x16 + "\r\n", limits), too_big);
  EXPECT_EQ(parse_whole("x\r\n" + x16 + "\n", limits), done({{"x"}, {x16}}));
  // The default, 64 KiB.
  const std::string x64k(64 * kKiB, 'x');
  EXPECT_EQ(parse_whole(x64k).status, ParseStatus::incomplete);
  EXPECT_EQ(parse_whole(x64k + "\n"), done({{x64k}}));
  EXPECT_EQ(parse_whole(x64k + "x"), too_big);
}

TEST(RespParser, HeaderLineLengthLimit) {
  ParseLimits limits;
  limits.max_inline_len = 16;
  // 16 bytes without a CR wait for more; the 17th is too many.
  EXPECT_EQ(parse_whole("*" + std::string(15, '1'), limits).status, ParseStatus::incomplete);
  EXPECT_EQ(parse_whole("*" + std::string(16, '1'), limits),
            failed({}, "ERR Protocol error: too big mbulk count string"));
  // A CR at offset 16 ends the line: then the number is judged.
  EXPECT_EQ(parse_whole("*" + std::string(15, '0') + "\r\n", limits),
            failed({}, "ERR Protocol error: invalid multibulk length"));
  EXPECT_EQ(parse_whole("*1\r\n$" + std::string(15, '1'), limits).status, ParseStatus::incomplete);
  EXPECT_EQ(parse_whole("*1\r\n$" + std::string(16, '1'), limits),
            failed({}, "ERR Protocol error: too big bulk count string"));
  EXPECT_EQ(parse_whole("*1\r\n$" + std::string(15, '1') + "\r\n", limits),
            failed({}, "ERR Protocol error: invalid bulk length"));
  // The default, 64 KiB.
  EXPECT_EQ(parse_whole("*" + std::string(64 * kKiB - 1, '1')).status, ParseStatus::incomplete);
  EXPECT_EQ(parse_whole("*" + std::string(64 * kKiB, '1')),
            failed({}, "ERR Protocol error: too big mbulk count string"));
}

TEST(RespParser, HugeLimitsDoNotOverflow) {
  ParseLimits limits;
  limits.max_inline_len = SIZE_MAX;
  limits.max_multibulk_len = SIZE_MAX;
  EXPECT_EQ(parse_whole("PING\r\nPIN", limits),
            (Result{{{"PING"}}, ParseStatus::incomplete, "", 3}));
  EXPECT_EQ(parse_whole("*" + std::string(100, '1'), limits).status, ParseStatus::incomplete);
  EXPECT_EQ(parse_whole("*2\r\n$1\r\na\r\n$1\r\nb\r\n", limits), done({{"a", "b"}}));
}

// --- protocol errors ------------------------------------------------------------

struct ErrorCase {
  std::string input;
  std::string error;
};

// Each input was sent to redis-server 7.0.15, which replied "-" + error and
// closed the connection.
std::vector<ErrorCase> error_cases() {
  const std::string inv_count = "ERR Protocol error: invalid multibulk length";
  const std::string inv_bulk = "ERR Protocol error: invalid bulk length";
  return {
      {"*x\r\n", inv_count},
      {"*\r\n", inv_count},
      {"*01\r\n", inv_count},
      {"*-0\r\n", inv_count},
      {"*+1\r\n", inv_count},
      {"* 1\r\n", inv_count},
      {"*1 \r\n", inv_count},
      {"*1\n\r\n", inv_count},
      {"*2147483648\r\n", inv_count},
      {"*3000000000\r\n", inv_count},
      {"*-9223372036854775809\r\n", inv_count},
      {"*" + std::string(21, '1') + "\r\n", inv_count},
      {"*" + std::string(70000, '1'), "ERR Protocol error: too big mbulk count string"},
      {"*1\0"s + std::string(70000, 'x'), "ERR Protocol error: too big mbulk count string"},
      {"*1\r\n$-1\r\n", inv_bulk},
      {"*1\r\n$-0\r\n", inv_bulk},
      {"*1\r\n$\r\n", inv_bulk},
      {"*1\r\n$ 4\r\n", inv_bulk},
      {"*1\r\n$4 \r\n", inv_bulk},
      {"*1\r\n$04\r\n", inv_bulk},
      {"*1\r\n$+4\r\n", inv_bulk},
      {"*1\r\n$0x10\r\n", inv_bulk},
      {"*1\r\n$536870913\r\n", inv_bulk},
      {"*1\r\n$9223372036854775807\r\n", inv_bulk},
      {"*1\r\n$-9223372036854775808\r\n", inv_bulk},
      {"*1\r\n$18446744073709551616\r\n", inv_bulk},
      {"*1\r\n$" + std::string(70000, '1'), "ERR Protocol error: too big bulk count string"},
      {"*1\r\n$\0"s + std::string(70000, 'x'), "ERR Protocol error: too big bulk count string"},
      {"*1\r\nx\r\n", "ERR Protocol error: expected '$', got 'x'"},
      {"*1\r\n\xff\r\n", "ERR Protocol error: expected '$', got '\xff'"},
      {"*1\r\n\r\n", "ERR Protocol error: expected '$', got ' '"},    // CR sent as a space
      {"*1\r\n\n\r\n", "ERR Protocol error: expected '$', got ' '"},  // LF too
      {"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", "ERR Protocol error: expected '$', got 'f'"},
      {"*2\r\n$4\r\nECHO\r\n*1\r\n", "ERR Protocol error: expected '$', got '*'"},
      {std::string(70000, 'x'), "ERR Protocol error: too big inline request"},
      {"PING\0"s + std::string(70000, 'x'), "ERR Protocol error: too big inline request"},
      {"ECHO \"ab\r\n", "ERR Protocol error: unbalanced quotes in request"},
      {"ECHO 'ab\r\n", "ERR Protocol error: unbalanced quotes in request"},
      {"ECHO \"ab\"c\r\n", "ERR Protocol error: unbalanced quotes in request"},
  };
}

TEST(RespParser, EveryErrorTextAsRedisSendsIt) {
  for (const auto& c : error_cases()) {
    const Result expected = failed({}, c.error);
    EXPECT_EQ(parse_whole(c.input), expected) << printable(c.input.substr(0, 40));
    if (c.input.size() < 1000) {
      EXPECT_EQ(parse_bytewise(c.input), expected) << printable(c.input);
    } else {
      EXPECT_EQ(parse_pieces(c.input, {1, 2, 3, 4, 5, 6, 10, 4096, 65536}), expected)
          << printable(c.input.substr(0, 40));
    }
  }
}

TEST(RespParser, ErrorsAreSticky) {
  for (const auto& c : error_cases()) {
    Driver d;
    d.feed(c.input);
    ASSERT_EQ(d.result().status, ParseStatus::error);
    // Valid requests after the error change nothing (drain() checks argv
    // stays empty and the text stays the same).
    d.feed("PING\r\n*1\r\n$4\r\nPING\r\n");
    EXPECT_EQ(d.result(), failed({}, c.error)) << printable(c.input.substr(0, 40));
  }
}

// --- memory ---------------------------------------------------------------------

// Watches the buffer through the public API: prepare() returns all the free
// space, so data() + size() is the end of the current allocation, and no
// byte of it that was handed out (a span or an argument) lies below its
// start. The distance from the lowest such byte to the end is thus a lower
// bound of the allocation's size.
class BufferWatch {
 public:
  void saw_span(std::span<char> room) {
    const char* end = room.data() + room.size();
    if (end != end_) {
      end_ = end;
      lowest_ = room.data();
      ++allocations_;
    }
    saw(room.data());
  }
  void saw(const char* p) {
    lowest_ = std::min(lowest_, p);
    largest_ = std::max(largest_, static_cast<std::size_t>(end_ - lowest_));
  }
  std::size_t largest() const { return largest_; }
  std::size_t allocations() const { return allocations_; }

 private:
  const char* end_ = nullptr;
  const char* lowest_ = nullptr;
  std::size_t largest_ = 0;
  std::size_t allocations_ = 0;
};

TEST(RespParser, MemoryStaysBoundedOverAMillionPipelinedCommands) {
  constexpr std::size_t kCommands = 1'000'000;
  RequestParser parser;
  BufferWatch watch;
  std::vector<std::string_view> argv;
  std::mt19937 rng(7);
  std::string pending;  // generated but not yet sent
  std::size_t generated = 0, parsed = 0;
  while (parsed < kCommands) {
    while (pending.size() < 64 * kKiB && generated < kCommands) {
      const std::string n = std::to_string(generated++);
      if (generated % 3 == 0) {
        pending += "GET key:" + n + "\r\n";
      } else {
        pending += "*3\r\n$3\r\nSET\r\n$" + std::to_string(4 + n.size()) + "\r\nkey:" + n +
                   "\r\n$5\r\nvalue\r\n";
      }
    }
    // A read of 1..16 KiB, ending anywhere (mostly inside a command).
    const std::span<char> room = parser.prepare(16 * kKiB);
    watch.saw_span(room);
    const std::size_t n = std::min<std::size_t>(pending.size(), 1 + rng() % room.size());
    std::memcpy(room.data(), pending.data(), n);
    pending.erase(0, n);
    parser.commit(n);
    ParseStatus st;
    while ((st = parser.next(argv)) == ParseStatus::complete) {
      const std::string key = "key:" + std::to_string(parsed++);
      ASSERT_EQ(argv.size(), parsed % 3 == 0 ? 2u : 3u);
      ASSERT_EQ(argv[1], key);
      for (const auto a : argv) watch.saw(a.data());
    }
    ASSERT_EQ(st, ParseStatus::incomplete);
  }
  EXPECT_EQ(parser.buffered(), 0u);
  // 16 KiB reads and commands under 64 bytes: a 32 KiB buffer suffices, and
  // it is allocated twice at most (16 KiB, then 32 KiB).
  EXPECT_LE(watch.largest(), 32 * kKiB);
  EXPECT_LE(watch.allocations(), 3u);
  std::printf(
      "[          ] 10^6 pipelined commands: largest buffer >= %zu bytes, %zu allocations\n",
      watch.largest(), watch.allocations());
}

// A big bulk is received in place: once its header is parsed, every later
// prepare() continues exactly where the previous read ended, in the same
// allocation, and the argument is a view of the bytes as they were read.
TEST(RespParser, BigBulkIsReceivedInPlace) {
  for (const std::size_t read_size : {std::size_t{1000}, 16 * kKiB, 64 * kKiB}) {
    constexpr std::size_t kBulk = 8 << 20;
    RequestParser parser;
    std::vector<std::string_view> argv;
    const std::string head = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + std::to_string(kBulk) + "\r\n";
    std::span<char> room = parser.prepare(read_size);
    std::memcpy(room.data(), head.data(), head.size());
    parser.commit(head.size());
    ASSERT_EQ(parser.next(argv), ParseStatus::incomplete);
    std::size_t sent = 0;
    const char* bulk_start = nullptr;
    const char* expected_next = nullptr;
    while (sent < kBulk + 2) {
      room = parser.prepare(read_size);
      if (expected_next == nullptr) {
        bulk_start = room.data();
      } else {
        ASSERT_EQ(room.data(), expected_next) << "the buffer moved after " << sent << " bytes";
      }
      const std::size_t n = std::min(room.size(), kBulk + 2 - sent);
      for (std::size_t i = 0; i < n; ++i) {
        room[i] = sent + i < kBulk ? static_cast<char>('a' + (sent + i) % 26) : '\r';
      }
      parser.commit(n);
      sent += n;
      expected_next = room.data() + n;
      ASSERT_EQ(parser.next(argv),
                sent < kBulk + 2 ? ParseStatus::incomplete : ParseStatus::complete);
    }
    ASSERT_EQ(argv.size(), 3u);
    EXPECT_EQ(argv[2].data(), bulk_start);
    ASSERT_EQ(argv[2].size(), kBulk);
    for (std::size_t i = 0; i < kBulk; i += 4099) {
      ASSERT_EQ(argv[2][i], static_cast<char>('a' + i % 26)) << i;
    }
    // Consumed and empty: the big buffer is given back.
    EXPECT_LE(parser.prepare(16 * kKiB).size(), 1024 * kKiB);
  }
}

// A big request made of small elements gets no reservation: the buffer grows
// geometrically while it arrives, so it is moved a logarithmic number of
// times, not once per read.
TEST(RespParser, BigRequestOfSmallElementsGrowsGeometrically) {
  constexpr std::size_t kElements = 200'000;
  std::string input = "*" + std::to_string(kElements) + "\r\n";
  for (std::size_t i = 0; i < kElements; ++i)
    input += "$6\r\nv" + std::to_string(10000 + i % 9000) + "\r\n";
  RequestParser parser;
  BufferWatch watch;
  std::vector<std::string_view> argv;
  for (std::size_t at = 0; at < input.size();) {
    const std::span<char> room = parser.prepare(16 * kKiB);
    watch.saw_span(room);
    const std::size_t n = std::min(16 * kKiB, input.size() - at);
    std::memcpy(room.data(), input.data() + at, n);
    parser.commit(n);
    at += n;
    ASSERT_EQ(parser.next(argv),
              at < input.size() ? ParseStatus::incomplete : ParseStatus::complete);
  }
  ASSERT_EQ(argv.size(), kElements);
  EXPECT_EQ(argv[kElements - 1], "v" + std::to_string(10000 + (kElements - 1) % 9000));
  // 2.2 MB in 16 KiB reads: 16 KiB doubled up to 4 MiB is 9 allocations.
  EXPECT_LE(watch.allocations(), 10u);
  EXPECT_LE(watch.largest(), 2 * input.size() + 32 * kKiB);
}

TEST(RespParser, BigBulkFollowedByPipelinedCommands) {
  const std::string value(100 * kKiB, 'v');
  std::string input;
  Commands expected;
  for (int i = 0; i < 20; ++i) {
    expected.push_back({"SET", "k" + std::to_string(i), value});
    expected.push_back({"PING"});
    input += multibulk(expected[expected.size() - 2]) + "PING\r\n";
  }
  std::vector<std::size_t> cuts;
  for (std::size_t at = 7; at < input.size(); at += 16 * kKiB + 7) cuts.push_back(at);
  EXPECT_EQ(parse_pieces(input, cuts), done(expected));
  EXPECT_EQ(parse_whole(input), done(expected));
}

TEST(RespParser, PrepareGivesAtLeastWhatIsAsked) {
  RequestParser parser;
  for (const std::size_t n :
       {std::size_t{0}, std::size_t{1}, std::size_t{100}, 16 * kKiB, 1024 * kKiB, std::size_t{3}}) {
    EXPECT_GE(parser.prepare(n).size(), n);
  }
  // Partially consumed: what is kept survives the move.
  const std::string input = "PING\r\n*1\r\n$4\r\nPI";
  std::span<char> room = parser.prepare(input.size());
  std::memcpy(room.data(), input.data(), input.size());
  parser.commit(input.size());
  std::vector<std::string_view> argv;
  ASSERT_EQ(parser.next(argv), ParseStatus::complete);
  ASSERT_EQ(parser.next(argv), ParseStatus::incomplete);
  room = parser.prepare(4 * 1024 * kKiB);
  ASSERT_GE(room.size(), 4 * 1024 * kKiB);
  std::memcpy(room.data(), "NG\r\n", 4);
  parser.commit(4);
  ASSERT_EQ(parser.next(argv), ParseStatus::complete);
  EXPECT_EQ(argv, (std::vector<std::string_view>{"PING"}));
}

TEST(RespParserDeathTest, CommitBeyondPrepareAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        RequestParser parser;
        const std::size_t room = parser.prepare(16).size();
        parser.commit(room + 1);
      },
      "kv::RequestParser::commit: more bytes than prepare\\(\\) gave");
}

// --- replies --------------------------------------------------------------------

TEST(RespReply, EncodesEveryType) {
  std::string out;
  Reply::simple(out, "OK");
  Reply::error(out, "ERR bad");
  Reply::integer(out, 0);
  Reply::integer(out, -1);
  Reply::integer(out, INT64_MAX);
  Reply::integer(out, INT64_MIN);
  Reply::bulk(out, "");
  Reply::bulk(out, "a\0\r\n"s);
  Reply::null_bulk(out);
  Reply::null_array(out);
  Reply::array_header(out, 0);
  Reply::array_header(out, 12345);
  EXPECT_EQ(out,
            "+OK\r\n-ERR bad\r\n:0\r\n:-1\r\n:9223372036854775807\r\n:-9223372036854775808\r\n"
            "$0\r\n\r\n$4\r\na\0\r\n\r\n$-1\r\n*-1\r\n*0\r\n*12345\r\n"s);
}

TEST(RespReply, LinesStayOneLine) {
  std::string out = "x";
  Reply::simple(out, "a\r\nb");
  Reply::error(out, "ERR \nunknown\r");
  EXPECT_EQ(out, "x+a  b\r\n-ERR  unknown \r\n");
}

TEST(RespReply, EncodedRequestsParseBack) {
  std::mt19937 rng(11);
  for (int i = 0; i < 200; ++i) {
    Command argv(1 + rng() % 8);
    for (auto& a : argv) {
      a.resize(rng() % 300);
      for (auto& c : a) c = static_cast<char>(rng());
    }
    EXPECT_EQ(parse_whole(multibulk(argv)), done({argv}));
  }
}

// --- the corpus: tests/kv/corpus -------------------------------------------------

// The build defines WEFT_KV_CORPUS_DIR (tests/kv/CMakeLists.txt); not
// __FILE__, which ccache's base_dir makes relative to the build directory.
std::filesystem::path corpus_dir() {
  // The build passes the directory: __FILE__ is relative when ccache
  // rewrites paths under its base_dir.
  if (const char* dir = std::getenv("WEFT_KV_CORPUS_DIR")) return dir;
  return WEFT_KV_CORPUS_DIR;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in) << p;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::filesystem::path> corpus_files(const char* subdir) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(corpus_dir() / subdir)) {
    if (e.path().extension() == ".bin") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Cut points for a few ways of splitting n bytes.
std::vector<std::vector<std::size_t>> some_splits(std::size_t n, std::uint32_t seed) {
  std::vector<std::vector<std::size_t>> splits;
  std::mt19937 rng(seed);
  for (const std::size_t max_read : {std::size_t{1}, std::size_t{3}, std::size_t{64}, 4 * kKiB}) {
    if (max_read == 1 && n > 4096) continue;
    std::vector<std::size_t> cuts;
    for (std::size_t at = 0; at < n;) {
      at = std::min(n, at + 1 + rng() % max_read);
      cuts.push_back(at);
    }
    splits.push_back(std::move(cuts));
  }
  return splits;
}

// Each NAME.bin holds raw request bytes and NAME.expected the one line
// redis-server 7 replies before it closes the connection (see the README).
TEST(RespCorpus, MalformedRequestsGetRedisErrors) {
  const auto files = corpus_files("malformed");
  ASSERT_GE(files.size(), 30u) << corpus_dir();
  for (const auto& bin : files) {
    const std::string input = read_file(bin);
    std::string expected = read_file(std::filesystem::path(bin).replace_extension(".expected"));
    while (!expected.empty() && (expected.back() == '\n' || expected.back() == '\r')) {
      expected.pop_back();
    }
    // A file may start with valid commands: one reply line each, then the
    // error line (the integration suite's itest_after_a_valid_command).
    const std::size_t last_line = expected.rfind('\n');
    const std::size_t valid_before =
        static_cast<std::size_t>(std::count(expected.begin(), expected.end(), '\n'));
    if (last_line != std::string::npos) expected.erase(0, last_line + 1);
    ASSERT_TRUE(expected.starts_with("-ERR Protocol error: ")) << bin;
    const Result r = parse_whole(input);
    EXPECT_EQ(r.status, ParseStatus::error) << bin;
    EXPECT_EQ(r.error, expected.substr(1)) << bin;
    EXPECT_EQ(r.commands.size(), valid_before) << bin;
    for (const auto& cuts : some_splits(input.size(), 5)) {
      EXPECT_EQ(parse_pieces(input, cuts), r) << bin;
    }
  }
}

TEST(RespCorpus, ValidRequestsParse) {
  const auto files = corpus_files("valid");
  ASSERT_GE(files.size(), 10u) << corpus_dir();
  for (const auto& bin : files) {
    const std::string input = read_file(bin);
    const Result r = parse_whole(input);
    EXPECT_EQ(r.status, ParseStatus::incomplete) << bin << ": " << r.error;
    EXPECT_FALSE(r.commands.empty()) << bin;
    EXPECT_EQ(r.buffered, 0u) << bin;
    for (const auto& cuts : some_splits(input.size(), 6)) {
      EXPECT_EQ(parse_pieces(input, cuts), r) << bin;
    }
  }
}

}  // namespace
