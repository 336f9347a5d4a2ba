// weft-kv: the RESP2 request parser and the reply encoders.
//
// The problem. A connection's bytes arrive in reads of any size: one read may
// hold a fraction of a request (a 512 MB SET trickles in over thousands of
// reads) or hundreds of pipelined requests. The parser must give the same
// commands and the same protocol errors as Redis 7 however the bytes are
// split, in time linear in the bytes received, and in memory bounded by the
// largest request rather than by the connection's lifetime.
//
// Approaches rejected.
//  - Re-parsing the buffered request from its start on every read (what a
//    stateless "try to parse" function does, and what Redis does for a line:
//    strchr from the line start each time). A 64 KiB inline line received a
//    byte at a time would cost 2^31 byte comparisons. Instead every line
//    search remembers how far it got (scanned_), and a multibulk remembers
//    the elements it has (args_) and where the next one starts (line_).
//  - Copying each argument out into its own string (Redis makes an robj per
//    argument). argv is handed out as views into the receive buffer; inline
//    arguments, which may need unquoting, are unquoted in place: the decoded
//    form of a token is never longer than its raw bytes and decoding runs
//    left to right, so the writer never overtakes the reader.
//  - Growing the buffer by doubling while a big bulk arrives. The first bytes
//    of a 512 MB value would be copied 15 times and the process would briefly
//    hold 1.5 GB. Like Redis (PROTO_MBULK_BIG_ARG), once a header announces a
//    bulk of 32 KiB or more, room for all of it is reserved in one allocation
//    (not touched, so the kernel commits pages only as data arrives) and the
//    bulk is read in place.
//
// The protocol. A request whose first byte is '*' is a multibulk:
// "*<count>\r" then one byte (any byte: Redis skips it unchecked) then
// <count> elements "$<len>\r" + one byte + <len> bytes + two bytes (again
// unchecked). Anything else is an inline request: one line up to '\n', a
// '\r' before it dropped, split as sdssplitargs splits. Numbers follow
// Redis's string2ll: at most 20 characters, no '+', no leading zero, no
// "-0". A count <= 0 is skipped; so is an inline line without arguments.
// Redis searches lines with strchr, which stops at a NUL byte: a line with a
// NUL before its terminator never ends, and the request fails only once more
// than max_inline_len bytes are buffered. We do the same (stalled_), so a
// replayed byte stream gets Redis's reply.
//
// The buffer. [0, pos_) holds consumed bytes (the last command's argv still
// points there), [pos_, end_) the unconsumed ones, [end_, capacity_) free
// space for prepare(). prepare() reclaims consumed space by moving the
// unconsumed bytes to the front only when there are no more of them than of
// consumed ones (so each byte moved is paid for by a byte consumed), and
// otherwise allocates max(needed, 2 * capacity): total copying stays linear.
// Every parsing offset is relative to pos_, the start of the request being
// parsed, so moving the bytes never touches the parser state.
#include "resp.hpp"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <system_error>

