// weft-kv: the list value (LPUSH, LRANGE, BLPOP, ...).
//
// Redis 7.0 keeps every list as a quicklist (a doubly linked list of
// listpacks) and OBJECT ENCODING names it "quicklist" whatever its size
// (listpack-encoded lists came with 7.2). Here the elements live in a
// std::deque<std::string>: O(1) pushes and pops at both ends, as Redis's,
// and O(1) access by index where Redis walks the quicklist (LINDEX, LSET,
// LRANGE's start); inserting or removing in the middle moves elements, as
// Redis's listpacks do. Every function requires the owning shard's lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "keyspace.hpp"

namespace kv {

/// The list Object: a sequence of byte strings, never empty while it is
/// stored under a key (the commands delete the key with its last element).
class List final : public Object {
 public:
  Type type() const noexcept override { return Type::list; }
  std::int64_t bytes() const noexcept override { return bytes_; }
  const char* encoding() const noexcept override { return "quicklist"; }
  std::unique_ptr<Object> clone() const override { return std::make_unique<List>(*this); }

  std::size_t size() const noexcept { return items_.size(); }
  bool empty() const noexcept { return items_.empty(); }
  /// Element i, 0 <= i < size().
  const std::string& at(std::size_t i) const noexcept { return items_[i]; }

  /// Adds v at the head (left) or the tail. @throws std::bad_alloc
  /// (unchanged).
  void push(bool left, std::string_view v) {
    if (left)
      items_.emplace_front(v);
    else
      items_.emplace_back(v);
    bytes_ += cost(left ? items_.front() : items_.back());
  }
  /// Removes and returns the head (left) or the tail; the list must not be
  /// empty. Never throws (the element's buffer is moved out).
  std::string pop(bool left) noexcept {
    std::string v = std::move(left ? items_.front() : items_.back());
    if (left)
      items_.pop_front();
    else
      items_.pop_back();
    bytes_ -= cost(v);
    return v;
  }
  /// Replaces element i. @throws std::bad_alloc (unchanged).
  void set(std::size_t i, std::string_view v) {
    std::string fresh(v);
    bytes_ += cost(fresh) - cost(items_[i]);
    items_[i].swap(fresh);
  }
  /// Inserts v before position i (i == size(): at the tail).
  /// @throws std::bad_alloc (unchanged).
  void insert(std::size_t i, std::string_view v) {
    const auto it = items_.emplace(items_.begin() + static_cast<std::ptrdiff_t>(i), v);
    bytes_ += cost(*it);
  }
  /// Removes `head` elements from the head and `tail` from the tail
  /// (head + tail <= size()).
  void trim(std::size_t head, std::size_t tail) noexcept {
    for (; head != 0; --head) pop(true);
    for (; tail != 0; --tail) pop(false);
  }
  /// Removes the elements equal to v: all of them when count is 0, else
  /// the first |count| from the head (count > 0) or from the tail
  /// (count < 0), as LREM. Returns how many went. Never throws.
  std::size_t remove(std::string_view v, long long count) noexcept {
    const std::size_t n = items_.size();
    const bool from_tail = count < 0;
    unsigned long long left = count == 0
                                  ? ~0ull
                                  : (from_tail ? 0ull - static_cast<unsigned long long>(count)
                                               : static_cast<unsigned long long>(count));
    // In-place compaction in the direction of the scan: keep what is not
    // removed, in order.
    std::size_t kept = 0;
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t i = from_tail ? n - 1 - k : k;
      std::string& e = items_[i];
      if (left != 0 && e == v) {
        --left;
        bytes_ -= cost(e);
        continue;
      }
      const std::size_t to = from_tail ? n - 1 - kept : kept;
      if (to != i) items_[to].swap(e);
      ++kept;
    }
    const std::size_t removed = n - kept;
    if (from_tail)
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(removed));
    else
      items_.erase(items_.end() - static_cast<std::ptrdiff_t>(removed), items_.end());
    return removed;
  }

 private:
  // The bytes an element costs: its std::string and any heap buffer.
  static std::int64_t cost(const std::string& s) noexcept {
    return static_cast<std::int64_t>(sizeof(std::string) +
                                     (s.capacity() > 15 ? s.capacity() + 1 : 0));
  }

  std::deque<std::string> items_;
  std::int64_t bytes_ = static_cast<std::int64_t>(sizeof(List)) + 512;  // + the deque's map
};

}  // namespace kv
