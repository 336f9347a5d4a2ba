// Channels: typed MPMC queues between fibers (and plain threads), bounded,
// rendezvous or unbounded, plus oneshot.
//
// Semantics follow Go channels and Tokio/crossbeam: capacity 0 is a
// rendezvous (a send completes only when a receiver has taken the value);
// values are moved, never copied; a failed send hands the value back
// (Tokio's SendError(T)); receivers drain buffered values after close and
// then see the end. Blocked operations are served FIFO. Design and the
// hand-off protocol: docs/design/channels.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "weft/detail/chan_core.hpp"
#include "weft/detail/deadline.hpp"

namespace weft {

namespace detail {
/// What SendResult and RecvResult share: a status and an optional value.
template <class T>
class ChanResult {
 public:
  /// How the operation ended.
  ChannelStatus status() const noexcept { return status_; }
  /// True if the value was sent / received.
  bool ok() const noexcept { return status_ == ChannelStatus::ok; }
  /// ok().
  explicit operator bool() const noexcept { return ok(); }
  /// The value carried (received, or handed back by a failed send).
  /// @throws std::logic_error if there is none.
  T& value() & {
    check();
    return *value_;
  }
  T&& value() && {
    check();
    return std::move(*value_);
  }

 protected:
  ChanResult(ChannelStatus status, std::optional<T> value) noexcept
      : status_(status), value_(std::move(value)) {}
  void check() const {
    if (!value_) {
      throw std::logic_error(std::string("weft: no value in a channel result with status ") +
                             to_string(status_));
    }
  }
  ChannelStatus status_;
  std::optional<T> value_;
};
}  // namespace detail

/// Result of a send that may fail. On failure the value is handed back
/// (value()), so nothing is lost; value() throws std::logic_error after a
/// successful send. Explicitly converts to true when sent.
template <class T>
class [[nodiscard]] SendResult : public detail::ChanResult<T> {
 public:
  /// Sent.
  SendResult() noexcept : detail::ChanResult<T>(ChannelStatus::ok, std::nullopt) {}
  /// Not sent, with the value returned to the caller.
  SendResult(ChannelStatus status, T&& value) noexcept
      : detail::ChanResult<T>(status, std::optional<T>(std::move(value))) {}
};

/// Result of a receive that may fail (try_recv, recv_for, recv_until):
/// value() is the received value (std::logic_error unless ok()).
/// Explicitly converts to true when a value was received.
template <class T>
class [[nodiscard]] RecvResult : public detail::ChanResult<T> {
 public:
  RecvResult() noexcept : detail::ChanResult<T>(ChannelStatus::empty, std::nullopt) {}
  /// value(). @throws std::logic_error unless ok().
  T& operator*() & { return this->value(); }
  /// &value(). @throws std::logic_error unless ok().
  T* operator->() { return &this->value(); }
  /// The received value as an optional (empty unless ok()).
  std::optional<T> take() && noexcept { return std::move(this->value_); }

 private:
  template <class>
  friend class Receiver;
};

namespace detail {
/// Shared handle logic of Sender and Receiver: a counted reference to a core.
template <bool IsSender>
class ChanHandle {
 public:
  ChanHandle() noexcept = default;
  explicit ChanHandle(ChanCore* c) noexcept : core_(c) {}
  ChanHandle(const ChanHandle& o) noexcept : core_(o.core_) {
    if (core_ != nullptr) chan_retain(core_, IsSender);
  }
  ChanHandle(ChanHandle&& o) noexcept : core_(std::exchange(o.core_, nullptr)) {}
  ChanHandle& operator=(ChanHandle o) noexcept {
    std::swap(core_, o.core_);
    return *this;
  }
  ~ChanHandle() {
    if (core_ != nullptr) chan_release(core_, IsSender);
  }

  /// Closes the channel for every handle: sends fail with closed (values
  /// handed back, blocked senders too), receivers drain buffered values and
  /// then see closed. Idempotent. @throws std::logic_error on an empty handle.
  void close() const { chan_close(checked()); }
  /// Values buffered now (a snapshot). 0 on a rendezvous channel.
  std::size_t size() const { return chan_size(checked()); }
  /// The buffer capacity: 0 for rendezvous, SIZE_MAX for unbounded.
  std::size_t capacity() const { return chan_capacity(checked()); }
  /// True once closed (explicitly, or by the last sender or last receiver
  /// going away).
  bool is_closed() const { return chan_is_closed(checked()); }
  /// False for a default-constructed or moved-from handle.
  explicit operator bool() const noexcept { return core_ != nullptr; }
  /// True when both handles refer to the same channel.
  bool same_channel(const ChanHandle<!IsSender>& o) const noexcept { return core_ == o.raw(); }
  /// True when both handles refer to the same channel.
  bool same_channel(const ChanHandle& o) const noexcept { return core_ == o.core_; }