namespace kv {

namespace {

// Redis's PROTO_MBULK_BIG_ARG: bulks this long get their room reserved.
constexpr std::size_t kBigBulk = 32 * 1024;
// First allocation, and what an oversized empty buffer shrinks back to.
constexpr std::size_t kInitialCapacity = 16 * 1024;
// An empty buffer larger than this is released by prepare().
constexpr std::size_t kReleaseAbove = 1024 * 1024;
// Redis's LONG_STR_SIZE: string2ll rejects 21 characters or more.
constexpr std::size_t kMaxNumberChars = 20;

constexpr const char* kTooBigInline = "ERR Protocol error: too big inline request";
constexpr const char* kUnbalancedQuotes = "ERR Protocol error: unbalanced quotes in request";
constexpr const char* kTooBigCount = "ERR Protocol error: too big mbulk count string";
constexpr const char* kInvalidCount = "ERR Protocol error: invalid multibulk length";
constexpr const char* kTooBigBulkCount = "ERR Protocol error: too big bulk count string";
constexpr const char* kInvalidBulkLen = "ERR Protocol error: invalid bulk length";
// Grammar::records only.
constexpr const char* kExpectedArray = "ERR Protocol error: expected '*'";
constexpr const char* kExpectedBulk = "ERR Protocol error: expected '$'";
constexpr const char* kExpectedLf = "ERR Protocol error: expected '\\n' after '\\r'";
constexpr const char* kExpectedBulkEnd = "ERR Protocol error: expected CRLF after the bulk data";

[[noreturn]] void fatal(const char* message) noexcept {
  std::fputs(message, stderr);
  std::fputc('\n', stderr);
  std::abort();
}

// Redis's string2ll: an optional '-', then "0" alone or a digit 1-9 followed
// by digits, 1 to 20 characters in all, within the range of long long.
bool parse_redis_int(const char* s, std::size_t n, std::int64_t& out) noexcept {
  if (n == 0 || n > kMaxNumberChars) return false;
  if (n == 1 && s[0] == '0') {
    out = 0;
    return true;
  }
  const std::size_t first = s[0] == '-' ? 1 : 0;
  if (first == n || s[first] < '1' || s[first] > '9') return false;
  const auto [end, ec] = std::from_chars(s, s + n, out);
  return ec == std::errc{} && end == s + n;
}

// isspace() in the C locale, which is what sdssplitargs sees.
bool is_c_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool is_hex(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

char unescape(char c) noexcept {
  switch (c) {
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    case 'b':
      return '\b';
    case 'a':
      return '\a';
    default:
      return c;
  }
}

// Splits line[0, len) into arguments as Redis's sdssplitargs does, decoding
// each in place, and appends their (offset, length) to `args`. Returns false
// on unbalanced quotes (Redis: sdssplitargs returns NULL). The line holds no
// '\n' and no NUL (the caller's search stops at both), so "end of line" here
// is what "*p == '\0'" is to sdssplitargs. Rules:
//  - blanks (isspace) between arguments are skipped;
//  - outside quotes an argument ends at ' ', '\t', '\r' or the end of the line
//    (not at '\v' or '\f', which sdssplitargs keeps inside a token);
//  - a '"' or '\'' anywhere in an argument opens a quoted part;
//  - inside "": \xHH (two hex digits) is that byte, \n \r \t \b \a the control
//    characters, a backslash before any other character that character;
//  - inside '': only \' is an escape;
//  - a closing quote must be followed by a blank or the end of the line.
bool split_inline(char* line, std::size_t len,
                  std::vector<std::pair<std::size_t, std::size_t>>& args) {
  std::size_t p = 0;
  for (;;) {
    while (p < len && is_c_space(line[p])) ++p;
    if (p == len) return true;
    const std::size_t start = p;
    std::size_t out = p;  // out <= p always: decoding never lengthens
    enum class Quote { none, dq, sq } quote = Quote::none;
    for (bool done = false; !done;) {
      if (quote == Quote::dq) {
        if (p == len) return false;  // unterminated
        if (line[p] == '\\' && p + 3 < len && line[p + 1] == 'x' && is_hex(line[p + 2]) &&
            is_hex(line[p + 3])) {
          line[out++] = static_cast<char>(hex_value(line[p + 2]) * 16 + hex_value(line[p + 3]));
          p += 4;
        } else if (line[p] == '\\' && p + 1 < len) {
          line[out++] = unescape(line[p + 1]);
          p += 2;
        } else if (line[p] == '"') {
          if (p + 1 < len && !is_c_space(line[p + 1])) return false;
          ++p;
          done = true;
        } else {
          line[out++] = line[p++];
        }
      } else if (quote == Quote::sq) {
        if (p == len) return false;  // unterminated
        if (line[p] == '\\' && p + 1 < len && line[p + 1] == '\'') {
          line[out++] = '\'';
          p += 2;
        } else if (line[p] == '\'') {
          if (p + 1 < len && !is_c_space(line[p + 1])) return false;
          ++p;
          done = true;
        } else {
          line[out++] = line[p++];
        }
      } else if (p == len) {
        done = true;
      } else {
        switch (line[p]) {
          case ' ':
          case '\n':
          case '\r':
          case '\t':
            ++p;
            done = true;
            break;
          case '"':
            quote = Quote::dq;
            ++p;
            break;
          case '\'':
            quote = Quote::sq;
            ++p;
            break;
          default:
            line[out++] = line[p++];
            break;
        }
      }
    }
    args.emplace_back(start, out - start);
  }
}

// The first '\n' (or '\r', `terminator`) in [from, from + n), unless a NUL
// comes before it: Redis's strchr stops at the NUL and never sees the
// terminator. Returns the terminator's index, n when there is neither, and
// sets `nul` when a NUL came first.
std::size_t find_terminator(const char* from, std::size_t n, char terminator, bool& nul) {
  nul = false;
  if (n == 0) return 0;
  const void* hit = std::memchr(from, terminator, n);
  const std::size_t upto = hit ? static_cast<std::size_t>(static_cast<const char*>(hit) - from) : n;
  if (upto > 0 && std::memchr(from, '\0', upto) != nullptr) {
    nul = true;
    return n;
  }
  return upto;
}

// n bytes of the window starting at `line` that may hold a terminator at
// index <= max (a line longer than max is an error): min(have - line, max + 1)
// without overflowing when max is SIZE_MAX.
std::size_t window_end(std::size_t line, std::size_t have, std::size_t max) noexcept {
  return have - line > max ? line + max + 1 : have;
}

void append_line(std::string& out, char type, std::string_view s) {
  out.reserve(out.size() + s.size() + 3);
  out.push_back(type);
  const std::size_t at = out.size();
  out.append(s);
  std::replace_if(
      out.begin() + static_cast<std::ptrdiff_t>(at), out.end(),
      [](char c) { return c == '\r' || c == '\n'; }, ' ');
  out.append("\r\n", 2);
}

// <type><decimal v>\r\n.
template <typename Int>
void append_number_line(std::string& out, char type, Int v) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v);
  if (ec != std::errc{}) fatal("kv::Reply: to_chars failed");  // 24 chars fit any 64-bit value
  const auto n = static_cast<std::size_t>(end - digits);
  out.reserve(out.size() + n + 3);
  out.push_back(type);
  out.append(digits, n);
  out.append("\r\n", 2);
}

}  // namespace

