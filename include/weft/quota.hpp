// Memory quotas: a byte budget that containers charge as they grow, so a
// runaway vector or string (a "string bomb" fed by untrusted input) fails
// with an exception its caller can handle instead of taking the process
// down (seed 001, §10: quota checks before vector and string growth).
//
//   weft::MemoryQuota request(1 << 20, "request");          // 1 MiB
//   weft::QuotaString body{weft::QuotaAllocator<char>(request)};
//   body.append(chunk);   // throws weft::QuotaExceeded past 1 MiB
//
// Quotas nest: a quota made with a parent charges the parent too, so a
// per-request quota inside a per-connection quota inside a per-tenant one
// bounds all three at once. A quota is shared freely between fibers and
// threads (its counters are atomics; charging never blocks or parks), so
// one quota may serve a scope (every fiber of a nursery allocating against
// it) or a single fiber.
//
// The accounting is of what the containers ask for (n * sizeof(T) per
// allocation), not of the allocator's overhead or of memory the program
// allocates some other way.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

namespace weft {

class MemoryQuota;

/// Thrown when a charge would take a quota (or one of its ancestors) past
/// its limit. A std::bad_alloc, so code that already handles running out of
/// memory handles it; what() names the quota, its limit, its usage and the
/// size asked for.
class QuotaExceeded : public std::bad_alloc {
 public:
  /// @param quota the quota that refused (the innermost one that was full)
  /// @param requested bytes asked for
  QuotaExceeded(const MemoryQuota& quota, std::size_t requested);
  /// "weft: memory quota '<name>' exceeded: <n> bytes requested, <used> of <limit> bytes in use".
  const char* what() const noexcept override { return what_.c_str(); }
  /// Bytes asked for by the refused charge.
  std::size_t requested() const noexcept { return requested_; }
  /// The refusing quota's limit and usage at the time, in bytes.
  std::size_t limit() const noexcept { return limit_; }
  /// The refusing quota's usage at the time, in bytes.
  std::size_t used() const noexcept { return used_; }

 private:
  std::string what_;
  std::size_t requested_, limit_, used_;
};

/// A byte budget, optionally inside a parent's. Thread-safe and fiber-safe:
/// every member may be called concurrently from any thread or fiber; no
/// call blocks. Neither copyable nor movable (allocators point at it).
///
/// Lifetime: a quota must outlive the allocators and containers charged to
/// it, and its children. Destroying one that still has charges returns
/// them to its ancestors (so their figures stay right) and nothing else.
class MemoryQuota {
 public:
  /// A quota of limit bytes. @param parent a quota charged alongside this
  /// one (nullptr: none); @param name shown in QuotaExceeded's message.
  explicit MemoryQuota(std::size_t limit, MemoryQuota* parent = nullptr, std::string name = {});
  /// A quota of limit bytes inside parent.
  MemoryQuota(std::size_t limit, MemoryQuota& parent, std::string name = {})
      : MemoryQuota(limit, &parent, std::move(name)) {}
  ~MemoryQuota();
  MemoryQuota(const MemoryQuota&) = delete;
  MemoryQuota& operator=(const MemoryQuota&) = delete;

  /// Charges bytes to this quota and every ancestor, all or nothing.
  /// @return false (charging nothing, counting a refusal on the quota that
  /// was full) when any of them would pass its limit.
  bool try_charge(std::size_t bytes) noexcept;
  /// try_charge, or @throws QuotaExceeded naming the quota that was full.
  void charge(std::size_t bytes);
  /// Returns bytes charged earlier to this quota and its ancestors. Giving
  /// back more than was charged is a programming error: the usage is
  /// clamped at 0 rather than wrapping.
  void release(std::size_t bytes) noexcept;

