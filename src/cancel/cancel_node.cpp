// The cancellation tree (weft/detail/cancel_node.hpp; docs/design/cancellation.md).
//
// Locking. Each node has a spinlock guarding its list, its bound fiber and
// its cancelled flag. cancel() holds one node's lock at a time and walks the
// tree with an explicit work list, so a deep tree never deepens the stack
// and callbacks run with no lock held (they may register or remove other
// callbacks, or cancel other nodes). The only nesting is detach(): a node's
// lock, then its parent's (child before parent, never the reverse).
//
// Waking fibers. A cancelled node marks its bound fiber (cancel_requested)
// and pins it; after the whole subtree is marked, one heavy barrier
// (sched/barrier.hpp) orders all the marks against the fibers' waiter
// publications, and the pinned fibers are woken. Cancelling a scope of N
// parked fibers thus costs one membarrier, not N.
#include "weft/detail/cancel_node.hpp"

#include <new>
#include <utility>

#include "fiber/fiber.hpp"
#include "sched/barrier.hpp"
#include "sched/runtime_impl.hpp"

namespace weft::detail {
namespace {

thread_local char tls_thread_marker;

// Identifies the calling thread (not fiber: callbacks never switch).
[[gnu::noinline]] const void* thread_marker() noexcept {
  asm volatile("" ::: "memory");
  return &tls_thread_marker;
}

void push_front(CancelLink*& head, CancelLink* l) noexcept {
  l->prev = nullptr;
  l->next = head;
  if (head != nullptr) head->prev = l;
  head = l;
  l->linked = true;
}

void unlink(CancelLink*& head, CancelLink* l) noexcept {
  if (l->prev != nullptr) {
    l->prev->next = l->next;
  } else {
    head = l->next;
  }
  if (l->next != nullptr) l->next->prev = l->prev;
  l->prev = l->next = nullptr;
  l->linked = false;
}

}  // namespace

// Fibers marked cancelled whose wake-up is pending. add() runs under the
// bound node's lock (the fiber cannot end meanwhile: it unbinds under that
// lock) and pins the fiber so that it stays valid until flush().
class CancelBatch {
 public:
  CancelBatch() = default;
  CancelBatch(const CancelBatch&) = delete;
  CancelBatch& operator=(const CancelBatch&) = delete;
  ~CancelBatch() { flush(); }

  void add(Fiber* f) noexcept {
    f->cancel_requested.store(true, std::memory_order_relaxed);
    if (n_ == kMax) {
      // Full (flushed between nodes only, never under a lock that a woken
      // fiber might need): wake this one on its own.
      heavy_barrier();
      RuntimeImpl::wake_cancelled(f);
      return;
    }
    f->cancel_pins.fetch_add(1, std::memory_order_relaxed);
    fibers_[n_++] = f;
  }

  bool full() const noexcept { return n_ == kMax; }

  void flush() noexcept {
    if (n_ == 0) return;
    heavy_barrier();
    for (std::size_t i = 0; i < n_; ++i) {
      RuntimeImpl::wake_cancelled(fibers_[i]);
      // release: our reads of the fiber happen before its destruction.
      fibers_[i]->cancel_pins.fetch_sub(1, std::memory_order_release);
    }
    n_ = 0;
  }