// --- RequestParser: the buffer ----------------------------------------------

RequestParser::RequestParser(ParseLimits limits, Grammar grammar)
    : limits_(limits), grammar_(grammar) {}

std::size_t RequestParser::needed() const noexcept {
  if (state_ == State::bulk_data) return line_ + bulk_len_ + 2;
  return end_ - pos_ + 1;
}

std::span<char> RequestParser::prepare(std::size_t min_bytes) {
  check_invariants();
  slack_ = min_bytes;
  const std::size_t kept = end_ - pos_;
  if (kept == 0) {
    pos_ = end_ = 0;  // the request starts afresh at the front: free compaction
    if (capacity_ > kReleaseAbove) reallocate(std::max(min_bytes, kInitialCapacity), false);
  }
  if (capacity_ - end_ < min_bytes) {
    if (min_bytes > SIZE_MAX - kept) throw std::bad_alloc();
    const std::size_t needed = kept + min_bytes;
    if (pos_ >= kept && capacity_ >= needed) {
      // Moving `kept` bytes is paid for by the pos_ >= kept consumed ones.
      std::memmove(buf_.get(), buf_.get() + pos_, kept);
      pos_ = 0;
      end_ = kept;
    } else {
      reallocate(std::max(needed, capacity_ > SIZE_MAX / 2 ? needed : 2 * capacity_), false);
    }
  }
  return {buf_.get() + end_, capacity_ - end_};
}

void RequestParser::commit(std::size_t n) {
  if (n > capacity_ - end_) fatal("kv::RequestParser::commit: more bytes than prepare() gave");
  end_ += n;
}

