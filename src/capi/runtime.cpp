// weft.h: runtime, fibers, spawn_blocking, sleeping.
//
// A weft_fiber* is the task pointer of a weft::JoinHandle<void*> that gave
// up its ownership (JoinHandle::release): no allocation beyond the C++
// spawn's own. Each call adopts it back into a JoinHandle, acts through the
// C++ API, and releases it again if the C handle stays valid.
#include "weft/runtime.hpp"

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <utility>

#include "capi/capi.hpp"
#include "weft/errors.hpp"
#include "weft/fiber.hpp"
#include "weft/this_fiber.hpp"

struct weft_runtime {
  explicit weft_runtime(const weft::Config& c) : rt(c) {}
  weft::Runtime rt;
};

namespace weft::capi {
namespace {

using Handle = JoinHandle<void*>;

// The closure a C fiber runs. Trivially copyable, two words.
struct CallC {
  void* (*fn)(void*);
  void* arg;
  void* operator()() const { return fn(arg); }
};

weft_fiber* to_c(Handle&& h) noexcept {
  return reinterpret_cast<weft_fiber*>(h.release());
}

Handle adopt(weft_fiber* f) noexcept {
  return Handle(reinterpret_cast<detail::ResultTask<void*>*>(f));
}

// Hands a new fiber's handle to the caller, or detaches it (out NULL).
void hand_out(Handle&& h, weft_fiber** out) noexcept {
  if (out != nullptr) {
    *out = to_c(std::move(h));
  } else {
    h.detach();
  }
}

// v1's weft_spawn_options ends with `name`.
constexpr std::size_t kSpawnOptionsV1 =
    offsetof(weft_spawn_options, name) + sizeof(weft_spawn_options::name);
constexpr std::size_t kConfigV1 =
    offsetof(weft_config, stack_size) + sizeof(weft_config::stack_size);

int to_options(const weft_spawn_options* o, FiberOptions& out) {
  if (o == nullptr) return 0;
  if (o->struct_size < kSpawnOptionsV1) {
    set_last_error(
        "weft: weft_spawn_options.struct_size is too small (use weft_spawn_options_init)");
    return -EINVAL;
  }
  if (o->priority > WEFT_PRIORITY_CRITICAL) {
    set_last_error("weft: weft_spawn_options.priority must be a WEFT_PRIORITY_* value");
    return -EINVAL;
  }
  out.priority = static_cast<Priority>(o->priority);
  out.stack_size = o->stack_size;  // checked by the spawn
  if (o->name != nullptr) out.name = o->name;
  return 0;
}

}  // namespace
}  // namespace weft::capi

using weft::capi::CallC;
using weft::capi::guarded;
using weft::capi::Handle;

