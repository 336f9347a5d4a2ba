// FiberList: an intrusive singly linked list of fibers through Fiber::next
// (Go's gList). A fiber is on at most one list or queue at a time (the
// lifecycle in fiber.hpp says which), so one link serves them all. The
// owner of a list is whoever holds it; it has no lock.
//
// Users: a worker's yielded lists (FIFO: push_back, pop_front) and the
// driver's park, which hands back the fibers it made runnable (prepended as
// they wake: newest first; see sched/driver.hpp for why that order).
#pragma once

#include <cstddef>

#include "fiber/fiber.hpp"

namespace weft::detail {

class FiberList {
 public:
  FiberList() noexcept = default;
  FiberList(const FiberList&) = delete;
  FiberList& operator=(const FiberList&) = delete;

  bool empty() const noexcept { return head_ == nullptr; }
  /// True when the list holds exactly one fiber.
  bool single() const noexcept { return head_ != nullptr && head_ == tail_; }
  Fiber* front() const noexcept { return head_; }

  void push_back(Fiber* f) noexcept {
    f->next = nullptr;
    if (tail_ != nullptr) {
      tail_->next = f;
    } else {
      head_ = f;
    }
    tail_ = f;
  }

  void push_front(Fiber* f) noexcept {
    f->next = head_;
    head_ = f;
    if (tail_ == nullptr) tail_ = f;
  }

  /// The first fiber, unlinked (its next cleared), or nullptr.
  Fiber* pop_front() noexcept {
    Fiber* f = head_;
    if (f == nullptr) return nullptr;
    head_ = f->next;
    if (head_ == nullptr) tail_ = nullptr;
    f->next = nullptr;
    return f;
  }

 private:
  Fiber* head_ = nullptr;
  Fiber* tail_ = nullptr;
};

}  // namespace weft::detail
