// WaitNode: one blocked operation in a primitive's wait queue, and the list
// operations on weft/detail/wait_list.hpp's WaitList. Every channel and sync
// primitive queues its waiters with these; all of them run under the owning
// primitive's lock.
//
// A node lives on the waiting fiber's (or thread's) stack next to its Waiter.
// Protocol (docs/design/parking.md): a waker that finds a node claims its
// Waiter (one CAS; losing means a timeout, a cancellation or another select
// case won), writes its result into the node, unlinks it and completes the
// Waiter. The waiting side, whatever woke it, relocks the primitive and
// unlinks its node if it is still linked before returning.
#pragma once

#include <cstdint>

#include "base/spinlock.hpp"
#include "sched/waiter.hpp"
#include "weft/detail/wait_list.hpp"
#include "weft/errors.hpp"

namespace weft::detail {

struct WaitNode {
  explicit WaitNode(Waiter* w) noexcept : waiter(w) {}
  WaitNode(const WaitNode&) = delete;
  WaitNode& operator=(const WaitNode&) = delete;

  Waiter* const waiter;
  WaitNode* prev = nullptr;
  WaitNode* next = nullptr;
  bool linked = false;

  // Written by the claimer before complete(), read by the waiter after.
  bool granted = false;  // the operation completed for this node (value moved, lock handed over)
  bool closed = false;   // channel: completed because the channel closed