  /// The limit in bytes.
  std::size_t limit() const noexcept { return limit_.load(std::memory_order_relaxed); }
  /// Changes the limit. Lowering it below the current usage refuses new
  /// charges until enough is released; nothing already charged is undone.
  void set_limit(std::size_t limit) noexcept { limit_.store(limit, std::memory_order_relaxed); }
  /// Bytes charged now (children's charges included).
  std::size_t used() const noexcept { return used_.load(std::memory_order_relaxed); }
  /// The highest usage seen, in bytes.
  std::size_t peak() const noexcept { return peak_.load(std::memory_order_relaxed); }
  /// Bytes that may still be charged to this quota alone (its ancestors
  /// may allow less).
  std::size_t available() const noexcept {
    const std::size_t l = limit(), u = used();
    return u >= l ? 0 : l - u;
  }
  /// Charges this quota refused (counted where the refusal happened).
  std::uint64_t refusals() const noexcept { return refusals_.load(std::memory_order_relaxed); }
  /// The quota that charges are passed up to, or nullptr.
  MemoryQuota* parent() const noexcept { return parent_; }
  /// The name given at construction (shown in errors and metrics).
  const std::string& name() const noexcept { return name_; }

 private:
  // Charges this quota and its ancestors; returns the one that refused
  // (after undoing the levels below it), or nullptr.
  MemoryQuota* charge_chain(std::size_t bytes) noexcept;
  bool charge_here(std::size_t bytes) noexcept;
  void release_here(std::size_t bytes) noexcept;

  MemoryQuota* const parent_;
  const std::string name_;
  // All four are relaxed and pair with nothing: they are counters that
  // guard no other data; only their own values matter, and used_'s
  // compare-exchange keeps it within limit_ (src/base/quota.cpp).
  std::atomic<std::size_t> limit_;
  std::atomic<std::size_t> used_{0};
  std::atomic<std::size_t> peak_{0};
  std::atomic<std::uint64_t> refusals_{0};
};

/// A standard allocator that charges a MemoryQuota for every allocation
/// (n * sizeof(T) bytes) and gives the bytes back on deallocation; memory
/// itself comes from std::allocator<T>. Allocators are equal when they
/// charge the same quota, and propagate with their containers on copy,
/// move and swap (a container's memory always returns to the quota that
/// paid for it).
///
/// allocate() throws QuotaExceeded (a std::bad_alloc) when the quota or an
/// ancestor is full, std::bad_array_new_length when n * sizeof(T)
/// overflows, and std::bad_alloc when the system is out of memory (the
/// charge is then returned). Thread safety: as the quota's.
template <class T>
class QuotaAllocator {
 public:
  using value_type = T;
  using propagate_on_container_copy_assignment = std::true_type;
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_swap = std::true_type;
  using is_always_equal = std::false_type;

  /// An allocator charging `quota`, which must outlive it.
  explicit QuotaAllocator(MemoryQuota& quota) noexcept : quota_(&quota) {}
  /// Rebinds other (same quota).
  template <class U>
  QuotaAllocator(const QuotaAllocator<U>& other) noexcept : quota_(&other.quota()) {}

  /// Charges n * sizeof(T) bytes, then allocates. @throws QuotaExceeded (nothing allocated) or
  /// std::bad_alloc.
  T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    const std::size_t bytes = n * sizeof(T);
    quota_->charge(bytes);
    try {
      return std::allocator<T>().allocate(n);
    } catch (...) {
      quota_->release(bytes);
      throw;
    }
  }
  /// Frees p and releases its n * sizeof(T) bytes from the quota.
  void deallocate(T* p, std::size_t n) noexcept {
    std::allocator<T>().deallocate(p, n);
    quota_->release(n * sizeof(T));
  }

  /// The quota this allocator charges.
  MemoryQuota& quota() const noexcept { return *quota_; }

  /// Equal when both charge the same quota.
  template <class U>
  bool operator==(const QuotaAllocator<U>& other) const noexcept {
    return quota_ == &other.quota();
  }

 private:
  MemoryQuota* quota_;
};

/// A std::vector whose growth is charged to a quota.
template <class T>
using QuotaVector = std::vector<T, QuotaAllocator<T>>;
/// A std::string whose growth is charged to a quota. (Strings short enough
/// for the small-string buffer allocate nothing and charge nothing.)
using QuotaString = std::basic_string<char, std::char_traits<char>, QuotaAllocator<char>>;

}  // namespace weft