// Moves the unconsumed bytes to the front of a new buffer of `capacity`
// bytes. With may_fail, an allocation failure leaves everything as it was.
void RequestParser::reallocate(std::size_t capacity, bool may_fail) {
  const std::size_t kept = end_ - pos_;
  std::unique_ptr<char[]> fresh(may_fail ? new (std::nothrow) char[capacity] : new char[capacity]);
  if (!fresh) return;
  if (kept > 0) std::memcpy(fresh.get(), buf_.get() + pos_, kept);
  buf_ = std::move(fresh);
  capacity_ = capacity;
  pos_ = 0;
  end_ = kept;
}

// Makes room for `needed` bytes from pos_ (a big bulk and what follows it),
// so that the bulk is received in place. Best effort: a failed allocation
// only means prepare() grows the buffer later.
void RequestParser::reserve_for_bulk(std::size_t needed) {
  if (capacity_ - pos_ >= needed) return;
  const std::size_t kept = end_ - pos_;
  if (capacity_ >= needed && pos_ >= kept) {
    std::memmove(buf_.get(), buf_.get() + pos_, kept);
    pos_ = 0;
    end_ = kept;
    return;
  }
  reallocate(std::max(needed, capacity_ > SIZE_MAX / 2 ? needed : 2 * capacity_), true);
}

// --- RequestParser: parsing -------------------------------------------------

ParseStatus RequestParser::next(std::vector<std::string_view>& argv) {
  argv.clear();
  for (;;) {
    check_invariants();
    const std::size_t have = end_ - pos_;
    char* const request = buf_.get() + pos_;
    std::optional<ParseStatus> result;
    switch (state_) {
      case State::failed:
        return ParseStatus::error;
      case State::request_start:
        if (have == 0) return ParseStatus::incomplete;
        line_ = 0;
        stalled_ = false;
        if (request[0] == '*') {
          state_ = State::multibulk_count;
          scanned_ = 1;
        } else if (grammar_ == Grammar::records) {
          return fail(kExpectedArray);
        } else {
          state_ = State::inline_line;
          scanned_ = 0;
        }
        break;
      case State::inline_line:
        result = parse_inline(request, have, argv);
        break;
      case State::multibulk_count:
      case State::bulk_header:
        result = parse_header(request, have);
        break;
      case State::bulk_data:
        if (have - line_ < 2 || have - line_ - 2 < bulk_len_) return ParseStatus::incomplete;
        if (grammar_ == Grammar::records &&
            (request[line_ + bulk_len_] != '\r' || request[line_ + bulk_len_ + 1] != '\n')) {
          return fail(kExpectedBulkEnd);
        }
        args_.emplace_back(line_, bulk_len_);
        line_ += bulk_len_ + 2;  // requests: the two bytes are not checked (Redis)
        if (--elements_left_ == 0) return finish(argv, line_);
        state_ = State::bulk_header;
        scanned_ = line_;
        break;
    }
    if (result) return *result;
  }
}

// State inline_line: the request is one line up to '\n'.
std::optional<ParseStatus> RequestParser::parse_inline(char* request, std::size_t have,
                                                       std::vector<std::string_view>& argv) {
  const std::size_t window = window_end(0, have, limits_.max_inline_len);
  if (!stalled_ && scanned_ < window) {
    bool nul = false;
    const std::size_t found =
        scanned_ + find_terminator(request + scanned_, window - scanned_, '\n', nul);
    stalled_ = nul;
    if (!nul && found < window) {
      const std::size_t consumed = found + 1;
      std::size_t len = found;
      // Redis drops one CR before the LF. (The split would treat it as a
      // blank anyway; dropping it keeps the line what Redis sees.)
      if (len > 0 && request[len - 1] == '\r') --len;
      // Room for every argument the line can hold (arguments are separated
      // by blanks), reserved before the in-place decoding: if this throws,
      // the line is untouched and a later next() parses it afresh.
      const auto most =
          static_cast<std::size_t>(std::count_if(request, request + len, is_c_space)) + 1;
      argv.reserve(most);
      args_.clear();
      args_.reserve(most);
      if (!split_inline(request, len, args_)) return fail(kUnbalancedQuotes);
      if (!args_.empty()) return finish(argv, consumed);
      pos_ += consumed;  // a blank line: no command, as in Redis
      state_ = State::request_start;
      return std::nullopt;
    }
    scanned_ = window;
  }
  if (have > limits_.max_inline_len) return fail(kTooBigInline);
  return ParseStatus::incomplete;
}

