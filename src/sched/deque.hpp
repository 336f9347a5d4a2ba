// Bounded Chase-Lev work-stealing deque.
//
// D. Chase, Y. Lev, "Dynamic Circular Work-Stealing Deque", SPAA 2005; memory
// orderings from N. M. Lê, A. Pop, A. Cohen, F. Zappa Nardelli, "Correct and
// Efficient Work-Stealing for Weak Memory Models", PPoPP 2013 (figure 1),
// without the resize: a full deque makes push fail and the worker moves half
// of it to the injector (Tokio's overflow rule).
//
// Roles are types (STYLE.md, Tokio's Local/Steal): the deque itself offers
// no operation, only two handles. Owner (the owning thread alone) pushes and
// pops at the bottom end (LIFO) and may take the oldest item from the top
// (fairness, overflow); Stealer (any thread) steals from the top (FIFO).
// Whoever holds an Owner promises to be the owning thread.
//
// Invariants: top <= bottom + 1 at all times (bottom may be top - 1 briefly
// inside pop); items are in [top, bottom); only CAS on top removes the last
// item, so owner and thieves never both take it.
//
// Batch steal: taking "half" is done as repeated single steals. A single CAS
// over several slots is unsound here: the owner pops non-last items without
// a CAS, so it could take an item a batch thief has already read.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "base/spinlock.hpp"  // full_fence

namespace weft::detail {

template <class T, std::size_t Capacity = 256>
class ChaseLevDeque {
  static_assert((Capacity & (Capacity - 1)) == 0, "capacity must be a power of two");
  static_assert(std::is_pointer_v<T>);

 public:
  static constexpr std::size_t kCapacity = Capacity;

  ChaseLevDeque() {
    for (auto& slot : buffer_) slot.store(nullptr, std::memory_order_relaxed);
  }
  ChaseLevDeque(const ChaseLevDeque&) = delete;
  ChaseLevDeque& operator=(const ChaseLevDeque&) = delete;

  /// The owning thread's handle: the bottom end, and the top for its own
  /// use. Cheap to make (a pointer); make one wherever the owner needs it.
  class Owner {
   public:
    explicit Owner(ChaseLevDeque& d) noexcept : d_(&d) {}

    /// Returns false when full (the item was not added). `stamp` is an
    /// owner-chosen tag kept beside the item (the worker's coarse clock at
    /// push time), readable with oldest_stamp().
    bool push(T item, std::uint32_t stamp = 0) noexcept { return d_->push(item, stamp); }
    /// Takes the most recently pushed item, or nullptr.
    T pop() noexcept { return d_->pop(); }
    /// Takes the oldest item, like Stealer::steal() but without the fence:
    /// the fence orders a thief against the owner's pop(); the owner does
    /// not pop concurrently with itself, and the CAS on top still settles
    /// races with thieves. nullptr when empty or when a thief won.
    T pop_oldest() noexcept { return d_->template take_top<false>(); }
    /// The stamp of the oldest item, or false when empty. Racy against
    /// thieves in a harmless way: the item may be stolen meanwhile, and the
    /// stamp then belongs to one that is gone (stamps are only read, never
    /// followed as pointers).
    bool oldest_stamp(std::uint32_t& out) const noexcept { return d_->oldest_stamp(out); }
    std::size_t size() const noexcept { return d_->size(); }
    bool empty() const noexcept { return d_->size() == 0; }

   private:
    ChaseLevDeque* d_;
  };

  /// Any thread's handle: the top end.
  class Stealer {
   public:
    explicit Stealer(ChaseLevDeque& d) noexcept : d_(&d) {}
    explicit Stealer(const ChaseLevDeque& d) noexcept : d_(const_cast<ChaseLevDeque*>(&d)) {}

