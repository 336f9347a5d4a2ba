// Buffered streams: weft::io::BufReader and BufWriter over any stream type
// whose read/write_all park only the fiber (net::TcpStream, net::UnixStream,
// tls::Stream, process::Pipe, fs::File).
//
//   weft::io::BufReader in(conn);
//   while (auto line = in.read_line(8192, 30s)) handle(*line);
//
// Limits are enforced before memory is spent: a line longer than its limit,
// or a stream longer than read_to_end's limit, throws io::LimitExceeded
// having buffered at most the limit. Deadlines and cancellation are those of
// the underlying stream's calls (each call's deadline covers all its reads).
// Go's bufio and Rust's BufRead are the models.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "weft/deadline.hpp"

namespace weft::io {

/// A line or a stream over its limit: "weft: io: no '<delim>' within the
/// limit of <n> bytes" (read_until/read_line; "\\n" shown for a newline) or
/// "weft: io: more than <n> bytes before the end of the stream"
/// (read_to_end). The bytes examined up to the limit are consumed.
class LimitExceeded : public std::runtime_error {
 public:
  /// @param what the message, starting with "weft: ".
  explicit LimitExceeded(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
/// A buffer of `capacity` bytes for a BufReader/BufWriter (`who`).
/// @throws std::invalid_argument for capacity 0 ("weft: io::<who> capacity
/// must be at least 1"); std::bad_alloc.
inline std::unique_ptr<char[]> make_buffer(std::size_t capacity, const char* who) {
  if (capacity == 0) {
    throw std::invalid_argument(std::string("weft: io::") + who + " capacity must be at least 1");
  }
  return std::make_unique<char[]>(capacity);
}
}  // namespace detail

/// A stream BufReader can read: read(buf, len, deadline) returning the bytes
/// read, 0 at the end.
template <class S>
concept ReadStream = requires(S& s, void* buf, std::size_t len, Deadline d) {
  { s.read(buf, len, d) } -> std::convertible_to<std::size_t>;
};

/// A stream BufWriter can write: write_all(buf, len, deadline).
template <class S>
concept WriteStream = requires(S& s, const void* buf, std::size_t len, Deadline d) {
  s.write_all(buf, len, d);
};

/// Reads a stream through a buffer. Holds a reference to the stream, which
/// must outlive it. One fiber at a time.
template <ReadStream S>
class BufReader {
 public:
  /// `capacity`: buffer bytes (>= 1; default 64 KiB).
  /// @throws std::invalid_argument for capacity 0.
  explicit BufReader(S& stream, std::size_t capacity = 64 * 1024)
      : s_(stream), cap_(capacity), buf_(detail::make_buffer(capacity, "BufReader")) {}

  /// Reads up to len bytes: buffered ones first, else one read of the
  /// stream (straight into buf when len >= the capacity). 0 at the end.
  /// @throws what the stream's read throws.
  std::size_t read(void* buf, std::size_t len, Deadline deadline = {}) {
    if (len == 0) return 0;
    if (empty() && len >= cap_) return s_.read(buf, len, deadline);
    if (empty() && !fill(deadline)) return 0;
    const std::size_t n = std::min(len, end_ - pos_);
    std::memcpy(buf, buf_.get() + pos_, n);
    pos_ += n;
    return n;
  }

  /// Reads through the next `delim` and returns the bytes, delim included
  /// (at most `limit` bytes in all); at the end of the stream, what was left
  /// (without delim), or empty if nothing was. @throws LimitExceeded when
  /// `limit` bytes pass without a delim; what the stream's read throws.
  std::optional<std::string> read_until(char delim, std::size_t limit, Deadline deadline = {}) {
    std::string out;
    for (;;) {
      if (empty() && !fill(deadline)) {
        if (out.empty()) return std::nullopt;
        return out;
      }
      const char* p = buf_.get() + pos_;
      const std::size_t avail = end_ - pos_;
      const void* hit = std::memchr(p, delim, avail);
      const std::size_t take =
          hit ? static_cast<std::size_t>(static_cast<const char*>(hit) - p) + 1 : avail;
      if (out.size() + take > limit) {
        pos_ += limit - out.size();
        throw_no_delim(delim, limit);
      }
      out.append(p, take);
      pos_ += take;
      if (hit) return out;
    }
  }