  /// The core (for select); nullptr for an empty handle.
  ChanCore* raw() const noexcept { return core_; }

 protected:
  ChanCore* checked() const {
    if (core_ == nullptr) throw std::logic_error("weft: operation on an empty channel handle");
    return core_;
  }
  ChanCore* core_ = nullptr;
};
}  // namespace detail

/// The sending side of a channel. Copyable (MPMC): each copy counts as a
/// sender, and the channel closes when the last one is destroyed. All
/// operations are const (a handle refers to the channel, like a Go channel
/// value) and safe from any number of fibers and threads at once; a
/// blocking one parks a fiber or blocks a plain thread.
template <class T>
class Sender : public detail::ChanHandle<true> {
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "weft channels move values; T must be nothrow move constructible");

 public:
  using value_type = T;
  using detail::ChanHandle<true>::ChanHandle;

  /// Sends `value`, waiting for buffer space or (rendezvous) for a receiver
  /// to take it. Returns ok, or closed with the value handed back.
  /// @throws weft::Cancelled if the fiber is cancelled while waiting (the
  /// value is destroyed with the call); std::bad_alloc if an unbounded
  /// channel cannot grow; std::logic_error on an empty handle.
  SendResult<T> send(T value) const {
    return finish(detail::chan_send(checked(), &value, true, -1), value);
  }

  /// Sends only if that needs no waiting: ok, full (no space, no receiver
  /// waiting) or closed; the value is handed back unless ok. Never blocks;
  /// throws only std::bad_alloc (unbounded growth) or std::logic_error.
  SendResult<T> try_send(T value) const {
    return finish(detail::chan_send(checked(), &value, false, -1), value);
  }

  /// send() that gives up at `deadline` with timed_out (value handed back).
  template <class C, class D>
  SendResult<T> send_until(T value, std::chrono::time_point<C, D> deadline) const {
    return finish(detail::chan_send(checked(), &value, true, detail::to_deadline_ns(deadline)),
                  value);
  }
  /// The same with a weft::Deadline (none: no time limit).
  SendResult<T> send_until(T value, Deadline deadline) const {
    return finish(detail::chan_send(checked(), &value, true, detail::to_deadline_ns(deadline)),
                  value);
  }
  /// send_until(now + timeout).
  template <class Rep, class Period>
  SendResult<T> send_for(T value, std::chrono::duration<Rep, Period> timeout) const {
    return finish(
        detail::chan_send(checked(), &value, true, detail::timeout_to_deadline_ns(timeout)), value);
  }

 private:
  static SendResult<T> finish(ChannelStatus s, T& value) {
    if (s == ChannelStatus::ok) return SendResult<T>();
    return SendResult<T>(s, std::move(value));
  }
};

/// The receiving side of a channel. Copyable (MPMC): each value goes to
/// exactly one receiver. When the last receiver is destroyed the channel
/// closes and buffered values are destroyed; senders then get theirs back.
/// Range-for receives until the channel is closed and drained.
template <class T>
class Receiver : public detail::ChanHandle<false> {
 public:
  using value_type = T;
  using detail::ChanHandle<false>::ChanHandle;

  /// Receives the next value, waiting for one; empty once the channel is
  /// closed and drained.
  /// @throws weft::Cancelled if the fiber is cancelled while waiting;
  /// std::logic_error on an empty handle.
  std::optional<T> recv() const {
    std::optional<T> out;
    detail::chan_recv(checked(), &out, true, -1);
    return out;
  }
  /// Receives only if that needs no waiting: ok, empty or closed (drained).
  /// Never blocks or throws (except std::logic_error on an empty handle).
  RecvResult<T> try_recv() const { return recv_impl(false, -1); }
  /// recv() that gives up at `deadline` with timed_out.
  template <class C, class D>
  RecvResult<T> recv_until(std::chrono::time_point<C, D> deadline) const {
    return recv_impl(true, detail::to_deadline_ns(deadline));
  }
  /// The same with a weft::Deadline (none: no time limit).
  RecvResult<T> recv_until(Deadline deadline) const {
    return recv_impl(true, detail::to_deadline_ns(deadline));
  }
  /// recv_until(now + timeout).
  template <class Rep, class Period>
  RecvResult<T> recv_for(std::chrono::duration<Rep, Period> timeout) const {
    return recv_impl(true, detail::timeout_to_deadline_ns(timeout));
  }

