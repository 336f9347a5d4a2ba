// weft-kv: a chained hash table with a power-of-two bucket array and
// Redis's reverse-binary scan cursor — the keyspace's table (keyspace.hpp)
// and the hashtable encoding of hashes and sets (types/).
//
// Why not std::unordered_map: SCAN, HSCAN and SSCAN promise that an element
// present for a whole scan is returned at least once even if the table
// grows or shrinks between calls. Redis keeps that promise with a cursor
// whose bits are incremented from the top (src/dict.c, dictScan): with
// 2^k buckets and element bucket = hash & (2^k - 1), the buckets a cursor
// has covered at one size are exactly those whose reversed index is below
// it, at every other size too. That needs power-of-two bucket counts and
// bucket = low hash bits; libstdc++'s prime bucket counts do not allow it.
//
// Nodes are intrusive: a Node has `Node* next`, `std::uint64_t hash` and
// `std::string key` (compared with the looked-up key). The table owns its
// nodes. It doubles at load factor 1 and halves at load factor 1/8, at once
// (no incremental rehash: a rehash moves pointers only, and the tables here
// are guarded by a lock, which Redis's single thread does not need).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <string_view>
#include <utility>
#include <vector>

namespace kv {

/// The hash of a key, element or field (64 bits; std::hash of the bytes).
std::uint64_t hash_bytes(std::string_view s) noexcept;

/// A chained hash table of owned Nodes. Not thread-safe.
template <class Node>
class Dict {
 public:
  /// The bucket array never shrinks below this many buckets.
  static constexpr std::size_t kMinBuckets = 4;

  /// An empty table of kMinBuckets buckets. @throws std::bad_alloc.
  Dict() : buckets_(kMinBuckets, nullptr) {}
  /// Deletes every node.
  ~Dict() { destroy_nodes(); }
  Dict(const Dict&) = delete;
  Dict& operator=(const Dict&) = delete;

  /// The node whose key is `key` (hash `h`), or nullptr.
  Node* find(std::string_view key, std::uint64_t h) const noexcept {
    for (Node* n = buckets_[h & (buckets_.size() - 1)]; n != nullptr; n = n->next)
      if (n->hash == h && n->key == key) return n;
    return nullptr;
  }

  /// Links `n` (its hash set, its key absent) and takes ownership. May
  /// double the bucket array. @throws std::bad_alloc (table unchanged, `n`
  /// still the caller's).
  Node* insert(std::unique_ptr<Node> n) {
    if (size_ + 1 > buckets_.size()) rehash(buckets_.size() * 2);
    Node*& head = buckets_[n->hash & (buckets_.size() - 1)];
    n->next = head;
    head = n.release();
    ++size_;
    return head;
  }

  /// Unlinks `n` (a node of this table) and hands it back. May halve the
  /// bucket array (kept as is if that allocation fails).
  std::unique_ptr<Node> unlink(Node* n) noexcept {
    Node** link = &buckets_[n->hash & (buckets_.size() - 1)];
    while (*link != n) link = &(*link)->next;
    *link = n->next;
    n->next = nullptr;
    --size_;
    if (buckets_.size() > kMinBuckets && size_ * 8 < buckets_.size()) {
      try {
        rehash(buckets_.size() / 2);
      } catch (const std::bad_alloc&) {
        // Keep the larger array: shrinking is an optimisation.
      }
    }
    return std::unique_ptr<Node>(n);
  }

  /// Exchanges the contents of two tables.
  void swap(Dict& o) noexcept {
    buckets_.swap(o.buckets_);
    std::swap(size_, o.size_);
  }

  /// Number of nodes.
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  /// Buckets in the array (a power of two).
  std::size_t buckets() const noexcept { return buckets_.size(); }

  /// Deletes every node and shrinks to kMinBuckets.
  void clear() noexcept {
    destroy_nodes();
    size_ = 0;
    buckets_.assign(kMinBuckets, nullptr);  // within the capacity: no allocation
    buckets_.shrink_to_fit();               // non-binding; libstdc++'s never throws
  }

  /// Calls fn(Node&) for the nodes of the bucket that cursor `v` covers and
  /// returns the next cursor, 0 when the scan is complete (dictScan:
  /// reverse-binary increment of the masked bits). fn must not change the
  /// table.
  template <class F>
  std::uint64_t scan(std::uint64_t v, F&& fn) const {
    const std::uint64_t mask = buckets_.size() - 1;
    for (Node* n = buckets_[v & mask]; n != nullptr; n = n->next) fn(*n);
    return next_cursor(v, mask);
  }

  /// The cursor after `v` in a table whose bucket mask is `mask` (Redis's
  /// dictScan step: reverse-binary increment of the masked bits); 0 when the
  /// scan is complete. For every table that offers a SCAN-like cursor.
  static std::uint64_t next_cursor(std::uint64_t v, std::uint64_t mask) noexcept {
    v |= ~mask;
    v = reverse_bits(v);
    ++v;
    return reverse_bits(v);
  }

  /// Calls fn(Node&) for every node; fn must not change the table.
  template <class F>
  void for_each(F&& fn) const {
    for (Node* head : buckets_)
      for (Node* n = head; n != nullptr; n = n->next) fn(*n);
  }

  /// A node chosen at random (nullptr when empty): a random non-empty
  /// bucket, then a random node of its chain (Redis's dictGetRandomKey;
  /// like it, a node in a long chain is picked less often). The load
  /// factor stays above 1/8, so about 8 buckets are tried on average.
  /// `rng` is a uniform random bit generator.
  template <class Rng>
  Node* random(Rng& rng) const {
    if (size_ == 0) return nullptr;
    const std::size_t mask = buckets_.size() - 1;
    Node* head = nullptr;
    while (head == nullptr) head = buckets_[static_cast<std::size_t>(rng()) & mask];
    std::size_t len = 0;
    for (Node* n = head; n != nullptr; n = n->next) ++len;
    std::size_t pick = static_cast<std::size_t>(rng()) % len;
    Node* n = head;
    while (pick-- > 0) n = n->next;
    return n;
  }

  /// The 64 bits of v in reverse order (the cursor arithmetic).
  static std::uint64_t reverse_bits(std::uint64_t v) noexcept {
    v = ((v >> 1) & 0x5555555555555555ull) | ((v & 0x5555555555555555ull) << 1);
    v = ((v >> 2) & 0x3333333333333333ull) | ((v & 0x3333333333333333ull) << 2);
    v = ((v >> 4) & 0x0F0F0F0F0F0F0F0Full) | ((v & 0x0F0F0F0F0F0F0F0Full) << 4);
    return __builtin_bswap64(v);
  }

 private:
  void destroy_nodes() noexcept {
    for (Node*& head : buckets_) {
      while (head != nullptr) {
        Node* next = head->next;
        delete head;
        head = next;
      }
    }
  }

  void rehash(std::size_t n) {
    std::vector<Node*> fresh(n, nullptr);  // may throw: table unchanged
    for (Node* head : buckets_) {
      while (head != nullptr) {
        Node* next = head->next;
        Node*& slot = fresh[head->hash & (n - 1)];
        head->next = slot;
        slot = head;
        head = next;
      }
    }
    buckets_.swap(fresh);
  }

  std::vector<Node*> buckets_;
  std::size_t size_ = 0;
};

}  // namespace kv