 private:
  static constexpr std::size_t kMax = 64;
  Fiber* fibers_[kMax];
  std::size_t n_ = 0;
};

bool CancelNode::cancel_one(CancelBatch& batch, CancelNode** work) noexcept {
  lock_.lock();
  if (cancelled_.load(std::memory_order_relaxed)) {
    lock_.unlock();
    return false;
  }
  cancelled_.store(true, std::memory_order_release);
  if (fiber_ != nullptr) batch.add(fiber_);
  while (head_ != nullptr) {
    CancelLink* l = head_;
    unlink(head_, l);
    if (l->child != nullptr) {
      // The child stays valid while linked (it detaches under our lock);
      // the reference keeps it valid on our work list.
      if (l->child->try_add_ref()) {
        l->child->work_next_ = *work;
        *work = l->child;
      }
      continue;
    }
    running_ = l;
    running_removed_ = false;
    running_thread_ = thread_marker();
    lock_.unlock();
    l->invoke(l);
    lock_.lock();
    running_ = nullptr;
  }
  lock_.unlock();
  return true;
}

bool CancelNode::cancel() noexcept {
  CancelBatch batch;
  CancelNode* work = nullptr;
  const bool did = cancel_one(batch, &work);
  while (work != nullptr) {
    CancelNode* n = work;
    work = n->work_next_;
    n->cancel_one(batch, &work);
    n->release();
    if (batch.full()) batch.flush();
  }
  batch.flush();
  return did;
}

void CancelNode::attach(CancelNode* parent) noexcept {
  parent_ = parent;
  if (parent == nullptr) return;
  parent->add_ref();
  deadline_ns_ = parent->deadline_ns_;
  LockGuard g(parent->lock_);
  if (parent->cancelled_.load(std::memory_order_relaxed)) {
    cancelled_.store(true, std::memory_order_release);
    return;
  }
  push_front(parent->head_, &link_);
}

CancelNode* CancelNode::lock_parent() noexcept {
  for (;;) {
    CancelNode* p = __atomic_load_n(&parent_, __ATOMIC_ACQUIRE);
    if (p == nullptr) return nullptr;
    p->lock_.lock();
    if (__atomic_load_n(&parent_, __ATOMIC_RELAXED) == p) return p;
    p->lock_.unlock();  // re-parented meanwhile: try the new one
  }
}

CancelNode* CancelNode::detach_keep_parent(CancelNode* heir) noexcept {
  // Unlink from our parent first: from then on no canceller of the parent
  // reaches us, and our children are handed over below.
  CancelNode* old_parent = nullptr;
  if (CancelNode* p = lock_parent()) {
    if (link_.linked) unlink(p->head_, &link_);
    __atomic_store_n(&parent_, nullptr, __ATOMIC_RELEASE);
    p->lock_.unlock();
    old_parent = p;
  }

  // Hand the children still attached to the heir (a child's parent_ changes
  // under our lock and the heir's, which is what lock_parent() relies on).
  CancelNode* to_cancel = nullptr;
  std::size_t moved = 0;
  if (heir != nullptr) {
    LockGuard g(lock_);
    if (head_ != nullptr) {
      LockGuard h(heir->lock_);
      const bool heir_cancelled = heir->cancelled_.load(std::memory_order_relaxed);
      while (head_ != nullptr) {
        CancelLink* l = head_;
        unlink(head_, l);
        if (l->child == nullptr) {
          // A callback on a scope that is ending: it can never fire now;
          // its owner's remove_callback() finds it unlinked.
          continue;
        }
        CancelNode* c = l->child;
        __atomic_store_n(&c->parent_, heir, __ATOMIC_RELEASE);
        ++moved;
        if (!heir_cancelled) {
          push_front(heir->head_, l);
        } else if (c->try_add_ref()) {
          c->work_next_ = to_cancel;
          to_cancel = c;
        }
      }
    }
  } else {
    // No heir (a root): children become roots. A child's parent_ must not
    // dangle once we release the references below.
    LockGuard g(lock_);
    while (head_ != nullptr) {
      CancelLink* l = head_;
      unlink(head_, l);
      if (l->child == nullptr) continue;
      __atomic_store_n(&l->child->parent_, nullptr, __ATOMIC_RELEASE);
      ++moved;
    }
  }
  // Each moved child held a reference on us; it now holds one on the heir.
  for (std::size_t i = 0; i < moved; ++i) {
    if (heir != nullptr) heir->add_ref();
    release();
  }
  while (to_cancel != nullptr) {
    CancelNode* c = to_cancel;
    to_cancel = c->work_next_;
    c->cancel();
    c->release();
  }
  return old_parent;
}

bool CancelNode::add_callback(CancelLink* link) noexcept {
  LockGuard g(lock_);
  if (cancelled_.load(std::memory_order_relaxed)) return false;
  push_front(head_, link);
  return true;
}

void CancelNode::remove_callback(CancelLink* link) noexcept {
  for (;;) {
    {
      LockGuard g(lock_);
      if (link->linked) {
        unlink(head_, link);
        return;
      }
      if (running_ != link) return;
      if (running_thread_ == thread_marker()) {
        running_removed_ = true;  // from inside the callback itself
        return;
      }
    }
    // Running on another thread: wait until it returns (callbacks are
    // short and never park).
    cpu_relax();
  }
}

bool CancelNode::bind_fiber(Fiber* f) noexcept {
  LockGuard g(lock_);
  fiber_ = f;
  const bool cancelled = cancelled_.load(std::memory_order_relaxed);
  if (f != nullptr) {
    // The fiber's flag mirrors its innermost scope (fiber.hpp). Under our
    // lock, so a canceller of this node either ran before (we see
    // cancelled) or runs after (it sees the fiber).
    f->cancel_requested.store(cancelled || f->hard_cancel.load(std::memory_order_relaxed),
                              std::memory_order_relaxed);
  }
  return cancelled;
}

SharedCancelNode* SharedCancelNode::create() {
  return new SharedCancelNode();
}

bool SharedCancelNode::try_add_ref() noexcept {
  std::uint32_t n = refs_.load(std::memory_order_relaxed);
  while (n != 0) {
    if (refs_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) return true;
  }
  return false;
}

void SharedCancelNode::release() noexcept {
  // A chain of sources each made from the previous one's token dies from
  // the leaf up, each death dropping the last reference on its parent: a
  // loop, not a recursion, so a 10^5-deep chain cannot overflow a stack.
  SharedCancelNode* n = this;
  while (n->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    // Last reference: nobody can cancel n through a token any more, but a
    // canceller of its parent may still find its link: leave the tree first.
    CancelNode* parent = n->detach_keep_parent(n->parent_);
    delete n;
    if (parent == nullptr) return;
    n = parent->as_shared();
    if (n == nullptr) {
      parent->release();
      return;
    }
  }
}

}  // namespace weft::detail
