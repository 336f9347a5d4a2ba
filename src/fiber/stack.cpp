#include "fiber/stack.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string>
#include <system_error>

#include "base/sanitizers.hpp"

#if WEFT_ASAN
extern "C" void __asan_unpoison_memory_region(void const volatile* addr, size_t size);
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

namespace weft::detail {
namespace {

std::size_t read_max_map_count() noexcept {
  std::size_t value = 65530;  // the kernel default
  if (FILE* f = std::fopen("/proc/sys/vm/max_map_count", "re")) {
    unsigned long v = 0;
    if (std::fscanf(f, "%lu", &v) == 1 && v > 0) value = v;
    std::fclose(f);
  }
  return value;
}

// Mappings the rest of the process (libraries, heap, thread stacks) may need;
// the mprotect fallback leaves them this much of vm.max_map_count.
constexpr std::size_t kMapHeadroom = 4096;

[[noreturn]] void throw_map_limit(std::size_t limit, std::size_t live) {
  throw std::system_error(
      std::error_code(ENOMEM, std::system_category()),
      "weft: cannot map another guarded fiber stack: " + std::to_string(live) +
          " guarded stacks already use two kernel mappings each, and vm.max_map_count is " +
          std::to_string(limit) +
          ". Raise the limit (sysctl -w vm.max_map_count=2200000), use a kernel with "
          "MADV_GUARD_INSTALL (Linux >= 6.13), or turn guard pages off "
          "(Config::guard_pages = false / WEFT_GUARD_PAGES=0)");
}

}  // namespace

std::size_t StackAllocator::page_size() noexcept {
  static const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

std::size_t StackAllocator::round_to_page(std::size_t n) noexcept {
  const std::size_t p = page_size();
  return (n + p - 1) / p * p;
}

StackAllocator::StackAllocator(GuardMode mode, std::size_t max_map_count)
    : mode_(mode), max_map_count_(max_map_count != 0 ? max_map_count : read_max_map_count()) {}

void StackAllocator::check_budget() const {
  if (mode_.load(std::memory_order_relaxed) != GuardMode::mprotect) return;
  const std::size_t guarded = live_mprotect_guarded_.load(std::memory_order_relaxed);
  if (max_map_count_ <= kMapHeadroom || (guarded + 1) * 2 > max_map_count_ - kMapHeadroom) {
    throw_map_limit(max_map_count_, guarded);
  }
}

Stack StackAllocator::allocate(std::size_t size) {
  const std::size_t page = page_size();
  const std::size_t usable = round_to_page(size);
  GuardMode mode = mode_.load(std::memory_order_relaxed);
  const std::size_t guard = mode == GuardMode::none ? 0 : page;

  if (mode == GuardMode::mprotect) {
    const std::size_t guarded = live_mprotect_guarded_.load(std::memory_order_relaxed);
    if (max_map_count_ <= kMapHeadroom || (guarded + 1) * 2 > max_map_count_ - kMapHeadroom) {
      throw_map_limit(max_map_count_, guarded);
    }
  }

  void* p = mmap(nullptr, usable + guard, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    if (err == ENOMEM && mode == GuardMode::mprotect) {
      throw_map_limit(max_map_count_, live_mprotect_guarded_.load(std::memory_order_relaxed));
    }
    throw std::system_error(err, std::system_category(),
                            "weft: cannot map a fiber stack of " + std::to_string(usable) +
                                " bytes (address space or vm.max_map_count exhausted?)");
  }

  Stack s;
  s.mapping = p;
  s.mapping_size = usable + guard;
  s.lo = static_cast<char*>(p) + guard;
  s.hi = static_cast<char*>(p) + usable + guard;

  if (mode == GuardMode::madvise) {
    if (madvise(p, page, MADV_GUARD_INSTALL) == 0) {
      s.guard = static_cast<std::uint8_t>(GuardMode::madvise);
    } else {
      // EINVAL: the kernel predates guard regions. Fall back for good.
      mode_.store(GuardMode::mprotect, std::memory_order_relaxed);
      mode = GuardMode::mprotect;
    }
  }
  if (mode == GuardMode::mprotect) {
    const std::size_t guarded = live_mprotect_guarded_.fetch_add(1, std::memory_order_relaxed);
    if (max_map_count_ <= kMapHeadroom || (guarded + 1) * 2 > max_map_count_ - kMapHeadroom ||
        mprotect(p, page, PROT_NONE) != 0) {
      live_mprotect_guarded_.fetch_sub(1, std::memory_order_relaxed);
      munmap(p, usable + guard);
      throw_map_limit(max_map_count_, guarded);
    }
    s.guard = static_cast<std::uint8_t>(GuardMode::mprotect);
  }
  live_.fetch_add(1, std::memory_order_relaxed);
  reserved_bytes_.fetch_add(s.mapping_size, std::memory_order_relaxed);
  return s;
}

void StackAllocator::release(Stack& s) noexcept {
  if (!s) return;
  if (s.guard == static_cast<std::uint8_t>(GuardMode::mprotect)) {
    live_mprotect_guarded_.fetch_sub(1, std::memory_order_relaxed);
  }
  munmap(s.mapping, s.mapping_size);
  live_.fetch_sub(1, std::memory_order_relaxed);
  reserved_bytes_.fetch_sub(s.mapping_size, std::memory_order_relaxed);
  s = Stack{};
}

Stack StackCache::take(std::size_t size) noexcept {
  if (free_.empty() || free_.back().usable_size() != size) return Stack{};
  Stack s = free_.back();
  free_.pop_back();
  const std::size_t i = free_.size();  // s's index before the pop
  if (i < trimmed_lo_ || i >= trimmed_end_) resident_bytes_ -= s.usable_size();
  if (trimmed_end_ > i) trimmed_end_ = i;
  if (trimmed_lo_ > i) trimmed_lo_ = i;
#if WEFT_ASAN
  // The previous fiber's frames may have left poisoned redzones behind.
  __asan_unpoison_memory_region(s.lo, s.usable_size());
#endif
  return s;
}

void StackCache::give(Stack s, std::size_t default_size, StackAllocator& alloc) noexcept {
  if (s.usable_size() == default_size && free_.size() < kMaxCached) {
    try {
      free_.push_back(s);
      resident_bytes_ += s.usable_size();
      return;
    } catch (...) {
    }
  }
  alloc.release(s);
}

std::size_t StackCache::trim(std::size_t keep) noexcept {
  if (trimmed_lo_ == trimmed_end_) trimmed_lo_ = trimmed_end_ = std::min(keep, free_.size());
  std::size_t n = 0;
  const auto give_pages = [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i, ++n) {
      ::madvise(free_[i].lo, free_[i].usable_size(), MADV_DONTNEED);
      resident_bytes_ -= free_[i].usable_size();
    }
  };
  // Below the band down to keep, then above it.
  if (keep < trimmed_lo_) {
    give_pages(keep, trimmed_lo_);
    trimmed_lo_ = keep;
  }
  give_pages(std::max(keep, trimmed_end_), free_.size());
  if (free_.size() > trimmed_end_) trimmed_end_ = free_.size();
  return n;
}

void StackCache::drain(StackAllocator& alloc) noexcept {
  for (auto& s : free_) alloc.release(s);
  free_.clear();
  trimmed_lo_ = trimmed_end_ = 0;
  resident_bytes_ = 0;
}

}  // namespace weft::detail
