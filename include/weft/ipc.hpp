// weft::ipc: typed channels between processes, over a Unix stream socket.
//
//   // both processes, each with its end of the socket (UnixStream::pair
//   // before a fork, or UnixListener/UnixStream::connect on a path):
//   auto [tx, rx] = weft::ipc::channel<Job>(std::move(stream));
//   tx.send(Job{...});                       // to the peer
//   while (std::optional<Job> j = rx.recv()) ...   // from the peer
//
// Semantics follow weft's in-process channels where they can (seed 001,
// §8.2): bounded (a send waits while `capacity` encoded frames are queued
// locally and the socket's buffer and the peer's receive queue are full:
// backpressure reaches across), closing propagates (when every Sender of a
// process is gone or closed, the peer's Receiver drains and then sees the
// end), a peer that dies (even by SIGKILL) closes the channel in both
// directions, and a cancelled send or recv loses nothing (a cancelled send
// sent nothing; a cancelled recv took nothing).
//
// Messages travel as frames: a 4-byte little-endian length, then the bytes
// a Codec made of the value. Codecs: BytesCodec (std::string and
// std::vector<std::byte>, sent as they are), JsonCodec (nlohmann-json, for
// types with to_json/from_json; in weft/ipc_json.hpp, so that only code that
// includes it needs nlohmann-json), or any type satisfying the Codec
// concept.
// A frame longer than Options::max_frame is refused before it is sent
// (FrameTooLarge from send) and, coming from the peer, before anything is
// allocated for it (the channel closes and error() says why).
//
// How: two fibers per channel, spawned on the current runtime, pump frames
// between the socket and two in-process channels of encoded frames (so
// backpressure, close and cancellation are those channels'). Design:
// docs/design/ipc.md.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "weft/channel.hpp"
#include "weft/deadline.hpp"
#include "weft/errors.hpp"
#include "weft/net.hpp"

namespace weft::ipc {

/// An IPC failure: a frame the codec cannot decode, a peer that broke the
/// framing. what() starts with "weft: ipc: ".
class Error : public std::runtime_error {
 public:
  /// @param what the message, starting with "weft: ipc: ".
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// A frame over Options::max_frame: "weft: ipc: a frame of <n> bytes
/// exceeds the limit of <max> bytes".
class FrameTooLarge : public Error {
 public:
  /// @param size the frame's length in bytes @param limit Options::max_frame
  FrameTooLarge(std::size_t size, std::size_t limit)
      : Error("weft: ipc: a frame of " + std::to_string(size) + " bytes exceeds the limit of " +
              std::to_string(limit) + " bytes") {}
};

/// How a value of T becomes the bytes of a frame and back. encode may throw
/// (the send then fails, nothing sent); decode throws on malformed bytes.
template <class C, class T>
concept Codec = requires(const T& value, std::string_view bytes) {
  { C::encode(value) } -> std::convertible_to<std::string>;
  { C::decode(bytes) } -> std::same_as<T>;
};

/// Raw bytes: std::string or std::vector<std::byte>, sent unchanged.
template <class T>
struct BytesCodec {
  static_assert(std::is_same_v<T, std::string> || std::is_same_v<T, std::vector<std::byte>>,
                "BytesCodec carries std::string or std::vector<std::byte>");
  /// The bytes of v, unchanged.
  static std::string encode(const T& v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size());
  }
  /// A T holding the bytes of b.
  static T decode(std::string_view b) {
    const auto* p = reinterpret_cast<const typename T::value_type*>(b.data());
    return T(p, p + b.size());
  }
};

/// JSON text for any T with nlohmann-json's to_json/from_json. Defined in
/// weft/ipc_json.hpp (which includes <nlohmann/json.hpp>): a channel of a
/// non-byte T with the default codec needs that header included, else its
/// Codec constraint is not satisfied (JsonCodec<T> is incomplete here).
template <class T>
struct JsonCodec;

/// BytesCodec for the byte types, JsonCodec (weft/ipc_json.hpp) otherwise.
template <class T>
using DefaultCodec =
    std::conditional_t<std::is_same_v<T, std::string> || std::is_same_v<T, std::vector<std::byte>>,
                       BytesCodec<T>, JsonCodec<T>>;

/// Channel settings.
struct Options {
  /// Encoded frames queued locally in each direction before a send waits
  /// (>= 1).
  std::size_t capacity = 64;
  /// Largest frame, in bytes, either way (1..1 GiB). Both processes should
  /// use the same value.
  std::size_t max_frame = std::size_t{16} << 20;
};

namespace detail {
/// The pump state shared by a channel's handles and its two fibers
/// (src/ipc/ipc.cpp).
class Link;
struct Endpoints {
  weft::Sender<std::string> out;   // encoded frames to the socket
  weft::Receiver<std::string> in;  // frames from the socket
  std::shared_ptr<Link> link;
};
/// Starts the pumps. @throws std::invalid_argument for bad options;
/// std::logic_error outside a runtime.
Endpoints open(net::UnixStream stream, const Options& options);
std::size_t max_frame(const Link& link) noexcept;
/// Why the channel closed, if not cleanly (empty for a clean close).
std::optional<std::string> error(const Link& link);
/// Waits until the writer pump has ended; true if it wrote everything.
/// @throws weft::TimedOut, weft::Cancelled.
bool wait_written(Link& link, Deadline deadline);
/// The local receiver went away: stop reading the socket.
void receiver_gone(Link& link) noexcept;
[[noreturn]] void throw_decode_error(const char* what);
/// Tag of the constructors channel() uses.
struct Adopt {};
}  // namespace detail

/// The sending half: to the peer process. Copyable (every copy counts as a
/// sender: the peer sees the end once all are gone or one calls close()).
/// Safe from any number of fibers at once.
template <class T, class C = DefaultCodec<T>>
requires Codec<C, T>
class Sender {
 public:
  Sender() = default;
  /// Internal (channel() builds handles with it).
  Sender(detail::Adopt, weft::Sender<std::string> out, std::shared_ptr<detail::Link> link)
      : out_(std::move(out)), link_(std::move(link)) {}

