// weft.h: channels of elem_size-byte elements, and select over them.
//
// A C channel is a weft::channel<E> for an element representation E chosen
// by size: Inline<N> (N = 8, 16, ..., 256 bytes, stored in the channel's
// buffer like any value) or, above that, Boxed (a heap block per element).
// Sends copy elem_size bytes into an E and move it in; receives move an E
// out and copy elem_size bytes to the caller. The C++ channel does the
// rest: rendezvous, FIFO waiters, close and drain, timeouts, cancellation
// (docs/design/channels.md). TypedChan<E> hides E behind weft_chan's
// virtual functions, one indirect call per operation.
//
// weft_select builds one detail::SelectOp per case and runs the select
// protocol that weft::select() runs (detail::select_impl, declared in
// weft/select.hpp), with a slot per case holding the E to send or the
// std::optional<E> to receive into; closed channels fire their case. Both
// detail:: entry points used here (select_impl, and chan_send/chan_recv
// below) are the compiled core that the public inline templates call: the
// layer stays on the public headers, and off src/.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "capi/capi.hpp"
#include "weft/channel.hpp"
#include "weft/select.hpp"

namespace weft::capi {
namespace {

/// An element of up to N bytes, stored inline. Trivially copyable.
/// Copies of exactly N bytes (the usual case: elements of 8, 16, 32...
/// bytes) have a constant size, which the compiler turns into a few moves
/// instead of a call to memcpy.
template <std::size_t N>
struct Inline {
  alignas(8) unsigned char bytes[N];

  static Inline make(const void* src, std::size_t n) noexcept {
    Inline e;
    if (n == N) {
      std::memcpy(e.bytes, src, N);
    } else if (n != 0) {
      std::memcpy(e.bytes, src, n);
    }
    return e;
  }
  void copy_out(void* dst, std::size_t n) const noexcept {
    if (n == N) {
      std::memcpy(dst, bytes, N);
    } else if (n != 0) {
      std::memcpy(dst, bytes, n);
    }
  }
};

/// An element in a heap block of its own (sizes above the largest Inline).
class Boxed {
 public:
  Boxed() noexcept = default;
  Boxed(Boxed&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  Boxed& operator=(Boxed&& o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~Boxed() { std::free(p_); }

  /// @throws std::bad_alloc.
  static Boxed make(const void* src, std::size_t n) {
    Boxed b;
    b.p_ = static_cast<unsigned char*>(std::malloc(n));
    if (b.p_ == nullptr) throw std::bad_alloc();
    std::memcpy(b.p_, src, n);
    return b;
  }
  void copy_out(void* dst, std::size_t n) const noexcept { std::memcpy(dst, p_, n); }

 private:
  unsigned char* p_ = nullptr;
};

constexpr std::size_t kMaxInline = 256;
constexpr std::size_t kMaxElemSize = std::size_t{1} << 30;

/// The element representation of 8-byte elements (a word: the usual
/// element of a language runtime), which weft_chan_send/recv handle
/// without the virtual call.
using Word = Inline<8>;

/// ChannelStatus (not ok) as weft.h's code.
int status_code(ChannelStatus s, std::int64_t timeout_ns) noexcept {
  switch (s) {
    case ChannelStatus::ok:
      return 0;
    case ChannelStatus::full:
    case ChannelStatus::empty:
      return -EAGAIN;
    case ChannelStatus::closed:
      return -EPIPE;
    case ChannelStatus::timed_out:
      return gave_up(timeout_ns);
  }
  return -EINVAL;
}

// Send and receive of an E on a channel core (the core that Sender::send
// and Receiver::recv are inline wrappers of, weft/detail/chan_core.hpp),
// with the element in a local: the wrappers' result objects (a SendResult
// holding an optional value, a returned optional) cost more than the rest
// of this adapter on the hot path. timeout_ns is valid.
template <class E>
[[gnu::always_inline]] inline int send_as(detail::ChanCore* core, const void* elem,
                                          std::size_t size, std::int64_t timeout_ns) {
  E e = E::make(elem, size);
  const std::int64_t deadline = timeout_ns > 0 ? deadline_after(timeout_ns).ns() : -1;
  // The core moves from e only on ok; otherwise e dies here (Boxed: freed).
  return status_code(detail::chan_send(core, &e, timeout_ns != 0, deadline), timeout_ns);
}

template <class E>
[[gnu::always_inline]] inline int recv_as(detail::ChanCore* core, void* out, std::size_t size,
                                          std::int64_t timeout_ns) {
  std::optional<E> v;
  const std::int64_t deadline = timeout_ns > 0 ? deadline_after(timeout_ns).ns() : -1;
  const ChannelStatus s = detail::chan_recv(core, &v, timeout_ns != 0, deadline);
  if (s != ChannelStatus::ok) return status_code(s, timeout_ns);
  v->copy_out(out, size);
  return 0;
}

}  // namespace
}  // namespace weft::capi

/// The C handle: a channel of some element representation.
struct weft_chan {
  weft_chan(std::size_t size, std::size_t cap) noexcept : elem_size(size), capacity(cap) {}
  virtual ~weft_chan() = default;
  weft_chan(const weft_chan&) = delete;
  weft_chan& operator=(const weft_chan&) = delete;

