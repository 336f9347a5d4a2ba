// weft.h: fiber-local slots over weft::FiberLocal.
//
// A key is a FiberLocal<Slot>; a Slot is the C value and the key's
// destructor, so that a value outlives its key as FiberLocal allows (each
// value carries its own destructor). Propagation::none and ::share are
// offered; ::copy would need a copy function from C, which no user has
// asked for yet.
#include "weft/fls.hpp"

#include <memory>

#include "capi/capi.hpp"

namespace weft::capi {
namespace {

struct Slot {
  Slot(void* v, void (*d)(void*)) noexcept : value(v), destructor(d) {}
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  ~Slot() {
    if (destructor != nullptr) destructor(value);
  }
  void* value;
  void (*destructor)(void*);
};

}  // namespace
}  // namespace weft::capi

struct weft_fls_key {
  template <weft::Propagation::Mode M>
  weft_fls_key(weft::Propagation::Tag<M> mode, void (*d)(void*)) noexcept
      : key(mode), destructor(d) {}
  weft::FiberLocal<weft::capi::Slot> key;
  void (*destructor)(void*);
};

using weft::capi::guarded;

extern "C" {

int weft_fls_key_new(void (*destructor)(void*), int propagation, weft_fls_key** out) {
  if (out == nullptr) return -EINVAL;
  *out = nullptr;
  if (propagation != WEFT_FLS_NONE && propagation != WEFT_FLS_SHARE) {
    weft::capi::set_last_error(
        "weft: weft_fls_key_new: propagation must be WEFT_FLS_NONE or "
        "WEFT_FLS_SHARE");
    return -EINVAL;
  }
  return guarded([&] {
    *out = propagation == WEFT_FLS_SHARE ? new weft_fls_key(weft::Propagation::share, destructor)
                                         : new weft_fls_key(weft::Propagation::none, destructor);
    return 0;
  });
}

void weft_fls_key_free(weft_fls_key* key) {
  delete key;
}

int weft_fls_set(weft_fls_key* key, void* value) {
  if (key == nullptr) return -EINVAL;
  return guarded([&] {
    if (value == nullptr) {
      key->key.reset();
    } else {
      key->key.emplace(value, key->destructor);
    }
    return 0;
  });
}

void* weft_fls_get(const weft_fls_key* key) {
  if (key == nullptr) return nullptr;
  const weft::capi::Slot* s = key->key.try_get();
  return s != nullptr ? s->value : nullptr;
}

}  // extern "C"