  /// Input iterator over received values (see begin()).
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = T*;
    using reference = T&;
    iterator() = default;
    /// Receives the first value (parks until one arrives or the channel closes).
    explicit iterator(const Receiver* rx) : rx_(rx) { ++*this; }
    /// The value received last.
    T& operator*() { return *cur_; }
    /// The value received last.
    T* operator->() { return &*cur_; }
    /// Receives the next value; the iterator becomes end() once the channel is closed and drained.
    iterator& operator++() {
      cur_ = rx_->recv();
      if (!cur_) rx_ = nullptr;
      return *this;
    }
    /// As prefix ++ (a receive).
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.rx_ == b.rx_; }

   private:
    const Receiver* rx_ = nullptr;
    std::optional<T> cur_;
  };
  /// Blocks for the first value (like recv()); end() once closed and drained.
  iterator begin() const { return iterator(this); }
  /// The end iterator (closed and drained).
  iterator end() const { return iterator(); }

 private:
  RecvResult<T> recv_impl(bool block, std::int64_t deadline_ns) const {
    RecvResult<T> r;
    r.status_ = detail::chan_recv(checked(), &r.value_, block, deadline_ns);
    return r;
  }
};

/// Creates a channel of `capacity` buffered values (0 = rendezvous) and
/// returns its first sender and receiver. The buffer grows on demand up to
/// `capacity`, so a large capacity costs memory only when used.
/// @throws std::bad_alloc.
template <class T>
std::pair<Sender<T>, Receiver<T>> channel(std::size_t capacity) {
  detail::ChanCore* c = detail::chan_create(&detail::kValueOps<T>, capacity, false);
  return {Sender<T>(c), Receiver<T>(c)};
}

/// Creates a channel whose sends never wait (the buffer grows as needed;
/// capacity() is SIZE_MAX). @throws std::bad_alloc.
template <class T>
std::pair<Sender<T>, Receiver<T>> unbounded_channel() {
  detail::ChanCore* c = detail::chan_create(&detail::kValueOps<T>, 0, true);
  return {Sender<T>(c), Receiver<T>(c)};
}

/// The sending half of a oneshot: move-only, sends at most one value.
/// Destroying it unsent makes the receiver see closed.
template <class T>
class OneshotSender {
 public:
  OneshotSender() = default;
  /// Wraps the sending end of a channel of capacity 1 (oneshot() makes one).
  explicit OneshotSender(Sender<T> tx) noexcept : tx_(std::move(tx)) {}
  /// Move-only.
  OneshotSender(OneshotSender&&) noexcept = default;
  /// Move-only.
  OneshotSender& operator=(OneshotSender&&) noexcept = default;

  /// Sends the value and consumes the sender. Never waits. Returns ok, or
  /// closed with the value handed back if the receiver is gone.
  /// @throws std::logic_error if already used or empty.
  SendResult<T> send(T value) {
    Sender<T> tx = std::move(tx_);
    if (!tx) throw std::logic_error("weft: OneshotSender used twice");
    return tx.try_send(std::move(value));
  }
  /// True if the receiver is gone (a send would fail).
  bool is_closed() const { return !tx_ || tx_.is_closed(); }

 private:
  Sender<T> tx_;
};

/// The receiving half of a oneshot: move-only. recv() returns the value, or
/// an empty optional if the sender was destroyed without sending. Usable in
/// select through on_recv(rx.receiver(), ...).
template <class T>
class OneshotReceiver {
 public:
  OneshotReceiver() = default;
  /// Wraps the receiving end of a channel of capacity 1 (oneshot() makes one).
  explicit OneshotReceiver(Receiver<T> rx) noexcept : rx_(std::move(rx)) {}
  /// Move-only.
  OneshotReceiver(OneshotReceiver&&) noexcept = default;
  /// Move-only.
  OneshotReceiver& operator=(OneshotReceiver&&) noexcept = default;

  /// Waits for the value. @throws weft::Cancelled if cancelled while waiting.
  std::optional<T> recv() const { return rx_.recv(); }
  /// The value if it was sent: ok, empty (not yet) or closed (never will
  /// be). Never blocks.
  RecvResult<T> try_recv() const { return rx_.try_recv(); }
  /// recv() that gives up at `deadline` with timed_out.
  template <class C, class D>
  RecvResult<T> recv_until(std::chrono::time_point<C, D> deadline) const {
    return rx_.recv_until(deadline);
  }
  /// The same with a weft::Deadline (none: no time limit).
  RecvResult<T> recv_until(Deadline deadline) const { return rx_.recv_until(deadline); }
  /// recv_until(now + timeout).
  template <class Rep, class Period>
  RecvResult<T> recv_for(std::chrono::duration<Rep, Period> timeout) const {
    return rx_.recv_for(timeout);
  }
  /// The underlying receiver (for select).
  Receiver<T>& receiver() noexcept { return rx_; }

 private:
  Receiver<T> rx_;
};

/// Creates a oneshot: a channel for exactly one value, whose send never
/// waits. @throws std::bad_alloc.
template <class T>
std::pair<OneshotSender<T>, OneshotReceiver<T>> oneshot() {
  auto [tx, rx] = channel<T>(1);
  return {OneshotSender<T>(std::move(tx)), OneshotReceiver<T>(std::move(rx))};
}

}  // namespace weft