extern "C" {

void weft_config_init(weft_config* cfg) {
  if (cfg == nullptr) return;
  weft::Config c;
  try {
    c = weft::Config::from_env();
  } catch (...) {
    // An invalid WEFT_* variable: the defaults here, and weft_runtime_new
    // (which reads the environment again) reports it.
  }
  cfg->struct_size = sizeof(weft_config);
  cfg->workers = static_cast<uint32_t>(c.workers);
  cfg->stack_size = c.stack_size;
}

int weft_runtime_new(const weft_config* cfg, weft_runtime** out) {
  if (out == nullptr) return -EINVAL;
  *out = nullptr;
  if (cfg != nullptr && cfg->struct_size < weft::capi::kConfigV1) {
    weft::capi::set_last_error("weft: weft_config.struct_size is too small (use weft_config_init)");
    return -EINVAL;
  }
  return guarded([&] {
    weft::Config c = weft::Config::from_env();
    if (cfg != nullptr) {
      c.workers = cfg->workers;
      c.stack_size = cfg->stack_size;
    }
    *out = new weft_runtime(c);
    return 0;
  });
}

void weft_runtime_free(weft_runtime* rt) {
  if (rt == nullptr) return;
  if (weft::this_fiber::in_fiber()) {
    std::fputs(
        "weft: weft_runtime_free called from a fiber (it waits for every fiber to end, so it "
        "could wait for itself forever); call it from a thread that is not a fiber\n",
        stderr);
    std::abort();
  }
  delete rt;
}

int weft_block_on(weft_runtime* rt, void* (*fn)(void*), void* arg, void** result) {
  if (rt == nullptr || fn == nullptr) return -EINVAL;
  return guarded([&] {
    void* r = rt->rt.block_on(CallC{fn, arg});
    if (result != nullptr) *result = r;
    return 0;
  });
}

void weft_spawn_options_init(weft_spawn_options* opts) {
  if (opts == nullptr) return;
  opts->struct_size = sizeof(weft_spawn_options);
  opts->priority = WEFT_PRIORITY_NORMAL;
  opts->stack_size = 0;
  opts->name = nullptr;
}

int weft_spawn(weft_runtime* rt, void* (*fn)(void*), void* arg, weft_fiber** out) {
  if (out != nullptr) *out = nullptr;
  if (fn == nullptr) return -EINVAL;
  return guarded(
      [&] {
        Handle h = rt != nullptr ? rt->rt.spawn(CallC{fn, arg}) : weft::spawn(CallC{fn, arg});
        weft::capi::hand_out(std::move(h), out);
        return 0;
      },
      -EPERM);
}

int weft_spawn_ex(weft_runtime* rt, const weft_spawn_options* opts, void* (*fn)(void*), void* arg,
                  weft_fiber** out) {
  if (out != nullptr) *out = nullptr;
  if (fn == nullptr) return -EINVAL;
  return guarded(
      [&] {
        weft::FiberOptions o;
        if (const int rc = weft::capi::to_options(opts, o)) return rc;
        Handle h = rt != nullptr ? rt->rt.spawn(o, CallC{fn, arg}) : weft::spawn(o, CallC{fn, arg});
        weft::capi::hand_out(std::move(h), out);
        return 0;
      },
      -EPERM);
}

int weft_join(weft_fiber* f, void** result) {
  if (f == nullptr) return -EINVAL;
  Handle h = weft::capi::adopt(f);
  try {
    void* r = h.join();
    if (result != nullptr) *result = r;
    return 0;
  } catch (...) {
    // The fiber's own exception (the handle is consumed), or the joining
    // fiber's cancellation (it is not: h detaches it on the way out, so
    // that the C handle is consumed in every case and -ECANCELED cannot
    // mean two things for its validity).
    return weft::capi::current_error(-EINVAL);
  }
}

int weft_cancel(weft_fiber* f) {
  if (f == nullptr) return -EINVAL;
  Handle h = weft::capi::adopt(f);
  h.cancel();
  (void)h.release();
  return 0;
}

void weft_detach(weft_fiber* f) {
  if (f != nullptr) weft::capi::adopt(f).detach();
}

uint64_t weft_fiber_id(const weft_fiber* f) {
  if (f == nullptr) return 0;
  Handle h = weft::capi::adopt(const_cast<weft_fiber*>(f));
  const uint64_t id = h.id();
  (void)h.release();
  return id;
}

uint64_t weft_self_id(void) {
  return weft::this_fiber::id();
}

int weft_in_fiber(void) {
  return weft::this_fiber::in_fiber() ? 1 : 0;
}

void weft_yield(void) {
  weft::this_fiber::yield();
}

int weft_sleep_ns(int64_t ns) {
  if (ns <= 0) return 0;
  return guarded([&] {
    // Through Deadline::after, which saturates: now + ns cannot overflow.
    weft::this_fiber::sleep_until(weft::capi::deadline_after(ns));
    return 0;
  });
}

int weft_sleep_until_ns(int64_t deadline_ns) {
  if (deadline_ns < -1) return -EINVAL;
  return guarded([&] {
    weft::this_fiber::sleep_until(weft::capi::deadline_at(deadline_ns));
    return 0;
  });
}

int weft_spawn_blocking(void* (*fn)(void*), void* arg, weft_fiber** out) {
  if (out != nullptr) *out = nullptr;
  if (fn == nullptr) return -EINVAL;
  return guarded(
      [&] {
        weft::capi::hand_out(weft::spawn_blocking(CallC{fn, arg}), out);
        return 0;
      },
      -EPERM);
}

}  // extern "C"