  /// weft_chan_send / weft_chan_recv with a checked timeout. @throws as
  /// the C++ channel (weft::Cancelled, std::bad_alloc).
  virtual int send(const void* elem, std::int64_t timeout_ns) = 0;
  virtual int recv(void* out, std::int64_t timeout_ns) = 0;
  virtual void close() noexcept = 0;
  virtual std::size_t len() const noexcept = 0;
  virtual bool is_closed() const noexcept = 0;

  /// Bytes (a multiple of 16) of the slot a select case on this channel
  /// needs.
  virtual std::size_t slot_size() const noexcept = 0;
  /// Builds case c's slot at `slot` (16-aligned) and fills op for it.
  /// @throws std::bad_alloc (nothing built).
  virtual void prepare(weft::detail::SelectOp& op, void* slot, const weft_select_case& c) = 0;
  /// Destroys the slot; for a receive that fired with an element, copies
  /// it to c.elem first.
  virtual void finish(void* slot, const weft_select_case& c, bool fired) noexcept = 0;

  const std::size_t elem_size;
  const std::size_t capacity;
  /// The channel's core (set once by the subclass), and whether its
  /// elements are Words, for weft_chan_send/recv's direct path.
  weft::detail::ChanCore* core = nullptr;
  bool word = false;
};

namespace weft::capi {
namespace {

template <class E>
class TypedChan final : public weft_chan {
 public:
  TypedChan(std::size_t size, std::size_t cap) : weft_chan(size, cap) {
    auto [tx, rx] = cap == WEFT_CHAN_UNBOUNDED ? unbounded_channel<E>() : channel<E>(cap);
    tx_ = std::move(tx);
    rx_ = std::move(rx);
    core = tx_.raw();
    word = std::is_same_v<E, Word> && size == sizeof(Word);
  }

  int send(const void* elem, std::int64_t timeout_ns) override {
    return send_as<E>(core, elem, elem_size, timeout_ns);
  }
  int recv(void* out, std::int64_t timeout_ns) override {
    return recv_as<E>(core, out, elem_size, timeout_ns);
  }

  void close() noexcept override { chan_close_noexcept(); }
  std::size_t len() const noexcept override { return tx_.size(); }
  bool is_closed() const noexcept override { return tx_.is_closed(); }

  static constexpr std::size_t kSlot =
      (std::max(sizeof(E), sizeof(std::optional<E>)) + 15) / 16 * 16;
  static_assert(alignof(std::optional<E>) <= 16 && alignof(E) <= 16);

