// select over channel operations: crossbeam-channel's protocol on weft's
// Waiter (select.hpp has the summary, docs/design/channels.md the details).
#include "weft/select.hpp"

#include <cstdint>
#include <ctime>
#include <memory>
#include <new>
#include <vector>

#include "chan/chan_core.hpp"
#include "weft/errors.hpp"

namespace weft::detail {
namespace {

/// Per-thread xorshift64*; not cached across switches (reached through this
/// out-of-line function on every call, per the TLS hazard in DESIGN.md).
[[gnu::noinline]] std::uint64_t next_random() noexcept {
  thread_local std::uint64_t state = 0;
  if (state == 0) {
    state = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&state)) ^
            static_cast<std::uint64_t>(std::time(nullptr)) ^ 0x9e3779b97f4a7c15ULL;
    if (state == 0) state = 1;
  }
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545f4914f6cdd1dULL;
}

/// A random permutation of 0..n-1 (Fisher-Yates), Go's pollorder.
void shuffle(std::uint32_t* order, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<std::uint32_t>(i);
  for (std::size_t i = n; i > 1; --i) {
    const std::size_t j = next_random() % i;
    std::swap(order[i - 1], order[j]);
  }
}

enum class Poll { done, not_ready, disabled };

/// Tries op without waiting. done: it completed (op.closed says whether by
/// closure); disabled: its channel is closed and the case does not fire on
/// closure.
Poll poll(SelectOp& op) {
  const ChannelStatus s =
      op.is_send ? chan_send(op.chan, op.slot, false, -1) : chan_recv(op.chan, op.slot, false, -1);
  if (s == ChannelStatus::ok) {
    op.closed = false;
    return Poll::done;
  }
  if (s == ChannelStatus::closed) {
    if (!op.fire_on_closed) return Poll::disabled;
    op.closed = true;
    return Poll::done;
  }
  return Poll::not_ready;
}

/// Under c's lock: could a send (is_send) or receive on c complete now, by
/// someone else than `self`?
bool ready_locked(const ChanCore* c, bool is_send, const Waiter* self) noexcept
    WEFT_REQUIRES(c->lock) {
  if (c->closed) return true;  // fires or is disabled: either way, poll again
  if (is_send) return has_live_other(c->receivers, self) || c->has_space();
  return c->count > 0 || has_live_other(c->senders, self);
}

}  // namespace

std::size_t select_impl(SelectOp* ops, std::size_t n, bool has_default,
                        const std::int64_t own_deadline_ns) {
  constexpr std::size_t kInline = 16;
  std::uint32_t order_inline[kInline];
  std::vector<std::uint32_t> order_heap;
  std::uint32_t* order = order_inline;
  if (n > kInline) {
    order_heap.resize(n);
    order = order_heap.data();
  }
  // Nodes: one per op, all sharing one Waiter per blocking attempt.
  alignas(WaitNode) unsigned char nodes_inline[kInline * sizeof(WaitNode)];
  std::vector<unsigned char> nodes_heap;
  unsigned char* node_mem = nodes_inline;
  if (n > kInline) {
    nodes_heap.resize(n * sizeof(WaitNode) + alignof(WaitNode));
    void* p = nodes_heap.data();
    std::size_t space = nodes_heap.size();
    node_mem =
        static_cast<unsigned char*>(std::align(alignof(WaitNode), n * sizeof(WaitNode), p, space));
  }
  auto node = [&](std::size_t i) {
    return std::launder(reinterpret_cast<WaitNode*>(node_mem + i * sizeof(WaitNode)));
  };

  // The deadline to wait with: the caller's, or the runtime's default
  // operation timeout, taken when the select first has to wait.
  EffectiveDeadline deadline{own_deadline_ns, false};
  bool deadline_taken = false;
  for (;;) {
    // 1. Poll in a random order: the first ready case wins (fairness).
    shuffle(order, n);
    std::size_t enabled = 0;
    for (std::size_t k = 0; k < n; ++k) {
      SelectOp& op = ops[order[k]];
      if (op.chan == nullptr) continue;  // disabled by closure in an earlier round
      switch (poll(op)) {
        case Poll::done:
          return order[k];
        case Poll::not_ready:
          ++enabled;
          break;
        case Poll::disabled:
          op.chan = nullptr;
          break;  // closed: never again this select
      }
    }
    if (has_default) return n;
    if (enabled == 0 && own_deadline_ns < 0) return select_all_closed;
    if (!deadline_taken) {
      deadline = effective_deadline(own_deadline_ns, TimeoutKind::operation);
      deadline_taken = true;
    }
    if (deadline.ns >= 0 && monotonic_ns() >= deadline.ns) {
      if (deadline.from_default) throw TimedOut();
      return n + 1;
    }

    // 2. Register one node per enabled op, in a random order.
    Waiter w(WaitReason::select, n);
    std::size_t registered = 0;  // ops order[0..registered) have a node built
    bool aborted = false;
    shuffle(order, n);
    for (std::size_t k = 0; k < n; ++k) {
      SelectOp& op = ops[order[k]];
      WaitNode* nd = ::new (node_mem + order[k] * sizeof(WaitNode)) WaitNode(&w);
      ++registered;
      if (op.chan == nullptr) continue;  // disabled: the node stays unlinked
      nd->slot = op.slot;
      ChanCore* c = op.chan;
      c->lock.lock();
      if (ready_locked(c, op.is_send, &w)) {
        c->lock.unlock();
        aborted = true;
        break;
      }
      push_back(op.is_send ? c->senders : c->receivers, nd);
      c->lock.unlock();
    }

    Waiter::Result r;
    if (aborted && w.claim()) {
      // Nobody has won us: abort this attempt (no unpark will come).
      r = Waiter::kClaimed;
    } else {
      // All registered, or a counterpart already claimed us: wait consumes
      // the winner's unpark (or times out / is cancelled).
      r = w.wait(deadline.ns);
    }

    // 3. Unlink every node that is still linked; find the one that fired.
    std::size_t fired = n;
    for (std::size_t k = 0; k < registered; ++k) {
      const std::size_t i = order[k];
      WaitNode* nd = node(i);
      // A granted node was unlinked by its claimer before complete(), whose
      // release our wait() acquired: no lock needed to know that.
      if (ops[i].chan != nullptr && !nd->granted) {
        ChanCore* c = ops[i].chan;
        LockGuard g(c->lock);
        remove(ops[i].is_send ? c->senders : c->receivers, nd);
      }
      if (nd->granted) {
        fired = i;
        ops[i].closed = nd->closed;
      }
      nd->~WaitNode();
    }

    if (r == Waiter::kNotified) {
      // A counterpart completed ops[fired] (or closed its channel).
      if (fired < n && (!ops[fired].closed || ops[fired].fire_on_closed)) {
        // A counterpart moved the value: this case's send or receive
        // happened. The counterpart counted it (chan_core.cpp,
        // count_handoff), as chan_send/chan_recv count the polled ones.
        return fired;
      }
      continue;  // closed under a case that is disabled by closure: poll again
    }
    if (r == Waiter::kTimedOut) {
      if (deadline.from_default) throw TimedOut();  // select() without a timeout case
      return n + 1;
    }
    if (r == Waiter::kCancelled) throw Cancelled();
    // Self-aborted: a case turned ready while registering; poll again.
  }
}

}  // namespace weft::detail
