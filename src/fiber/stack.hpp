// Fiber stacks.
//
// Each stack is one anonymous mapping reserved with MAP_NORESERVE, so only
// the pages a fiber touches cost memory. The lowest page is a guard: with
// madvise(MADV_GUARD_INSTALL) (Linux >= 6.13) it costs no extra kernel
// mapping (VMA), and adjacent stacks can still merge into one VMA; where the
// kernel refuses it we fall back to mprotect(PROT_NONE), which splits the
// mapping, so each stack then costs two VMAs against vm.max_map_count.
// StackAllocator keeps a budget of those and fails with a clear error before
// the kernel would, instead of a bare ENOMEM.
//
// Stacks are recycled through a per-worker StackCache (owner-only, no
// locking), so a spawn in steady state makes no syscall. Touched pages stay
// resident in the cache (re-faulting costs ~2.5 us a page on our VMs); the
// cache is bounded and frees its excess.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace weft::detail {

/// One stack: [lo, hi) is usable, the guard (if any) sits below lo.
struct Stack {
  void* mapping = nullptr;  // start of the mmap (guard page included)
  std::size_t mapping_size = 0;
  void* lo = nullptr;      // lowest usable byte
  void* hi = nullptr;      // one past the highest usable byte (16-byte aligned)
  std::uint8_t guard = 0;  // a GuardMode value: how this stack's guard was made

  std::size_t usable_size() const noexcept {
    return static_cast<std::size_t>(static_cast<char*>(hi) - static_cast<char*>(lo));
  }
  explicit operator bool() const noexcept { return mapping != nullptr; }
};

enum class GuardMode : std::uint8_t {
  none,      // no guard page
  madvise,   // MADV_GUARD_INSTALL (no extra VMA)
  mprotect,  // PROT_NONE page (one extra VMA per stack)
};

/// Maps and unmaps stacks; shared by the workers of one runtime. Thread-safe.
class StackAllocator {
 public:
  /// @param mode  GuardMode::madvise for guarded stacks (falls back to
  ///        mprotect by itself when the kernel refuses), none for unguarded;
  ///        mprotect forces the fallback (tests).
  /// @param max_map_count  the kernel limit to budget against (0 = read
  ///        /proc/sys/vm/max_map_count). Tests pass small values.
  explicit StackAllocator(GuardMode mode, std::size_t max_map_count = 0);

  /// Maps a stack with `size` usable bytes (rounded up to pages).
  /// @throws std::system_error(ENOMEM) naming vm.max_map_count and the remedy
  /// when the mprotect fallback would exceed the map budget, or when the
  /// kernel refuses the mapping.
  Stack allocate(std::size_t size);

  /// Throws the allocate() error now if the map budget is already spent, so
  /// that spawn() reports it before any stack is attached.
  void check_budget() const;

  /// Unmaps a stack. Never throws.
  void release(Stack& s) noexcept;

  /// The guard mode in use: none, or madvise until the kernel refused it.
  GuardMode guard_mode() const noexcept { return mode_.load(std::memory_order_relaxed); }
  std::size_t live_stacks() const noexcept { return live_.load(std::memory_order_relaxed); }
  /// Bytes of address space the live stacks reserve (mappings, guards
  /// included; cached stacks count). Racy read: metrics only.
  std::size_t reserved_bytes() const noexcept {
    return reserved_bytes_.load(std::memory_order_relaxed);
  }
  std::size_t max_map_count() const noexcept { return max_map_count_; }

  /// Rounds up to the page size.
  static std::size_t round_to_page(std::size_t n) noexcept;
  static std::size_t page_size() noexcept;

 private:
  std::atomic<GuardMode> mode_;
  std::size_t max_map_count_;
  std::atomic<std::size_t> live_{0};
  // relaxed RMW (mmap and munmap paths only): a statistic, orders nothing.
  std::atomic<std::size_t> reserved_bytes_{0};
  std::atomic<std::size_t> live_mprotect_guarded_{0};
};

/// Per-worker cache of free stacks of the runtime's default size. Owner-only.
/// Stacks go in and come out LIFO with their pages resident, so a burst of
/// spawns and joins reuses warm stacks and costs no page faults (on this
/// kind of VM a fresh page costs ~2.5 us, and MADV_DONTNEED a TLB
/// shoot-down IPI). Memory comes back when the burst is over: trim(),
/// called by the worker when it runs out of work, returns the pages of the
/// cached stacks above the resident high-water mark (kResident) to the
/// kernel (madvise MADV_DONTNEED) and keeps their mappings for reuse. The
/// same policy as Go's heap (free spans are scavenged in the background,
/// not on free) and jemalloc's decay.
class StackCache {
 public:
  static constexpr std::size_t kMaxCached = 512;
  static constexpr std::size_t kResident = 64;

  StackCache() = default;
  StackCache(const StackCache&) = delete;
  StackCache& operator=(const StackCache&) = delete;

  /// A cached stack of exactly `size` usable bytes, or an empty Stack.
  Stack take(std::size_t size) noexcept;
  /// Keeps s for reuse, pages resident, when it has `default_size` and
  /// there is room; else unmaps it through `alloc`.
  void give(Stack s, std::size_t default_size, StackAllocator& alloc) noexcept;
  /// Returns the pages of every cached stack above the first `keep` to the
  /// kernel (a failed madvise only leaves them resident): kResident when the
  /// worker runs out of work, 0 under memory pressure (Config::memory_limit).
  /// Each stack is trimmed once while it stays cached: a second trim()
  /// without new gives makes no system call.
  /// @return the number of stacks trimmed by this call.
  std::size_t trim(std::size_t keep = kResident) noexcept;
  /// Usable bytes of the cached stacks whose pages are resident (not
  /// trimmed since they were given): what memory_limit counts. Owner-only.
  std::size_t resident_bytes() const noexcept { return resident_bytes_; }
  /// Unmaps everything.
  void drain(StackAllocator& alloc) noexcept;
  std::size_t size() const noexcept { return free_.size(); }

 private:
  std::vector<Stack> free_;
  // free_[trimmed_lo_, trimmed_end_) have had their pages returned; stacks
  // given since sit above trimmed_end_, resident, and those below
  // trimmed_lo_ were kept resident. take() pops from the top, so the band
  // only shrinks from above; trim() widens it.
  std::size_t trimmed_lo_ = 0;
  std::size_t trimmed_end_ = 0;
  std::size_t resident_bytes_ = 0;  // usable bytes of the stacks outside the band
};

}  // namespace weft::detail