  // Primitive-specific request data, set before linking.
  void* slot = nullptr;       // channel: the value to send / the optional to receive into
  std::int64_t count = 0;     // semaphore: permits wanted; rwlock: 1 = writer, 0 = reader
  std::int64_t since_ns = 0;  // mutex: when the waiter first queued (starvation guard)
};

inline bool empty(const WaitList& l) noexcept {
  return l.head == nullptr;
}

inline void push_back(WaitList& l, WaitNode* n) noexcept {
  n->next = nullptr;
  n->prev = l.tail;
  if (l.tail != nullptr) {
    l.tail->next = n;
  } else {
    l.head = n;
  }
  l.tail = n;
  n->linked = true;
}

inline void push_front(WaitList& l, WaitNode* n) noexcept {
  n->prev = nullptr;
  n->next = l.head;
  if (l.head != nullptr) {
    l.head->prev = n;
  } else {
    l.tail = n;
  }
  l.head = n;
  n->linked = true;
}

/// Unlinks n if it is linked. Returns whether it was.
inline bool remove(WaitList& l, WaitNode* n) noexcept {
  if (!n->linked) return false;
  if (n->prev != nullptr) {
    n->prev->next = n->next;
  } else {
    l.head = n->next;
  }
  if (n->next != nullptr) {
    n->next->prev = n->prev;
  } else {
    l.tail = n->prev;
  }
  n->prev = n->next = nullptr;
  n->linked = false;
  return true;
}

/// Unlinks and returns the first node whose Waiter this call claims; nodes
/// whose Waiter was already won elsewhere are unlinked and skipped (their
/// owners find them unlinked). nullptr if none. The caller must complete()
/// the returned node's Waiter.
inline WaitNode* claim_front(WaitList& l) noexcept {
  while (WaitNode* n = l.head) {
    remove(l, n);
    if (n->waiter->claim()) return n;
  }
  return nullptr;
}

/// Unlinks and returns the first node whose Waiter can be claimed, without
/// claiming it, after dropping the dead ones; for waiters whose request must
/// be examined first (semaphore). nullptr if none.
inline WaitNode* first_live(WaitList& l) noexcept {
  while (WaitNode* n = l.head) {
    if (n->waiter->result() == Waiter::kWaiting) return n;
    remove(l, n);
  }
  return nullptr;
}

/// Claims, grants and completes every node (closing, releasing all).
/// `closed` is recorded in each node. Fibers made runnable go to *woken if
/// given (a driver's reactor: sched/driver.hpp), else are unparked. Returns
/// how many were woken.
inline std::size_t grant_all(WaitList& l, bool closed = false,
                             FiberList* woken = nullptr) noexcept {
  std::size_t n_woken = 0;
  while (WaitNode* n = claim_front(l)) {
    n->granted = true;
    n->closed = closed;
    if (woken != nullptr) {
      n->waiter->complete(Waiter::kNotified, *woken);
    } else {
      n->waiter->complete(Waiter::kNotified);
    }
    ++n_woken;
  }
  return n_woken;
}

/// Claims the first claimable node, marks it granted and completes it.
/// Returns false if there was none.
inline bool grant_one(WaitList& l) noexcept {
  WaitNode* n = claim_front(l);
  if (n == nullptr) return false;
  n->granted = true;
  n->waiter->complete(Waiter::kNotified);
  return true;
}

/// The waiting half shared by every primitive. Precondition: `lock` held and
/// `n` filled in. Links n at the back (or front), releases the lock and
/// waits. If no claimer completed the node (timeout, cancellation), relocks,
/// unlinks n if still linked, runs on_abandon() under the lock (a primitive's
/// clean-up: withdraw an arrival, admit the waiters behind) and unlocks.
/// Returns the Waiter's result; the lock is not held on return.
template <class OnAbandon>
Waiter::Result wait_queued(SpinLock& lock, WaitList& l, WaitNode& n, std::int64_t deadline_ns,
                           OnAbandon on_abandon, bool front = false, bool cancellable = true)
    WEFT_RELEASE(lock) {
  if (front) {
    push_front(l, &n);
  } else {
    push_back(l, &n);
  }
  lock.unlock();
  const Waiter::Result r = n.waiter->wait(deadline_ns, cancellable);
  if (r != Waiter::kNotified) {
    LockGuard g(lock);
    remove(l, &n);
    on_abandon();
  }
  return r;
}

/// wait_queued() without clean-up.
inline Waiter::Result wait_queued(SpinLock& lock, WaitList& l, WaitNode& n,
                                  std::int64_t deadline_ns) WEFT_RELEASE(lock) {
  return wait_queued(lock, l, n, deadline_ns, [] {});
}

/// wait_queued() for a blocking operation of a synchronisation primitive
/// (not for the reactor's or signals' waits, which use wait_queued): a
/// cancellable wait without a deadline gets the runtime's default operation
/// timeout (Config::default_operation_timeout), whose expiry throws
/// weft::TimedOut once the clean-up is done - the operation has no
/// timed-out result of its own to return. Non-cancellable waits (clean-up
/// code) never get it.
template <class OnAbandon>
Waiter::Result wait_queued_op(SpinLock& lock, WaitList& l, WaitNode& n, std::int64_t deadline_ns,
                              OnAbandon on_abandon, bool front = false, bool cancellable = true)
    WEFT_RELEASE(lock) {
  const EffectiveDeadline d = cancellable ? effective_deadline(deadline_ns, TimeoutKind::operation)
                                          : EffectiveDeadline{deadline_ns, false};
  const Waiter::Result r = wait_queued(lock, l, n, d.ns, on_abandon, front, cancellable);
  if (r == Waiter::kTimedOut && d.from_default) throw TimedOut();
  return r;
}

/// Maps a non-notified wait outcome: throws Cancelled for kCancelled,
/// returns false for kTimedOut.
inline bool abandoned(Waiter::Result r) {
  if (r == Waiter::kCancelled) throw Cancelled();
  return false;
}

/// Waits on `l` for a grant without request data (events, counters) of the
/// primitive at `primitive` (what a fiber dump names as its event).
/// Precondition: `lock` held; it is released. True if granted, false on
/// timeout. @throws weft::Cancelled if the fiber is cancelled; weft::TimedOut
/// if the default operation timeout ran out (wait_queued_op).
inline bool wait_for_grant(SpinLock& lock, WaitList& l, std::int64_t deadline_ns,
                           const void* primitive) WEFT_RELEASE(lock) {
  Waiter w(WaitReason::event, reinterpret_cast<std::uintptr_t>(primitive));
  WaitNode n(&w);
  const Waiter::Result r = wait_queued_op(lock, l, n, deadline_ns, [] {});
  return r == Waiter::kNotified || abandoned(r);
}

}  // namespace weft::detail
