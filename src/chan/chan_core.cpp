// Channel operations: see chan_core.hpp for the invariants and
// docs/design/channels.md for the hand-off protocol.
#include "chan/chan_core.hpp"

#include <new>
#include <utility>

#include "obs/metrics.hpp"
#include "sched/waiter.hpp"
#include "weft/errors.hpp"

namespace weft {

const char* to_string(ChannelStatus s) noexcept {
  switch (s) {
    case ChannelStatus::ok:
      return "ok";
    case ChannelStatus::full:
      return "full";
    case ChannelStatus::empty:
      return "empty";
    case ChannelStatus::closed:
      return "closed";
    case ChannelStatus::timed_out:
      return "timed_out";
  }
  return "unknown";
}

namespace detail {
namespace {

constexpr std::size_t kFirstSlots = 16;

void* alloc_slots(const ValueOps* ops, std::size_t n) {
  if (n > SIZE_MAX / ops->size) throw std::bad_alloc();
  void* p = ::operator new(n * ops->size, std::align_val_t(ops->align));
  obs::add(obs::Counter::chan_buffer_alloc_bytes, n * ops->size);
  return p;
}

void free_slots(const ValueOps* ops, void* p, std::size_t n) noexcept {
  ::operator delete(p, std::align_val_t(ops->align));
  obs::add(obs::Counter::chan_buffer_free_bytes, n * ops->size);
}

std::align_val_t block_align(const ValueOps* ops) noexcept {
  return std::align_val_t(ops->align > alignof(ChanCore::Block) ? ops->align
                                                                : alignof(ChanCore::Block));
}

std::size_t block_bytes(const ValueOps* ops) noexcept {
  return ChanCore::block_header(ops) + ChanCore::kBlockSlots * ops->size;
}

/// An unbounded channel's block: allocated and freed only here, so that
/// weft_memory_channel_buffer_bytes sees every one.
ChanCore::Block* alloc_block(const ValueOps* ops) {
  void* p = ::operator new(block_bytes(ops), block_align(ops));
  obs::add(obs::Counter::chan_buffer_alloc_bytes, block_bytes(ops));
  return static_cast<ChanCore::Block*>(p);
}

void free_block(const ValueOps* ops, ChanCore::Block* b) noexcept {
  ::operator delete(b, block_align(ops));
  obs::add(obs::Counter::chan_buffer_free_bytes, block_bytes(ops));
}

/// A detached buffer: destroyed outside the channel lock, since a value's
/// destructor may do anything, even block.
struct DetachedBuffer {
  const ValueOps* ops;
  unsigned char* buf;
  std::size_t slots, head, count;
  ChanCore::Block* first;
  ChanCore::Block* spare;
  ~DetachedBuffer() {
    // Values dropped unreceived leave the buffer too (the depth gauge).
    if (count != 0) obs::add(obs::Counter::chan_buffered_out, count);
    if (buf != nullptr) {
      for (std::size_t i = 0; i < count; ++i) {
        ops->destroy(buf + ((head + i) & (slots - 1)) * ops->size);
      }
      free_slots(ops, buf, slots);
    }
    for (ChanCore::Block* b = first; b != nullptr;) {
      ChanCore::Block* next = b->next;
      for (std::size_t i = b->begin; i < b->end; ++i) ops->destroy(ChanCore::block_slot(ops, b, i));
      free_block(ops, b);
      b = next;
    }
    if (spare != nullptr) free_block(ops, spare);
  }
};

DetachedBuffer detach_buffer(ChanCore* c) noexcept WEFT_REQUIRES(c->lock) {
  DetachedBuffer r{c->ops, c->buf, c->slots, c->head, c->count, c->first, c->spare};
  c->buf = nullptr;
  c->slots = c->head = c->count = 0;
  c->first = c->last = c->spare = nullptr;
  return r;
}

/// detach_buffer() by the last reference: nobody else can reach c, so its
/// lock is not needed (the analysis cannot know that).
DetachedBuffer detach_last_buffer(ChanCore* c) noexcept WEFT_NO_THREAD_SAFETY_ANALYSIS {
  return detach_buffer(c);
}

/// Marks the channel closed and completes every blocked operation with
/// closed.
void close_locked(ChanCore* c) noexcept WEFT_REQUIRES(c->lock) {
  if (c->closed) return;
  c->closed = true;
  grant_all(c->receivers, true);
  grant_all(c->senders, true);
}

/// weft_channel_send_total and weft_channel_recv_total for a value that
/// passed from a sender to a receiver of which one waited in a wait list
/// (a plain operation or a select case) and the other, the caller, claimed
/// its node: the caller counts both in its shard, one TLS lookup instead of
/// one per side (docs/benchmarks.md, series O3). The waiting side counts
/// nothing when it wakes: a claimed node with a value always ends its
/// operation ok (wait_node, select's fired case), so the count is exact;
/// and it is published before the waiter wakes.
void count_handoff(obs::Shard& m) noexcept {
  m.add(obs::Counter::chan_send);
  m.add(obs::Counter::chan_recv);
}

/// The waiting half of a blocking send/recv: `n` is linked and c->lock held.
/// Releases the lock, waits, cleans up, and maps the outcome.
ChannelStatus wait_node(ChanCore* c, WaitList& q, WaitNode& n, std::int64_t deadline_ns)
    WEFT_RELEASE(c->lock) {
  c->lock.unlock();
  const EffectiveDeadline d = effective_deadline(deadline_ns, TimeoutKind::operation);
  const Waiter::Result r = n.waiter->wait(d.ns);
  if (r == Waiter::kNotified) {
    // The claimer unlinked the node and filled it before completing.
    return n.closed ? ChannelStatus::closed : ChannelStatus::ok;
  }
  {
    LockGuard g(c->lock);
    remove(q, &n);
  }
  if (r == Waiter::kCancelled) throw Cancelled();
  if (d.from_default) throw TimedOut();  // the caller has no timed_out to expect
  return ChannelStatus::timed_out;
}

}  // namespace

void ChanCore::push_back(void* src) {
  if (unbounded) {
    if (last == nullptr || last->end == kBlockSlots) {
      Block* b = std::exchange(spare, nullptr);
      if (b == nullptr) b = alloc_block(ops);
      ::new (b) Block();
      if (last != nullptr) {
        last->next = b;
      } else {
        first = b;
      }
      last = b;
    }
    ops->move_construct(block_slot(ops, last, last->end), src);
    ++last->end;
    ++count;
    obs::add(obs::Counter::chan_buffered_in);
    return;
  }
  if (count == slots) {
    std::size_t grown = slots == 0 ? kFirstSlots : slots * 2;
    auto* fresh = static_cast<unsigned char*>(alloc_slots(ops, grown));
    for (std::size_t i = 0; i < count; ++i) {
      void* from = slot_at(i);
      ops->move_construct(fresh + i * ops->size, from);
      ops->destroy(from);
    }
    if (buf != nullptr) free_slots(ops, buf, slots);
    buf = fresh;
    slots = grown;
    head = 0;
  }
  ops->move_construct(slot_at(count), src);
  ++count;
  obs::add(obs::Counter::chan_buffered_in);
}

void ChanCore::pop_front(void* dst) noexcept {
  obs::add(obs::Counter::chan_buffered_out);
  if (unbounded) {
    Block* b = first;
    void* front = block_slot(ops, b, b->begin);
    ops->move_to_optional(dst, front);
    ops->destroy(front);
    ++b->begin;
    --count;
    if (b->begin == b->end) {
      if (b == last) {
        b->begin = b->end = 0;  // keep the only block for the next push
      } else {
        first = b->next;
        if (spare == nullptr) {
          spare = b;
        } else {
          free_block(ops, b);
        }
      }
    }
    return;
  }
  void* front = slot_at(0);
  ops->move_to_optional(dst, front);
  ops->destroy(front);
  head = (head + 1) & (slots - 1);
  --count;
}

ChanCore* chan_create(const ValueOps* ops, std::size_t capacity, bool unbounded) {
  return new ChanCore(ops, capacity, unbounded);
}

void chan_retain(ChanCore* c, bool is_sender) noexcept {
  // relaxed: a new handle is made from an existing one, which keeps the
  // core alive (as shared_ptr's copy does).
  (is_sender ? c->sender_refs : c->receiver_refs).fetch_add(1, std::memory_order_relaxed);
  c->refs.fetch_add(1, std::memory_order_relaxed);
}

void chan_release(ChanCore* c, bool is_sender) noexcept {
  // acq_rel: the last handle of a side sees everything the others did
  // before closing, and the freeing thread sees every close.
  if ((is_sender ? c->sender_refs : c->receiver_refs).fetch_sub(1, std::memory_order_acq_rel) ==
      1) {
    if (is_sender) {
      LockGuard g(c->lock);
      close_locked(c);
    } else {
      c->lock.lock();
      close_locked(c);
      DetachedBuffer dropped = detach_buffer(c);  // nobody can receive them any more
      c->lock.unlock();
    }
  }
  if (c->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    { DetachedBuffer rest = detach_last_buffer(c); }
    delete c;
  }
}

ChannelStatus chan_send(ChanCore* c, void* value, bool block, std::int64_t deadline_ns) {
  c->lock.lock();
  if (c->closed) {
    c->lock.unlock();
    return ChannelStatus::closed;
  }
  if (WaitNode* r = claim_front(c->receivers)) {
    // A receiver is waiting, so the buffer is empty: hand the value over
    // directly. The claim keeps the receiver waiting until complete().
    c->lock.unlock();
    c->ops->move_to_optional(r->slot, value);
    r->granted = true;
    count_handoff(obs::local());  // before the receiver can run and read it
    r->waiter->complete(Waiter::kNotified);
    return ChannelStatus::ok;
  }
  if (c->has_space()) {
    try {
      c->push_back(value);
    } catch (...) {
      c->lock.unlock();
      throw;
    }
    c->lock.unlock();
    obs::add(obs::Counter::chan_send);
    return ChannelStatus::ok;
  }
  if (!block) {
    c->lock.unlock();
    return ChannelStatus::full;
  }
  Waiter w(WaitReason::chan_send, reinterpret_cast<std::uintptr_t>(c));
  WaitNode n(&w);
  n.slot = value;
  push_back(c->senders, &n);
  // weft_channel_send_blocked_duration_seconds: one send that waits in
  // sample_period() per channel is timed, whatever its outcome; a
  // cancelled one on the way out. Two clock reads cost as much as a
  // rendezvous between two fibers of one worker (metrics.hpp). The shard
  // is looked up after the wait: the fiber may be on another thread by then.
  struct BlockedTimer {
    std::int64_t t0 = -1;
    ~BlockedTimer() {
      if (__builtin_expect(t0 < 0, 1)) return;
      obs::local().observe(obs::Hist::chan_send_blocked,
                           static_cast<std::uint64_t>(monotonic_ns() - t0));
    }
  } timer;
  if (__builtin_expect(--c->send_sample_left == 0, 0)) {
    c->send_sample_left = obs::Shard::sample_period();
    timer.t0 = monotonic_ns();
  }
  // A send that ends ok was counted by the receiver that took its value
  // (count_handoff).
  return wait_node(c, c->senders, n, deadline_ns);
}

ChannelStatus chan_recv(ChanCore* c, void* dst, bool block, std::int64_t deadline_ns) {
  c->lock.lock();
  if (c->count > 0) {
    c->pop_front(dst);
    // A full buffer may have senders waiting: move the first one's value in.
    if (WaitNode* s = claim_front(c->senders)) {
      c->ops->move_construct(c->slot_at(c->count), s->slot);  // no growth: one slot just freed
      ++c->count;
      c->lock.unlock();
      s->granted = true;
      obs::Shard& m = obs::local();
      m.add(obs::Counter::chan_buffered_in);  // the waiting sender's value
      count_handoff(m);                       // its send, and this receive
      s->waiter->complete(Waiter::kNotified);
      return ChannelStatus::ok;
    }
    c->lock.unlock();
    obs::add(obs::Counter::chan_recv);
    return ChannelStatus::ok;
  }
  if (WaitNode* s = claim_front(c->senders)) {
    // Rendezvous: take the value straight from the waiting sender.
    c->lock.unlock();
    c->ops->move_to_optional(dst, s->slot);
    s->granted = true;
    count_handoff(obs::local());
    s->waiter->complete(Waiter::kNotified);
    return ChannelStatus::ok;
  }
  if (c->closed) {
    c->lock.unlock();
    return ChannelStatus::closed;
  }
  if (!block) {
    c->lock.unlock();
    return ChannelStatus::empty;
  }
  Waiter w(WaitReason::chan_recv, reinterpret_cast<std::uintptr_t>(c));
  WaitNode n(&w);
  n.slot = dst;
  push_back(c->receivers, &n);
  // A receive that ends ok was counted by the sender that handed it the
  // value (count_handoff).
  return wait_node(c, c->receivers, n, deadline_ns);
}

void chan_close(ChanCore* c) noexcept {
  LockGuard g(c->lock);
  close_locked(c);
}

std::size_t chan_size(const ChanCore* c) noexcept {
  LockGuard g(c->lock);
  return c->count;
}

std::size_t chan_capacity(const ChanCore* c) noexcept {
  return c->capacity;
}

bool chan_is_closed(const ChanCore* c) noexcept {
  LockGuard g(c->lock);
  return c->closed;
}

}  // namespace detail
}  // namespace weft