  /// Encodes `value` and queues its frame for the peer, waiting while the
  /// channel is full. Returns ok, or closed (the peer is gone, or close()
  /// was called) with the value handed back.
  /// @throws FrameTooLarge (nothing sent); what C::encode throws;
  /// weft::Cancelled (nothing sent).
  SendResult<T> send(T value) const {
    return dispatch(value, [&](std::string f) { return out().send(std::move(f)); });
  }
  /// send() that never waits: ok, full or closed.
  SendResult<T> try_send(T value) const {
    return dispatch(value, [&](std::string f) { return out().try_send(std::move(f)); });
  }
  /// send() that gives up at `deadline` with timed_out (nothing sent).
  SendResult<T> send_until(T value, Deadline deadline) const {
    return dispatch(value, [&](std::string f) { return out().send_until(std::move(f), deadline); });
  }

  /// Ends this process's side of the channel for every Sender copy: queued
  /// frames are still delivered, then the peer's Receiver sees the end.
  void close() const { out().close(); }
  /// close(), then waits until every frame this process queued has been
  /// written to the socket: call it before the process exits, or queued
  /// frames die with it. Returns true when all were written, false if the
  /// channel failed first (the peer is gone). @throws weft::TimedOut (the
  /// frames keep going); weft::Cancelled.
  bool drain(Deadline deadline = {}) const {
    close();
    return detail::wait_written(*link_, deadline);
  }
  /// True once closed (by close(), or because the peer is gone).
  bool is_closed() const { return out().is_closed(); }

 private:
  const weft::Sender<std::string>& out() const {
    if (!out_) throw std::logic_error("weft: ipc: operation on an empty Sender");
    return out_;
  }
  // Encodes `value`, checks the frame size and sends it with `send`; a
  // failed send hands `value` back. A std::string under BytesCodec is its
  // own frame: it is moved in (no copy) and, on failure, moved back out of
  // the frame the channel returned.
  template <class Send>
  SendResult<T> dispatch(T& value, Send send) const {
    if constexpr (std::is_same_v<C, BytesCodec<std::string>>) {
      check_size(value.size());
      SendResult<std::string> r = send(std::move(value));
      if (r.ok()) return SendResult<T>();
      return SendResult<T>(r.status(), std::move(r).value());
    } else {
      std::string bytes = C::encode(value);
      check_size(bytes.size());
      SendResult<std::string> r = send(std::move(bytes));
      if (r.ok()) return SendResult<T>();
      return SendResult<T>(r.status(), std::move(value));
    }
  }
  void check_size(std::size_t n) const {
    if (n > detail::max_frame(*link_)) throw FrameTooLarge(n, detail::max_frame(*link_));
  }

