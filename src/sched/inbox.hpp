// Inbox: a worker's multi-producer, single-consumer queue of runnable
// fibers, under Strategy::thread_per_core (docs/design/scheduler.md,
// "Thread per core").
//
// Problem. Under thread_per_core a fiber runs only on its home worker, so
// a spawn from a plain thread, or a wake-up made on another worker or on a
// blocking-pool thread, must hand the fiber to one given worker. The
// worker's Chase-Lev deques accept pushes only from their owner, and the
// runtime's injector is shared by every worker (any of them may take what
// is in it): neither fits.
//
// Rejected: a spinlocked FIFO per worker (the injector's shape): a
// producer preempted while holding the lock stalls the owner's drain.
// Vyukov's intrusive MPSC queue (1024cores.net, "Intrusive MPSC node-based
// queue"): FIFO and wait-free for producers, but it needs a stub node per
// queue and its consumer can see a "producer in the middle of a push"
// state, in which it must either spin or come back later; that state would
// need its own wake-up rule in the sleep protocol.
//
// Chosen: the lock-free LIFO push with a take-all pop of the Linux
// kernel's llist (include/linux/llist.h: llist_add, llist_del_all,
// llist_reverse_order), a Treiber stack (R. K. Treiber, "Systems
// programming: coping with parallelism", IBM RJ 5118, 1986) whose consumer
// only ever detaches the whole list with one exchange. Producers CAS the
// head; there is no per-node pop, hence no ABA problem and no
// half-finished state: a fiber is either in the list or not. The owner
// reverses what it took, so fibers come out in push order. Intrusive
// through Fiber::next: a fiber in an inbox is on no other list (fiber.hpp).
#pragma once

#include <atomic>

#include "fiber/fiber.hpp"
#include "fiber/fiber_list.hpp"

namespace weft::detail {

class Inbox {
 public:
  Inbox() noexcept = default;
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  /// Any thread: adds f (runnable, on no other list). seq_cst: the push is
  /// the first half of the Dekker pair with the owner's sleep (Worker::post
  /// then reads the owner's sleeping flag; the owner stores that flag, then
  /// reads empty()): in the single total order of seq_cst operations either
  /// the owner's re-check sees this push or the producer sees the owner
  /// asleep and wakes it. The CAS's release also publishes f->next and
  /// everything the producer wrote before (the fiber's waiter result) to
  /// the owner's exchange in take_all.
  void push(Fiber* f) noexcept {
    Fiber* head = head_.load(std::memory_order_relaxed);
    do {
      f->next = head;
    } while (!head_.compare_exchange_weak(head, f, std::memory_order_seq_cst,
                                          std::memory_order_relaxed));
  }

  /// Any thread (a hint, except for the owner's re-check in
  /// Worker::sleep): true if nothing was pushed since the last take_all.
  /// seq_cst: the second half of the Dekker pair (see push).
  bool empty() const noexcept { return head_.load(std::memory_order_seq_cst) == nullptr; }

  /// Owner only: moves every fiber pushed so far to the back of `out`,
  /// oldest push first. acquire: pairs with the release of push's CAS, so
  /// the fibers' links and their producers' writes are visible; with every
  /// producer's, not only the last one's, since each push is an RMW and so
  /// continues the release sequence of the pushes before it. The relaxed
  /// pre-check may read a stale null: that only leaves the push for the
  /// next drain, and the owner never sleeps on it (its re-check before
  /// sleeping is the seq_cst empty()).
  void take_all(FiberList& out) noexcept {
    if (head_.load(std::memory_order_relaxed) == nullptr) return;
    Fiber* f = head_.exchange(nullptr, std::memory_order_acquire);
    // Newest first as taken: reverse (llist_reverse_order).
    Fiber* reversed = nullptr;
    while (f != nullptr) {
      Fiber* next = f->next;
      f->next = reversed;
      reversed = f;
      f = next;
    }
    while (reversed != nullptr) {
      Fiber* next = reversed->next;
      out.push_back(reversed);
      reversed = next;
    }
  }

 private:
  // The newest pushed fiber, linked to older ones through Fiber::next.
  std::atomic<Fiber*> head_{nullptr};
};

}  // namespace weft::detail