  std::size_t slot_size() const noexcept override { return kSlot; }

  void prepare(detail::SelectOp& op, void* slot, const weft_select_case& c) override {
    if (c.op == WEFT_SELECT_SEND) {
      op.slot = ::new (slot) E(E::make(c.elem, elem_size));
      op.chan = tx_.raw();
      op.is_send = true;
    } else {
      op.slot = ::new (slot) std::optional<E>();
      op.chan = rx_.raw();
      op.is_send = false;
    }
    op.fire_on_closed = true;
  }

  void finish(void* slot, const weft_select_case& c, bool fired) noexcept override {
    if (c.op == WEFT_SELECT_SEND) {
      static_cast<E*>(slot)->~E();  // moved from if it was sent
      return;
    }
    auto* v = static_cast<std::optional<E>*>(slot);
    if (fired && v->has_value()) (*v)->copy_out(c.elem, elem_size);
    v->~optional();
  }

 private:
  // Sender::close() throws only for an empty handle, which tx_ never is.
  void chan_close_noexcept() noexcept {
    try {
      tx_.close();
    } catch (...) {
    }
  }

  Sender<E> tx_;
  Receiver<E> rx_;
};

weft_chan* make_chan(std::size_t size, std::size_t cap) {
  if (size <= 8) return new TypedChan<Inline<8>>(size, cap);
  if (size <= 16) return new TypedChan<Inline<16>>(size, cap);
  if (size <= 32) return new TypedChan<Inline<32>>(size, cap);
  if (size <= 64) return new TypedChan<Inline<64>>(size, cap);
  if (size <= 128) return new TypedChan<Inline<128>>(size, cap);
  if (size <= kMaxInline) return new TypedChan<Inline<kMaxInline>>(size, cap);
  return new TypedChan<Boxed>(size, cap);
}

bool valid_elem(const weft_chan* c, const void* elem) noexcept {
  return elem != nullptr || c->elem_size == 0;
}

constexpr std::size_t kMaxCases = 65536;

// Room for the ops and slots of a small select on the caller's stack;
// larger ones take one heap block.
constexpr std::size_t kInlineCases = 8;
constexpr std::size_t kInlineSlotBytes = 1024;

}  // namespace
}  // namespace weft::capi

using weft::capi::guarded;

extern "C" {

int weft_chan_new(size_t elem_size, size_t capacity, weft_chan** out) {
  if (out == nullptr) return -EINVAL;
  *out = nullptr;
  if (elem_size > weft::capi::kMaxElemSize) {
    weft::capi::set_last_error("weft: weft_chan_new: elem_size is above 1 GiB");
    return -EINVAL;
  }
  return guarded([&] {
    *out = weft::capi::make_chan(elem_size, capacity);
    return 0;
  });
}

int weft_chan_send(weft_chan* c, const void* elem, int64_t timeout_ns) {
  if (c == nullptr || !weft::capi::valid_elem(c, elem) || !weft::capi::valid_timeout(timeout_ns))
    return -EINVAL;
  if (c->word && timeout_ns < 0) {  // a word, no timeout: the hot path, all inline
    return guarded([&] { return weft::capi::send_as<weft::capi::Word>(c->core, elem, 8, -1); });
  }
  return guarded([&] { return c->send(elem, timeout_ns); });
}

int weft_chan_recv(weft_chan* c, void* elem_out, int64_t timeout_ns) {
  if (c == nullptr || !weft::capi::valid_elem(c, elem_out) ||
      !weft::capi::valid_timeout(timeout_ns))
    return -EINVAL;
  if (c->word && timeout_ns < 0) {
    return guarded([&] { return weft::capi::recv_as<weft::capi::Word>(c->core, elem_out, 8, -1); });
  }
  return guarded([&] { return c->recv(elem_out, timeout_ns); });
}

void weft_chan_close(weft_chan* c) {
  if (c != nullptr) c->close();
}

void weft_chan_free(weft_chan* c) {
  if (c == nullptr) return;
  c->close();
  delete c;
}

size_t weft_chan_len(const weft_chan* c) {
  return c != nullptr ? c->len() : 0;
}

size_t weft_chan_capacity(const weft_chan* c) {
  return c != nullptr ? c->capacity : 0;
}

int weft_chan_is_closed(const weft_chan* c) {
  return c != nullptr && c->is_closed() ? 1 : 0;
}

int weft_select(weft_select_case* cases, size_t n, int64_t timeout_ns, size_t* fired) {
  using weft::detail::SelectOp;
  if (cases == nullptr || fired == nullptr || n == 0 || n > weft::capi::kMaxCases ||
      !weft::capi::valid_timeout(timeout_ns)) {
    return -EINVAL;
  }
  std::size_t enabled = 0, slot_bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    const weft_select_case& c = cases[i];
    if (c.op != WEFT_SELECT_RECV && c.op != WEFT_SELECT_SEND) return -EINVAL;
    if (c.chan == nullptr) continue;
    if (!weft::capi::valid_elem(c.chan, c.elem)) return -EINVAL;
    ++enabled;
    slot_bytes += c.chan->slot_size();
  }
  if (enabled == 0 && timeout_ns < 0) {
    weft::capi::set_last_error("weft: weft_select: every case is disabled and there is no timeout");
    return -EINVAL;
  }
  return guarded([&] {
    SelectOp ops_inline[weft::capi::kInlineCases];
    alignas(16) unsigned char slots_inline[weft::capi::kInlineSlotBytes];
    std::unique_ptr<SelectOp[]> ops_heap;
    // operator new[] aligns to __STDCPP_DEFAULT_NEW_ALIGNMENT__ (16 on the
    // targets weft builds for), as every slot needs.
    std::unique_ptr<unsigned char[]> slots_heap;
    static_assert(__STDCPP_DEFAULT_NEW_ALIGNMENT__ >= 16);
    SelectOp* ops = ops_inline;
    unsigned char* slots = slots_inline;
    if (n > weft::capi::kInlineCases) {
      ops_heap = std::make_unique<SelectOp[]>(n);
      ops = ops_heap.get();
    }
    if (slot_bytes > sizeof slots_inline) {
      slots_heap = std::make_unique<unsigned char[]>(slot_bytes);
      slots = slots_heap.get();
    }

    // Build every enabled case's slot; on failure, undo what was built.
    std::size_t built = 0;  // cases [0, built) are prepared
    auto finish_all = [&](std::size_t winner) noexcept {
      std::size_t off = 0;
      for (std::size_t i = 0; i < built; ++i) {
        if (cases[i].chan == nullptr) continue;
        cases[i].chan->finish(slots + off, cases[i], i == winner);
        off += cases[i].chan->slot_size();
      }
    };
    try {
      std::size_t off = 0;
      for (; built < n; ++built) {
        weft_select_case& c = cases[built];
        ops[built] = SelectOp{};
        if (c.chan == nullptr) continue;
        c.chan->prepare(ops[built], slots + off, c);
        off += c.chan->slot_size();
      }
    } catch (...) {
      finish_all(n);
      throw;
    }

    std::size_t r;
    try {
      const std::int64_t deadline =
          timeout_ns > 0 ? weft::capi::deadline_after(timeout_ns).ns() : -1;
      r = weft::detail::select_impl(ops, n, timeout_ns == 0, deadline);
    } catch (...) {
      finish_all(n);
      throw;
    }
    finish_all(r);
    if (r < n) {
      *fired = r;
      cases[r].result = ops[r].closed ? -EPIPE : 0;
      return 0;
    }
    if (r == n) return -EAGAIN;         // nothing ready, and timeout 0
    if (r == n + 1) return -ETIMEDOUT;  // the deadline
    return -EINVAL;                     // select_all_closed: no case enabled
  });
}

}  // extern "C"
