// weft-kv: RESP2 request parsing (multibulk and inline) and reply encoding.
//
// The request grammar, the limits and the error texts follow Redis 7
// (src/networking.c: processMultibulkBuffer, processInlineBuffer and
// sdssplitargs), so unmodified Redis clients see the same behaviour.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
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
  /// Largest inline request line, bytes, counting a '\r' before its '\n'
  /// (Redis: PROTO_INLINE_MAX_SIZE, 64 KiB); also the longest `*<count>` and
  /// `$<len>` header line, up to its '\r'. Redis checks it against what is
  /// buffered without a terminator after each read, so it may accept a longer
  /// line that arrives in one read; this parser's verdict does not depend on
  /// how the bytes are split.
  std::size_t max_inline_len = std::size_t{64} << 10;
};

/// What RequestParser accepts.
enum class Grammar {
  /// Requests as Redis 7 reads them from a client: multibulk and inline,
  /// with Redis's leniencies (the byte after each '\r' and the two after a
  /// bulk are not checked; `*0` and blank lines are skipped).
  requests,
  /// Records of an append-only file: multibulk arrays of bulk strings
  /// only, every CRLF checked, at least one element. Anything else is a
  /// protocol error; a NUL ends no line (it is just a wrong byte).
  records,
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
/// Memory: the buffer grows geometrically and bytes of consumed commands are
/// dropped (compacted away) by prepare(), so a long-lived pipelined
/// connection holds at most about twice its largest request plus one read.
/// When the header of a bulk of 32 KiB or more has been parsed, room for the
/// whole bulk is reserved at once (as Redis does), so the bulk is received
/// in place and never copied while it arrives. A buffer above 1 MiB is
/// released once it holds no unconsumed bytes.
///
/// Not thread-safe: one parser per connection, used by one fiber at a time.
class RequestParser {
 public:
  /// A parser with an empty buffer; nothing is allocated before prepare().
  explicit RequestParser(ParseLimits limits = {}, Grammar grammar = Grammar::requests);

  /// Writable space of at least `min_bytes` bytes at the end of the buffered
  /// input: all the free space there, so a caller may read as much as fits.
  /// The span stays valid until the next call to prepare() or next() (next()
  /// may move the buffer to make room for a big bulk). Invalidates the argv
  /// views of the last complete command. May move the unconsumed bytes to
  /// the front of the buffer or into a larger one. Throws std::bad_alloc when
  /// the buffer cannot grow (nothing is lost then).
  std::span<char> prepare(std::size_t min_bytes = 16 * 1024);
  /// Marks `n` bytes written into the span from prepare() as received.
  /// `n` larger than that span is a bug: the process aborts with a message.
  void commit(std::size_t n);

  /// Parses the next command. On complete, `argv` holds its arguments (at
  /// least one) as views into the parser's buffer, valid until the next call
  /// to next() or prepare(); on incomplete and error it is empty. On error,
  /// error() returns the reply text without the leading '-' and the trailing
  /// CRLF, e.g. "ERR Protocol error: invalid bulk length", and every later
  /// call returns error again. Inline arguments are unquoted in place.
  /// Throws only std::bad_alloc (growing `argv` or the argument list); the
  /// parse state is unchanged then, so the call may be repeated.
  ParseStatus next(std::vector<std::string_view>& argv);

  /// The protocol error text after next() returned error; empty before.
  const std::string& error() const noexcept { return error_; }

  /// Bytes received but not yet consumed by complete commands (or skipped
  /// empty requests): the unparsed rest and any partly received request.
  std::size_t buffered() const noexcept { return end_ - pos_; }

  /// After next() returned incomplete: the least number of bytes the
  /// request being parsed needs in all, counted from its first byte (its
  /// whole length once a bulk header announced the last missing bytes,
  /// else buffered() + 1). A reader of a file of known size uses it to
  /// tell a record that cannot fit from one that needs another read.
  std::size_t needed() const noexcept;

 private:
  // What the parser expects next. The request being parsed always starts at
  // pos_; every offset below is relative to pos_, so compaction (which moves
  // pos_ to 0) does not touch them.
  enum class State : std::uint8_t {
    request_start,    // nothing of the next request looked at yet
    inline_line,      // an inline request: looking for its '\n'
    multibulk_count,  // "*<count>\r": looking for the '\r'
    bulk_header,      // "$<len>\r" of element args_.size(): looking for the '\r'
    bulk_data,        // bulk_len_ bytes plus 2 at line_
    failed,           // sticky protocol error, error_ is set
  };