// States multibulk_count and bulk_header: a "*<count>\r?" or "$<len>\r?"
// line at line_, where '?' is any byte.
std::optional<ParseStatus> RequestParser::parse_header(char* request, std::size_t have) {
  const bool count_line = state_ == State::multibulk_count;
  const std::size_t window = window_end(line_, have, limits_.max_inline_len);
  std::size_t cr = window;
  if (grammar_ == Grammar::records) {
    // Strict: the digits, then '\r'; any other byte is an error at once
    // (so a zero-filled block is told from a record still arriving).
    if (have == line_) return ParseStatus::incomplete;
    if (!count_line && request[line_] != '$') return fail(kExpectedBulk);
    std::size_t i = std::max(scanned_, line_ + 1);
    while (i < window && request[i] >= '0' && request[i] <= '9') ++i;
    scanned_ = i;
    if (i < window && request[i] != '\r') return fail(count_line ? kInvalidCount : kInvalidBulkLen);
    cr = i;
  } else if (!stalled_ && scanned_ < window) {
    bool nul = false;
    cr = scanned_ + find_terminator(request + scanned_, window - scanned_, '\r', nul);
    stalled_ = nul;
    scanned_ = nul ? window : cr;  // on a hit, the next search starts at the '\r'
  }
  if (stalled_ || cr == window) {
    if (have - line_ > limits_.max_inline_len)
      return fail(count_line ? kTooBigCount : kTooBigBulkCount);
    return ParseStatus::incomplete;
  }
  if (cr + 1 >= have) return ParseStatus::incomplete;  // Redis wants the byte after '\r' too
  if (grammar_ == Grammar::records && request[cr + 1] != '\n') return fail(kExpectedLf);

  if (!count_line && request[line_] != '$') {
    // Redis formats the byte with %c and turns CR and LF into spaces (a NUL
    // cannot be here: the search above stalls on it).
    const char got = request[line_] == '\r' || request[line_] == '\n' ? ' ' : request[line_];
    return fail(std::string("ERR Protocol error: expected '$', got '") + got + "'");
  }
  std::int64_t value = 0;
  const bool ok = parse_redis_int(request + line_ + 1, cr - line_ - 1, value);
  const std::size_t next_line = cr + 2;

  if (count_line) {
    if (!ok || value > INT_MAX ||
        (value > 0 && static_cast<std::uint64_t>(value) > limits_.max_multibulk_len)) {
      return fail(kInvalidCount);
    }
    if (value <= 0 && grammar_ == Grammar::records) return fail(kInvalidCount);
    if (value <= 0) {  // *0, *-1, ...: no command, as in Redis
      pos_ += next_line;
      state_ = State::request_start;
      return std::nullopt;
    }
    elements_left_ = static_cast<std::size_t>(value);
    args_.clear();
    args_.reserve(std::min<std::size_t>(elements_left_, 1024));
    line_ = scanned_ = next_line;
    state_ = State::bulk_header;
    return std::nullopt;
  }

  if (!ok || value < 0 || static_cast<std::uint64_t>(value) > limits_.max_bulk_len) {
    return fail(kInvalidBulkLen);
  }
  bulk_len_ = static_cast<std::size_t>(value);
  line_ = next_line;
  state_ = State::bulk_data;
  // bulk_len_ < 2^63 and the rest is small: no overflow.
  const std::size_t bulk_end = line_ + bulk_len_ + 2;
  if (bulk_len_ >= kBigBulk && have < bulk_end) reserve_for_bulk(bulk_end + slack_);
  return std::nullopt;
}

ParseStatus RequestParser::finish(std::vector<std::string_view>& argv, std::size_t consumed) {
  argv.reserve(args_.size());  // may throw (multibulk only); the state is still intact then
  const char* const request = buf_.get() + pos_;
  for (const auto& [offset, length] : args_) argv.emplace_back(request + offset, length);
  args_.clear();
  pos_ += consumed;
  state_ = State::request_start;
  return ParseStatus::complete;
}

