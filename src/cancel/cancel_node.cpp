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
// (base/asymmetric_barrier.hpp) orders all the marks against the fibers' waiter
// publications, and the pinned fibers are woken. Cancelling a scope of N
// parked fibers thus costs one membarrier, not N.
#include "weft/detail/cancel_node.hpp"

#include <new>
#include <utility>

#include "base/asymmetric_barrier.hpp"
#include "fiber/fiber.hpp"
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

  // Called at most once per node (a node binds one fiber), and cancel()
  // flushes whenever the batch fills, so there is always room.
  void add(Fiber* f) noexcept {
    WEFT_DEBUG_ASSERT(n_ < kMax, "cancel batch overflow");
    f->cancel_requested.store(true, std::memory_order_relaxed);
    // relaxed: taken under the node's lock, which the fiber must take to
    // unbind before it can end; released with release in flush().
    f->cancel_pins.fetch_add(1, std::memory_order_relaxed);
    fibers_[n_++] = f;
  }

  bool full() const noexcept { return n_ == kMax; }

  void flush() noexcept {
    if (n_ == 0) return;
    heavy_barrier();
    for (std::size_t i = 0; i < n_; ++i) {
      RuntimeImpl::wake_cancelled(fibers_[i]);
      // release: pairs with the acquire in Worker's wait_cancel_pins, so
      // our reads of the fiber happen before its destruction.
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

CancelNode* CancelNode::take_children(bool drop_callbacks) noexcept {
  // Each child taken gets a reference, so that it stays valid off the list.
  // A child whose last reference is gone (try_add_ref fails) is about to
  // unlink itself: it is left where it is.
  CancelNode* taken = nullptr;
  CancelLink* l = head_;
  while (l != nullptr) {
    CancelLink* next = l->next;
    if (l->child == nullptr) {
      if (drop_callbacks) unlink(head_, l);
    } else if (l->child->try_add_ref()) {
      unlink(head_, l);
      l->child->work_next_ = taken;
      taken = l->child;
    }
    l = next;
  }
  return taken;
}

void CancelNode::cancel_children() noexcept {
  CancelNode* work;
  {
    LockGuard g(lock_);
    work = take_children(false);
  }
  while (work != nullptr) {
    CancelNode* c = work;
    work = c->work_next_;
    c->cancel();
    c->release();
  }
}

void CancelNode::attach(CancelNode* parent) noexcept {
  parent_ = parent;
  if (parent == nullptr) return;
  parent->add_ref();
  deadline_ns_.store(parent->deadline_ns(), std::memory_order_relaxed);
  LockGuard g(parent->lock_);
  if (parent->cancelled_.load(std::memory_order_relaxed)) {
    cancelled_.store(true, std::memory_order_release);
    return;
  }
  push_front(parent->head_, &link_);
}

CancelNode* CancelNode::detach_keep_parent(CancelNode* heir, bool heir_is_parent) noexcept {
  // 1. Unbind, leave our parent and take the children still attached
  //    (fibers spawned inside and still running), in one hold of our lock.
  //    parent_ only changes under our lock, and we hold a reference on it,
  //    so it is alive while we lock it (child before parent: the only lock
  //    nesting in the tree). Callbacks of an ending scope can never fire
  //    now; their owners' remove_callback() finds them unlinked.
  CancelNode* old_parent;
  CancelNode* moving;
  {
    LockGuard g(lock_);
    fiber_ = nullptr;
    old_parent = parent_;
    if (old_parent != nullptr) {
      LockGuard h(old_parent->lock_);
      if (link_.linked) unlink(old_parent->head_, &link_);
    }
    __atomic_store_n(&parent_, nullptr, __ATOMIC_RELEASE);
    moving = take_children(true);
  }
  if (heir_is_parent) heir = old_parent;

  // 2. Hand each to the heir, so that cancelling an ancestor still reaches
  //    it. Under the child's lock (then the heir's: child before parent),
  //    so the child's own detach sees either us or the heir as its parent,
  //    with the matching reference. A child that detached meanwhile
  //    (parent_ no longer us) already dropped its reference on us.
  while (moving != nullptr) {
    CancelNode* c = moving;
    moving = c->work_next_;
    bool moved = false;
    bool cancel_it = false;
    {
      LockGuard g(c->lock_);
      if (c->parent_ == this) {
        moved = true;
        if (heir != nullptr) {
          heir->add_ref();
          LockGuard h(heir->lock_);
          if (heir->cancelled_.load(std::memory_order_relaxed)) {
            cancel_it = true;
          } else {
            push_front(heir->head_, &c->link_);
          }
        }
        __atomic_store_n(&c->parent_, heir, __ATOMIC_RELEASE);
      }
    }
    if (cancel_it) c->cancel();
    if (moved) release();  // the reference c held on us
    c->release();          // the transit reference
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
      if (running_thread_ == thread_marker()) return;  // from inside the callback itself
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

CancelNode::Inspection CancelNode::inspect(CancelNode** out, std::size_t capacity) noexcept {
  Inspection r;
  LockGuard g(lock_);
  r.cancelled = cancelled_.load(std::memory_order_relaxed);
  // fiber_ is valid under our lock: a fiber unbinds under it before it ends.
  r.bound_fiber = fiber_ != nullptr ? fiber_->id : 0;
  for (CancelLink* l = head_; l != nullptr; l = l->next) {
    if (l->child == nullptr) {
      ++r.callbacks;
      continue;
    }
    ++r.children;
    // A child whose last reference is gone is about to unlink itself: it
    // is counted, not taken (as in take_children).
    if (r.taken < capacity && l->child->try_add_ref()) out[r.taken++] = l->child;
  }
  return r;
}

SharedCancelNode* SharedCancelNode::create(Kind kind) {
  return new SharedCancelNode(kind);
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
    CancelNode* parent = n->detach_keep_parent(nullptr, true);
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