  /// The next line without its "\n" (or "\r\n"); the last line may lack
  /// one; empty at the end. `limit` counts the line without its ending.
  /// @throws LimitExceeded; what the stream's read throws.
  std::optional<std::string> read_line(std::size_t limit, Deadline deadline = {}) {
    std::optional<std::string> l;
    try {
      l = read_until('\n', limit + 2, deadline);  // room for "\r\n"
    } catch (const LimitExceeded&) {
      throw_no_delim('\n', limit);
    }
    if (!l) return l;
    if (!l->empty() && l->back() == '\n') {
      l->pop_back();
      if (!l->empty() && l->back() == '\r') l->pop_back();
    }
    if (l->size() > limit) throw_no_delim('\n', limit);
    return l;
  }

  /// Everything up to the end of the stream. @throws LimitExceeded if it
  /// is longer than `limit` bytes; what the stream's read throws.
  std::string read_to_end(std::size_t limit, Deadline deadline = {}) {
    std::string out;
    for (;;) {
      if (empty() && !fill(deadline)) return out;
      const std::size_t avail = end_ - pos_;
      if (out.size() + avail > limit) {
        pos_ += limit - out.size();
        throw LimitExceeded("weft: io: more than " + std::to_string(limit) +
                            " bytes before the end of the stream");
      }
      out.append(buf_.get() + pos_, avail);
      pos_ = end_;
    }
  }

  /// Bytes buffered and not yet returned.
  std::size_t buffered() const noexcept { return end_ - pos_; }
  /// The stream.
  S& get() noexcept { return s_; }

 private:
  bool empty() const noexcept { return pos_ == end_; }
  [[noreturn]] static void throw_no_delim(char delim, std::size_t limit) {
    throw LimitExceeded("weft: io: no '" +
                        (delim == '\n' ? std::string("\\n") : std::string(1, delim)) +
                        "' within the limit of " + std::to_string(limit) + " bytes");
  }
  bool fill(Deadline d) {
    pos_ = end_ = 0;
    end_ = s_.read(buf_.get(), cap_, d);
    return end_ > 0;
  }
  S& s_;
  std::size_t cap_;
  std::unique_ptr<char[]> buf_;
  std::size_t pos_ = 0, end_ = 0;
};

/// Writes a stream through a buffer: small writes are gathered and sent
/// when the buffer fills or on flush(). Holds a reference to the stream.
/// The destructor does not flush (it could neither park reliably nor
/// report an error): call flush() before destroying it. One fiber at a time.
template <WriteStream S>
class BufWriter {
 public:
  /// @throws std::invalid_argument for capacity 0.
  explicit BufWriter(S& stream, std::size_t capacity = 64 * 1024)
      : s_(stream), cap_(capacity), buf_(detail::make_buffer(capacity, "BufWriter")) {}

  /// Buffers `len` bytes, writing the buffer out first when they do not
  /// fit (and the bytes directly when they are at least the capacity).
  /// @throws what the stream's write_all throws (the buffer then keeps
  /// what was not written: flush() again to retry).
  void write(const void* data, std::size_t len, Deadline deadline = {}) {
    if (len > cap_ - used_) flush(deadline);
    if (len >= cap_) {
      s_.write_all(data, len, deadline);
      return;
    }
    std::memcpy(buf_.get() + used_, data, len);
    used_ += len;
  }
  /// write(s.data(), s.size(), deadline). Errors as that.
  void write(std::string_view s, Deadline deadline = {}) { write(s.data(), s.size(), deadline); }

  /// Writes out everything buffered. @throws what write_all throws.
  void flush(Deadline deadline = {}) {
    if (used_ == 0) return;
    s_.write_all(buf_.get(), used_, deadline);
    used_ = 0;
  }

  /// Bytes buffered and not yet written.
  std::size_t buffered() const noexcept { return used_; }
  /// The wrapped stream (write to it directly only after flush()).
  S& get() noexcept { return s_; }

 private:
  S& s_;
  std::size_t cap_;
  std::unique_ptr<char[]> buf_;
  std::size_t used_ = 0;
};

}  // namespace weft::io
