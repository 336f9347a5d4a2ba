// MemoryQuota: lock-free byte budgets (include/weft/quota.hpp).
//
// A charge walks from the quota up through its ancestors, reserving at each
// level with a compare-exchange that refuses to pass the limit; if a level
// refuses, the levels already reserved are given back, so a charge is all
// or nothing and a full parent never leaves a child over-counted. Two
// racing charges may both be refused where one alone would have passed
// (each saw the other's reservation before its rollback): a quota errs on
// the side of refusing, never of exceeding its limit.
#include "weft/quota.hpp"

#include <utility>

namespace weft {

namespace {

std::string describe(const MemoryQuota& q, std::size_t requested) {
  std::string s = "weft: memory quota";
  if (!q.name().empty()) s += " '" + q.name() + "'";
  s += " exceeded: " + std::to_string(requested) + " bytes requested, " + std::to_string(q.used()) +
       " of " + std::to_string(q.limit()) + " bytes in use";
  return s;
}

}  // namespace

QuotaExceeded::QuotaExceeded(const MemoryQuota& quota, std::size_t requested)
    : what_(describe(quota, requested)),
      requested_(requested),
      limit_(quota.limit()),
      used_(quota.used()) {}

MemoryQuota::MemoryQuota(std::size_t limit, MemoryQuota* parent, std::string name)
    : parent_(parent), name_(std::move(name)), limit_(limit) {}

MemoryQuota::~MemoryQuota() {
  // Charges left behind (containers that outlived the quota are the
  // caller's error) go back to the ancestors, which paid for them too.
  if (const std::size_t left = used(); left > 0 && parent_ != nullptr) parent_->release(left);
}

bool MemoryQuota::charge_here(std::size_t bytes) noexcept {
  std::size_t u = used_.load(std::memory_order_relaxed);
  for (;;) {
    const std::size_t l = limit();
    if (bytes > l || u > l - bytes) return false;
    // Relaxed: the counter guards no other data; only its value matters.
    if (used_.compare_exchange_weak(u, u + bytes, std::memory_order_relaxed)) break;
  }
  const std::size_t now = u + bytes;
  std::size_t p = peak_.load(std::memory_order_relaxed);
  while (now > p && !peak_.compare_exchange_weak(p, now, std::memory_order_relaxed)) {
  }
  return true;
}

void MemoryQuota::release_here(std::size_t bytes) noexcept {
  std::size_t u = used_.load(std::memory_order_relaxed);
  while (!used_.compare_exchange_weak(u, u >= bytes ? u - bytes : 0, std::memory_order_relaxed)) {
  }
}

MemoryQuota* MemoryQuota::charge_chain(std::size_t bytes) noexcept {
  for (MemoryQuota* q = this; q != nullptr; q = q->parent_) {
    if (!q->charge_here(bytes)) {
      q->refusals_.fetch_add(1, std::memory_order_relaxed);
      for (MemoryQuota* r = this; r != q; r = r->parent_) r->release_here(bytes);
      return q;
    }
  }
  return nullptr;
}

bool MemoryQuota::try_charge(std::size_t bytes) noexcept {
  return charge_chain(bytes) == nullptr;
}

void MemoryQuota::charge(std::size_t bytes) {
  if (const MemoryQuota* full = charge_chain(bytes)) throw QuotaExceeded(*full, bytes);
}

void MemoryQuota::release(std::size_t bytes) noexcept {
  for (MemoryQuota* q = this; q != nullptr; q = q->parent_) q->release_here(bytes);
}

}  // namespace weft
