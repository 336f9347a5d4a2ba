// weft-kv: RESP2 request parsing (multibulk and inline) and reply encoding.
//
// The request grammar, the limits and the error texts follow Redis 7
// (src/networking.c: processMultibulkBuffer, processInlineBuffer and
// sdssplitargs), so unmodified Redis clients see the same behaviour.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kv {

/// Limits the parser enforces; a request beyond one is a protocol error.
struct ParseLimits {
  /// Largest bulk string in a multibulk request, bytes (Redis:
  /// proto-max-bulk-len, 512 MB).
  std::size_t max_bulk_len = std::size_t{512} << 20;
  /// Largest element count of a multibulk request (Redis: 1024*1024*1024;
  /// ours is lower because every element costs a string_view).
  std::size_t max_multibulk_len = std::size_t{1} << 20;
  /// Largest inline request line, bytes (Redis: PROTO_INLINE_MAX_SIZE, 64 KiB).
  std::size_t max_inline_len = std::size_t{64} << 10;
};

/// Result of RequestParser::next().
enum class ParseStatus {
  complete,    ///< one command is in argv
  incomplete,  ///< more bytes are needed; call commit() and next() again
  error,       ///< protocol error; error() has the text; the connection must close
};

/// An incremental RESP2 request parser that owns its input buffer.
///
/// Use: write received bytes into prepare(), commit() them, then call next()
/// until it returns incomplete. Requests may be split anywhere across reads
/// and many may arrive in one read (pipelining). Parsing state is kept
/// between calls, so a request arriving in N pieces costs O(size), not
/// O(size * N). An empty inline line or a `*0`/`*-1` multibulk yields no
/// command and is skipped, as Redis does.
///
/// Not thread-safe: one parser per connection.
class RequestParser {
 public:
  explicit RequestParser(ParseLimits limits = {});

  /// Writable space of at least `min_bytes` bytes at the end of the buffered
  /// input. Invalidates the argv views of the last complete command.
  std::span<char> prepare(std::size_t min_bytes = 16 * 1024);
  /// Marks `n` bytes written into the span from prepare() as received.
  void commit(std::size_t n);

  /// Parses the next command. On complete, `argv` holds its arguments (at
  /// least one) as views into the parser's buffer, valid until the next call
  /// to next() or prepare(). On error, error() returns the reply text without
  /// the leading '-' and the trailing CRLF, e.g. "ERR Protocol error: invalid
  /// bulk length", and every later call returns error again.
  ParseStatus next(std::vector<std::string_view>& argv);

  /// The protocol error text after next() returned error.
  const std::string& error() const noexcept { return error_; }

  /// Bytes received but not yet consumed by complete commands.
  std::size_t buffered() const noexcept { return end_ - pos_; }

 private:
  ParseLimits limits_;
  std::vector<char> buf_;
  std::size_t pos_ = 0;  // first unconsumed byte
  std::size_t end_ = 0;  // one past the last received byte
  std::string error_;
  // Multibulk progress, kept across calls (Redis: multibulklen, bulklen).
  std::size_t scan_ = 0;                  // where parsing of the current command resumes
  std::int64_t multibulk_left_ = 0;       // elements still to read, 0 = not in a multibulk
  std::int64_t bulk_len_ = -1;            // length of the bulk being read, -1 = header next
  std::vector<std::pair<std::size_t, std::size_t>> args_;  // (offset, length) from pos_
};

/// Appends RESP2 replies to an output buffer. Integers are printed as Redis
/// does (decimal, optional '-').
struct Reply {
  static void simple(std::string& out, std::string_view s);    ///< +s\r\n
  static void error(std::string& out, std::string_view s);     ///< -s\r\n (s without '-')
  static void integer(std::string& out, std::int64_t v);       ///< :v\r\n
  static void bulk(std::string& out, std::string_view s);      ///< $len\r\ns\r\n
  static void null_bulk(std::string& out);                     ///< $-1\r\n
  static void null_array(std::string& out);                    ///< *-1\r\n
  static void array_header(std::string& out, std::size_t n);   ///< *n\r\n
};

}  // namespace kv
