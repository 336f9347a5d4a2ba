// The channel core's layout, shared by the plain operations (chan_core.cpp)
// and select (select.cpp). docs/design/channels.md describes the protocol.
//
// Invariants, all under `lock`:
//   * receivers waiting (a live node in `receivers`) => the buffer is empty;
//   * senders waiting => the buffer is full (or capacity 0);
//   * closed => no node is linked in either queue, and nothing is ever
//     pushed again; receivers drain what is buffered.
#pragma once

#include <atomic>
#include <cstddef>

#include "base/spinlock.hpp"
#include "sync/wait_list.hpp"
#include "weft/detail/chan_core.hpp"

namespace weft::detail {

struct ChanCore {
  ChanCore(const ValueOps* o, std::size_t cap, bool unb) noexcept
      : ops(o), capacity(unb ? SIZE_MAX : cap), unbounded(unb) {}

  const ValueOps* const ops;
  const std::size_t capacity;  // SIZE_MAX when unbounded
  const bool unbounded;

  mutable SpinLock lock;  // mutable: const queries (size, is_closed) take it
  bool closed WEFT_GUARDED_BY(lock) = false;
  // Blocked sends left until the next one is timed for
  // weft_channel_send_blocked_duration_seconds (one in
  // obs::Shard::sample_period() per channel; the first is timed). Per
  // channel, under the lock the send holds anyway: a per-thread countdown
  // cost a TLS lookup per blocked send (docs/benchmarks.md, series O3).
  std::uint32_t send_sample_left WEFT_GUARDED_BY(lock) = 1;
  // `count` buffered values. Bounded channels: a ring of `slots` slots of
  // ops->size bytes (a power of two) from `head`, doubled on demand up to
  // the capacity. Unbounded channels: a list of fixed-size blocks, so a
  // growing buffer never moves what it holds (no O(n) copy under the lock).
  unsigned char* buf WEFT_GUARDED_BY(lock) = nullptr;
  std::size_t slots WEFT_GUARDED_BY(lock) = 0;
  std::size_t head WEFT_GUARDED_BY(lock) = 0;
  std::size_t count WEFT_GUARDED_BY(lock) = 0;
  struct Block {
    Block* next = nullptr;
    std::size_t begin = 0;  // first live slot
    std::size_t end = 0;    // one past the last live slot
  };
  Block* first WEFT_GUARDED_BY(lock) = nullptr;  // unbounded: values in first..last
  Block* last WEFT_GUARDED_BY(lock) = nullptr;
  Block* spare WEFT_GUARDED_BY(lock) = nullptr;  // one emptied block kept for reuse
  WaitList senders WEFT_GUARDED_BY(lock);        // nodes: slot = the T to move from
  WaitList receivers WEFT_GUARDED_BY(lock);      // nodes: slot = the std::optional<T> to fill

  std::atomic<std::size_t> sender_refs{1};
  std::atomic<std::size_t> receiver_refs{1};
  // All handles; a handle's side is dropped (and may close) before this, so
  // the last one out frees the core after every close has finished.
  std::atomic<std::size_t> refs{2};

  /// Unbounded: values per block, and where slot i of block b is.
  static constexpr std::size_t kBlockSlots = 32;
  static std::size_t block_header(const ValueOps* o) noexcept {
    return (sizeof(Block) + o->align - 1) / o->align * o->align;
  }
  static void* block_slot(const ValueOps* o, Block* b, std::size_t i) noexcept {
    return reinterpret_cast<unsigned char*>(b) + block_header(o) + i * o->size;
  }
  /// Bounded: where the i-th buffered value lives.
  void* slot_at(std::size_t i) const noexcept WEFT_REQUIRES(lock) {
    return buf + ((head + i) & (slots - 1)) * ops->size;
  }
  bool has_space() const noexcept WEFT_REQUIRES(lock) { return count < capacity; }
  /// Moves the T at src to the back. Precondition: has_space().
  /// @throws std::bad_alloc if the ring must grow and cannot (nothing moved).
  void push_back(void* src) WEFT_REQUIRES(lock);
  /// Moves the front value into the std::optional<T> at dst. count > 0.
  void pop_front(void* dst) noexcept WEFT_REQUIRES(lock);
};

/// True if a node in `l` could be claimed now by someone other than `self`.
inline bool has_live_other(const WaitList& l, const Waiter* self) noexcept {
  for (const WaitNode* n = l.head; n != nullptr; n = n->next) {
    if (n->waiter != self && n->waiter->result() == Waiter::kWaiting) return true;
  }
  return false;
}

}  // namespace weft::detail