ParseStatus RequestParser::fail(std::string text) {
  error_ = std::move(text);
  state_ = State::failed;
  args_.clear();
  return ParseStatus::error;
}

void RequestParser::check_invariants() const noexcept {
#if !defined(NDEBUG) || defined(WEFT_DEBUG_CHECKS)
  if (!(pos_ <= end_ && end_ <= capacity_)) fatal("kv::RequestParser: buffer offsets out of order");
  const std::size_t have = end_ - pos_;
  switch (state_) {
    case State::request_start:
    case State::failed:
      if (!args_.empty()) fatal("kv::RequestParser: arguments left over between requests");
      break;
    case State::inline_line:
    case State::multibulk_count:
    case State::bulk_header:
      if (!(line_ <= scanned_ && scanned_ <= have))
        fatal("kv::RequestParser: line scan past the data");
      break;
    case State::bulk_data:
      if (!(line_ <= have && elements_left_ > 0 && bulk_len_ <= limits_.max_bulk_len)) {
        fatal("kv::RequestParser: bulk state inconsistent");
      }
      break;
  }
  if ((state_ == State::bulk_header || state_ == State::bulk_data) &&
      (elements_left_ == 0 || args_.size() + elements_left_ > limits_.max_multibulk_len)) {
    fatal("kv::RequestParser: multibulk element count inconsistent");
  }
#endif
}

// --- Reply --------------------------------------------------------------------

void Reply::simple(std::string& out, std::string_view s) {
  append_line(out, '+', s);
}

void Reply::error(std::string& out, std::string_view s) {
  append_line(out, '-', s);
}

void Reply::integer(std::string& out, std::int64_t v) {
  append_number_line(out, ':', v);
}

void Reply::bulk(std::string& out, std::string_view s) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, s.size());
  if (ec != std::errc{}) fatal("kv::Reply: to_chars failed");
  const auto n = static_cast<std::size_t>(end - digits);
  out.reserve(out.size() + n + s.size() + 5);
  out.push_back('$');
  out.append(digits, n);
  out.append("\r\n", 2);
  out.append(s);
  out.append("\r\n", 2);
}

void Reply::null_bulk(std::string& out) {
  out.append("$-1\r\n", 5);
}

void Reply::null_array(std::string& out) {
  out.append("*-1\r\n", 5);
}

void Reply::array_header(std::string& out, std::size_t n) {
  append_number_line(out, '*', n);
}

void Reply::null_bulk(std::string& out, int proto) {
  if (proto == 3) {
    out.append("_\r\n", 3);
  } else {
    null_bulk(out);
  }
}

void Reply::null_array(std::string& out, int proto) {
  if (proto == 3) {
    out.append("_\r\n", 3);
  } else {
    null_array(out);
  }
}

void Reply::map_header(std::string& out, std::size_t n, int proto) {
  if (proto == 3) return append_number_line(out, '%', n);
  array_header(out, 2 * n);
}

void Reply::set_header(std::string& out, std::size_t n, int proto) {
  append_number_line(out, proto == 3 ? '~' : '*', n);
}

void Reply::push_header(std::string& out, std::size_t n, int proto) {
  append_number_line(out, proto == 3 ? '>' : '*', n);
}

void Reply::double_text(std::string& out, std::string_view text, int proto) {
  if (proto == 3) return append_line(out, ',', text);
  bulk(out, text);
}

void Reply::verbatim(std::string& out, std::string_view text, int proto) {
  if (proto != 3) return bulk(out, text);
  std::string body;
  body.reserve(text.size() + 4);
  body.append("txt:");
  body.append(text);
  const std::size_t at = out.size();
  bulk(out, body);
  out[at] = '=';  // the same framing as a bulk string, typed verbatim
}

void Reply::command(std::string& out, std::span<const std::string_view> argv) {
  // Reserved up front, so a std::bad_alloc leaves `out` unchanged.
  std::size_t total = 24;
  for (std::string_view a : argv) total += a.size() + 26;
  out.reserve(out.size() + total);
  array_header(out, argv.size());
  for (std::string_view a : argv) bulk(out, a);
}

}  // namespace kv
