// weft-kv: what the memory allocator says (INFO memory), with jemalloc when
// the executable links it (as Redis does) and glibc's malloc otherwise.
#pragma once

#include <cstdint>

namespace kv {

/// The allocator's figures, bytes (jemalloc's stats.*; zero when unknown).
struct AllocatorStats {
  const char* name = "libc";   ///< INFO's mem_allocator: "jemalloc-5.3.0" or "libc"
  bool detailed = false;       ///< true when the figures below come from jemalloc
  std::int64_t allocated = 0;  ///< bytes the program holds (Redis: allocator_allocated)
  std::int64_t active = 0;     ///< in active pages (allocator_active)
  std::int64_t resident = 0;   ///< in resident pages, metadata included (allocator_resident)
  std::int64_t mapped = 0;     ///< in mapped extents
  std::int64_t retained = 0;   ///< unmapped but kept as virtual address space
};

/// A fresh snapshot (refreshes jemalloc's epoch). Thread-safe.
AllocatorStats allocator_stats() noexcept;

/// Returns freed memory to the kernel now: jemalloc purges every arena,
/// glibc trims its heaps (malloc_trim). Thread-safe; may take a few ms.
void release_free_memory() noexcept;

/// Resident set size of the process, bytes (/proc/self/statm).
std::int64_t rss_bytes() noexcept;

}  // namespace kv