  // One step in the given state: a result for next() to return, or nullopt
  // when the state advanced and parsing goes on.
  std::optional<ParseStatus> parse_inline(char* request, std::size_t have,
                                          std::vector<std::string_view>& argv);
  std::optional<ParseStatus> parse_header(char* request, std::size_t have);
  ParseStatus finish(std::vector<std::string_view>& argv, std::size_t consumed);
  ParseStatus fail(std::string text);
  void reserve_for_bulk(std::size_t needed);
  void reallocate(std::size_t capacity, bool may_fail);
  void check_invariants() const noexcept;

  ParseLimits limits_;
  Grammar grammar_;
  std::unique_ptr<char[]> buf_;  // capacity_ bytes, not value-initialised
  std::size_t capacity_ = 0;
  std::size_t pos_ = 0;            // first unconsumed byte: start of the request being parsed
  std::size_t end_ = 0;            // one past the last received byte
  std::size_t slack_ = 16 * 1024;  // min_bytes of the last prepare(), reserved past a big bulk
  std::string error_;
  State state_ = State::request_start;
  // Progress through the current request, kept across calls (Redis:
  // multibulklen, bulklen, and the line scan Redis repeats on every read).
  std::size_t line_ = 0;           // where the current line or bulk starts
  std::size_t scanned_ = 0;        // searched up to here for the line's terminator
  bool stalled_ = false;           // a NUL came first: the line never ends (Redis's strchr)
  std::size_t elements_left_ = 0;  // multibulk elements still to read
  std::size_t bulk_len_ = 0;       // length of the bulk at line_ (state bulk_data)
  std::vector<std::pair<std::size_t, std::size_t>> args_;  // (offset, length) of each argument
};

/// Appends RESP2 replies to an output buffer. Integers are printed as Redis
/// does (decimal, optional '-'). Each call either appends the whole reply or,
/// when it throws std::bad_alloc, leaves `out` unchanged. No shared state:
/// safe to call from any thread on distinct buffers.
struct Reply {
  /// `+s\r\n`. A '\r' or '\n' in `s` is sent as a space, so the reply stays
  /// one line (Redis does the same for its formatted replies).
  static void simple(std::string& out, std::string_view s);
  /// `-s\r\n`; `s` without the '-', e.g. "ERR unknown command". A '\r' or
  /// '\n' in `s` is sent as a space.
  static void error(std::string& out, std::string_view s);
  /// `:v\r\n`.
  static void integer(std::string& out, std::int64_t v);
  /// `$len\r\ns\r\n`; binary-safe.
  static void bulk(std::string& out, std::string_view s);
  /// `$-1\r\n` (RESP2 null bulk string).
  static void null_bulk(std::string& out);
  /// `*-1\r\n` (RESP2 null array).
  static void null_array(std::string& out);
  /// `*n\r\n`; the caller appends the n elements.
  static void array_header(std::string& out, std::size_t n);
  /// A command as a client sends it and as the AOF stores it: an array of
  /// bulk strings, one per argument (what RequestParser parses back).
  static void command(std::string& out, std::span<const std::string_view> argv);

  // Replies whose shape depends on the client's protocol version (HELLO;
  // Redis 7.0's addReplyNull, addReplyMapLen, addReplySetLen,
  // addReplyDouble, addReplyPushLen, addReplyVerbatim in networking.c).
  // `proto` is 2 or 3; anything but 3 is RESP2.

  /// RESP3 `_\r\n`; RESP2 `$-1\r\n` (a missing string).
  static void null_bulk(std::string& out, int proto);
  /// RESP3 `_\r\n`; RESP2 `*-1\r\n` (a missing array).
  static void null_array(std::string& out, int proto);
  /// RESP3 `%n\r\n` (n key-value pairs follow); RESP2 `*2n\r\n`.
  static void map_header(std::string& out, std::size_t n, int proto);
  /// RESP3 `~n\r\n`; RESP2 `*n\r\n`.
  static void set_header(std::string& out, std::size_t n, int proto);
  /// RESP3 `>n\r\n` (an out-of-band message: pub/sub); RESP2 `*n\r\n`.
  static void push_header(std::string& out, std::size_t n, int proto);
  /// A double given as Redis prints it ("1.5", "inf", "-inf"): RESP3
  /// `,text\r\n`; RESP2 a bulk string.
  static void double_text(std::string& out, std::string_view text, int proto);
  /// A human-readable text (INFO, CLIENT LIST): RESP3 verbatim string
  /// `=len\r\ntxt:text\r\n`; RESP2 a bulk string.
  static void verbatim(std::string& out, std::string_view text, int proto);
};

}  // namespace kv
