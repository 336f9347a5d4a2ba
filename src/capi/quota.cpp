// weft.h: memory quotas over weft::MemoryQuota (include/weft/quota.hpp).
#include "weft/quota.hpp"

#include <string>

#include "capi/capi.hpp"

struct weft_quota {
  weft_quota(std::size_t limit, weft_quota* parent, const char* name)
      : q(limit, parent != nullptr ? &parent->q : nullptr, name != nullptr ? name : "") {}
  weft::MemoryQuota q;
};

extern "C" {

int weft_quota_new(size_t limit, weft_quota* parent, const char* name, weft_quota** out) {
  return weft::capi::new_handle(out, limit, parent, name);
}

void weft_quota_free(weft_quota* q) {
  delete q;
}

int weft_quota_charge(weft_quota* q, size_t bytes) {
  if (q == nullptr) return -EINVAL;
  // QuotaExceeded is a std::bad_alloc: -ENOMEM, its message kept for
  // weft_last_error().
  return weft::capi::guarded([&] {
    q->q.charge(bytes);
    return 0;
  });
}

void weft_quota_release(weft_quota* q, size_t bytes) {
  if (q != nullptr) q->q.release(bytes);
}

size_t weft_quota_limit(const weft_quota* q) {
  return q != nullptr ? q->q.limit() : 0;
}

size_t weft_quota_used(const weft_quota* q) {
  return q != nullptr ? q->q.used() : 0;
}

size_t weft_quota_peak(const weft_quota* q) {
  return q != nullptr ? q->q.peak() : 0;
}

uint64_t weft_quota_refusals(const weft_quota* q) {
  return q != nullptr ? q->q.refusals() : 0;
}

void weft_quota_set_limit(weft_quota* q, size_t limit) {
  if (q != nullptr) q->q.set_limit(limit);
}

}  // extern "C"