    /// Takes the oldest item, or nullptr when empty or when it lost a race
    /// (callers treat both as "nothing here now").
    T steal() noexcept { return d_->template take_top<true>(); }
    /// A racy estimate of the number of items.
    std::size_t size() const noexcept { return d_->size(); }
    bool empty() const noexcept { return d_->size() == 0; }

   private:
    ChaseLevDeque* d_;
  };

  Owner owner() noexcept { return Owner(*this); }
  Stealer stealer() const noexcept { return Stealer(*this); }

 private:
  static constexpr std::size_t kMask = Capacity - 1;

  bool push(T item, std::uint32_t stamp) noexcept {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    // acquire: pairs with the CAS on top in take_top()/pop(), so the slot we
    // are about to overwrite has really been read by the thief that took it.
    const std::int64_t t = top_.load(std::memory_order_acquire);
    if (b - t >= static_cast<std::int64_t>(Capacity)) return false;
    stamps_[static_cast<std::size_t>(b) & kMask] = stamp;
    buffer_[static_cast<std::size_t>(b) & kMask].store(item, std::memory_order_relaxed);
    // release (Lê et al. use a release fence + relaxed store; a release store
    // is equivalent and visible to TSan): publishes the slot and the item's
    // contents to the acquire load of bottom in take_top().
    bottom_.store(b + 1, std::memory_order_release);
    return true;
  }

  T pop() noexcept {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
    bottom_.store(b, std::memory_order_relaxed);
    // seq_cst fence: the store of bottom must be ordered before the load of
    // top (store-load), against the fence in take_top(); otherwise owner and
    // a thief could both see the last item available.
    full_fence();
    std::int64_t t = top_.load(std::memory_order_relaxed);
    if (t > b) {  // empty
      bottom_.store(b + 1, std::memory_order_relaxed);
      return nullptr;
    }
    T item = buffer_[static_cast<std::size_t>(b) & kMask].load(std::memory_order_relaxed);
    if (t == b) {
      // Last item: race the thieves for it with the same CAS they use.
      if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
        item = nullptr;
      }
      bottom_.store(b + 1, std::memory_order_relaxed);
    }
    return item;
  }

  bool oldest_stamp(std::uint32_t& out) const noexcept {
    const std::int64_t t = top_.load(std::memory_order_relaxed);
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    if (t >= b) return false;
    out = stamps_[static_cast<std::size_t>(t) & kMask];
    return true;
  }

  std::size_t size() const noexcept {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    const std::int64_t t = top_.load(std::memory_order_relaxed);
    return b > t ? static_cast<std::size_t>(b - t) : 0;
  }

  template <bool kThief>
  T take_top() noexcept {
    // acquire on top: pairs with the CAS of an earlier thief.
    std::int64_t t = top_.load(std::memory_order_acquire);
    std::int64_t b;
    if constexpr (kThief) {
      // seq_cst fence: pairs with the fence in pop() (see there).
      full_fence();
      // acquire on bottom: pairs with the release store in push(), making
      // the slot and the item's contents visible.
      b = bottom_.load(std::memory_order_acquire);
    } else {
      b = bottom_.load(std::memory_order_relaxed);  // our own writes
    }
    if (t >= b) return nullptr;
    T item = buffer_[static_cast<std::size_t>(t) & kMask].load(std::memory_order_relaxed);
    // seq_cst CAS: claims the item; failure means another thief or the
    // owner's pop of the last item got it.
    if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) {
      return nullptr;
    }
    return item;
  }

  // top_ is written by thieves (CAS) and read by everyone; bottom_ is written
  // only by the owner. Separate cache lines: thieves hammering top_ must not
  // slow the owner's bottom_ updates.
  alignas(64) std::atomic<std::int64_t> top_{0};
  alignas(64) std::atomic<std::int64_t> bottom_{0};
  alignas(64) std::atomic<T> buffer_[Capacity];
  std::uint32_t stamps_[Capacity] = {};  // owner-only (written by push, read by oldest_stamp)
};

}  // namespace weft::detail