  weft::Sender<std::string> out_;
  std::shared_ptr<detail::Link> link_;
};

/// The receiving half: from the peer process. Move-only; destroying it
/// stops reading from the peer (the peer's sends then fail with closed once
/// the socket's buffer is full or the peer notices). One fiber at a time.
template <class T, class C = DefaultCodec<T>>
requires Codec<C, T>
class Receiver {
 public:
  Receiver() = default;
  /// Internal (channel() builds handles with it).
  Receiver(detail::Adopt, weft::Receiver<std::string> in, std::shared_ptr<detail::Link> link)
      : in_(std::move(in)), link_(std::move(link)) {}
  /// Move-only.
  Receiver(Receiver&&) noexcept = default;
  /// Closes this receiver's connection, then takes over o's.
  Receiver& operator=(Receiver&& o) noexcept {
    if (this != &o) {
      stop();
      in_ = std::move(o.in_);
      link_ = std::move(o.link_);
    }
    return *this;
  }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;
  ~Receiver() { stop(); }

  /// The next value from the peer, waiting for it; empty once the channel
  /// is closed and drained (the peer closed it, exited or died, or broke
  /// the framing: error() tells which).
  /// @throws ipc::Error "weft: ipc: cannot decode a frame: ..." (that
  /// frame is consumed); weft::Cancelled (nothing taken).
  std::optional<T> recv() const { return decode(in().recv()); }
  /// recv() that gives up at `deadline`. @throws weft::TimedOut (nothing
  /// taken); as recv().
  std::optional<T> recv_until(Deadline deadline) const {
    RecvResult<std::string> r = in().recv_until(deadline);
    if (r.status() == ChannelStatus::timed_out) throw TimedOut();
    return decode(std::move(r).take());
  }
  /// A value if one is there now; empty otherwise (see is_closed()).
  std::optional<T> try_recv() const { return decode(in().try_recv().take()); }
  /// True once the channel is closed (values may still be buffered).
  bool is_closed() const { return in().is_closed(); }
  /// Why the channel closed when it was not a clean close by the peer:
  /// "weft: ipc: the peer sent a frame of <n> bytes, over the limit of <m>
  /// bytes", "weft: ipc: the peer closed the connection in the middle of a
  /// frame", or the socket error ("weft: ipc: read: Connection reset by
  /// peer"). Empty while open or after a clean close.
  std::optional<std::string> error() const { return link_ ? detail::error(*link_) : std::nullopt; }

 private:
  const weft::Receiver<std::string>& in() const {
    if (!in_) throw std::logic_error("weft: ipc: operation on an empty Receiver");
    return in_;
  }
  static std::optional<T> decode(std::optional<std::string> bytes) {
    if (!bytes) return std::nullopt;
    // A std::string under BytesCodec is the frame itself: no copy.
    if constexpr (std::is_same_v<C, BytesCodec<std::string>>) return bytes;
    try {
      return C::decode(*bytes);
    } catch (const std::exception& e) {
      detail::throw_decode_error(e.what());
    }
  }
  void stop() noexcept {
    if (link_) detail::receiver_gone(*link_);
    in_ = {};
    link_.reset();
  }

  weft::Receiver<std::string> in_;
  std::shared_ptr<detail::Link> link_;
};

/// Makes a channel over a connected Unix stream socket (UnixStream::pair,
/// or UnixStream::connect / UnixListener::accept on a path); the peer
/// process does the same with its end and the same T and codec. Returns
/// this process's Sender (to the peer) and Receiver (from the peer). Two
/// fibers pump frames until both directions have ended.
/// @throws std::invalid_argument for Options out of range
/// ("weft: ipc: Options::capacity must be at least 1", "weft: ipc:
/// Options::max_frame must be 1..1073741824 bytes"); std::logic_error
/// outside a runtime.
template <class T, class C = DefaultCodec<T>>
requires Codec<C, T> std::pair<Sender<T, C>, Receiver<T, C>> channel(net::UnixStream stream,
                                                                     const Options& options = {}) {
  detail::Endpoints e = detail::open(std::move(stream), options);
  return {Sender<T, C>(detail::Adopt{}, std::move(e.out), e.link),
          Receiver<T, C>(detail::Adopt{}, std::move(e.in), e.link)};
}

}  // namespace weft::ipc
