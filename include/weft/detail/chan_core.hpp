// The type-erased channel core behind Sender<T>/Receiver<T> and select.
// Values cross it as void* with a per-type table of nothrow moves, so the
// locking and hand-off logic is compiled once (src/chan/chan_core.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

namespace weft {

/// Outcome of a channel operation that did not (or did) transfer a value.
enum class ChannelStatus : std::uint8_t {
  ok,         ///< the value was sent / received
  full,       ///< try_send: no buffer space and no receiver waiting
  empty,      ///< try_recv: nothing buffered and no sender waiting
  closed,     ///< send: the channel is closed; recv: closed and drained
  timed_out,  ///< the _for/_until deadline passed first
};

/// "ok", "full", "empty", "closed" or "timed_out".
const char* to_string(ChannelStatus s) noexcept;

namespace detail {

/// How the core moves and destroys values of one type. Every T sent over a
/// channel must be nothrow move constructible.
struct ValueOps {
  std::size_t size;
  std::size_t align;
  /// Move-constructs a T at raw storage `dst` from the T at `src`.
  void (*move_construct)(void* dst, void* src) noexcept;
  /// Move-assigns the T at `src` into the std::optional<T> at `dst`.
  void (*move_to_optional)(void* dst, void* src) noexcept;
  void (*destroy)(void* p) noexcept;
};

template <class T>
inline constexpr ValueOps kValueOps = {
    sizeof(T),
    alignof(T),
    [](void* dst, void* src) noexcept { ::new (dst) T(std::move(*static_cast<T*>(src))); },
    [](void* dst, void* src) noexcept {
      static_cast<std::optional<T>*>(dst)->emplace(std::move(*static_cast<T*>(src)));
    },
    [](void* p) noexcept { static_cast<T*>(p)->~T(); },
};

struct ChanCore;

/// Creates a channel holding one sender and one receiver reference.
/// capacity 0 is a rendezvous; `unbounded` ignores capacity.
/// @throws std::bad_alloc.
ChanCore* chan_create(const ValueOps* ops, std::size_t capacity, bool unbounded);
/// Adds a sender (is_sender) or receiver reference. Never throws.
void chan_retain(ChanCore* c, bool is_sender) noexcept;
/// Drops a reference. The last sender closes the channel (receivers drain,
/// then see closed); the last receiver closes it and destroys what is
/// buffered (senders get their values back). The last reference frees it.
void chan_release(ChanCore* c, bool is_sender) noexcept;

/// Sends the T at `value`, moving from it only on ChannelStatus::ok.
/// block=false: never waits (ok, full or closed). block=true: waits until a
/// receiver or buffer space takes it, the channel closes, or deadline_ns
/// (CLOCK_MONOTONIC ns, -1 none) passes.
/// @throws weft::Cancelled if the waiting fiber is cancelled (the value is
/// then left unmoved at `value`); std::bad_alloc if an unbounded buffer
/// cannot grow (value unmoved).
ChannelStatus chan_send(ChanCore* c, void* value, bool block, std::int64_t deadline_ns);
/// Receives into the std::optional<T> at `dst` (emplaced only on ok).
/// Statuses and blocking as chan_send; closed only once drained.
/// @throws weft::Cancelled if the waiting fiber is cancelled.
ChannelStatus chan_recv(ChanCore* c, void* dst, bool block, std::int64_t deadline_ns);
/// Closes the channel: later and blocked sends fail with closed (values are
/// handed back), receivers drain what is buffered and then see closed.
/// Idempotent. Never throws.
void chan_close(ChanCore* c) noexcept;
std::size_t chan_size(const ChanCore* c) noexcept;
std::size_t chan_capacity(const ChanCore* c) noexcept;
bool chan_is_closed(const ChanCore* c) noexcept;

}  // namespace detail
}  // namespace weft
